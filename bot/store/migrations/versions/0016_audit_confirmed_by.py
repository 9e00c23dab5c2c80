"""Who confirmed or approved a change, on its audit row: a protected app's kill had kept
only the asker, and the approver lived on in the prompt row, deleted after 7 days, and in
the Slack message.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_log", sa.Column("confirmed_by", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_column("confirmed_by")
