"""The worker dyno (`worker: python -m bot worker`): the jobs that run on a clock.

It waits for the leader lease (`bot.worker.lease`), then runs an APScheduler BackgroundScheduler
while the main thread keeps checking that the lease still holds; losing it stops the
scheduler and exits non-zero, so Heroku restarts the dyno and it queues for the lease again.
All state is in the database, so a restarted worker picks up where the last one stopped.

Jobs: a heartbeat (every 15 s: the web dyno warns when it stops), the autoscale tick (every 15 s), send the alert outbox to Slack (every 5 s, honouring
Retry-After), run the alert detectors and resolve quiet incidents (every 60 s), post the daily digests that are due (every 60 s), store Beanstalk
health reports as traffic windows (every 10 s), expire confirmation
prompts nobody answered (their messages say so, and the audit trail keeps them), read back
changes whose outcome is unknown (`bot.actions.reconcile`), fold and roll up traffic windows
(every 60 s: each run folds only what arrived since the last, so running often keeps it
short), forget old request keys, drain batch ids, autoscale decisions and sent alerts.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient
from sqlalchemy.exc import SQLAlchemyError

from bot import preflight
from bot.actions.dashboards import COST_DAYS
from bot.actions.health import release_of
from bot.actions.path import record_expiry
from bot.actions.results import expired_text
from bot.config import Config, ConfigError, seconds_setting
from bot.metrics.aggregate import WINDOW_SECONDS
from bot.metrics.store import MetricsStore
from bot.registry import Registry
from bot.services import Services
from bot.slack_api import ADMIN_PAUSE, DEFAULT_PAUSE, rate_limited_for, web_client
from bot.store.audit import AuditLog
from bot.store.autoscale_settings import AutoscaleStore
from bot.store.confirmations import Confirmations, Pending
from bot.store.db import SCHEMA_NEWER, Database, foreign_schema, schema_behind
from bot.store.drain_claims import KEEP as KEEP_DRAIN
from bot.store.drain_claims import DrainClaims
from bot.store.heartbeats import TROUBLE_CHARS, Heartbeats
from bot.store.incidents import Alerts
from bot.store.request_keys import KEEP, RequestKeys
from bot.store.throttles import Throttles
from bot.worker.autoscale import Autoscaler, formation_refresh_from_env
from bot.worker.autoscale_workers import WorkerAutoscaler
from bot.worker.aws_backoff import AwsBackoff
from bot.worker.beanstalk_sampler import BeanstalkSampler
from bot.worker.detectors import Detectors
from bot.worker.digest import DigestJob
from bot.worker.jobs import JobWatch
from bot.worker.lease import Lease
from bot.worker.outbox_sender import OutboxSender
from handlers.alerts import blocks as alert_blocks
from policies.slack_text import clip, escape

log = logging.getLogger(__name__)

LEASE_RETRY_SECONDS = 5.0  # a waiting worker takes over within this of the leader's death
KEEP_SENT_ALERTS = timedelta(days=7)
RECONCILE_SECONDS = 60.0  # rows become due 3 minutes after they started: once a minute is ample
# The tick reads 10 minutes of its own decisions, the detectors a few more, `status` the
# last five: two days leave room to look back at an incident. Thinned past that (one in 16,
# and every scale action), they stay for `cost`'s and a chart's week, and a day more.
KEEP_DECISIONS = timedelta(days=2)
KEEP_THINNED_DECISIONS = timedelta(days=COST_DAYS + 1)
# How far back each hourly run thins: five missed runs' worth. Older ticks left whole (the
# worker was down longer) go with the rest at KEEP_THINNED_DECISIONS.
THIN_SPAN = timedelta(hours=6)
# Incidents' past openings: longer than the 7 days a chart or the day a digest reads back.
KEEP_OPENINGS = timedelta(days=35)
KEEP_PROMPTS = timedelta(days=7)  # answered or expired prompts; the audit log keeps their story
KEEP_HEARTBEATS = timedelta(days=7)  # of worker processes that stopped ticking
JOBS_STOP_SECONDS = 20.0
# How often a worker waiting for `migrate` reads the schema's revision again (each read
# logs Alembic's two lines).
SCHEMA_RECHECK_SECONDS = 30.0


def tick_clock(env: Mapping[str, str] | None = None) -> Callable[[], datetime]:
    """The clock the autoscale tick reads: the wall clock, except under
    `make bench-closed-loop`, which replays a trace on a compressed clock and sets
    `DEPLOYBOT_BENCH_CLOCK="SIM_START WALL_START SPEED"` (epoch seconds, epoch seconds, a
    factor): the tick then sees SIM_START + (wall - WALL_START) * SPEED, the time the
    benchmark's fake Heroku and its router logs keep. Nothing else reads it; production
    never sets it."""
    raw = (os.environ if env is None else env).get("DEPLOYBOT_BENCH_CLOCK", "").split()
    if not raw:
        return lambda: datetime.now(UTC)
    try:
        sim_start, wall_start, speed = (float(part) for part in raw)
    except ValueError:
        raise ConfigError(
            "DEPLOYBOT_BENCH_CLOCK must be three numbers (SIM_START WALL_START SPEED); "
            "leave it unset outside the closed-loop benchmark."
        ) from None
    return lambda: datetime.fromtimestamp(sim_start + (time.time() - wall_start) * speed, UTC)


class Worker:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.db = Database(config.database_url)
        self.lease = Lease(self.db)
        self.confirmations = Confirmations(self.db)
        self.audit = AuditLog(self.db)
        self.metrics = MetricsStore(self.db)
        self.request_keys = RequestKeys(self.db)
        self.drain_claims = DrainClaims(self.db)
        self.alerts = Alerts(self.db, blocks_for=alert_blocks)
        self.heartbeats = Heartbeats(self.db)
        self.throttles = Throttles(self.db)
        # Heroku names each dyno (worker.1); elsewhere the host and process say who ticks.
        self.name = os.environ.get("DYNO") or f"{socket.gethostname()}:{os.getpid()}"
        self.started_at = datetime.now(UTC)
        self.tick_now = tick_clock()
        self.stopping = threading.Event()
        # Set while this worker lets go of the lease: long rounds end early (the outbox).
        self.standing_down = threading.Event()
        self.jobs = JobWatch()
        self._services: Services | None = None
        self._scaler: Autoscaler | None = None
        self._workers: WorkerAutoscaler | None = None
        self._sender: OutboxSender | None = None
        self._sampler: BeanstalkSampler | None = None
        # AWS's Throttling of Beanstalk's health reads: one backoff for both readers.
        self.aws_backoff = AwsBackoff()
        self._detectors: Detectors | None = None
        self._digests: DigestJob | None = None
        self._schema_said: str | None = None  # the schema state last logged
        self._schema_read_at = float("-inf")  # time.monotonic() of the last read

    def heartbeat(self, now: datetime | None = None) -> None:
        """Say this worker ticks (and whether it leads): the web dyno reads it."""
        now = now or datetime.now(UTC)
        trouble = self.jobs.trouble()
        # A lasting AWS throttle of Beanstalk's health reads: the job runs fine meanwhile.
        sampled = self.aws_backoff.trouble(now)
        said = clip("; ".join(filter(None, (trouble, sampled))), TROUBLE_CHARS) or None
        self.heartbeats.beat(self.name, self.lease.held, now, release_of(), self.started_at, said)
        if trouble:
            self._tell_admins(trouble)

    def _tell_admins(self, trouble: str) -> None:
        """Post the jobs' trouble to the admin channel once while it lasts: nobody reads
        `/deploy about` while alerts are quietly not sent. Directly, not through the
        outbox, which may be what fails."""
        channel, key = self.config.admin_channel, self.jobs.trouble_key()
        if not channel or not self.config.slack_bot_token or key is None:
            return
        now = datetime.now(UTC)
        if self.throttles.until(ADMIN_PAUSE, now) is not None:
            return  # Slack's 429 asked to wait: told once its Retry-After has passed
        claimed = "worker-trouble:" + hashlib.sha256(key.encode()).hexdigest()[:32]
        if not self.request_keys.claim(claimed, now):
            return
        client = web_client(self.config.slack_bot_token, self.config.slack_api_url, timeout=10)
        text = (
            f":rotating_light: deploybot worker jobs in trouble: {escape(trouble)}. The worker's "
            "logs have a `job failed` line for each failed run; `/deploy about` shows when "
            "they recover."
        )
        try:
            client.chat_postMessage(channel=channel, text=text)
        except (SlackApiError, OSError) as error:
            self.request_keys.release(claimed)  # told at the next heartbeat instead
            log.warning("admin channel not told", extra={"error": type(error).__name__})
            if (pause := rate_limited_for(error, DEFAULT_PAUSE)) is not None:
                # Not every heartbeat (15 s) whatever Slack asked: stored, as the outbox's,
                # and shared with the web dyno's worker-down post to the same channel.
                self.throttles.throttle(ADMIN_PAUSE, now + pause, now)

    def expire_prompts(self) -> int:
        """Turn prompts past their expiry into "expired" messages, once each. One prompt
        at a time: told to stop (SIGTERM at a deploy), the worker leaves the rest pending
        for the next leader, where a round of slow posts ran into Heroku's SIGKILL and the
        prompts already expired and not yet told kept their live buttons for good."""
        now = datetime.now(UTC)
        expired = 0
        for confirmation_id in self.confirmations.due(now):
            if self._standing_down():
                break
            moved = self.confirmations.expire_one(confirmation_id, now)
            if moved is None:
                continue  # answered meanwhile, or expired by another worker
            pending, response_url = moved
            expired += 1
            # Audited before the Slack call: a post that fails must not leave the prompt
            # expired with no trail (it is expired once, for good).
            record_expiry(self.audit, pending)
            if response_url:
                self._tell_expired(pending, response_url)
        if expired:
            log.info("prompts expired", extra={"count": expired})
        return expired

    @staticmethod
    def _tell_expired(pending: Pending, response_url: str) -> None:
        try:
            response = WebhookClient(response_url, timeout=10).send(
                text=expired_text(pending), replace_original=True, response_type="in_channel"
            )
        except OSError as error:  # URLError, a timeout, a refused connection
            log.info("expired prompt not updated", extra={"error": type(error).__name__})
            return
        if response.status_code != 200:
            # Slack allows a response_url 30 minutes; the state is right either way.
            log.info("expired prompt not updated", extra={"status": response.status_code})

    def reconcile(self, now: datetime | None = None) -> int:
        """Read the formation back for changes left `pending` (a process died mid-call) or
        `unknown` (the connection dropped) a few minutes ago, and give them a final outcome."""
        return self.services().actions.reconciler.sweep(now or datetime.now(UTC))

    def compact_metrics(self) -> dict[str, int]:
        done = self.metrics.compact(int(datetime.now(UTC).timestamp()))
        log.info("metrics compacted", extra=done)
        return done

    def forget_request_keys(self) -> int:
        """Retention of everything that gains rows with traffic or time, besides windows."""
        now = datetime.now(UTC)
        self.alerts.outbox.forget_sent_before(now - KEEP_SENT_ALERTS)
        self.alerts.forget_openings_before(now - KEEP_OPENINGS)
        decisions = AutoscaleStore(self.db)
        decisions.thin_decisions(now - KEEP_DECISIONS - THIN_SPAN, now - KEEP_DECISIONS)
        decisions.forget_decisions_before(now - KEEP_THINNED_DECISIONS)
        self.confirmations.forget_before(now - KEEP_PROMPTS)
        self.heartbeats.forget_before(now - KEEP_HEARTBEATS)
        forgotten = self.drain_claims.forget_older_than(now - KEEP_DRAIN)
        # Drain ids in request_keys are those claimed before migration 0014, one per row.
        return forgotten + self.request_keys.forget_older_than(now - KEEP, now - KEEP_DRAIN)

    def autoscale(self) -> int:
        if self._workers is None:
            self._workers = WorkerAutoscaler(self.services(), self._autoscaler())
        # Each tick on its own reading of the clock: the web tick may take a while.
        web = len(self._autoscaler().tick(self.tick_now()))
        return web + len(self._workers.tick(self.tick_now()))

    def send_alerts(self, now: datetime | None = None) -> int:
        """Send what the outbox holds; a Slack outage leaves it there for the next run."""
        if not self.config.slack_bot_token:
            return 0
        if self._sender is None:
            # No retry handler for 429s: the sender honours Retry-After without sleeping.
            client = web_client(self.config.slack_bot_token, self.config.slack_api_url)
            self._sender = OutboxSender(self.db, client, stopping=self._standing_down)
        report = self._sender.send_due(now or datetime.now(UTC))
        if report.retrying or report.failed:
            log.warning(
                "alerts delayed",
                extra={"sent": report.sent, "retrying": report.retrying, "failed": report.failed},
            )
        return report.sent

    def _standing_down(self) -> bool:
        return self.stopping.is_set() or self.standing_down.is_set()

    def watch(self, now: datetime | None = None) -> int:
        """Fold what the detectors see (`bot.worker.detectors`: router errors, slow or failing
        responses, pinned at max, stale metrics, Beanstalk health) into incidents; quiet
        incidents resolve. Returns how many incidents changed."""
        services = self.services()
        now = now or datetime.now(UTC)
        if self._detectors is None:
            self._detectors = Detectors.from_services(services, backoff=self.aws_backoff)
        events = self._detectors.run(now)
        unobserved = self._detectors.unobserved
        step = self.alerts.record(events, now, services.registry.channel_of, unobserved)
        return len(step.incidents)

    def post_digests(self, now: datetime | None = None) -> int:
        """Post the daily digests that are due (`bot.worker.digest`)."""
        if not self.config.slack_bot_token:
            return 0
        if self._digests is None:
            client = web_client(self.config.slack_bot_token, self.config.slack_api_url)
            self._digests = DigestJob(self.services(), client, stopping=self._standing_down)
        return self._digests.run(now or datetime.now(UTC))

    def sample_beanstalk(self, now: datetime | None = None) -> int:
        """Store each Beanstalk environment's latest 10 s health report as a window."""
        if self._sampler is None:
            services = self.services()
            self._sampler = BeanstalkSampler(
                services.registry, services.resolve, self.metrics, self.aws_backoff
            )
        return self._sampler.poll(now)

    def services(self) -> Services:
        # Built on first use: its platform clients make no call until then.
        if self._services is None:
            self._services = Services(self.config, source="autoscaler", db=self.db)
        return self._services

    def _autoscaler(self) -> Autoscaler:
        if self._scaler is None:
            services = self.services()
            outbox = self.alerts.outbox

            def notify(channel: str | None, text: str) -> None:
                # Through the outbox: a Slack outage delays the notice and loses nothing.
                if channel:
                    outbox.enqueue(f"autoscale:{channel}", channel, "post", text, datetime.now(UTC))

            self._scaler = Autoscaler(
                services, notify, clock=self.tick_now, leading=self.lease.still_held
            )
        return self._scaler

    def scheduler(self) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(
            timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1}
        )
        # Named as docs/operations.md names them: the heartbeat reports them by these.
        jobs: list[tuple[str, Any, float]] = [
            ("heartbeat", self.heartbeat, seconds_setting("DEPLOYBOT_HEARTBEAT_SECONDS", 15)),
            ("autoscale", self.autoscale, seconds_setting("DEPLOYBOT_AUTOSCALE_SECONDS", 15)),
            ("alerts", self.send_alerts, seconds_setting("DEPLOYBOT_ALERTS_SECONDS", 5)),
            ("watch", self.watch, seconds_setting("DEPLOYBOT_WATCH_SECONDS", 60)),
            ("digest", self.post_digests, seconds_setting("DEPLOYBOT_DIGEST_SECONDS", 60)),
            (
                "beanstalk",
                self.sample_beanstalk,
                # One health report for each traffic window the store keeps.
                seconds_setting("DEPLOYBOT_BEANSTALK_SECONDS", WINDOW_SECONDS),
            ),
            ("expire", self.expire_prompts, seconds_setting("DEPLOYBOT_EXPIRE_SECONDS", 30)),
            ("reconcile", self.reconcile, RECONCILE_SECONDS),
            ("compact", self.compact_metrics, seconds_setting("DEPLOYBOT_COMPACT_SECONDS", 60)),
            ("forget", self.forget_request_keys, seconds_setting("DEPLOYBOT_FORGET_SECONDS", 3600)),
        ]
        for name, job, every in jobs:
            scheduler.add_job(
                self.jobs.wrap(name, job, every),
                "interval",
                seconds=every,
                id=name,
                name=name,
                next_run_time=datetime.now(UTC),
            )
        return scheduler

    def run(self) -> int:
        """Wait for the lease and run the jobs while it holds, until told to stop. A lease
        lost with its database session (a database restart, a network cut) stops the jobs
        and waits for it again: the process rides out the outage instead of crashing."""
        try:
            while self._wait_for_lease():
                log.info("worker is the leader", extra={"pid": os.getpid()})
                scheduler = self.scheduler()
                scheduler.start()
                try:
                    if self._lead():
                        return 0
                finally:
                    self.standing_down.set()
                    self._stop_jobs(scheduler)
                    self.lease.release()
                    self.standing_down.clear()
                log.error("worker lost the lease with its database session; waiting for it again")
            return 0
        finally:
            self.db.dispose()
            log.info("worker stopped")

    def _stop_jobs(self, scheduler: BackgroundScheduler) -> None:
        """Stop the scheduler and let its running jobs finish, for a while. A job stuck in a
        call had kept the worker here for good: after a lost lease it never led again, so
        one worker dyno ran nothing until restarted. Past the wait it goes on without that
        job, which the heartbeat keeps reporting as running."""
        scheduler.shutdown(wait=False)
        stuck = self.jobs.wait_idle(JOBS_STOP_SECONDS)
        if stuck:
            log.error("worker jobs still running; going on without them",
                      extra={"jobs": ",".join(stuck)})  # fmt: skip

    def _wait_for_lease(self) -> bool:
        """True once this worker leads; False when told to stop first."""
        log.info("worker waiting for the lease")
        retry = seconds_setting("DEPLOYBOT_LEASE_RETRY_SECONDS", LEASE_RETRY_SECONDS)
        while True:
            self._mark_sent_alerts()
            if self._schema_ready() and self.lease.try_acquire():
                return True
            if self.stopping.wait(retry):
                return False

    def _schema_ready(self) -> bool:
        """Whether this release may run its jobs on the database's schema, said once per
        state: behind (the release phase did not run) waits for `migrate`, where every job
        had failed into a traceback; newer (`heroku rollback`) runs, the migrations being
        additive; another app's database stops the worker. Checked until it is fine once."""
        if self._schema_said in ("current", "newer"):
            return True
        if time.monotonic() - self._schema_read_at < SCHEMA_RECHECK_SECONDS:
            return False  # behind a moment ago
        self._schema_read_at = time.monotonic()
        try:
            state, revision, head = self.db.schema_state()
        except SQLAlchemyError as error:
            log.warning("schema not checked: database unreachable",
                        extra={"error": type(error).__name__})  # fmt: skip
            return False
        if state == "foreign":
            raise ConfigError(foreign_schema(revision))
        said, self._schema_said = self._schema_said, state
        where = {"revision": revision, "release": head}
        if state == "behind":
            if said != "behind":
                log.error(schema_behind("the jobs wait"), extra=where)
            return False
        if state == "newer":
            log.warning(SCHEMA_NEWER, extra=where)
        elif said == "behind":
            log.info("database schema migrated: the jobs start", extra=where)
        return True

    def _mark_sent_alerts(self) -> None:
        """Alerts Slack took whose `sent` the database failed to store (it went, and the
        lease with it): stored as soon as it is back, before another leader's claim on them
        runs out and it posts them again."""
        if self._sender is None:
            return
        try:
            self._sender.mark_unmarked()
        except SQLAlchemyError:
            log.info("sent alerts not marked yet: database unreachable")

    def _lead(self) -> bool:
        """Check the lease while the jobs run: True when told to stop, False when it is lost."""
        while not self.stopping.wait(seconds_setting("DEPLOYBOT_LEASE_CHECK_SECONDS", 10)):
            if not self.lease.still_held():
                return False
        return True


def main() -> int:
    config = Config.from_env()
    preflight.require_database(config, os.environ)
    # As `serve` does: a registry that cannot be read stops the worker with its line,
    # instead of every job failing on it while the heartbeat says all is well.
    Registry.from_env()
    worker = Worker(config)
    # Every interval read once, now: a bad one stops the worker with its name, not a job.
    worker.scheduler()
    seconds_setting("DEPLOYBOT_LEASE_CHECK_SECONDS", 10)
    seconds_setting("DEPLOYBOT_LEASE_RETRY_SECONDS", LEASE_RETRY_SECONDS)
    formation_refresh_from_env()
    # Heroku sends SIGTERM and waits 30 s: finish the running job, then let go of the lease.
    signal.signal(signal.SIGTERM, lambda *_: worker.stopping.set())
    signal.signal(signal.SIGINT, lambda *_: worker.stopping.set())
    return worker.run()
