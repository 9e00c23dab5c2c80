"""Configuration from environment variables (twelve-factor); secrets only ever live here."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import TypeVar

from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from policies.numbers import whole_number

_T = TypeVar("_T")
_USER_ID_RE = re.compile(r"^[UW][A-Z0-9]{2,}\Z")


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names it and says how to fix it."""


@dataclass(frozen=True)
class Config:
    database_url: str | None = None
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    heroku_api_key: str | None = None
    heroku_api_url: str = "https://api.heroku.com"
    admins: frozenset[str] = field(default_factory=frozenset)
    port: int = 5000
    # Set by Heroku's dyno metadata (`heroku labs:enable runtime-dyno-metadata`): the bot's
    # own app, which it refuses to kill or scale to zero.
    heroku_app_name: str | None = None
    # The bot's public base URL (https://….herokuapp.com): log drains point at it.
    public_url: str | None = None
    # Where the web dyno says, once, that the worker stopped (the outbox needs the worker).
    admin_channel: str | None = None

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, problems: list[str] | None = None
    ) -> Config:
        """The settings in `env`. A malformed one is a ConfigError, unless `problems` is
        given: then its words go there and the default stands in, so that `check-config`
        names every malformed setting at once, not the first one only."""
        env = os.environ if env is None else env

        def read(parse: Callable[[], _T], default: _T) -> _T:
            return _read(parse, default, problems)

        api_url = pasted(env.get("SLACK_API_URL")) or "https://slack.com/api/"
        return cls(
            database_url=read(lambda: _database_url(pasted(env.get("DATABASE_URL"))), None),
            slack_bot_token=pasted(env.get("SLACK_BOT_TOKEN")),
            slack_signing_secret=pasted(env.get("SLACK_SIGNING_SECRET")),
            slack_app_token=pasted(env.get("SLACK_APP_TOKEN")),
            slack_api_url=api_url if api_url.endswith("/") else api_url + "/",
            heroku_api_key=pasted(env.get("HEROKU_API_KEY")),
            heroku_api_url=(pasted(env.get("HEROKU_API_URL")) or "https://api.heroku.com").rstrip(
                "/"
            ),
            admins=read(
                lambda: parse_admins(pasted(env.get("DEPLOYBOT_ADMINS")) or ""), frozenset()
            ),
            port=read(lambda: port_setting(env), 5000),
            heroku_app_name=pasted(env.get("HEROKU_APP_NAME")),
            public_url=read(lambda: _public_url(pasted(env.get("DEPLOYBOT_URL"))), None),
            admin_channel=pasted(env.get("DEPLOYBOT_ADMIN_CHANNEL")),
        )

    def require(self, *names: str) -> None:
        """Fail with one message naming every missing setting."""
        missing = [name for name in names if not getattr(self, name.lower())]
        if missing:
            raise ConfigError(
                f"Set {', '.join(missing)} in the environment (see README, 'Configuration')."
            )


def pasted(raw: str | None) -> str | None:
    """`raw` without the spaces, newline or one pair of quotes it was pasted with (None when
    nothing is left): no token, secret, URL or ID has them, and a signing secret with a
    newline had made every Slack request's signature "invalid", invisible in `heroku config`."""
    value = (raw or "").strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1].strip()
    return value or None


# The AWS credentials boto3 reads from the environment itself (the default chain, and a
# profile's `credential_source = Environment`), where `pasted` never sees them.
AWS_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


def trim_aws_keys(env: MutableMapping[str, str]) -> None:
    """`env`'s AWS keys as `pasted` reads them, in place, one left empty removed: a key
    pasted with a newline had failed every Beanstalk call as "the connection dropped", one
    with a space as refused credentials. In place, as boto3 reads only os.environ."""
    for name in AWS_KEYS:
        if name in env:
            value = pasted(env[name])
            if value is None:
                del env[name]
            elif value != env[name]:
                env[name] = value


def seconds_setting(name: str, default: float, env: Mapping[str, str] | None = None) -> float:
    """`name` as a number of seconds above 0 and under a day (unset or empty: `default`).
    Anything else is a ConfigError naming it, which stops the process in one line: float()
    had ended the gunicorn master in a traceback, nan reached timedelta() at every tick, and
    0 flushed or ticked in a busy loop."""
    raw = pasted((os.environ if env is None else env).get(name))
    if raw is None:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 86_400:  # nan and inf fail this too
        raise ConfigError(f"{name} must be a number of seconds above 0, not {raw[:20]!r}.")
    return seconds


# The most gunicorn workers, threads per worker, or database connections per process: far
# above what one dyno runs well (the largest Heroku Postgres plans allow 500 connections in
# all), low enough that a stray digit (DEPLOYBOT_DB_POOL_SIZE=100000) is said, not tried.
MAX_COUNT = 100


def count_setting(name: str, default: int, env: Mapping[str, str] | None = None) -> int:
    """`name` as a whole number from 1 to MAX_COUNT (unset or empty: `default`), for
    gunicorn's worker and thread counts and the database pool; anything else is a
    ConfigError naming it."""
    raw = pasted((os.environ if env is None else env).get(name))
    if raw is None:
        return default
    count = whole_number(raw, 9)
    if count is None or count < 1:
        raise ConfigError(f"{name} must be a whole number of at least 1, not {raw[:20]!r}.")
    if count > MAX_COUNT:
        raise ConfigError(f"{name} must be at most {MAX_COUNT}, not {raw[:20]!r}.")
    return count


# Every interval a process reads with `seconds_setting` is named so.
_SECONDS_NAME = re.compile(r"DEPLOYBOT_[A-Z_]+_SECONDS")


def setting_problems(env: Mapping[str, str] | None = None) -> list[str]:
    """Each number setting set so that a process would stop at its start (the intervals,
    WEB_CONCURRENCY, GUNICORN_THREADS) or run far from what was meant (the database pool),
    in `check-config`'s words: it had said "ok" while the worker or the web dyno then
    refused to start."""
    env = os.environ if env is None else env
    found: list[str] = []
    for name in sorted(env):
        if _SECONDS_NAME.fullmatch(name):
            _read(lambda name=name: seconds_setting(name, 1.0, env), None, found)
    counts = ["WEB_CONCURRENCY", "GUNICORN_THREADS", "DEPLOYBOT_DB_POOL_SIZE"]
    if not _int_reads(env.get("WEB_CONCURRENCY")):
        # gunicorn reads it with int() as it is imported, before its config file (ours)
        # is: a quoted '2' or an empty value stopped the web dyno with a traceback.
        raw = env["WEB_CONCURRENCY"]
        found.append(
            f"WEB_CONCURRENCY must be a bare whole number like 2, not {raw[:20]!r}: gunicorn "
            "reads it before anything else, and the web dyno would not start"
        )
        counts.remove("WEB_CONCURRENCY")
    for name in counts:
        _read(lambda name=name: count_setting(name, 1, env), None, found)
    return found


def _int_reads(raw: str | None) -> bool:
    """Whether int() takes `raw` (None: unset, so nothing to read)."""
    if raw is None:
        return True
    try:
        int(raw)
    except ValueError:
        return False
    return True


def _read(parse: Callable[[], _T], default: _T, problems: list[str] | None) -> _T:
    """`parse()`; its ConfigError raised, or, given `problems`, its words put there (in
    `check-config`'s form, without the full stop) and `default` returned."""
    try:
        return parse()
    except ConfigError as error:
        if problems is None:
            raise
        problems.append(str(error).rstrip("."))
        return default


def parse_admins(raw: str) -> frozenset[str]:
    """Comma-separated Slack user IDs; a malformed one is an error, not silently ignored."""
    ids = [part.strip() for part in raw.split(",") if part.strip()]
    bad = [user_id for user_id in ids if not _USER_ID_RE.match(user_id)]
    if bad:
        raise ConfigError(
            f"DEPLOYBOT_ADMINS has {', '.join(bad)}, which is not a Slack user ID "
            "(they look like U012AB3CD)."
        )
    return frozenset(ids)


def port_setting(env: Mapping[str, str] | None = None) -> int:
    """PORT as a TCP port number (unset or empty: 5000); anything else is a ConfigError."""
    raw = pasted((os.environ if env is None else env).get("PORT")) or "5000"
    port = whole_number(raw, 5)
    if port is None or not 0 < port < 65536:
        raise ConfigError(f"PORT must be a TCP port number, not {raw[:20]!r}.")
    return port


def _public_url(url: str | None) -> str | None:
    """DEPLOYBOT_URL as given, once Heroku can send to it: an http(s) address with a host
    (and a port that is one). Without a scheme it had been taken, and every drain and
    webhook made from it refused by Heroku."""
    if url is None:
        return None
    try:
        parsed = parse_url(url)
    except LocationParseError:
        parsed = None
    if parsed is None or parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(
            "DEPLOYBOT_URL must be the bot's own web address, like https://mybot.herokuapp.com: "
            "Heroku sends log drains and webhooks there."
        )
    return url


def _database_url(url: str | None) -> str | None:
    """DATABASE_URL as given, once it is a URL the bot can use: PostgreSQL (Heroku's
    `postgres://` too) or a SQLite file. The driver's own errors quote the URL."""
    if url is None:
        return None
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme not in ("postgres", "postgresql", "postgresql+psycopg", "sqlite"):
        raise ConfigError(
            "DATABASE_URL must be a postgres:// (Heroku Postgres) or sqlite:/// URL; "
            "leave it unset for the local SQLite file."
        )
    if scheme != "sqlite":
        from sqlalchemy.engine import make_url

        try:
            parsed = make_url(url)
            parsed.port  # noqa: B018 (parsing the port is the check)
        except ValueError:
            raise ConfigError("DATABASE_URL's port is not a number.") from None
        # Without them libpq quietly takes the local socket and a default database.
        if not (parsed.host or parsed.query.get("host")) or not parsed.database:
            raise ConfigError(
                "DATABASE_URL names no host or no database; "
                "it should look like postgres://USER:PASSWORD@HOST:5432/DATABASE."
            )
    return url
