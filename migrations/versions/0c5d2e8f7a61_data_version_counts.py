"""data version counts

data_version.polls and data_version.stores_with_polls: kept by every ingest, so that what
is loaded is told without counting every poll. NULL (the rows before this revision, and
after a removal) means not known: it is counted when asked.

Revision ID: 0c5d2e8f7a61
Revises: f3a9c0d1e2b4
Create Date: 2026-12-07 13:20:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '0c5d2e8f7a61'
down_revision = 'f3a9c0d1e2b4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("data_version") as batch:
        batch.add_column(sa.Column("polls", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("stores_with_polls", sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table("data_version") as batch:
        batch.drop_column("stores_with_polls")
        batch.drop_column("polls")
