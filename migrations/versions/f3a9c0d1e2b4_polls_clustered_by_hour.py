"""polls clustered by hour

store_status gets `hour` (hours since the epoch of `timestamp_us`) as the first column of
its primary key: an hour of polls, one per store, is then one run of adjacent pages instead
of a page per store, so an hourly ingest writes in proportion to its polls, not to the
stores in the table. The rows are copied into a table of the new layout.

Revision ID: f3a9c0d1e2b4
Revises: e7a2c41d9b30
Create Date: 2026-12-07 13:15:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = 'f3a9c0d1e2b4'
down_revision = 'e7a2c41d9b30'
branch_labels = None
depends_on = None

HOUR_US = 3_600_000_000


def _rebuild(key, with_hour):
    """Copy store_status into a table whose primary key is `key`."""
    bind = op.get_bind()
    postgresql = bind.dialect.name == "postgresql"
    op.rename_table("store_status", "store_status_before")
    if postgresql:  # the key's index keeps its name across a table rename
        op.execute("ALTER INDEX store_status_pkey RENAME TO store_status_before_pkey")
    columns = [sa.Column("hour", sa.Integer(), nullable=False, autoincrement=False)] \
        if with_hour else []
    op.create_table(
        "store_status", *columns,
        sa.Column("store_pk", sa.Integer(), nullable=False, autoincrement=False),
        sa.Column("timestamp_us", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint(*key, name="store_status_pkey"),
        sqlite_with_rowid=False)
    # Floor division on both databases: integer division truncates toward zero.
    hour = (f"CASE WHEN timestamp_us >= 0 THEN timestamp_us / {HOUR_US} "
            f"ELSE -((-timestamp_us - 1) / {HOUR_US}) - 1 END")
    listed = "store_pk, timestamp_us, active"
    op.execute(f"INSERT INTO store_status ({'hour, ' if with_hour else ''}{listed}) "
               f"SELECT {hour + ', ' if with_hour else ''}{listed} FROM store_status_before "
               f"ORDER BY {', '.join(key).replace('hour', hour)}")
    op.drop_table("store_status_before")


def upgrade():
    _rebuild(("hour", "store_pk", "timestamp_us"), with_hour=True)


def downgrade():
    _rebuild(("store_pk", "timestamp_us"), with_hour=False)
