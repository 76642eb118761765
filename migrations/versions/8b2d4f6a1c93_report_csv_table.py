"""report CSV in a table of its own

A Complete report's CSV moves from `report.csv` to `report_csv` (report_id, csv): SQLite
stores a row's values in order, a large one over a chain of pages, and reading a column
after a 60 MB CSV walked the whole chain. Expired reports have no row there.

Revision ID: 8b2d4f6a1c93
Revises: 7a3f9d2e6b15
Create Date: 2026-12-07 20:30:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = '8b2d4f6a1c93'
down_revision = '7a3f9d2e6b15'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("report_csv",
                    sa.Column("report_id", sa.String(length=36), nullable=False),
                    sa.Column("csv", sa.Text(), nullable=False),
                    sa.PrimaryKeyConstraint("report_id"))
    op.execute("INSERT INTO report_csv (report_id, csv) "
               "SELECT id, csv FROM report WHERE csv IS NOT NULL")
    with op.batch_alter_table("report") as batch_op:
        batch_op.drop_column("csv")


def downgrade():
    with op.batch_alter_table("report") as batch_op:
        batch_op.add_column(sa.Column("csv", sa.Text(), nullable=True))
    op.execute("UPDATE report SET csv = (SELECT c.csv FROM report_csv c "
               "WHERE c.report_id = report.id)")
    op.drop_table("report_csv")
