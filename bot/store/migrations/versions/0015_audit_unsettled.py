"""A partial index over the audit rows the reconcile job still has to read back (`pending`
or `unknown`, not reconciled): the job asks for them every minute, and without it each run
scanned the whole audit log, which is never pruned (21 ms at 20k rows, 200 ms at 1M on
PostgreSQL). The rows it covers are the few in doubt, so it stays small forever.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

UNSETTLED = sa.text("outcome IN ('pending', 'unknown') AND reconciled_at IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_audit_log_unsettled",
        "audit_log",
        ["id"],
        postgresql_where=UNSETTLED,
        sqlite_where=UNSETTLED,
    )


def downgrade() -> None:
    op.drop_index("ix_audit_log_unsettled", table_name="audit_log")
