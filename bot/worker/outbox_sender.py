"""Alert delivery that loses nothing: the sender that empties the outbox (`bot.store.outbox`) into Slack.

Whoever decides an alert writes it with `Outbox.enqueue` in its own transaction, so a
decision and its message are stored together or not at all. The worker calls
`OutboxSender.send_due(now)`: per incident, rows go out strictly in order (the first
`post` makes the message, an `update` edits it with chat.update, a `reply` goes into its
thread), and a row that cannot go now holds back the rows behind it.

- A row is claimed with a conditional UPDATE before the Slack call, so two senders never
  send the same row; a claim expires (`lease`) in case its sender dies mid-call.
- It is marked sent right after Slack answers ok. The one window left for a duplicate is
  a sender killed during its Slack call or before that commit (Slack has no idempotency
  key): the row is sent again once its claim expires. A commit the database fails (a
  failover just after Slack answered) is made again first thing next round, or while the
  worker waits for the lease it lost with the database, so the row is not sent again. A
  worker letting go of the lease (Heroku's SIGTERM) ends its round after the row in
  flight, so a deploy sends each once.
- HTTP 429: wait Slack's `Retry-After` (at most `bot.slack_api.MAX_PAUSE`) and stop this
  round (the limit is the app's, not the row's). The pause is stored
  (`bot.store.throttles`), so a worker that takes the lease over mid-pause waits it out
  too. 5xx, connection errors and Slack's own transient errors: exponential backoff for
  that incident only, until the row is a day old; then it is marked failed and the
  incident's next row goes. No answer at all (a timeout, a
  refused connection) also ends the round: the next head would only wait out the same
  timeout. Other Slack errors (`channel_not_found`, …) mark the row failed with the
  error, so one bad channel cannot stall the rest forever. An update of a message someone
  deleted (`message_not_found`) is posted as a message of its own, which later updates edit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from bot.slack_api import retry_after as _retry_after
from bot.store.db import Database, aware
from bot.store.models import AlertOutboxEntry, IncidentRow
from bot.store.throttles import Throttles
from policies.slack_errors import AUTH_ERRORS, RATE_LIMIT_ERRORS

log = logging.getLogger(__name__)

# Slack's answers that mean "try again later" even with HTTP 200.
TRANSIENT_ERRORS = RATE_LIMIT_ERRORS | frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
# A token Slack refuses (`policies.slack_errors`): every row would meet the same answer, so
# the rows wait (up to `give_up_after`), tried again this often, instead of each being
# marked failed and lost at once.
AUTH_PAUSE = timedelta(minutes=1)
# chat.update's answer for a message that is no more (a person deleted the alert).
GONE = "message_not_found"
# The throttle row of the Slack app's 429 pause; Heroku's rows are named by their key's
# environment variable, which has no colon.
SLACK_PAUSE = "slack:outbox"


@dataclass
class SendReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    rate_limited_until: datetime | None = None
    errors: list[str] = field(default_factory=list)


class _Retry(Exception):
    def __init__(self, error: str, after: float | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.after = after  # seconds Slack asked for; None: use the backoff


class _RateLimited(_Retry):
    pass


class _Unreachable(_Retry):
    """No answer at all (refused, reset, timed out): Slack is away for every incident."""


class _Failed(Exception):
    pass


class OutboxSender:
    """Sends due outbox rows through `client`, which must not retry 429s on its own:
    a sleeping client would hold a claim and the worker's job thread for the whole wait."""

    def __init__(
        self,
        db: Database,
        client: WebClient,
        *,
        lease: timedelta = timedelta(seconds=60),
        backoff: timedelta = timedelta(seconds=2),
        max_backoff: timedelta = timedelta(minutes=5),
        batch: int = 500,
        give_up_after: timedelta = timedelta(days=1),
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        if any(isinstance(h, RateLimitErrorRetryHandler) for h in client.retry_handlers):
            raise ValueError("give OutboxSender a WebClient without RateLimitErrorRetryHandler")
        self._db = db
        self._client = client
        self._lease = lease
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._batch = batch
        # A row still failing a day after it was queued is marked failed: Slack's outages
        # last hours, an alert a day late is stale news, and a condition that still holds
        # queues a fresh update anyway. At the 5-minute backoff that is under 300 tries.
        self._give_up_after = give_up_after
        # Slack's limit is the app's: after a 429 nothing goes until Retry-After has passed.
        # Stored, not kept in memory: the lease may move to another worker mid-pause.
        self._pauses = Throttles(db)
        # The worker is letting go of the lease (Heroku's SIGTERM, a lost session): the
        # round ends after the row in flight, and the next leader sends the rest. Sending
        # the whole backlog first outlasted Heroku's 30 s before its SIGKILL, which left
        # the row in flight claimed and sent a second time a minute later.
        self._stopping = stopping
        # Rows Slack took whose `sent` the database did not store: stored before anything else.
        self._unmarked: list[tuple[AlertOutboxEntry, str | None, datetime]] = []
        self._marking = threading.Lock()

    def send_due(self, now: datetime) -> SendReport:
        """Send every row that is due, in order per incident; returns what happened."""
        report = SendReport(sent=self.mark_unmarked())
        paused_until = self._pauses.until(SLACK_PAUSE, now)
        if paused_until is not None:
            report.rate_limited_until = paused_until
            return report
        held: set[str] = set()  # incidents whose head row could not go this round
        # A claim runs from when it is made, not from the round's start: behind rows that
        # took Slack long, a claim from `now` had expired when made, and the next leader,
        # starting while this round went on, sent the row again.
        began = time.monotonic()
        while True:
            heads = self._heads(now, held)
            if not heads:
                return report
            for row in heads:
                if self._stopping():
                    return report
                claimed_at = now + timedelta(seconds=time.monotonic() - began)
                if not self._claim(row.id, now, claimed_at):
                    held.add(row.incident_key)
                    continue
                try:
                    ts = self._deliver(row)
                except _RateLimited as limited:
                    if self._gave_up(row, limited.error, now, report, held):
                        continue
                    until = now + timedelta(seconds=limited.after or 1)
                    self._release(row.id, until, limited.error)
                    self._pauses.throttle(SLACK_PAUSE, until, now)
                    report.retrying += 1
                    report.rate_limited_until = until
                    return report
                except _Retry as retry:
                    if self._gave_up(row, retry.error, now, report, held):
                        continue
                    delay = self._delay(row.attempts + 1)
                    self._release(row.id, now + delay, retry.error)
                    held.add(row.incident_key)
                    report.retrying += 1
                    report.errors.append(retry.error)
                    if isinstance(retry, _Unreachable):
                        # The next head would wait out the same timeout: try again next round.
                        return report
                except _Failed as failed:
                    self._fail(row.id, str(failed))
                    report.failed += 1
                    report.errors.append(str(failed))
                    log.warning("alert not sent", extra={"id": row.id, "error": str(failed)})
                else:
                    try:
                        self._mark_sent(row, ts, now)
                    except SQLAlchemyError:
                        # Slack has it: its claim ran out before the next round, which had
                        # then sent it again.
                        self._unmarked.append((row, ts, now))
                        raise
                    report.sent += 1

    def mark_unmarked(self) -> int:
        """Store `sent` for the rows Slack took whose mark the database failed to store;
        how many. Leading or not: a worker that lost the lease with the database marks
        them once it is back, where the next leader posted them again at their claim's end."""
        marked = 0
        with self._marking:  # the waiting worker's thread, and a round still running
            while self._unmarked:
                self._mark_sent(*self._unmarked[0])
                self._unmarked.pop(0)
                marked += 1
        return marked

    def _gave_up(
        self,
        row: AlertOutboxEntry,
        error: str,
        now: datetime,
        report: SendReport,
        held: set[str],
    ) -> bool:
        """Mark `row` failed if it has waited past `give_up_after`; whether it was."""
        if now - aware(row.created_at) < self._give_up_after:
            return False
        self._fail(row.id, f"gave up: {error}")
        held.add(row.incident_key)
        report.failed += 1
        report.errors.append(error)
        log.warning(
            "alert given up", extra={"id": row.id, "attempts": row.attempts + 1, "error": error}
        )
        return True

    # -- the database side -------------------------------------------------------------

    def _heads(self, now: datetime, held: set[str]) -> list[AlertOutboxEntry]:
        """The first unsent row of each incident not in `held`, if it may be sent now."""
        unsent = AlertOutboxEntry.state.in_(("pending", "sending"))
        # Heads are picked per incident in the query: reading the first `batch` unsent rows
        # and picking heads from those let one incident's backlog behind a head in backoff
        # fill the whole batch, so no other incident was ever looked at.
        first = (
            select(func.min(AlertOutboxEntry.id))
            .where(unsent)
            .group_by(AlertOutboxEntry.incident_key)
        )
        query = (
            select(AlertOutboxEntry)
            .where(
                AlertOutboxEntry.id.in_(first),
                _due(now),
            )
            .order_by(AlertOutboxEntry.id)
            .limit(self._batch)
        )
        if held:
            query = query.where(AlertOutboxEntry.incident_key.not_in(held))
        with self._db.session() as session:
            return list(session.scalars(query))

    def _claim(self, row_id: int, now: datetime, claimed_at: datetime) -> bool:
        # The database decides between two senders: only one UPDATE matches the row.
        with self._db.session() as session, session.begin():
            claimed = session.execute(
                update(AlertOutboxEntry)
                .where(AlertOutboxEntry.id == row_id, _due(now))
                .values(
                    state="sending",
                    claimed_until=claimed_at + self._lease,
                    attempts=AlertOutboxEntry.attempts + 1,
                )
            ).rowcount
        return claimed == 1

    def _release(self, row_id: int, when: datetime, error: str) -> None:
        with self._db.session() as session, session.begin():
            session.execute(
                update(AlertOutboxEntry)
                .where(AlertOutboxEntry.id == row_id, AlertOutboxEntry.state == "sending")
                .values(state="pending", next_attempt_at=when, claimed_until=None, last_error=error)
            )

    def _fail(self, row_id: int, error: str) -> None:
        with self._db.session() as session, session.begin():
            session.execute(
                update(AlertOutboxEntry)
                .where(AlertOutboxEntry.id == row_id, AlertOutboxEntry.state == "sending")
                .values(state="failed", claimed_until=None, last_error=error)
            )

    def _mark_sent(self, row: AlertOutboxEntry, ts: str | None, now: datetime) -> None:
        with self._db.session() as session, session.begin():
            session.execute(
                update(AlertOutboxEntry)
                .where(AlertOutboxEntry.id == row.id)
                .values(state="sent", ts=ts, sent_at=now, claimed_until=None, last_error=None)
            )
            if row.kind == "post" or ts is not None:
                # The incident remembers its message, for buttons and for later updates.
                session.execute(
                    update(IncidentRow)
                    .where(IncidentRow.key == row.incident_key, IncidentRow.message_ts.is_(None))
                    .values(channel=row.channel, message_ts=ts)
                )

    def _message_ts(self, row: AlertOutboxEntry) -> str | None:
        """The ts of the incident's newest message in the row's channel, once posted."""
        with self._db.session() as session:
            return session.scalar(
                select(AlertOutboxEntry.ts)
                .where(
                    AlertOutboxEntry.incident_key == row.incident_key,
                    AlertOutboxEntry.channel == row.channel,
                    AlertOutboxEntry.state == "sent",
                    AlertOutboxEntry.ts.is_not(None),
                    AlertOutboxEntry.id < row.id,
                )
                .order_by(AlertOutboxEntry.id.desc())
                .limit(1)
            )

    def _delay(self, attempts: int) -> timedelta:
        # The exponent is capped first: 2 s * 2**46 is past what a timedelta holds, so an
        # incident retried for a few hours would raise OverflowError on every round.
        return min(self._max_backoff, self._backoff * 2 ** min(max(0, attempts - 1), 32))

    # -- the Slack side ----------------------------------------------------------------

    def _deliver(self, row: AlertOutboxEntry) -> str | None:
        """Send one row; returns the ts of a new message (None for an update or a reply)."""
        text = row.payload.get("text") or ""
        blocks = row.payload.get("blocks")
        ts = None if row.kind == "post" else self._message_ts(row)
        try:
            if row.kind == "update" and ts is not None:
                try:
                    self._client.chat_update(channel=row.channel, ts=ts, text=text, blocks=blocks)
                    return None
                except SlackApiError as error:
                    if error.response.get("error") != GONE:
                        raise
                    # Someone deleted the message: posted again below, and later updates
                    # edit that one, where each had failed and the channel read as refusing.
                    log.info("alert message gone: posted again", extra={"id": row.id})
            if row.kind == "reply" and ts is not None:
                broadcast = bool(row.payload.get("broadcast"))
                self._client.chat_postMessage(
                    channel=row.channel,
                    text=text,
                    blocks=blocks,
                    thread_ts=ts,
                    **({"reply_broadcast": True} if broadcast else {}),
                )
                return None
            # A post, or an update or reply whose message never got out (silenced, failed):
            # a message of its own then, which later updates will edit.
            answer = self._client.chat_postMessage(channel=row.channel, text=text, blocks=blocks)
            return str(answer["ts"])
        except SlackApiError as error:
            raise _classify(error) from None
        except (URLError, OSError) as error:  # refused, reset, timed out (TimeoutError too)
            raise _Unreachable(f"connection: {error}") from None


def _due(now: datetime) -> ColumnElement[bool]:
    """A row that may be claimed now: pending and out of its backoff, or `sending` under a
    claim that expired (its sender died)."""
    return or_(
        and_(AlertOutboxEntry.state == "pending", AlertOutboxEntry.next_attempt_at <= now),
        and_(AlertOutboxEntry.state == "sending", AlertOutboxEntry.claimed_until <= now),
    )


def _classify(error: SlackApiError) -> Exception:
    response = error.response
    status = response.status_code
    code = str(response.get("error") or "") if isinstance(response.data, dict) else ""
    if status == 429:
        return _RateLimited("ratelimited", _retry_after(response.headers))
    if code in AUTH_ERRORS:
        # The app's trouble, not the row's: hold every row, as for a 429.
        return _RateLimited(code, AUTH_PAUSE.total_seconds())
    if status >= 500:
        return _Retry(f"http {status} {code}".strip())
    if code in TRANSIENT_ERRORS:
        return _Retry(code)
    return _Failed(code or f"http {status}")
