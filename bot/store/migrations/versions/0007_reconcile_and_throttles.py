"""Audit rows that a reconciliation pass has settled, and each Heroku account's throttle,
shared by the web and worker dynos.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("reconciled_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "api_throttles",
        sa.Column("account", sa.String(64), primary_key=True),  # the API key's variable
        sa.Column("throttled_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("remaining", sa.Integer, nullable=True),  # Heroku's RateLimit-Remaining
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("api_throttles")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("reconciled_at")
