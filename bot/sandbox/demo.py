"""The sandbox: fake Heroku and Elastic Beanstalk with demo apps, so every verb works with
no accounts (`make demo`).

The fake Beanstalk's clock runs twenty times faster than the wall clock, so an environment
update that takes a minute of its time ends in three seconds and the console shows the
follow-up in its thread. Starting the sandbox points this process's boto3 at the fake (its
credentials and endpoint come from the environment, as on a dyno); `stop()` restores them.

A started sandbox is this process's `running()` one, so the console it serves can play
`/deploy simulate spike APP` (`bot.sandbox.spike`) against its fake Heroku.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from bot.config import Config
from bot.platforms import beanstalk
from bot.registry import Registry
from bot.sandbox.fakes.beanstalk import FakeBeanstalk
from bot.sandbox.fakes.heroku import FakeHeroku

if TYPE_CHECKING:
    from bot.actions.results import Result
    from bot.sandbox.spike import Say
    from bot.services import Services
    from bot.store.audit import Actor
    from policies.commands import Command

SANDBOX_KEY = "sandbox-key"
SANDBOX_AWS_KEY = "AKIDSANDBOX"
SANDBOX_DATABASE = "sqlite:///deploybot-sandbox.sqlite3"
SANDBOX_APPS: dict[str, dict[str, tuple[int, str]]] = {
    "demo": {"web": (1, "standard-1x"), "worker": (1, "standard-1x")},
    "demo-api": {"web": (2, "standard-2x"), "clock": (1, "basic")},
    "demo-staging": {"web": (1, "basic"), "worker": (0, "basic")},
}
SANDBOX_REGISTRY = """\
heroku:
  allow_unlisted: true
apps:
  demo:
    platform: heroku
    source: https://github.com/heroku/python-getting-started/archive/{ref}.tar.gz
    run: ["python manage.py migrate", "python manage.py check"]
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
SPEEDUP = 20.0
TICK_SECONDS = 0.05

_running: Sandbox | None = None
_running_lock = threading.Lock()


def running() -> Sandbox | None:
    """The sandbox this process started and has not stopped, if any."""
    with _running_lock:
        return _running


class Sandbox:
    def __init__(self, admins: frozenset[str]) -> None:
        self.heroku = FakeHeroku(api_keys=(SANDBOX_KEY,))
        for name, formation in SANDBOX_APPS.items():
            self.heroku.add_app(name, formation=formation)
        self.beanstalk = FakeBeanstalk(access_keys=(SANDBOX_AWS_KEY,), update_seconds=60.0)
        self.beanstalk.add_environment(
            "demo-shop-prod",
            region="us-east-1",
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
        self.registry = Registry.parse(SANDBOX_REGISTRY, "<sandbox registry>")
        self._admins = admins
        self._stopping = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="sandbox-clock", daemon=True)
        self._saved_env: dict[str, str | None] = {}
        self._saved_poll = beanstalk.POLL_SECONDS
        self.config: Config | None = None

    def start(self) -> Config:
        """Start the fakes; the returned config points the bot at them."""
        self.heroku.start()
        self.beanstalk.start()
        self._set_env(
            AWS_ACCESS_KEY_ID=SANDBOX_AWS_KEY,
            AWS_SECRET_ACCESS_KEY="sandbox-secret",
            AWS_ENDPOINT_URL_ELASTIC_BEANSTALK=self.beanstalk.url,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_PROFILE=None,
            AWS_SESSION_TOKEN=None,
        )
        beanstalk.POLL_SECONDS = 0.2  # in fake time that is four seconds
        self._ticker.start()
        self.config = Config(
            database_url=SANDBOX_DATABASE,
            heroku_api_key=SANDBOX_KEY,
            heroku_api_url=self.heroku.url,
            admins=self._admins,
        )
        global _running
        with _running_lock:
            _running = self
        return self.config

    def serves(self, config: Config) -> bool:
        """Whether `config` points the bot at this sandbox's fake Heroku."""
        return config.heroku_api_url == self.heroku.url

    def simulate(self, services: Services, say: Say, actor: Actor, command: Command) -> Result:
        """`/deploy simulate spike APP` against this sandbox's fake Heroku (`bot.sandbox.spike`)."""
        from bot.sandbox import spike  # it needs the autoscaler, which needs all of Services

        return spike.simulate(services, self.heroku, say, actor, command)

    def stop(self) -> None:
        global _running
        with _running_lock:
            if _running is self:
                _running = None
        self._stopping.set()
        if self._ticker.is_alive():
            self._ticker.join()
        beanstalk.POLL_SECONDS = self._saved_poll
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self.beanstalk.stop()
        self.heroku.stop()

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

    def _tick(self) -> None:
        while not self._stopping.wait(TICK_SECONDS):
            self.beanstalk.advance(TICK_SECONDS * SPEEDUP)
