"""The daily digest job: for each app with `digest: "09:00 Europe/Paris"` and a channel,
once past that local time, post yesterday's digest (`handlers.render.digest_text`) with its
chart into the channel.

"Once" is a claimed request key per app and local day in the database, so a restarted
worker, or a new leader, never posts a day twice. It posts straight through the Web API,
not the alert outbox: a digest carries a file, which the outbox does not. A post that
fails is tried again next minute, up to MAX_TRIES times, unless Slack refused it for a
reason that will not pass by itself. A 429 (on the post or the chart's upload) is not a
failed try: the day is given back and no digest goes until Slack's `Retry-After` (stored,
as the outbox's pause is, so a new leader waits it out too), where the fleet's digests due
together had each met the 429 in turn, every minute, and been given up after five.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy.exc import SQLAlchemyError

from bot.actions.results import Chart, Digest
from bot.registry import Target
from bot.services import Services
from bot.slack_api import DEFAULT_PAUSE, rate_limited_for
from bot.worker.outbox_sender import TRANSIENT_ERRORS
from handlers.charts import upload
from handlers.render import digest_text
from policies import digest

log = logging.getLogger(__name__)

MAX_TRIES = 5  # a day's digest is tried once a minute at most this often, then given up
SLACK_PAUSE = "slack:digest"  # the throttle row of the digests' 429 pause


def _transient(error: SlackApiError) -> bool:
    """Slack's 5xx and its own passing errors (internal_error, service_unavailable…, as the
    alert outbox reads them) pass; its other `ok: false` answers (not_in_channel,
    channel_not_found, invalid_auth…) stay until a person acts. A rate limit never comes
    here: it pauses every digest first."""
    return error.response.status_code >= 500 or error.response.get("error") in TRANSIENT_ERRORS


class DigestJob:
    def __init__(
        self,
        services: Services,
        client: WebClient,
        stopping: Callable[[], bool] = lambda: False,
    ) -> None:
        self._services = services
        self._client = client
        # The worker lets go of the lease (SIGTERM at a deploy): the digests not yet claimed
        # are left to the next leader, where the round went on into Heroku's SIGKILL and lost
        # the one it was building, claimed and never posted.
        self._stopping = stopping
        self._tries: dict[str, int] = {}  # failed posts per claim key, until it is settled
        # Days to give back that the database failed to give back (it went mid-run): given
        # back at the next run, where the day had stayed claimed and unposted until midnight.
        self._unreleased: set[str] = set()

    def run(self, now: datetime) -> int:
        """Post every digest due at `now` not posted yet; returns how many were posted."""
        posted = 0
        for key in sorted(self._unreleased):
            self._services.request_keys.release(key)
            self._unreleased.discard(key)
        due: list[tuple[Target, str, tuple[date, datetime, datetime], str]] = []
        for target in self._services.registry.targets():
            if target.digest is None or target.channel is None:
                continue
            window = digest.due(target.digest, now)
            if window is not None:
                key = f"digest:{target.alias}:{window[0].isoformat()}"
                due.append((target, target.channel, window, key))
        # Past its time a day's digest stays due until midnight: one query says which are
        # posted already, where a claim per app each minute was a thousand statements.
        posted_already = self._services.request_keys.claimed([key for *_, key in due])
        due = [entry for entry in due if entry[3] not in posted_already]
        # Read only when a digest waits: the rest of the day, every minute, none does.
        if due and self._services.throttles.until(SLACK_PAUSE, now) is not None:
            return posted  # Slack asked the app to wait: nothing is posted before then
        for target, channel, (day, start, end), key in due:
            if self._stopping():
                return posted
            if not self._services.request_keys.claim(key, now):
                continue  # posted already (or being posted by another leader)
            try:
                result = self._services.dashboards.digest(target, day, start, end)
                self._post(channel, result)
                posted += 1
            except SlackApiError as error:
                if (wait := rate_limited_for(error, DEFAULT_PAUSE)) is not None:
                    self._pause(key, target.alias, now + wait, now)
                    return posted
                why = str(error.response.get("error") or error.response.status_code)
                self._failed(
                    key, target.alias, why, transient=_transient(error), refused=(channel, now)
                )
            except OSError as error:  # no connection, a timeout: Slack may be back soon
                why = type(error).__name__
                self._failed(key, target.alias, why, transient=True, refused=(channel, now))
            except Exception:
                log.exception("digest not posted", extra={"app": target.alias})
                self._failed(key, target.alias, "error", transient=True)
            else:
                self._tries.pop(key, None)
        return posted

    def _pause(self, key: str, app: str, until: datetime, now: datetime) -> None:
        """Slack's 429: the day back, untried, and no digest before `until` (its
        `Retry-After`, read as every caller reads it: `bot.slack_api.rate_limited_for`)."""
        self._release(key)
        self._services.throttles.throttle(SLACK_PAUSE, until, now)
        log.warning("digests paused: Slack rate-limits the bot",
                    extra={"app": app, "until": until.isoformat()})  # fmt: skip

    def _release(self, key: str) -> None:
        try:
            self._services.request_keys.release(key)
        except SQLAlchemyError:
            self._unreleased.add(key)
            raise

    def _failed(
        self,
        key: str,
        app: str,
        why: str,
        *,
        transient: bool,
        refused: tuple[str, datetime] | None = None,
    ) -> None:
        """Give the day back for the next run while the failure may pass, a few times;
        otherwise keep the claim: a refusal (the bot is not in the channel, a revoked
        token) would be rebuilt, chart and all, and refused again every minute all day.
        A day Slack refused or kept failing (`refused`: its channel, and when) is noted for
        `/deploy about`."""
        tries = self._tries[key] = self._tries.get(key, 0) + 1
        if transient and tries < MAX_TRIES:
            self._release(key)
            log.warning("digest not posted; trying again", extra={"app": app, "why": why})
            return
        self._tries.pop(key, None)
        log.error("digest not posted today", extra={"app": app, "why": why, "tries": tries})
        if refused is not None:
            # The log alone told nobody: `about` names the channel, as for refused alerts.
            channel, now = refused
            error = f"gave up: {why}" if transient else why
            self._services.heartbeats.refused(key, channel, error, now)

    def _post(self, channel: str, result: Digest) -> None:
        text = digest_text(result)
        if result.chart is None:
            self._client.chat_postMessage(channel=channel, text=text)
            return

        def fallback(**payload: Any) -> None:
            # The chart could not be uploaded: the digest goes out as text, saying why.
            self._client.chat_postMessage(channel=channel, text=payload["text"])

        # Slack's 429 on the upload pauses the digests as on the post (`run`), where the day
        # had gone out as text saying "I could not upload the chart (`ratelimited`)".
        upload(
            self._client, Chart(result.chart), fallback, channel, comment=text,
            raise_rate_limit=True,
        )  # fmt: skip
