"""The secret a webhook subscription replaced (`webhook_subscriptions.previous_secret`),
taken too while Heroku may still sign with it: a `/deploy watch` whose answer failed had
left the bot knowing only the new secret, and every delivery signed with the old one was
refused.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "webhook_subscriptions", sa.Column("previous_secret", sa.String(128), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("webhook_subscriptions") as batch:
        batch.drop_column("previous_secret")
