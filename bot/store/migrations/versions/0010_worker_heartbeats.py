"""The worker's heartbeat: each worker process writes its latest tick, so the web dyno can
say when the worker stopped (and with it autoscaling and alerts).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker", sa.String(128), primary_key=True),
        sa.Column("leader", sa.Boolean, nullable=False),
        sa.Column("release", sa.String(64)),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ticked_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_worker_heartbeats_ticked_at", "worker_heartbeats", ["ticked_at"])


def downgrade() -> None:
    op.drop_index("ix_worker_heartbeats_ticked_at", "worker_heartbeats")
    op.drop_table("worker_heartbeats")
