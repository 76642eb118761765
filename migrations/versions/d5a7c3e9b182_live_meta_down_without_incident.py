"""live state keeps how many down stores have no open incident

`live_meta.stores_down_without_incident`, counted by every live update (None: not known),
so that the home page looks for such stores only when there are some: finding that there
are none meant a lookup for every down store (8,700 at a million stores, 100 ms and more).

Revision ID: d5a7c3e9b182
Revises: c6e2a8d4f105
Create Date: 2026-12-07 23:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = 'd5a7c3e9b182'
down_revision = 'c6e2a8d4f105'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("live_meta") as batch_op:
        batch_op.add_column(sa.Column("stores_down_without_incident", sa.Integer(),
                                      nullable=True))


def downgrade():
    with op.batch_alter_table("live_meta") as batch_op:
        batch_op.drop_column("stores_down_without_incident")
