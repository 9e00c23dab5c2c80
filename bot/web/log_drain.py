"""`POST /drain/<token>`: Heroku HTTPS log drains in, parsed lines into the aggregator.

Heroku posts `application/logplex-1` bodies and retries a batch it thinks failed with the
same `Logplex-Frame-Id`; a frame id is claimed once in the database, after the body is
parsed, so a retry landing on another web dyno is not counted twice. The request thread
only parses: it queues the parsed batch and answers 204, and one claimer thread per process
claims every batch queued meanwhile in one INSERT and commit, at most one commit every
CLAIM_INTERVAL seconds whatever the line rate, writing one row for all of them, every
app's (`bot.store.drain_claims`, whose docstring says how two processes' overlapping claims
are kept apart), then counts the winners. De-duplication thus costs no commit and no row
per POST, and no database wait in the request. The queue is bounded: when the database is
slower than the drain, POSTs wait for room (back-pressure) rather than memory growing. If
a claim fails, the batches are counted anyway: they were answered 204, so Logplex will not
send them again. No body makes a 500: a frame the parser cannot read is skipped and counted
in `malformed`. The URL's secret token names the app: a wrong one gets 403 and nothing is
parsed. A flusher thread hands the aggregator's windows to the store every few seconds; a
crash loses at most those seconds of metrics, never a command.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from sqlalchemy import select

from bot.metrics.aggregate import Aggregator, Window
from bot.metrics.store import MetricsStore
from bot.store.db import Database
from bot.store.drain_claims import MAX_IDS, DrainClaims
from bot.store.drains import is_token
from bot.store.models import Drain
from policies.logplex import DrainHeaders, ParsedBody, parse_body

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1 << 20  # logplex batches are far smaller; anything bigger is not Heroku
FLUSH_SECONDS = 5.0
TOKEN_CACHE_SECONDS = 60.0
MAX_CARRIED = 50_000  # about 12 hours of one app's windows
MAX_QUEUED = 256  # parsed batches waiting for their claim: ~64k lines, a few MB
MAX_GROUP = MAX_IDS  # batches claimed in one INSERT (one row)
# At most one claim commit per this many seconds per process, whatever the line rate: the
# claimer lets batches gather for it (off the request path, so no POST waits for it).
CLAIM_INTERVAL = 0.25


class DrainIntake:
    def __init__(
        self,
        db: Database,
        claims: DrainClaims,
        aggregator: Aggregator | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._claims = claims
        # (app, frame id, parsed batch): None asks the claimer to stop.
        self._queue: queue.Queue[tuple[str, str, ParsedBody] | None] = queue.Queue(MAX_QUEUED)
        self._claimer: threading.Thread | None = None  # started on first use: after fork
        self.aggregator = aggregator or Aggregator()
        self._clock = clock
        self._apps: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()
        self.malformed = 0

    def app_for(self, token: str) -> str | None:
        """The app whose drain URL carries `token`, or None (answer 403)."""
        return self._app_for(token) if is_token(token) else None

    def receive(self, app: str, headers: Mapping[str, str], body: bytes) -> None:
        """Count one drain POST for `app` (its token already checked)."""
        frame = DrainHeaders.from_headers(headers)
        # Parsed before the batch id is claimed: the batch counts as received only once
        # its lines are in hand (parse_body never raises; bad frames are counted, not fatal).
        parsed = parse_body(body)
        if parsed.malformed:
            with self._lock:
                self.malformed += parsed.malformed
            log.info(
                "malformed drain frames skipped", extra={"app": app, "count": parsed.malformed}
            )
        if not frame.frame_id:
            self.aggregator.ingest(app, parsed)
            return
        self._start_claimer()
        self._queue.put((app, frame.frame_id, parsed))

    def settle(self) -> None:
        """Wait until every queued batch is claimed and counted (before a flush)."""
        if self._claimer is not None and self._claimer.is_alive():
            self._queue.join()
            return
        # Closed already (a POST that raced the shutdown): count what is left here.
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            self._count([item] if item is not None else [])
            self._queue.task_done()

    def close(self) -> None:
        """Count what is queued and stop the claimer (gunicorn's worker_exit)."""
        if self._claimer is not None and self._claimer.is_alive():
            self._queue.put(None)
            self._claimer.join(timeout=30)

    def _start_claimer(self) -> None:
        if self._claimer is None:
            with self._lock:
                if self._claimer is None:
                    thread = threading.Thread(target=self._claim, name="drain-claims", daemon=True)
                    thread.start()
                    self._claimer = thread

    def _claim(self) -> None:
        last = -CLAIM_INTERVAL
        while True:
            first = self._queue.get()
            pause = last + CLAIM_INTERVAL - time.monotonic()
            if first is not None and pause > 0:
                time.sleep(pause)  # let this interval's batches gather into one commit
            last = time.monotonic()
            group = [first]
            while len(group) < MAX_GROUP:
                try:
                    group.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            batches = [item for item in group if item is not None]
            try:
                self._count(batches)
            finally:
                for _ in group:
                    self._queue.task_done()
            if len(batches) < len(group):
                return  # close() asked

    def _count(self, batches: list[tuple[str, str, ParsedBody]]) -> None:
        if not batches:
            return
        try:
            won = self._claims.claim(
                [(app, frame_id) for app, frame_id, _ in batches], datetime.now(UTC)
            )
        except Exception as error:
            # Answered 204 already, so Logplex sends none of them again: count them.
            log.warning(
                "drain batch claims failed; counting them unclaimed",
                extra={"batches": len(batches), "error": type(error).__name__},
            )
            won = {(app, frame_id) for app, frame_id, _ in batches}
        for app, frame_id, parsed in batches:
            if (app, frame_id) in won:  # else a retry of a batch already counted
                self.aggregator.ingest(app, parsed)
                won.discard((app, frame_id))  # the same id twice in one group counts once

    def _app_for(self, token: str) -> str | None:
        now = self._clock()
        with self._lock:
            cached = self._apps.get(token)
        if cached is not None and now - cached[0] < TOKEN_CACHE_SECONDS:
            return cached[1]
        with self._db.session() as session:
            app = session.scalar(select(Drain.app).where(Drain.token == token))
        if app is not None:
            with self._lock:
                self._apps[token] = (now, app)
        return app


class Flusher:
    """Moves the aggregator's windows to the store every `interval` seconds."""

    def __init__(
        self,
        aggregator: Aggregator,
        store: MetricsStore,
        interval: float = FLUSH_SECONDS,
        settle: Callable[[], None] = lambda: None,
    ):
        self._aggregator = aggregator
        self._settle = settle  # the intake's queued batches are counted before each flush
        self._store = store
        self._interval = interval
        self._carried: list[Window] = []
        self._stopping = threading.Event()
        # Made in start(), not here: a Thread object made before gunicorn forks (preload)
        # and started after it reports is_alive() False, and stop() would not wait for it.
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def start(self) -> Flusher:
        """Start the thread, once (later calls do nothing)."""
        if self._thread is None:
            with self._start_lock:
                if self._thread is None:
                    thread = threading.Thread(target=self._run, name="metrics-flush", daemon=True)
                    thread.start()
                    self._thread = thread
        return self

    def flush(self) -> int:
        self._settle()
        windows = [*self._carried, *self._aggregator.drain()]
        try:
            saved = self._store.save(windows)
        except Exception:
            # Keep them for the next flush rather than lose them; bounded, so a long
            # database outage costs the oldest windows, not the process's memory.
            self._carried = windows[-MAX_CARRIED:]
            raise
        self._carried = []
        return saved

    def stop(self) -> None:
        """Stop the thread and flush what is left (gunicorn's worker_exit calls this)."""
        self._stopping.set()
        if self._thread is not None and self._thread.is_alive():
            self._thread.join(timeout=self._interval + 5)
        self.flush()

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            try:
                self.flush()
            except Exception:
                log.exception(
                    "metrics flush failed; will retry", extra={"carried": len(self._carried)}
                )
