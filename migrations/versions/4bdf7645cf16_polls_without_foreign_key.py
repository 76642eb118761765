"""polls without foreign key

Checking `store_status.store_pk` against `store` row by row made bulk loads three times
slower on PostgreSQL; ingest registers each store before writing its polls anyway.

Revision ID: 4bdf7645cf16
Revises: 63c117ff542e
Create Date: 2026-11-29 01:24:59.018979
"""
from alembic import op

revision = '4bdf7645cf16'
down_revision = '63c117ff542e'
branch_labels = None
depends_on = None

# The initial migration left the constraint unnamed; on PostgreSQL it got this name, and
# on SQLite (rebuilt in batch mode) the naming convention gives the reflected one the same.
FOREIGN_KEY = "store_status_store_pk_fkey"
NAMING = {"fk": "%(table_name)s_%(column_0_name)s_fkey"}


def upgrade():
    with op.batch_alter_table("store_status", naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint(FOREIGN_KEY, type_="foreignkey")


def downgrade():
    with op.batch_alter_table("store_status", naming_convention=NAMING) as batch_op:
        batch_op.create_foreign_key(FOREIGN_KEY, "store", ["store_pk"], ["id"])
