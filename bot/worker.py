"""The worker dyno (`worker: python -m bot worker`): the jobs that run on a clock.

It waits for the leader lease (`bot.lease`), then runs an APScheduler BackgroundScheduler
while the main thread keeps checking that the lease still holds; losing it stops the
scheduler and exits non-zero, so Heroku restarts the dyno and it queues for the lease again.
All state is in the database, so a restarted worker picks up where the last one stopped.

Jobs: the autoscale tick (every 15 s), expire confirmation prompts nobody answered (their
messages say so), fold and roll up traffic windows, forget old request keys.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.actions import expired_text
from bot.autoscaler import Autoscaler
from bot.config import Config
from bot.confirmations import Confirmations
from bot.db import Database
from bot.idempotency import KEEP, RequestKeys
from bot.lease import Lease
from bot.metrics.store import MetricsStore
from bot.services import Services

log = logging.getLogger(__name__)

LEASE_RETRY_SECONDS = 5.0  # a waiting worker takes over within this of the leader's death


def _seconds(name: str, default: float) -> float:
    # Tests run the jobs on a faster clock; production keeps the defaults.
    return float(os.environ.get(name, default))


class Worker:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.db = Database(config.database_url)
        self.lease = Lease(self.db)
        self.confirmations = Confirmations(self.db)
        self.metrics = MetricsStore(self.db)
        self.request_keys = RequestKeys(self.db)
        self.stopping = threading.Event()
        self._scaler: Autoscaler | None = None

    def expire_prompts(self) -> int:
        """Turn prompts past their expiry into "expired" messages, once each."""
        now = datetime.now(UTC)
        expired = self.confirmations.expire_due(now)
        for pending, response_url in expired:
            if not response_url:
                continue
            response = WebhookClient(response_url, timeout=10).send(
                text=expired_text(pending), replace_original=True, response_type="in_channel"
            )
            if response.status_code != 200:
                # Slack allows a response_url 30 minutes; the state is right either way.
                log.info("expired prompt not updated", extra={"status": response.status_code})
        if expired:
            log.info("prompts expired", extra={"count": len(expired)})
        return len(expired)

    def compact_metrics(self) -> dict[str, int]:
        done = self.metrics.compact(int(datetime.now(UTC).timestamp()))
        log.info("metrics compacted", extra=done)
        return done

    def forget_request_keys(self) -> int:
        return self.request_keys.forget_older_than(datetime.now(UTC) - KEEP)

    def autoscale(self) -> int:
        return len(self._autoscaler().tick())

    def _autoscaler(self) -> Autoscaler:
        # Built on first use: its platform clients and Slack client make no call until then.
        if self._scaler is None:
            services = Services(self.config, source="autoscaler")
            slack = WebClient(token=self.config.slack_bot_token, base_url=self.config.slack_api_url)

            def notify(channel: str | None, text: str) -> None:
                if channel and self.config.slack_bot_token:
                    try:
                        slack.chat_postMessage(channel=channel, text=text)
                    except SlackApiError as error:
                        log.warning(
                            "autoscale notice not posted",
                            extra={"error": error.response.get("error")},
                        )

            self._scaler = Autoscaler(services, notify)
        return self._scaler

    def scheduler(self) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(
            timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1}
        )
        jobs: list[tuple[Any, float]] = [
            (self.autoscale, _seconds("DEPLOYBOT_AUTOSCALE_SECONDS", 15)),
            (self.expire_prompts, _seconds("DEPLOYBOT_EXPIRE_SECONDS", 30)),
            (self.compact_metrics, _seconds("DEPLOYBOT_COMPACT_SECONDS", 600)),
            (self.forget_request_keys, _seconds("DEPLOYBOT_FORGET_SECONDS", 3600)),
        ]
        for job, every in jobs:
            scheduler.add_job(
                job, "interval", seconds=every, id=job.__name__, next_run_time=datetime.now(UTC)
            )
        return scheduler

    def run(self) -> int:
        """Wait for the lease, run the jobs while it holds; the exit code says why it ended."""
        log.info("worker waiting for the lease")
        while not self.lease.try_acquire():
            if self.stopping.wait(_seconds("DEPLOYBOT_LEASE_RETRY_SECONDS", LEASE_RETRY_SECONDS)):
                return 0
        log.info("worker is the leader", extra={"pid": os.getpid()})
        scheduler = self.scheduler()
        scheduler.start()
        try:
            while not self.stopping.wait(_seconds("DEPLOYBOT_LEASE_CHECK_SECONDS", 10)):
                if not self.lease.still_held():
                    log.error("worker lost the lease; exiting so Heroku restarts it")
                    return 1
            return 0
        finally:
            scheduler.shutdown(wait=True)
            self.lease.release()
            self.db.dispose()
            log.info("worker stopped")


def main() -> int:
    worker = Worker(Config.from_env())
    # Heroku sends SIGTERM and waits 30 s: finish the running job, then let go of the lease.
    signal.signal(signal.SIGTERM, lambda *_: worker.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: worker.stopping.set())
    return worker.run()
