"""live store next change

live_store.next_us: when business time next begins or ends for the store, so that an
ingest looks only at the stores whose state can have changed (issue 20). Rows written
before it get 0: the next ingest looks at them all once.

Revision ID: e7a2c41d9b30
Revises: b20a1e7ed0de
Create Date: 2026-12-07 10:15:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = 'e7a2c41d9b30'
down_revision = 'b20a1e7ed0de'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("live_store") as batch:
        batch.add_column(sa.Column("next_us", sa.BigInteger(), nullable=False,
                                   server_default="0"))


def downgrade():
    with op.batch_alter_table("live_store") as batch:
        batch.drop_column("next_us")
