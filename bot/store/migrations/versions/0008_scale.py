"""Work proportional to new data: a `folded` flag on metric windows (compaction takes only
parts it has not folded yet), per-minute request counts as plain numbers (the forecast reads
them without decoding sketches), and an index for pruning autoscale decisions by time.

Existing 10 s rows start unfolded, so the first compaction after the upgrade folds them once
and writes their minutes; existing 1-minute rollups are folded already, and their request
counts are copied into `metric_minutes` here so the week-ago forecast has its history.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "metric_windows",
        sa.Column("folded", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.execute("UPDATE metric_windows SET folded = TRUE WHERE resolution = 60")
    if op.get_bind().dialect.name == "postgresql":
        # A thousand drained apps insert about 45 million window rows a day: a 32-bit id
        # would run out within two months. (SQLite's rowid is 64-bit already.)
        op.execute("ALTER TABLE metric_windows ALTER COLUMN id TYPE BIGINT")
        op.execute("ALTER SEQUENCE metric_windows_id_seq AS BIGINT")
    # Compaction's lookups (parts not folded yet; folded fine windows past 48 hours) are
    # range scans on this, as small as what they find however much history is standing.
    op.create_index(
        "ix_metric_windows_resolution_folded_start",
        "metric_windows",
        ["resolution", "folded", "start"],
    )
    op.create_table(
        "metric_minutes",
        sa.Column("app", sa.String(64), primary_key=True),
        sa.Column("minute", sa.BigInteger, primary_key=True),  # epoch seconds // 60
        sa.Column("requests", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_metric_minutes_minute", "metric_minutes", ["minute"])
    requests = (
        "CAST(data->>'requests' AS BIGINT)"
        if op.get_bind().dialect.name == "postgresql"
        else "CAST(json_extract(data, '$.requests') AS INTEGER)"
    )
    op.execute(
        "INSERT INTO metric_minutes (app, minute, requests) "
        f"SELECT app, start / 60, SUM({requests}) FROM metric_windows "
        "WHERE resolution = 60 GROUP BY app, start / 60"
    )
    op.create_index("ix_autoscale_decisions_at", "autoscale_decisions", ["at"])
    op.create_index("ix_alert_outbox_sent_at", "alert_outbox", ["sent_at"])


def downgrade() -> None:
    op.drop_index("ix_alert_outbox_sent_at", table_name="alert_outbox")
    op.drop_index("ix_autoscale_decisions_at", table_name="autoscale_decisions")
    op.drop_index("ix_metric_minutes_minute", table_name="metric_minutes")
    op.drop_table("metric_minutes")
    op.drop_index("ix_metric_windows_resolution_folded_start", table_name="metric_windows")
    with op.batch_alter_table("metric_windows") as batch:
        batch.drop_column("folded")
