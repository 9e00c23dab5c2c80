"""Autoscaling: per-app settings, pins from Slack, and the decisions the worker made.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "autoscale_settings",
        sa.Column("app", sa.String(64), primary_key=True),
        sa.Column("mode", sa.String(10), nullable=False),  # on, off, shadow
        sa.Column("min", sa.Integer, nullable=False),
        sa.Column("max", sa.Integer, nullable=False),
        sa.Column("target_kind", sa.String(20), nullable=False),  # queue_p95, service_p95, rpm
        sa.Column("target_value", sa.Float, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "autoscale_pins",
        sa.Column("app", sa.String(64), primary_key=True),
        sa.Column("quantity", sa.Integer, nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pinned_by", sa.String(64), nullable=False),
    )
    op.create_table(
        "autoscale_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("app", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actual", sa.Integer, nullable=False),
        sa.Column("desired", sa.Integer, nullable=False),
        sa.Column("recommendation", sa.Integer, nullable=False),
        sa.Column("acted", sa.Boolean, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_autoscale_decisions_app_at", "autoscale_decisions", ["app", "at"])


def downgrade() -> None:
    op.drop_index("ix_autoscale_decisions_app_at", table_name="autoscale_decisions")
    op.drop_table("autoscale_decisions")
    op.drop_table("autoscale_pins")
    op.drop_table("autoscale_settings")
