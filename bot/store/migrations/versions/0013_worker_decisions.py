"""Autoscale decisions name their process type, so worker types' decisions are kept,
shown and forgotten beside web's.

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every row before this one was web's.
    with op.batch_alter_table("autoscale_decisions") as batch:
        batch.add_column(
            sa.Column("process_type", sa.String(30), nullable=False, server_default="web")
        )


def downgrade() -> None:
    op.execute("DELETE FROM autoscale_decisions WHERE process_type <> 'web'")
    with op.batch_alter_table("autoscale_decisions") as batch:
        batch.drop_column("process_type")
