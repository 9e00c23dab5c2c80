"""Deploy locks: `/deploy lock APP REASON` holds back rollbacks (and later ships and
promotions) by anyone but the holder until `/deploy unlock APP`.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deploy_locks",
        sa.Column("app", sa.String(64), primary_key=True),  # one lock per app: the key decides
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("deploy_locks")
