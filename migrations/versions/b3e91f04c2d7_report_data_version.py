"""report data version

Which data version a report was computed from, and the report whose CSV it reuses when
nothing was ingested since that one completed.

Revision ID: b3e91f04c2d7
Revises: 7c1e5a9d2b40
Create Date: 2026-11-30 07:55:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = 'b3e91f04c2d7'
down_revision = '7c1e5a9d2b40'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("report") as batch_op:
        batch_op.add_column(sa.Column("data_version", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("reused_from", sa.String(length=36), nullable=True))
        batch_op.create_index("ix_report_data_version", ["data_version"])


def downgrade():
    with op.batch_alter_table("report") as batch_op:
        batch_op.drop_index("ix_report_data_version")
        batch_op.drop_column("reused_from")
        batch_op.drop_column("data_version")
