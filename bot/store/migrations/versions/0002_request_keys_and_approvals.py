"""Request keys (exactly-once across web dynos) and approvals on confirmations.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "request_keys",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    with op.batch_alter_table("confirmations") as batch:
        batch.add_column(
            sa.Column("approval_required", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("approved_by", sa.String(64)))
        batch.add_column(sa.Column("response_url", sa.Text))
        batch.add_column(sa.Column("force_reason", sa.Text))


def downgrade() -> None:
    with op.batch_alter_table("confirmations") as batch:
        batch.drop_column("force_reason")
        batch.drop_column("response_url")
        batch.drop_column("approved_by")
        batch.drop_column("approval_required")
    op.drop_table("request_keys")
