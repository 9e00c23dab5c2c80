"""Autoscaling of worker process types from the app's job queue (HireFire endpoint), and
the autoscaler settings and schedule windows changed from chat.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "autoscale_worker_settings",
        sa.Column("app", sa.String(64), primary_key=True),
        sa.Column("process_type", sa.String(30), primary_key=True),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("min", sa.Integer, nullable=False),
        sa.Column("max", sa.Integer, nullable=False),
        sa.Column("target_kind", sa.String(20), nullable=False),  # latency, jobs
        sa.Column("target_value", sa.Float, nullable=False),  # seconds; jobs per dyno
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "autoscale_overrides",
        sa.Column("app", sa.String(64), primary_key=True),
        sa.Column("key", sa.String(32), primary_key=True),  # down_stabilization, max_step, schedule
        sa.Column("value", sa.Text, nullable=False),  # "2m", "4", a JSON list of windows
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("autoscale_overrides")
    op.drop_table("autoscale_worker_settings")
