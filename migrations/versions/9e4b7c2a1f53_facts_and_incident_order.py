"""schedule facts per data version, incidents in order of start

data_version keeps how many stores there are and how many lack business hours, a zone or a
known zone, with the data version they were counted for (`facts_version`: they are trusted
only while it is the current version; NULL: not known, counted when asked), so that the
first view of the home page
or of /api/v1/data after a restart reads one row instead of probing every store; and
incidents are indexed in the order of their pages, (start_us, id) for all of them and
(end_us, start_us, id) for the open ones (replacing the index on end_us alone), so that
neither is found by sorting or walking millions of rows.

Revision ID: 9e4b7c2a1f53
Revises: 0c5d2e8f7a61
Create Date: 2026-12-07 17:20:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '9e4b7c2a1f53'
down_revision = '0c5d2e8f7a61'
branch_labels = None
depends_on = None

_FACTS = ("stores", "stores_without_business_hours", "stores_without_timezone",
          "stores_with_unknown_timezone")


def upgrade():
    with op.batch_alter_table("data_version") as batch:
        for name in _FACTS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=True))
        batch.add_column(sa.Column("facts_version", sa.String(length=32), nullable=True))
    op.create_index("ix_incident_start", "incident", ["start_us", "id"])
    op.create_index("ix_incident_end_start", "incident", ["end_us", "start_us", "id"])
    op.drop_index("ix_incident_end_us", table_name="incident")


def downgrade():
    op.create_index("ix_incident_end_us", "incident", ["end_us"])
    op.drop_index("ix_incident_end_start", table_name="incident")
    op.drop_index("ix_incident_start", table_name="incident")
    with op.batch_alter_table("data_version") as batch:
        batch.drop_column("facts_version")
        for name in reversed(_FACTS):
            batch.drop_column(name)
