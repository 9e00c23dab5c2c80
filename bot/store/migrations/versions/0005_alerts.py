"""Alerts: incidents (one row per thing going wrong), the outbox of Slack messages, and the
Heroku webhook subscriptions whose secrets sign what Heroku delivers.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("incident_key", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),  # post, update, reply
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),  # pending, sending, sent, failed
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.Column("ts", sa.String(32)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_alert_outbox_state_next", "alert_outbox", ["state", "next_attempt_at"])
    op.create_index("ix_alert_outbox_incident_id", "alert_outbox", ["incident_key", "id"])
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),  # open, resolved
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("channel", sa.String(32)),
        sa.Column("message_ts", sa.String(32)),
        sa.Column("folded", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("silenced_until", sa.DateTime(timezone=True)),
        sa.Column("acknowledged_by", sa.String(64)),
    )
    op.create_index("ix_incidents_app", "incidents", ["app"])
    op.create_table(
        "webhook_subscriptions",
        sa.Column("app", sa.String(64), primary_key=True),
        sa.Column("webhook_id", sa.String(64)),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("webhook_subscriptions")
    op.drop_index("ix_incidents_app", table_name="incidents")
    op.drop_table("incidents")
    op.drop_index("ix_alert_outbox_incident_id", table_name="alert_outbox")
    op.drop_index("ix_alert_outbox_state_next", table_name="alert_outbox")
    op.drop_table("alert_outbox")
