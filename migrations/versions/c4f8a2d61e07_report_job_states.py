"""report job states

A report's status names its job state: queued (no process has claimed it), running (a
process holds its lease), complete or error. Before, queued and running were both
"Running", told apart by `worker` being NULL; clients are still told "Running" for both.
A check constraint keeps the column to the four states.

Revision ID: c4f8a2d61e07
Revises: b3e7a91c4d20
Create Date: 2026-11-30 09:50:00.000000
"""
from alembic import op

revision = 'c4f8a2d61e07'
down_revision = 'b3e7a91c4d20'
branch_labels = None
depends_on = None

CHECK = "report_status_known"


def upgrade():
    op.execute("UPDATE report SET status = CASE"
               " WHEN status = 'Running' AND worker IS NULL THEN 'queued'"
               " WHEN status = 'Running' THEN 'running'"
               " WHEN status = 'Complete' THEN 'complete'"
               " WHEN status = 'Error' THEN 'error'"
               " ELSE status END")
    with op.batch_alter_table("report") as batch_op:
        batch_op.create_check_constraint(
            CHECK, "status IN ('queued', 'running', 'complete', 'error')")


def downgrade():
    with op.batch_alter_table("report") as batch_op:
        batch_op.drop_constraint(CHECK, type_="check")
    op.execute("UPDATE report SET status = CASE"
               " WHEN status IN ('queued', 'running') THEN 'Running'"
               " WHEN status = 'complete' THEN 'Complete'"
               " WHEN status = 'error' THEN 'Error'"
               " ELSE status END")
