"""incident by store, end and start

The index of a store's incidents by end gains their start: the start of a store's open
incident (a min() over that index) is then read from the index alone, and SQLite no longer
takes the index of open incidents in order of start for it, which made it scan every open
incident for each down store (/api/v1/stores?state=down: 0.8 s at a million stores).

Revision ID: 7a3f9d2e6b15
Revises: 5d8e1b3c7a24
Create Date: 2026-12-07 17:50:00.000000
"""
from alembic import op

revision = '7a3f9d2e6b15'
down_revision = '5d8e1b3c7a24'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_incident_store_end_start", "incident", ["store_pk", "end_us", "start_us"])
    op.drop_index("ix_incident_store_end", table_name="incident")


def downgrade():
    op.create_index("ix_incident_store_end", "incident", ["store_pk", "end_us"])
    op.drop_index("ix_incident_store_end_start", table_name="incident")
