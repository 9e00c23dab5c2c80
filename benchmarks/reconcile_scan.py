"""The reconcile job's question, asked every minute: which audit rows are still `pending`
or `unknown` and not read back (`AuditLog.unsettled`), over an audit log that is never
pruned. Ours has the partial index of migration 0015; the baseline is the same query on
the same table without it, which is how it ran before.

Fair: one PostgreSQL schema, migrated to head and filled with ROWS settled rows (a year of
a busy team's changes is far fewer), ANALYZEd; the same `AuditLog.unsettled` call, best of
REPEAT, first with the index and then after dropping it, in one run.

    .venv/bin/python -m benchmarks.reconcile_scan [--rows 1000000]
"""

from __future__ import annotations

import argparse
import os
import secrets
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import create_engine, text

from bot.store.audit import AuditLog
from bot.store.db import Database, normalize_url

REPEAT = 7


def _best(log: AuditLog) -> float:
    best = float("inf")
    for _ in range(REPEAT):
        start = time.perf_counter()
        log.unsettled(datetime.now(UTC) - timedelta(minutes=3))
        best = min(best, time.perf_counter() - start)
    return best * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"),
    )
    args = parser.parse_args()
    schema = f"bench_{secrets.token_hex(6)}"
    admin = create_engine(normalize_url(args.database_url))
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in args.database_url else "?"
    database = Database(f"{args.database_url}{separator}options=-csearch_path%3D{schema}")
    try:
        database.migrate()
        with database.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO audit_log (started_at, source, user_id, verb, app, command, "
                    "outcome) SELECT now() - (g || ' seconds')::interval, 'slack', 'U1', "
                    "'scale', 'app' || (g % 1000), 'scale web=2', 'ok' "
                    "FROM generate_series(1, :rows) g"
                ),
                {"rows": args.rows},
            )
            connection.execute(text("ANALYZE audit_log"))
        log = AuditLog(database)
        ours = _best(log)
        with database.engine.begin() as connection:
            connection.execute(text("DROP INDEX ix_audit_log_unsettled"))
        baseline = _best(log)
        print(f"audit rows: {args.rows:,}; unsettled() best of {REPEAT}:")
        print(f"  without the partial index (baseline): {baseline:.1f} ms")
        print(f"  with it (ours, migration 0015):       {ours:.2f} ms")
    finally:
        database.dispose()
        with admin.begin() as connection:
            connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


if __name__ == "__main__":
    main()
