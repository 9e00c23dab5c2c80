"""The other apps an audit row's change reached (a promotion's next stage, a swap's other
environment): `/deploy history` of those apps had not shown the change.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_apps",
        sa.Column(
            "audit_id",
            sa.Integer(),
            sa.ForeignKey("audit_log.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("app", sa.String(64), primary_key=True),
    )
    op.create_index("ix_audit_apps_app", "audit_apps", ["app"])


def downgrade() -> None:
    op.drop_index("ix_audit_apps_app", "audit_apps")
    op.drop_table("audit_apps")
