"""data version keeps the earliest and latest poll

`data_version.first_poll_us` and `.latest_poll_us`, kept by every ingest (None: not known,
found in the polls table), so that the home page and `GET /api/v1/data` do not look
through the first and the latest hour's polls (a million rows each at a million stores).

Revision ID: c6e2a8d4f105
Revises: 8b2d4f6a1c93
Create Date: 2026-12-07 20:40:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = 'c6e2a8d4f105'
down_revision = '8b2d4f6a1c93'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("data_version") as batch_op:
        batch_op.add_column(sa.Column("first_poll_us", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("latest_poll_us", sa.BigInteger(), nullable=True))


def downgrade():
    with op.batch_alter_table("data_version") as batch_op:
        batch_op.drop_column("latest_poll_us")
        batch_op.drop_column("first_poll_us")
