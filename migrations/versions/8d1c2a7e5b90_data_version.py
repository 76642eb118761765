"""data version

One row saying which committed ingest the data is: every ingest that commits sets a new
random `version`. Reports read it in the same transaction as the data, so a columnar copy
(or a report) made for one version is only ever used for that version.

Revision ID: 8d1c2a7e5b90
Revises: 4bdf7645cf16
Create Date: 2026-11-30 07:40:00.000000
"""
import uuid

import sqlalchemy as sa
from alembic import op

revision = '8d1c2a7e5b90'
down_revision = '4bdf7645cf16'
branch_labels = None
depends_on = None


def upgrade():
    table = op.create_table(
        "data_version",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("version", sa.String(length=32), nullable=False),
        sa.CheckConstraint("id = 1", name="data_version_single_row"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(table, [{"id": 1, "version": uuid.uuid4().hex}])


def downgrade():
    op.drop_table("data_version")
