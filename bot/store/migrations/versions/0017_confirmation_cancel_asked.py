"""Who clicked Cancel on a prompt whose Confirm was under way: when that Confirm then
changes nothing (the platform refused it), the request is cancelled instead of open again.
A Cancel in that moment had been told "already confirmed" and was lost, and a later click
still made the change.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("confirmations", sa.Column("cancel_asked_by", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("confirmations") as batch:
        batch.drop_column("cancel_asked_by")
