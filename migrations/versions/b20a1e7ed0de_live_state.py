"""live state

The live state of issue 20 (app.live): each store's state at `now` (live_store, with the
single row live_meta), the kept incidents, and webhook alerts: receivers, events with the
exact body every attempt sends, one delivery per event and webhook, each attempt, and which
incidents a webhook has been told of.

Revision ID: b20a1e7ed0de
Revises: a19e5e55c0de
Create Date: 2026-12-01 10:00:00.000000
"""
import sqlalchemy as sa
from alembic import op

revision = 'b20a1e7ed0de'
down_revision = 'a19e5e55c0de'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "live_meta",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("now_us", sa.BigInteger(), nullable=True),
        sa.Column("first_us", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("id = 1", name="live_meta_single_row"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "live_store",
        sa.Column("store_pk", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("state", sa.String(length=8), nullable=False),
        sa.Column("since_us", sa.BigInteger(), nullable=False),
        sa.Column("latest_us", sa.BigInteger(), nullable=False),
        sa.Column("counted_us", sa.BigInteger(), nullable=True),
        sa.Column("counted_active", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("store_pk"),
    )
    op.create_index("ix_live_store_state", "live_store", ["state"])
    op.create_table(
        "incident",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("store_pk", sa.Integer(), nullable=False),
        sa.Column("start_us", sa.BigInteger(), nullable=False),
        sa.Column("end_us", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_incident_end_us", "incident", ["end_us"])
    op.create_index("ix_incident_store_end", "incident", ["store_pk", "end_us"])
    op.create_table(
        "webhook",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=False),
        sa.Column("events", sa.Text(), nullable=False),
        sa.Column("min_minutes", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "webhook_event",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_event_incident_id", "webhook_event", ["incident_id"])
    op.create_table(
        "webhook_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("webhook_id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=36), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_us", sa.BigInteger(), nullable=False),
        sa.Column("next_us", sa.BigInteger(), nullable=False),
        sa.Column("lease_us", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["webhook_event.id"]),
        sa.ForeignKeyConstraint(["webhook_id"], ["webhook.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_delivery_webhook_id", "webhook_delivery", ["webhook_id"])
    op.create_index("ix_webhook_delivery_due", "webhook_delivery", ["state", "next_us"])
    op.create_table(
        "webhook_attempt",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["delivery_id"], ["webhook_delivery.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_webhook_attempt_delivery_id", "webhook_attempt", ["delivery_id"])
    op.create_table(
        "webhook_notice",
        sa.Column("webhook_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("incident_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(["webhook_id"], ["webhook.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("webhook_id", "incident_id"),
    )


def downgrade():
    op.drop_table("webhook_notice")
    op.drop_index("ix_webhook_attempt_delivery_id", table_name="webhook_attempt")
    op.drop_table("webhook_attempt")
    op.drop_index("ix_webhook_delivery_due", table_name="webhook_delivery")
    op.drop_index("ix_webhook_delivery_webhook_id", table_name="webhook_delivery")
    op.drop_table("webhook_delivery")
    op.drop_index("ix_webhook_event_incident_id", table_name="webhook_event")
    op.drop_table("webhook_event")
    op.drop_table("webhook")
    op.drop_index("ix_incident_store_end", table_name="incident")
    op.drop_index("ix_incident_end_us", table_name="incident")
    op.drop_table("incident")
    op.drop_index("ix_live_store_state", table_name="live_store")
    op.drop_table("live_store")
    op.drop_table("live_meta")
