"""report as of

A report may be asked for as of an instant (`as_of_us`, None: the latest poll) and records
the `now` its windows ended at (`now_us`), both in µs since the epoch, UTC. Existing reports
keep None for both.

Revision ID: b3e7a91c4d20
Revises: b3e91f04c2d7
Create Date: 2026-11-30 08:10:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = 'b3e7a91c4d20'
down_revision = 'b3e91f04c2d7'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("report") as batch_op:
        batch_op.add_column(sa.Column("as_of_us", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("now_us", sa.BigInteger(), nullable=True))


def downgrade():
    with op.batch_alter_table("report") as batch_op:
        batch_op.drop_column("now_us")
        batch_op.drop_column("as_of_us")
