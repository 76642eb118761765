"""api keys and report retention

Clients' keys, stored as SHA-256 hashes (see app/keys.py); `report.expired_at`, set when
the retention policy deleted a report's CSV (its id then answers 410).

Revision ID: 7c1e5a9d2b40
Revises: 8d1c2a7e5b90
Create Date: 2026-11-30 07:25:00
"""
import sqlalchemy as sa
from alembic import op

revision = '7c1e5a9d2b40'
down_revision = '8d1c2a7e5b90'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "api_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
        sa.UniqueConstraint("key_hash"),
    )
    with op.batch_alter_table("report") as batch_op:
        batch_op.add_column(sa.Column("expired_at", sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table("report") as batch_op:
        batch_op.drop_column("expired_at")
    op.drop_table("api_key")
