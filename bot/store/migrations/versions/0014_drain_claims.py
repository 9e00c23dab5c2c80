"""Drain batch ids are claimed one row per claim group (`drain_claims`), not one
`request_keys` row per id, so the rows drains write per minute do not follow the line rate.

The ids already in `request_keys` are left to its retention (an hour): during a rolling
restart, a batch retried from a dyno on the old code to one on the new is the one case
counted twice, as a lost asynchronous commit already allows.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "drain_claims",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer, "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        # 64-bit hashes of "app:frame id". PostgreSQL: bigint[] under a GIN index;
        # SQLite: a JSON array.
        sa.Column(
            "batch_ids",
            postgresql.ARRAY(sa.BigInteger) if postgres else sa.JSON,
            nullable=False,
        ),
    )
    op.create_index("ix_drain_claims_claimed_at", "drain_claims", ["claimed_at"])
    if postgres:
        # PLAIN: kept in the row, never compressed nor moved to a TOAST table (a group of
        # MAX_IDS is 4 KB, within a page), so a claim writes one row and a check reads no
        # TOAST. fastupdate off: a GIN pending list would be scanned by every claim and
        # flushed, all at once, by one of them (measured: median 6.3 ms, worst 108 ms per
        # claim with it; 1.4 ms and 6.6 ms without).
        op.execute("ALTER TABLE drain_claims ALTER COLUMN batch_ids SET STORAGE PLAIN")
        op.create_index(
            "ix_drain_claims_batch_ids",
            "drain_claims",
            ["batch_ids"],
            postgresql_using="gin",
            postgresql_with={"fastupdate": "off"},
        )


def downgrade() -> None:
    op.drop_table("drain_claims")
