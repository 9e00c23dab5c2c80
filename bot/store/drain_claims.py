"""Logplex batch ids claimed once across every web process, one row per claim group.

Logplex retries a batch it thinks failed with the same `Logplex-Frame-Id`, maybe to another
web dyno; the batch must count once. Each process's drain claimer gathers the ids of the
batches it received in the last fraction of a second, every app's, and claims them
together (`bot.web.log_drain`). A claim writes one `drain_claims` row holding the ids that
no standing row holds, and answers with those: the batches this call counts. So the rows
written per minute follow the claimer's pace (each process at most one commit per
`CLAIM_INTERVAL`), not the line rate nor the number of drained apps, where one
`request_keys` row per id wrote a row per POST.

An id is stored as a 64-bit hash of `app:frame id` (8 bytes where the text is about 45), so
a full group (`MAX_IDS`) is 4 KB and stays in its row: no TOAST rows written, none read by
a check. Two different batches hashing alike would count one of them as a retry: with an
hour of ids standing at 1,000 POSTs a second (3.6 million), the chance that a new id meets
one is 2e-13 each, about one batch in a few hundred thousand hours at that rate.

The race, and how it is closed. Two processes may claim overlapping ids at the same moment
(a retry landing on another dyno while the first attempt is still queued there). A check
("which of these ids does a standing row hold?") followed by an insert is not atomic under
READ COMMITTED: both could see none and both insert. A unique constraint cannot help (the
unit of uniqueness is an array element; a per-id staging table would write the rows this
table exists to save) and SERIALIZABLE would fail one claim and need a retry loop. Instead,
on PostgreSQL each claim transaction first takes a transaction-scoped advisory lock
(`pg_advisory_xact_lock`), then runs the check-and-insert as one statement. That statement's
snapshot is taken after the lock was granted, and PostgreSQL releases a transaction's locks
only after its commit is visible, so the second of two overlapping claims sees the first
one's row and inserts only what is new. One lock for all drains, not one per app: every
busy process's group holds every busy app's ids, so per-app locks would be taken by the
same claims in the same order and only add a deadlock to avoid. It is held for one INSERT
and an asynchronous commit (a millisecond or two) by one claimer per process, a few times a
second; it needs no connection beyond the one the claim already uses, so the connection
budget is unchanged. Its key is made as every named transaction lock's (`db.NAMED_LOCK`),
in the single 64-bit key space, which PostgreSQL keeps apart from the two-number one the
worker lease uses, with the schema's hash in the high half so deployments sharing a
database in schemas of their own do not wait on each other.

The standing rows that share ids with a group are found through a GIN index on
`batch_ids` (`&&`: any element in common), one index probe per claim however many groups
stand. The planner cannot tell how few rows that finds (the ids are all distinct, so the
statistics say nothing) and would rather scan the table: about a second at an hour of
groups, against a millisecond or two through the index. So the claim turns sequential
scans off for its own transaction (the statement has no other table to scan). Rows older
than `KEEP` are deleted by the worker's retention job, so what stands is an hour of groups:
at most 4 a second per web process, whatever the traffic.

On SQLite (the embedded default) the ids are a JSON array and the claim is one
`INSERT … SELECT` as the first statement of its transaction: SQLite takes its single writer
lock (waiting out `busy_timeout`) before that statement reads, so another process's claim
is wholly before it or wholly after. The check reads every standing id (SQLite has no array
index), which a laptop's drain keeps to a few thousand.

Commits are asynchronous on PostgreSQL (`synchronous_commit` off for the claim only): a
claim lost in a server crash can at worst count one retried batch twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import DateTime, bindparam, delete, text

from bot.store.db import NAMED_LOCK, Database
from bot.store.models import DrainClaim

# Logplex retries a batch within seconds of a failed POST; its ids need not outlive that.
KEEP = timedelta(hours=1)
# Ids in one claim: 500 * 8 bytes keeps a row within a page, where PLAIN storage needs it.
MAX_IDS = 500

_NOW = bindparam("now", type_=DateTime(timezone=True))
_LOCK_NAME = "deploybot-drain-claims"

# One statement: this transaction's asynchronous commit, the index over a table scan, and
# the claim lock.
_LOCK = text(
    "SELECT set_config('synchronous_commit', 'off', true), "
    f"set_config('enable_seqscan', 'off', true), {NAMED_LOCK}"
)

# The same text whatever the group's size (an array bound to unnest), so it is prepared
# once. The ids standing rows already hold are read only from the rows the GIN index finds.
_CLAIM_POSTGRES = text(
    "INSERT INTO drain_claims (claimed_at, batch_ids) "
    "SELECT :now, ids FROM ("
    " SELECT array_agg(id) AS ids FROM ("
    "  SELECT id FROM unnest(CAST(:ids AS bigint[])) AS id"
    "  EXCEPT"
    "  SELECT s.id FROM drain_claims AS c CROSS JOIN LATERAL unnest(c.batch_ids) AS s(id)"
    "  WHERE c.batch_ids && CAST(:ids AS bigint[])"
    " ) AS fresh"
    ") AS claim WHERE ids IS NOT NULL "
    "RETURNING batch_ids"
).bindparams(_NOW)

_CLAIM_SQLITE = text(
    "INSERT INTO drain_claims (claimed_at, batch_ids) "
    "SELECT :now, ids FROM ("
    " SELECT json_group_array(value) AS ids, count(*) AS n FROM ("
    "  SELECT value FROM json_each(:ids)"
    "  EXCEPT"
    "  SELECT s.value FROM drain_claims AS c, json_each(c.batch_ids) AS s"
    " )"
    ") WHERE n > 0 "
    "RETURNING batch_ids"
).bindparams(_NOW)


def batch_id(app: str, frame_id: str) -> int:
    """The stored id of `app`'s batch `frame_id`: a signed 64-bit hash (bigint's range)."""
    digest = hashlib.blake2b(f"{app}:{frame_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class DrainClaims:
    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(self, batches: Iterable[tuple[str, str]], now: datetime) -> set[tuple[str, str]]:
        """The (app, frame id) pairs of `batches` that no earlier claim holds: the batches
        the caller counts. One transaction and at most one row, whatever the number of
        batches and apps; at most `MAX_IDS` distinct batches."""
        pairs = {batch_id(app, frame_id): (app, frame_id) for app, frame_id in batches}
        if not pairs:
            return set()
        if len(pairs) > MAX_IDS:
            raise ValueError(f"{len(pairs)} batches in one claim; at most {MAX_IDS}")
        with self._db.session() as session, session.begin():
            if session.get_bind().dialect.name == "postgresql":
                session.execute(_LOCK, {"name": _LOCK_NAME})
                won = session.scalar(_CLAIM_POSTGRES, {"ids": list(pairs), "now": now})
            else:
                found = session.scalar(_CLAIM_SQLITE, {"ids": json.dumps(list(pairs)), "now": now})
                won = json.loads(found) if found is not None else None
        return {pairs[key] for key in won or ()}

    def forget_older_than(self, cutoff: datetime) -> int:
        """Drop the claim groups made before `cutoff` (past Logplex's retries)."""
        with self._db.session() as session, session.begin():
            return session.execute(
                delete(DrainClaim).where(DrainClaim.claimed_at < cutoff)
            ).rowcount
