"""Audit trail and pending confirmations.

Revision ID: 0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("team_id", sa.String(32)),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("channel_id", sa.String(32)),
        sa.Column("verb", sa.String(20), nullable=False),
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("before", sa.JSON),
        sa.Column("requested", sa.JSON),
        sa.Column("after", sa.JSON),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_audit_log_started_at", "audit_log", ["started_at"])
    op.create_index("ix_audit_log_app", "audit_log", ["app"])
    op.create_table(
        "confirmations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("team_id", sa.String(32)),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("channel_id", sa.String(32)),
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("before", sa.JSON, nullable=False),
        sa.Column("targets", sa.JSON, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("decided_by", sa.String(64)),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    op.drop_table("confirmations")
    op.drop_index("ix_audit_log_app", "audit_log")
    op.drop_index("ix_audit_log_started_at", "audit_log")
    op.drop_table("audit_log")
