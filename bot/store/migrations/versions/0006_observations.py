"""What Heroku told us about an app (formation changes, releases) through its webhooks, for
the worker to read: the web dyno receives them, the worker's autoscaler acts on them.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "platform_observations",
        sa.Column("app", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), primary_key=True),  # formation, release
        sa.Column("subject", sa.String(64), primary_key=True),  # process type; "current"
        sa.Column("value", sa.Integer, nullable=False),  # quantity; release version
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("platform_observations")
