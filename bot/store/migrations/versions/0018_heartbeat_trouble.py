"""What is wrong with the worker's jobs, on its heartbeat: a job failing run after run, or
one hung in a call, had left the heartbeat beating and `/deploy about` saying all was well.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("worker_heartbeats", sa.Column("trouble", sa.String(500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("worker_heartbeats") as batch:
        batch.drop_column("trouble")
