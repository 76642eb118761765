"""live state counts

live_meta keeps how many stores are in each state, written by every update of the live
state (which holds every store's row then), so that the home page and /api/v1/status read
one row instead of counting a million stores' rows. NULL: not known, counted when asked.

Revision ID: 5d8e1b3c7a24
Revises: 9e4b7c2a1f53
Create Date: 2026-12-07 17:40:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '5d8e1b3c7a24'
down_revision = '9e4b7c2a1f53'
branch_labels = None
depends_on = None

_COUNTS = ("stores_up", "stores_down", "stores_closed", "stores_silent")


def upgrade():
    with op.batch_alter_table("live_meta") as batch:
        for name in _COUNTS:
            batch.add_column(sa.Column(name, sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("live_meta") as batch:
        for name in reversed(_COUNTS):
            batch.drop_column(name)
