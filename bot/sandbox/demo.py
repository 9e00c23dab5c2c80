"""The sandbox: fake Heroku and Elastic Beanstalk with demo apps, so every verb works with
no accounts (`make demo`).

The fake Beanstalk's clock runs twenty times faster than the wall clock, so an environment
update that takes a minute of its time ends in three seconds and the console shows the
follow-up in its thread. Starting the sandbox points this process's boto3 at the fake (its
credentials and endpoint come from the environment, as on a dyno); `stop()` restores them.

What else a real deployment has, the sandbox brings along, all on 127.0.0.1:
- its own web endpoint (the real web app, `bot.web.app`), whose URL is the bot's public
  URL, so `/deploy drain` and `/deploy watch` work: the fake Heroku delivers webhooks to
  it, and `bot.sandbox.logplex` POSTs router lines to every drain a demo app has;
- CloudWatch (moto, a development dependency), holding a day of request counts for the
  Beanstalk environment's load balancer and a datapoint each new minute, consistent with
  what its enhanced health reports;
- `demo`'s job queue with a real HireFire endpoint (`bot.sandbox.job_queue`), so worker
  dynos autoscale from it; `/deploy simulate queue demo` plays a backlog;
- a fresh database each run (the fakes start fresh too, so history and status agree);
  `console --sandbox --keep-history` keeps it in `deploybot-sandbox.sqlite3` instead.

A started sandbox is this process's `running()` one, so the console it serves can play
`/deploy simulate spike APP` (`bot.sandbox.spike`) against its fake Heroku.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import shutil
import tempfile
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.config import Config
from bot.platforms import beanstalk
from bot.registry import Registry
from bot.sandbox import job_queue
from bot.sandbox.fakes.beanstalk import FakeBeanstalk
from bot.sandbox.fakes.cloudwatch import FakeCloudWatch
from bot.sandbox.fakes.heroku import FakeHeroku
from bot.sandbox.fakes.server import LocalServer
from bot.sandbox.fakes.slack import FakeSlack
from bot.sandbox.job_queue import JobQueue, QueueEndpoint
from bot.sandbox.logplex import Logplex

if TYPE_CHECKING:
    from bot.actions.results import Result
    from bot.sandbox.spike import Say
    from bot.services import Services
    from bot.store.audit import Actor
    from policies.commands import Command

SANDBOX_KEY = "sandbox-key"
SANDBOX_AWS_KEY = "AKIDSANDBOX"
# Where `--keep-history` keeps the sandbox's database; by default each run has a fresh one.
SANDBOX_DATABASE = "sqlite:///deploybot-sandbox.sqlite3"
SHOP_ENVIRONMENT, SHOP_REGION = "demo-shop-prod", "us-east-1"
SHOP_RPM = 600  # the Beanstalk environment's traffic at its daily peak, requests a minute
CLOUDWATCH_HISTORY = timedelta(hours=24)  # as far back as `/deploy metrics APP 24h` reads
LOGPLEX_SECONDS = 1.0  # how often drained apps' router lines are POSTed
# When CloudWatch is missing (moto not installed): a port nothing listens on, so metrics
# say "could not be reached" at once instead of trying AWS itself.
NO_CLOUDWATCH = "http://127.0.0.1:9"
SANDBOX_APPS: dict[str, dict[str, tuple[int, str]]] = {
    "demo": {"web": (1, "standard-1x"), "worker": (1, "standard-1x")},
    "demo-api": {"web": (2, "standard-2x"), "clock": (1, "basic")},
    "demo-staging": {"web": (1, "basic"), "worker": (0, "basic")},
}
SANDBOX_REGISTRY = """\
heroku:
  allow_unlisted: true
  unlisted_max: 100  # other apps: at most this many dynos of a type
apps:
  demo:
    platform: heroku  # listed: its cost threshold (the default), not the cap above, guards it
    source: https://github.com/heroku/python-getting-started/archive/{ref}.tar.gz
    run: ["python manage.py migrate", "python manage.py check"]{demo_autoscale}
  demo-staging:
    platform: heroku
    source: https://github.com/heroku/python-getting-started/archive/{ref}.tar.gz
  demo-api:
    platform: heroku
    guardrails:
      protected: true  # killing it needs a second person's approval
      max_step: 4
  demo-shop:
    platform: beanstalk
    environment: demo-shop-prod
    region: us-east-1
    max: 8
  demo-shop-green:
    platform: beanstalk
    environment: demo-shop-green
    region: us-east-1
    max: 8
"""
# What the sandbox's one-off dynos print, by command: (lines, exit status).
SANDBOX_RUNS = {
    "python manage.py migrate": (
        [
            "Operations to perform:",
            "  Apply all migrations: admin, auth, hello",
            "Running migrations:",
            "  No migrations to apply.",
        ],
        0,
    ),
    "python manage.py check": (
        ["System check identified 1 issue:", "?: (security.W004) HSTS unset"],
        1,
    ),
}
# The refs the sandbox's `source:` repository has (branches, tags, the commits `releases`
# and `builds` name): a build of another ref fails at its fetch, as on Heroku.
SANDBOX_REFS = ("main", "v1.4.2", "v1.4.3", "e443df7", "eb1167b", "f00ba47")
# `demo`'s HireFire endpoint (`bot.sandbox.job_queue`), when hirefire-resource is installed.
QUEUE_APP = "demo"
QUEUE_REGISTRY = "\n    autoscale:\n      queue_url: {url}"
SPEEDUP = 20.0
TICK_SECONDS = 0.05

_running: Sandbox | None = None
_running_lock = threading.Lock()


def running() -> Sandbox | None:
    """The sandbox this process started and has not stopped, if any."""
    with _running_lock:
        return _running


class Sandbox:
    def __init__(self, admins: frozenset[str], database_url: str | None = None) -> None:
        """`database_url` None: a fresh SQLite file in a temporary folder, removed at stop."""
        self.heroku = FakeHeroku(api_keys=(SANDBOX_KEY,))
        for name, formation in SANDBOX_APPS.items():
            self.heroku.add_app(name, formation=formation)
        self.heroku.source_exists = lambda url: any(
            url.endswith(f"/{ref}.tar.gz") for ref in SANDBOX_REFS
        )
        self.beanstalk = FakeBeanstalk(access_keys=(SANDBOX_AWS_KEY,), update_seconds=60.0)
        self.beanstalk.add_environment(
            SHOP_ENVIRONMENT,
            region=SHOP_REGION,
            access_key=SANDBOX_AWS_KEY,
            application="demo-shop",
            min_size=2,
            max_size=2,
            instance_type="t3.small",
            version_label="shop-1.4.0",
        )
        # Earlier application versions, so `releases` and `rollback` have something to show.
        for label, description, age in (
            ("shop-1.3.2", "Fix the basket total rounding", 72.0),
            ("shop-1.3.1", "Checkout button copy", 120.0),
        ):
            self.beanstalk.add_version(
                "demo-shop",
                label,
                description,
                region="us-east-1",
                access_key=SANDBOX_AWS_KEY,
                age_hours=age,
            )
        # The second environment blue/green swaps with.
        self.beanstalk.add_environment(
            "demo-shop-green",
            region="us-east-1",
            access_key=SANDBOX_AWS_KEY,
            application="demo-shop",
            min_size=2,
            max_size=2,
            instance_type="t3.small",
            version_label="shop-1.3.2",
        )
        # The idle twin: CloudWatch holds no requests for its load balancer, so its health
        # reports none either (not the fake's default 60 an instance every 10 s).
        self.beanstalk.set_health("demo-shop-green", region="us-east-1", request_count=0)
        for line in (
            "[INFO] Booting worker with pid: 4242",
            "[INFO] GET /basket 200 in 41ms",
            "[INFO] STRIPE_KEY=sk_live_not_really connected",
        ):
            self.beanstalk.log("demo-shop-prod", line)
        self.heroku.add_pipeline("demo", {"demo-staging": "staging", "demo": "production"})
        self.heroku.run_output.update(SANDBOX_RUNS)
        for dyno, line in (
            ("web.1", "Booting gunicorn 23.0.0 with DATABASE_URL=postgres://demo:s3cret@db/demo"),
            ("web.1", "Listening at: http://0.0.0.0:5000"),
            ("worker.1", "Processing job 17 for user 42"),
        ):
            self.heroku.log("demo", dyno, line)
        self.heroku.log(
            "demo", "router", 'at=info method=GET path="/" status=200 service=12ms', source="heroku"
        )
        self.heroku.set_config_vars(
            "demo", {"LOG_LEVEL": "info", "DATABASE_URL": "postgres://demo:s3cret@db/demo"}
        )
        # A push that failed to build, so `builds demo` has a failure to explain (it made no
        # release: `demo` still runs v3).
        self.heroku.add_build(
            "demo",
            "f00ba47",
            description="Bump requests to 9.0",
            failing=[
                "       ERROR: Could not find a version that satisfies the requirement "
                "requests==9.0",
            ],
            ago=timedelta(minutes=20),
        )
        self.registry = _registry("")
        # `demo`'s job queue and the app endpoint that reports it, on the fake's clock.
        self.queues: dict[str, JobQueue] = {}
        self._queue_endpoint: QueueEndpoint | None = None
        if job_queue.available():
            self.queues[QUEUE_APP] = JobQueue(lambda: self.heroku.now)
            self._queue_endpoint = QueueEndpoint({"worker": self.queues[QUEUE_APP]})
        self._admins = admins
        self._stopping = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="sandbox-clock", daemon=True)
        self._saved_env: dict[str, str | None] = {}
        self._saved_poll = beanstalk.POLL_SECONDS
        self._database_url = database_url
        self._folder: str | None = None
        self.cloudwatch: FakeCloudWatch | None = (
            FakeCloudWatch() if FakeCloudWatch.available() else None
        )
        self.logplex = Logplex(self.heroku)
        self.slack = FakeSlack()
        self._web_server: LocalServer | None = None
        self._web: Any = None  # the Flask app behind the sandbox's public URL
        self._published_minute: datetime | None = None
        self.config: Config | None = None

    def start(self) -> Config:
        """Start the fakes; the returned config points the bot at them."""
        self.heroku.start()
        self.beanstalk.start()
        if self.cloudwatch is not None:
            self.cloudwatch.start()
        self._set_env(
            AWS_ACCESS_KEY_ID=SANDBOX_AWS_KEY,
            AWS_SECRET_ACCESS_KEY="sandbox-secret",
            AWS_ENDPOINT_URL_ELASTIC_BEANSTALK=self.beanstalk.url,
            AWS_ENDPOINT_URL_CLOUDWATCH=self.cloudwatch.url if self.cloudwatch else NO_CLOUDWATCH,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_PROFILE=None,
            AWS_SESSION_TOKEN=None,
        )
        beanstalk.POLL_SECONDS = 0.2  # in fake time that is four seconds
        if self._queue_endpoint is not None:
            # The token the app's endpoint and the bot share, as HIREFIRE_TOKEN on Heroku.
            self._set_env(HIREFIRE_TOKEN=secrets.token_hex(8))
            self._queue_endpoint.start()
            self.registry = _registry(QUEUE_REGISTRY.format(url=self._queue_endpoint.url))
        self._seed_shop_traffic(datetime.now(UTC))
        database_url = self._database_url
        if database_url is None:
            self._folder = tempfile.mkdtemp(prefix="deploybot-sandbox-")
            database_url = f"sqlite:///{os.path.join(self._folder, 'deploybot.sqlite3')}"
        config = Config(
            database_url=database_url,
            heroku_api_key=SANDBOX_KEY,
            heroku_api_url=self.heroku.url,
            admins=self._admins,
        )
        self.config = self._serve_web(config)
        self._ticker.start()
        global _running
        with _running_lock:
            _running = self
        return self.config

    def serves(self, config: Config) -> bool:
        """Whether `config` points the bot at this sandbox's fake Heroku."""
        return config.heroku_api_url == self.heroku.url

    def simulate(self, services: Services, say: Say, actor: Actor, command: Command) -> Result:
        """`/deploy simulate spike APP` against this sandbox's fake Heroku (`bot.sandbox.spike`);
        `simulate queue APP`, a backlog of jobs on its job queue (`bot.sandbox.queue_play`)."""
        # They need the autoscaler, which needs all of Services.
        if command.mode == "queue":
            from bot.sandbox import queue_play

            return queue_play.simulate(services, self.heroku, self.queues, say, actor, command)
        from bot.sandbox import spike

        return spike.simulate(services, self.heroku, say, actor, command)

    def stop(self) -> None:
        global _running
        with _running_lock:
            if _running is self:
                _running = None
        self._stopping.set()
        if self._ticker.is_alive():
            self._ticker.join()
        self.logplex.close()
        if self._web is not None:
            from bot.web.app import close

            # The drain's claim thread too: it had outlived the sandbox, holding its engine.
            close(self._web)
            self._web.extensions["deploybot"].db.dispose()
        if self._web_server is not None:
            self._web_server.stop()
            self.slack.stop()
        beanstalk.POLL_SECONDS = self._saved_poll
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if self.cloudwatch is not None:
            self.cloudwatch.stop()
        if self._queue_endpoint is not None:
            self._queue_endpoint.stop()
        self.beanstalk.stop()
        self.heroku.stop()
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)

    def __enter__(self) -> Config:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _set_env(self, **values: str | None) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    def _serve_web(self, config: Config) -> Config:
        """The real web app on 127.0.0.1, whose URL is the bot's public URL here: Heroku's
        drains and webhooks reach it as they would reach the web dyno."""
        from bot.web.app import create_app  # the web process: only when a sandbox starts

        holder: dict[str, Any] = {}
        self._web_server = LocalServer(lambda environ, start: holder["app"](environ, start))
        self._web_server.start()
        config = replace(config, public_url=self._web_server.url)
        # The web app's own Slack: nobody posts slash commands to it here (the console
        # dispatches to its own bolt app), but bolt needs a token and a signing secret.
        self.slack.start()
        web_config = replace(
            config,
            slack_bot_token=self.slack.bot_token,
            slack_signing_secret=secrets.token_hex(16),
            slack_api_url=self.slack.api_url,
        )
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        logging.disable(logging.INFO)  # its migrations' and start-up's info lines
        try:
            holder["app"] = self._web = create_app(web_config, registry=self.registry)
        finally:
            # create_app sets up the dyno's logfmt logging to stdout: the console has its own.
            logging.disable(logging.NOTSET)
            root.handlers[:], root.level = handlers, level
        return config

    def _seed_shop_traffic(self, now: datetime) -> None:
        """A day of the Beanstalk environment's request counts in CloudWatch, and its
        enhanced health reporting the same rate now."""
        if self.cloudwatch is None:
            return
        end = now.replace(second=0, microsecond=0)
        minutes = int(CLOUDWATCH_HISTORY.total_seconds() // 60)
        counts = {
            end - timedelta(minutes=m): shop_rpm(end - timedelta(minutes=m))
            for m in range(1, minutes + 1)
        }
        self._publish(counts)
        self._published_minute = end - timedelta(minutes=1)
        rpm = shop_rpm(end)
        self.beanstalk.set_health(
            SHOP_ENVIRONMENT,
            region=SHOP_REGION,
            request_count=rpm // 6,  # enhanced health reports the last 10 s
            status_2xx=rpm // 6,
            latency_p50=0.08,
            latency_p95=0.21,
            latency_p99=0.45,
        )

    def _publish(self, counts: dict[datetime, int]) -> None:
        assert self.cloudwatch is not None
        balancer = self.beanstalk.environment(SHOP_ENVIRONMENT, region=SHOP_REGION)["load_balancer"]
        self.cloudwatch.publish_requests(
            balancer, counts, region=SHOP_REGION, access_key=SANDBOX_AWS_KEY
        )

    def _tick(self) -> None:
        pumped = time.monotonic()
        while not self._stopping.wait(TICK_SECONDS):
            self.beanstalk.advance(TICK_SECONDS * SPEEDUP)
            if time.monotonic() - pumped >= LOGPLEX_SECONDS:
                elapsed, pumped = time.monotonic() - pumped, time.monotonic()
                self.logplex.pump(elapsed)
                self._publish_new_minute(datetime.now(UTC))

    def _publish_new_minute(self, now: datetime) -> None:
        """The load balancer's count for each minute that ended since the last one."""
        if self.cloudwatch is None or self._published_minute is None:
            return
        ended = now.replace(second=0, microsecond=0) - timedelta(minutes=1)
        if ended > self._published_minute:
            self._publish({ended: shop_rpm(ended)})
            self._published_minute = ended


def _registry(demo_autoscale: str) -> Registry:
    text = SANDBOX_REGISTRY.replace("{demo_autoscale}", demo_autoscale)
    return Registry.parse(text, "<sandbox registry>")


def shop_rpm(minute: datetime) -> int:
    """The demo Beanstalk shop's requests a minute: a daily swell peaking mid-afternoon UTC,
    never below a fifth of the peak."""
    hour = minute.hour + minute.minute / 60
    share = 0.6 + 0.4 * math.cos((hour - 15) / 24 * 2 * math.pi)
    return int(SHOP_RPM * share)
