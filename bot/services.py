"""Wires config and the registry into the long-lived objects every process shares."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.actions.background import Background
from bot.actions.dashboards import Dashboards
from bot.actions.followups import FollowUps
from bot.actions.gate import Gate
from bot.actions.health import Health, release_of
from bot.actions.path import Actions
from bot.actions.results import Resolved, Result
from bot.actions.usergroups import GroupLookupFailed, UserGroups
from bot.config import Config, pasted
from bot.metrics.store import MetricsStore
from bot.platforms.base import Platform, PlatformError
from bot.platforms.heroku import HerokuPlatform
from bot.platforms.registered import Registered
from bot.registry import Registry, Target
from bot.slack_api import web_client
from bot.store.audit import Actor, AuditLog
from bot.store.autoscale_settings import AutoscaleStore
from bot.store.confirmations import Confirmations
from bot.store.db import Database, pool_size
from bot.store.drain_claims import DrainClaims
from bot.store.drains import Drains
from bot.store.heartbeats import Heartbeats
from bot.store.incidents import Alerts
from bot.store.locks import Locks
from bot.store.observations import Observations
from bot.store.request_keys import RequestKeys
from bot.store.throttles import Throttles
from bot.store.webhook_secrets import WebhookSecrets
from policies.commands import Command

log = logging.getLogger(__name__)


def _parent_share(size: int) -> int:
    """Connections a web worker keeps when its background process takes the rest."""
    return 1 if size > 1 else size


def _beanstalk(region: str, profile: str | None) -> Platform:
    # Imported here: boto3 costs every process about 24 MB and a second of start-up, and
    # most registries name no Beanstalk app.
    from bot.platforms.beanstalk import BeanstalkPlatform

    return BeanstalkPlatform(region, profile)


# AWS's secret parts (the access key's id names it, and is no secret by itself).
_AWS_SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


class Services:
    def __init__(
        self,
        config: Config,
        *,
        source: str = "slack",
        registry: Registry | None = None,
        env: Mapping[str, str] | None = None,
        followups: FollowUps | None = None,
        background: Background | None = None,
        simulate: Callable[[Actor, Command], Result] | None = None,
        worker_runs: bool = True,
        db: Database | None = None,
    ) -> None:
        """`worker_runs` False: no worker dyno acts on what is stored (the sandbox console),
        so replies about the autoscaler say so instead of promising it acts."""
        self.config = config
        self.source = source
        self._env = os.environ if env is None else env
        self.registry = registry or Registry.from_env(self._env)
        # A process shares one engine (one pool, one connection budget) among its parts.
        self.db = db or Database(config.database_url)
        self.audit = AuditLog(self.db)
        self.confirmations = Confirmations(self.db)
        self.request_keys = RequestKeys(self.db)
        self.drain_claims = DrainClaims(self.db)
        self.metrics = MetricsStore(self.db)
        self.webhook_secrets = WebhookSecrets(self.db)
        self.observations = Observations(self.db)
        self.throttles = Throttles(self.db)
        self.followups = followups or FollowUps()
        # Slack listeners' work after the ack: bounded, so it cannot starve the acks; under
        # gunicorn in a child process of each worker (gunicorn_conf.post_worker_init).
        self.background = background or Background()
        self.background.in_child(after_fork=self._after_fork, at_exit=self.followups.close)
        # Called with a user ID after a change made on their behalf (App Home refreshes).
        self.changed: list[Callable[[str], None]] = []
        # Called once the web app is closed (`bot.web.app.close`): timers to stop.
        self.closing: list[Callable[[], None]] = []
        # Clients are built on first use, one per credential set: start-up calls no API.
        self._platforms: dict[tuple[str, ...], Platform] = {}
        self._lock = threading.Lock()
        self.gate = Gate(
            self.registry.rules,
            config.admins,
            self._groups_of,
            self.registry.other_names,
            self._workspace,
        )
        self._usergroups: UserGroups | None = None
        self._slack: WebClient | None = None
        drains = Drains(self.db)
        autoscale = AutoscaleStore(self.db)
        alerts = Alerts(self.db)
        self.heartbeats = Heartbeats(self.db)
        self.health = Health(
            self.heartbeats, drains.apps, release=release_of(self._env), worker_runs=worker_runs
        )
        self.dashboards = Dashboards(
            self.resolve,
            self.metrics,
            self.audit,
            autoscale,
            alerts,
            drains,
            self.health,
            # Through the health clock, so a test moving it moves every dashboard with it.
            now=lambda: self.health.now(),
        )
        self.actions = Actions(
            self.resolve,
            self.audit,
            self.confirmations,
            self.gate,
            targets=self.registry.targets,
            unlisted_heroku=self.registry.spec.heroku.allow_unlisted,
            request_keys=self.request_keys,
            own_app=config.heroku_app_name,
            metrics=self.metrics,
            drains=drains,
            public_url=config.public_url,
            autoscale=autoscale,
            webhook_secrets=self.webhook_secrets,
            simulate=simulate,  # the sandbox console's traffic player; None elsewhere
            alerts=alerts,
            dashboards=self.dashboards,
            canonical=self.registry.canonical,
            worker_runs=worker_runs,
            locks=Locks(self.db),
            secret=lambda name: pasted(self._env.get(name)),
            own_secrets=self.own_secrets,
        )

    def own_secrets(self) -> frozenset[str]:
        """The values of the bot's own credentials: Slack's, its Heroku keys (the registry's
        too), AWS's and its database URL. With any of them a person could act as the bot
        outside its rules and audit trail, so no answer shows them, whoever asks."""
        config = self.config
        names = self.registry.key_names() | {self.registry.spec.heroku.api_key_env, *_AWS_SECRETS}
        values = {pasted(self._env.get(name)) for name in names}
        values |= {config.slack_bot_token, config.slack_signing_secret, config.slack_app_token}
        values |= {config.heroku_api_key, config.database_url}
        return frozenset(value for value in values if value)

    def start_background_process(self, close_in_child: Iterable[Any] = ()) -> None:
        """Run the work after each ack in a child process (gunicorn's post_worker_init).

        The pair keeps the worker's share of database connections: the child, which runs
        the jobs (audit rows, request keys), takes all but one; the worker keeps one for the
        drain's claimer and flusher and /healthz, which hold it only for short queries."""
        self.background.start_process(close_in_child)
        if not self.db.is_sqlite:
            self.db.resize(_parent_share(pool_size()))

    def _after_fork(self) -> None:
        # In the background process: the parent's pooled connections and API clients stay
        # the parent's (a socket used from two processes garbles both conversations).
        if self.db.is_sqlite:
            self.db.engine.dispose(close=False)
        else:
            self.db.resize(max(1, pool_size() - _parent_share(pool_size())))
        self._lock = threading.Lock()
        self._platforms = {}
        self._usergroups = None

    def slack(self) -> WebClient:
        """The Web API client background jobs use: the same token and URL as bolt's."""
        if self._slack is None:
            self._slack = web_client(self.config.slack_bot_token, self.config.slack_api_url)
        return self._slack

    def _workspace(self) -> tuple[str | None, str | None]:
        """The team and Enterprise Grid org the bot token belongs to, from one auth.test."""
        try:
            found = self.slack().auth_test()
        except (SlackApiError, OSError) as error:
            code = error.response.get("error") if isinstance(error, SlackApiError) else None
            log.warning("auth.test failed", extra={"error": code or type(error).__name__})
            raise GroupLookupFailed(
                "Slack could not say which workspace I am installed in, so I changed nothing. "
                "Try again in a minute."
            ) from None
        return found.get("team_id"), found.get("enterprise_id")

    def _groups_of(self, user_id: str, groups: Iterable[str]) -> frozenset[str]:
        # Built on first use: start-up makes no Slack call, and most registries name no group.
        if self._usergroups is None:
            self.config.require("SLACK_BOT_TOKEN")
            client = web_client(self.config.slack_bot_token, self.config.slack_api_url)
            self._usergroups = UserGroups(client)
        return self._usergroups.groups_of(user_id, groups)

    def resolve(self, alias: str) -> Resolved:
        target = self.registry.resolve(alias)
        platform = Registered(self._platform(target), target.name, target.alias)
        return Resolved(target, cast(Platform, platform))

    def _platform(self, target: Target) -> Platform:
        if target.platform == "heroku":
            key_env = target.api_key_env or "HEROKU_API_KEY"
            key = self._heroku_key(key_env)
            if not key:
                raise PlatformError(
                    f"The bot has no Heroku API key for `{target.alias}`. "
                    f"An admin should set {key_env}."
                )
            cache_key: tuple[str, ...] = ("heroku", key_env)
            factory = lambda: HerokuPlatform(  # noqa: E731
                key, self.config.heroku_api_url, throttles=self.throttles, account=key_env
            )
        else:
            cache_key = ("beanstalk", target.region or "", target.aws_profile or "")
            factory = lambda: _beanstalk(target.region or "", target.aws_profile)  # noqa: E731
        with self._lock:
            if cache_key not in self._platforms:
                self._platforms[cache_key] = factory()
            return self._platforms[cache_key]

    def _heroku_key(self, name: str) -> str | None:
        # HEROKU_API_KEY also arrives through Config, which tests and the console set directly.
        if name == "HEROKU_API_KEY" and self.config.heroku_api_key:
            return self.config.heroku_api_key
        return pasted(self._env.get(name))

    def migrate_sqlite_if_behind(self) -> None:
        """The embedded default needs no release phase: migrate on start when behind."""
        if self.db.is_sqlite and self.db.needs_migration():
            self.db.migrate()
