"""web sessions

The dashboard's sign-in sessions, kept by the server so that signing out ends them: the
browser's cookie holds a random session token, the table its SHA-256 (`id`), the hash of
the API key it signed in with, and when it expires (`SESSION_HOURS` after sign-in).

Revision ID: a19e5e55c0de
Revises: c4f8a2d61e07
Create Date: 2026-12-01 09:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = 'a19e5e55c0de'
down_revision = 'c4f8a2d61e07'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "web_session",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_web_session_key_hash", "web_session", ["key_hash"])
    op.create_index("ix_web_session_expires_at", "web_session", ["expires_at"])


def downgrade():
    op.drop_index("ix_web_session_expires_at", table_name="web_session")
    op.drop_index("ix_web_session_key_hash", table_name="web_session")
    op.drop_table("web_session")
