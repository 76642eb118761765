"""business hours and zones without foreign key

Checking `business_hours.store_pk` against `store` row by row took 280 of the 450 ms that
PostgreSQL spent loading 95,000 hours; ingest registers each store before writing its
hours and zone, in the same transaction, and stores are never deleted.

Revision ID: e8b4d2a6f317
Revises: d5a7c3e9b182
Create Date: 2026-12-07 23:10:00.000000
"""
from alembic import op

revision = 'e8b4d2a6f317'
down_revision = 'd5a7c3e9b182'
branch_labels = None
depends_on = None

# The initial migration left the constraints unnamed; on PostgreSQL they got these names,
# and on SQLite (rebuilt in batch mode) the naming convention gives the reflected ones the
# same.
NAMING = {"fk": "%(table_name)s_%(column_0_name)s_fkey"}
TABLES = ("business_hours", "store_timezone")


def upgrade():
    for table in TABLES:
        with op.batch_alter_table(table, naming_convention=NAMING) as batch_op:
            batch_op.drop_constraint(f"{table}_store_pk_fkey", type_="foreignkey")


def downgrade():
    # Fails if a row names a store that is not in `store`: no ingest writes one, and stores
    # are never deleted.
    for table in TABLES:
        with op.batch_alter_table(table, naming_convention=NAMING) as batch_op:
            batch_op.create_foreign_key(f"{table}_store_pk_fkey", "store", ["store_pk"], ["id"])
