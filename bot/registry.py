"""The app registry: which apps the bot manages, on which platform, with which credentials.

A YAML file (`DEPLOYBOT_CONFIG`, else `deploybot.yml` in the working directory if present)
validated with pydantic. A bad file stops the process with the file, line and reason.
Credentials never live in the file: it names environment variables (Heroku API keys) and
AWS profiles, which boto3's standard credential chain resolves.
"""

from __future__ import annotations

import os
import re
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from bot.config import pasted
from policies import autoscale, costs, guardrails, rules
from policies.commands import RUN_COMMAND_MAX
from policies.digest import DigestTime, parse_digest
from policies.guardrails import parse_duration
from policies.names import closest, suggest_app
from policies.redact import mask
from policies.slack_text import CHANNEL_ID, code, unescape

DEFAULT_FILE = "deploybot.yml"
# A thousand apps with every setting written out take about 400 KB and 50,000 values.
MAX_FILE_BYTES = 1 << 20
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, when installed
MAX_VALUES = 200_000
DEFAULT_HEROKU_KEY_ENV = "HEROKU_API_KEY"
DEFAULT_UNLISTED_MAX = 100
MAX_DOWN_STABILIZATION = timedelta(hours=1)
RUN_MOST = 50  # commands in an app's `run:` list


def waits_too_long(value: str) -> str:
    """Why `value` is refused as `down_stabilization`, in the registry and in chat alike."""
    return f"{code(value)} is longer than an hour, the longest a scale-down may wait"


_ALIAS_MOST = 40
# pydantic reads these with Rust's regex, where `$` is the end of the text; Python's `$`
# also matches before a final newline, so code here uses them with re.fullmatch.
_ALIAS = rf"^[a-z0-9][a-z0-9-]{{0,{_ALIAS_MOST - 1}}}$"
_ENV_VAR = r"^[A-Z_][A-Z0-9_]*$"
_CHANNEL = rf"^{CHANNEL_ID}$"
_REGION = r"^[a-z]{2}(-gov)?-[a-z]+-\d$"
_HEROKU_APP = r"^[a-z][a-z0-9-]{1,29}$"
_BEANSTALK_ENV = r"^[a-zA-Z0-9][a-zA-Z0-9-]{2,38}[a-zA-Z0-9]$"
_URL = r"^https?://"
# A queue_url no HTTP client can call, said by the loader and by the tick alike.
NO_ADDRESS = "is no address the bot can call; write it as https://HOST or https://HOST:PORT"
_REF_URL = r"^https?://\S*\{ref\}\S*$"
_REF_KEY = r"^\S*\{ref\}\S*$"
_SLACK_USER = r"^[UW][A-Z0-9]{2,}$"
_SLACK_GROUP = r"^S[A-Z0-9]{2,}$"
_SLACK_CONVERSATION = r"^[CGD][A-Z0-9]{2,31}$"
_APP_PATTERN = r"^[a-z0-9*?\[\]-]+$"


class RegistryError(ValueError):
    """The registry file is wrong; the message says where and why."""


def _number(value: object) -> object:
    """`value` unless YAML read it as a yes or no: a bool is an int in Python, so pydantic
    had taken `max: true` as 1 and `confirm_above_usd: false` as 0, without a word."""
    if isinstance(value, bool):
        raise ValueError(
            "write a number here, not a yes or no (YAML reads true, false, yes, no, on and off "
            "as one)"
        )
    return value


# The registry's numbers: any int or float, but never a YAML yes or no.
_Int = Annotated[int, BeforeValidator(_number)]
_Float = Annotated[float, BeforeValidator(_number)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HerokuSettings(_Strict):
    allow_unlisted: bool = False
    api_key_env: str = Field(DEFAULT_HEROKU_KEY_ENV, pattern=_ENV_VAR)
    # The most dynos of any one process type on an app the file does not list.
    unlisted_max: _Int = Field(DEFAULT_UNLISTED_MAX, ge=0, le=1000)


_COUNT = Annotated[_Int, Field(ge=0, le=1000)]
_PROCESS_TYPE = r"^[a-z][a-z0-9_-]*$"


class FreezeEntry(_Strict):
    cron: str  # five crontab fields, read in `timezone`
    duration: str  # 90m, 2h, 1d
    timezone: str = "UTC"
    reason: str = Field(max_length=200)

    @model_validator(mode="after")
    def _valid(self) -> FreezeEntry:
        self.policy()  # raises ValueError naming the bad field
        return self

    def policy(self) -> guardrails.Freeze:
        return guardrails.parse_freeze(self.cron, self.duration, self.timezone, self.reason)


class ScheduleEntry(_Strict):
    """An autoscaling schedule window: on `days` between `from` and `to` (in `timezone`),
    the autoscaler's min and/or max are these instead."""

    days: str = "daily"
    start: str = Field(alias="from")
    end: str = Field(alias="to")
    timezone: str = "UTC"
    min: _COUNT | None = None
    max: _COUNT | None = None

    @model_validator(mode="after")
    def _valid(self) -> ScheduleEntry:
        self.policy()  # raises ValueError naming the bad field
        return self

    def policy(self) -> autoscale.Window:
        return autoscale.parse_window(
            self.days, self.start, self.end, self.timezone, self.min, self.max
        )


class AutoscaleEntry(_Strict):
    schedule: list[ScheduleEntry] = []
    # Scale down only to the highest recommendation of this long (default 5m, the HPA's).
    down_stabilization: str | None = None
    # Worker types: the app's base URL serving HireFire's `/hirefire/<token>/info`, and
    # the bot's environment variable holding that token.
    queue_url: str | None = Field(None, pattern=_URL)
    queue_token_env: str = Field("HIREFIRE_TOKEN", pattern=_ENV_VAR)

    @field_validator("queue_url")
    @classmethod
    def _callable(cls, value: str | None) -> str | None:
        # Read as the tick will read it, so a port past 65535 is said here and not, at the
        # first tick, as a connection that dropped.
        if value is not None:
            try:
                host = parse_url(value).host
            except LocationParseError:
                host = None
            if not host:
                raise ValueError(f"that {NO_ADDRESS}")  # unquoted: it may hold a password
        return value

    @field_validator("down_stabilization")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value) > MAX_DOWN_STABILIZATION:
            raise ValueError(waits_too_long(value))
        return value

    def stabilization(self) -> timedelta | None:
        return parse_duration(self.down_stabilization) if self.down_stabilization else None


class AlertsEntry(_Strict):
    """An app's own alert thresholds, where the defaults (`policies.detectors`) don't fit."""

    slow_p95_ms: _Float | None = Field(None, gt=0, le=600_000)
    slow_minutes: _Int | None = Field(None, ge=1, le=60)
    error_rate_percent: _Float | None = Field(None, gt=0, le=100)
    error_minutes: _Int | None = Field(None, ge=1, le=60)
    router_burst: _Int | None = Field(None, ge=1, le=1_000_000)
    pinned_minutes: _Int | None = Field(None, ge=1, le=24 * 60)
    stale_minutes: _Int | None = Field(None, ge=1, le=24 * 60)

    def rules(self) -> dict[str, Any]:
        """The `DetectorRules` fields these change, in that dataclass's own units."""
        return {
            _ALERT_RULES[name][0]: _ALERT_RULES[name][1](value)
            for name, value in self.model_dump(exclude_none=True).items()
        }


def _minutes(value: int) -> timedelta:
    return timedelta(minutes=value)


# The registry's words → (the `policies.detectors.DetectorRules` field, its unit).
_ALERT_RULES: dict[str, tuple[str, Any]] = {
    "slow_p95_ms": ("slow_p95_ms", float),
    "slow_minutes": ("slow_minutes", int),
    "error_rate_percent": ("error_rate", lambda percent: percent / 100),
    "error_minutes": ("error_minutes", int),
    "router_burst": ("router_burst", int),
    "pinned_minutes": ("pinned_for", _minutes),
    "stale_minutes": ("stale_after", _minutes),
}


class GuardrailsEntry(_Strict):
    min: dict[Annotated[str, Field(pattern=_PROCESS_TYPE)], _COUNT] = {}
    max: dict[Annotated[str, Field(pattern=_PROCESS_TYPE)], _COUNT] = {}
    max_step: _Int | None = Field(None, ge=1, le=1000)
    sizes: list[Annotated[str, Field(min_length=1)]] | None = None
    protected: bool = False
    freezes: list[FreezeEntry] = []
    # A change that raises the monthly cost by more than this (USD) asks first, with the cost.
    confirm_above_usd: _Float = Field(costs.DEFAULT_CONFIRM_ABOVE_USD, ge=0)

    def policy(self, max_per_type: int | None) -> guardrails.Guardrails:
        # The entry's plain `max:` caps every process type the per-type `max` leaves out.
        most = dict(self.max)
        if max_per_type is not None:
            most.setdefault(guardrails.ANY_TYPE, max_per_type)
        return guardrails.Guardrails(
            min=dict(self.min),
            max=most,
            max_step=self.max_step,
            sizes=frozenset(s.lower() for s in self.sizes) if self.sizes is not None else None,
            protected=self.protected,
            freezes=tuple(f.policy() for f in self.freezes),
        )


class _AppEntry(_Strict):
    channel: str | None = Field(None, pattern=_CHANNEL)
    max: _Int | None = Field(None, ge=0, le=1000)
    guardrails: GuardrailsEntry = GuardrailsEntry()
    autoscale: AutoscaleEntry = AutoscaleEntry()
    alerts: AlertsEntry = AlertsEntry()
    # `"09:00 Europe/Paris"`: post yesterday's digest to the app's channel at that time.
    digest: str | None = None

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        if value is not None:
            parse_digest(value)  # raises ValueError saying what is wrong
        return value

    @model_validator(mode="after")
    def _schedule_within_guardrails(self) -> _AppEntry:
        # A window the guardrails would refuse would fail every tick it covers: say so now.
        caps = [c for c in (self.guardrails.max.get("web"), self.max) if c is not None]
        for window in self.autoscale.schedule:
            asks = max(window.min or 0, window.max or 0)
            if caps and asks > min(caps):
                raise ValueError(
                    f"autoscale schedule window {window.policy().describe()} asks for "
                    f"{asks} web, above the app's max of {min(caps)}"
                )
        return self

    def shared(self) -> dict[str, Any]:
        """The `Target` fields every platform's entry has."""
        return {
            "channel": self.channel,
            "max": self.max,
            "guardrails": self.guardrails.policy(self.max),
            "confirm_above_usd": self.guardrails.confirm_above_usd,
            "schedule": tuple(window.policy() for window in self.autoscale.schedule),
            "alert_rules": self.alerts.rules(),
            "down_stabilization": self.autoscale.stabilization(),
            "digest": parse_digest(self.digest) if self.digest else None,
            "queue_url": self.autoscale.queue_url,
            "queue_token_env": self.autoscale.queue_token_env,
        }


class HerokuEntry(_AppEntry):
    platform: Literal["heroku"]
    app: str | None = Field(None, pattern=_HEROKU_APP)
    api_key_env: str | None = Field(None, pattern=_ENV_VAR)
    # `/deploy ship APP [REF]` builds from this tarball URL, `{ref}` replaced by the ref.
    source: str | None = Field(None, pattern=_REF_URL, max_length=500)
    # `/deploy run APP COMMAND` runs only these commands (anything else is remote code
    # execution for whoever may type in the channel).
    # At most RUN_MOST: a refused command's reply lists them all, in one Slack message.
    run: list[Annotated[str, Field(min_length=1, max_length=RUN_COMMAND_MAX)]] = Field(
        [], max_length=RUN_MOST
    )
    # A private repository: the env var holding a token the source host accepts.
    source_token_env: str | None = Field(None, pattern=_ENV_VAR)


class BundleEntry(_Strict):
    """Where `ship APP REF` finds a source bundle to make a new application version from."""

    bucket: str = Field(min_length=3, max_length=63)
    key: str = Field(pattern=_REF_KEY, max_length=500)  # e.g. shop/{ref}.zip


class BeanstalkEntry(_AppEntry):
    platform: Literal["beanstalk"]
    environment: str = Field(pattern=_BEANSTALK_ENV)
    application: str | None = None
    region: str = Field(pattern=_REGION)
    aws_profile: str | None = Field(None, min_length=1)
    bundle: BundleEntry | None = None


Entry = Annotated[HerokuEntry | BeanstalkEntry, Field(discriminator="platform")]


class RuleEntry(_Strict):
    """One access rule: `allow:` or `deny:` a list of verbs, for subjects, on apps."""

    allow: list[str] | None = None
    deny: list[str] | None = None
    users: list[Annotated[str, Field(pattern=_SLACK_USER)]] = []
    groups: list[Annotated[str, Field(pattern=_SLACK_GROUP)]] = []
    channels: list[Annotated[str, Field(pattern=_SLACK_CONVERSATION)]] = []
    apps: list[Annotated[str, Field(min_length=1, pattern=_APP_PATTERN)]] = ["*"]

    @model_validator(mode="after")
    def _valid(self) -> RuleEntry:
        if (self.allow is None) == (self.deny is None):
            raise ValueError("a rule needs exactly one of `allow:` or `deny:` (a list of verbs)")
        self.policy("the registry")  # raises ValueError naming the bad verb or ID
        return self

    def policy(self, source: str) -> rules.Rule:
        effect, verbs = ("allow", self.allow) if self.allow is not None else ("deny", self.deny)
        return rules.Rule(
            effect=effect,
            users=frozenset(self.users),
            groups=frozenset(self.groups),
            channels=frozenset(self.channels),
            verbs=frozenset(rules.validate_verb(v) for v in verbs or ()),
            apps=tuple(self.apps),
            source=source,
        )


class RegistryFile(_Strict):
    heroku: HerokuSettings = HerokuSettings()
    access: list[RuleEntry] = []
    apps: dict[str, Entry] = {}

    @field_validator("apps")
    @classmethod
    def _aliases(cls, apps: dict[str, Any]) -> dict[str, Any]:
        for alias in apps:
            if len(alias) > _ALIAS_MOST:  # said, and cut: one had been quoted whole
                raise ValueError(
                    f"{code(_visible(alias[:_ALIAS_MOST]) + '…')} is too long for an app alias: "
                    f"{_ALIAS_MOST} characters at most"
                )
            if not re.fullmatch(_ALIAS, alias):  # `$` alone lets "shop\n" through
                raise ValueError(
                    f"{code(_visible(alias))} is not an app alias: lowercase letters, digits "
                    "and dashes, starting with a letter or digit"
                )
        return apps


@dataclass(frozen=True)
class Target:
    """One managed app, resolved from its alias."""

    alias: str
    platform: str  # "heroku" or "beanstalk"
    name: str  # the Heroku app name or the Beanstalk environment name
    channel: str | None = None
    max: int | None = None
    api_key_env: str | None = None  # heroku
    region: str | None = None  # beanstalk
    aws_profile: str | None = None  # beanstalk
    application: str | None = None  # beanstalk
    guardrails: guardrails.Guardrails = field(default_factory=guardrails.Guardrails)
    schedule: tuple[autoscale.Window, ...] = ()  # autoscaling min/max by time of week
    alert_rules: Mapping[str, Any] = field(default_factory=dict)  # DetectorRules changes
    down_stabilization: timedelta | None = None  # None: the policy's default
    confirm_above_usd: float = costs.DEFAULT_CONFIRM_ABOVE_USD  # a cost rise above: ask first
    source: str | None = None  # heroku: the tarball URL template `ship` builds from
    run: tuple[str, ...] = ()  # heroku: the commands `run` may start
    source_token_env: str | None = None  # heroku: env var with the private source's token
    bundle: tuple[str, str] | None = None  # beanstalk: (S3 bucket, key with `{ref}`) for ship
    digest: DigestTime | None = None  # when the daily digest goes to `channel`
    queue_url: str | None = None  # worker autoscaling: the app's HireFire endpoint base
    queue_token_env: str = "HIREFIRE_TOKEN"
    listed: bool = True  # False: an unlisted Heroku app (`allow_unlisted`), not known to exist


class UnknownApp(LookupError):
    """No app by that name; the message suggests the nearest names."""


class Registry:
    def __init__(
        self, spec: RegistryFile, source: str | None = None, rule_lines: list[int] | None = None
    ) -> None:
        self.spec = spec
        self.source = source
        where = source or "the registry"
        lines = rule_lines or [0] * len(spec.access)
        # Each rule names its line, so a refusal can say which rule decided.
        self.rules: tuple[rules.Rule, ...] = tuple(
            entry.policy(f"{where}:{line}" if line else where)
            for entry, line in zip(spec.access, lines, strict=True)
        )
        # Each platform name (Heroku app, Beanstalk environment) → the aliases behind it.
        # The bot's own messages name apps by it, and people know it from the dashboard.
        self._behind: dict[str, list[str]] = {}
        self._named: dict[str, str] = {}  # alias → its platform name, where they differ
        for alias, entry in sorted(spec.apps.items()):
            name = entry.app or alias if isinstance(entry, HerokuEntry) else entry.environment
            if name.lower() != alias:
                self._behind.setdefault(name.lower(), []).append(alias)
                self._named[alias] = name.lower()
        # Each listed app's Target, built once: listing a fleet had rebuilt every app's
        # guardrails, schedule and freezes (a cron parsed each) on every call.
        self._resolved: dict[str, Target] = {}

    @classmethod
    def empty(cls) -> Registry:
        """No file: every Heroku app is reachable by its own name with HEROKU_API_KEY."""
        return cls(RegistryFile(heroku=HerokuSettings(allow_unlisted=True)))

    @classmethod
    def load(cls, path: str | Path) -> Registry:
        path = Path(path)
        try:
            with path.open("rb") as file:
                raw = file.read(MAX_FILE_BYTES + 1)
        except OSError as error:
            raise RegistryError(f"{path}: cannot read the registry ({error.strerror}).") from None
        if len(raw) > MAX_FILE_BYTES:
            raise RegistryError(
                f"{path}: the registry is larger than {MAX_FILE_BYTES >> 20} MiB, far more than "
                "a thousand apps need; check that it is the right file."
            )
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise RegistryError(
                f"{path}: the registry is not UTF-8 text (byte {error.start})."
            ) from None
        return cls.parse(text, str(path))

    @classmethod
    def parse(cls, text: str, source: str = "<registry>") -> Registry:
        node: yaml.Node | None = None
        # One pass, in libyaml where PyYAML has it: the node tree (for lines) and the data
        # built from it. Scanning the text twice in pure Python had taken a 1 MiB file 12 s,
        # at each process's start.
        loader = _SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            reason = getattr(error, "problem", None) or str(error)
            raise RegistryError(f"{source}{line}: not valid YAML ({reason}).") from None
        except RecursionError:
            # PyYAML composes each level of nesting in Python calls of its own: a few KB of
            # `[` had ended check-config and the web dyno's start in a traceback.
            raise RegistryError(
                f"{source}: the registry is nested hundreds of levels deep, far deeper than "
                "any setting goes; check that it is the right file."
            ) from None
        except ValueError:
            # Python's int() refuses more than 4,300 digits; YAML's int constructor uses it.
            raise RegistryError(
                f"{source}:{_long_number_line(node)}: a number there is far too long to mean "
                "anything; no setting takes one that large."
            ) from None
        finally:
            loader.dispose()
        twice = _duplicate_key(node)
        if twice is not None:
            key, line = twice
            # YAML lets the last one win: a second `web:` would drop the first one's
            # guardrails without a word.
            raise RegistryError(
                f"{source}:{line}: `{key[:40]}` is given twice in the same mapping; keep one."
            )
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise RegistryError(f"{source}:1: the registry must be a mapping with `apps:`.")
        if not _within(data, MAX_VALUES):
            # YAML aliases repeat a node without repeating its text: a small file can stand
            # for millions of values, and checking them all would take the bot's start-up.
            raise RegistryError(
                f"{source}: the registry holds more than {MAX_VALUES:,} values once its YAML "
                "aliases (`*name`) are expanded; write shared settings out, or use fewer aliases."
            )
        try:
            spec = RegistryFile.model_validate(data)
        except ValidationError as error:
            errors = error.errors()
            # A misspelled key also leaves the setting it meant "required": name the typo.
            unknown = [e for e in errors if e["type"] == "extra_forbidden"]
            if unknown:
                loc = unknown[0]["loc"]
                line = _line_of(node, loc, key=True)
                raise RegistryError(f"{source}:{line}: {_unknown_setting(loc)}") from None
            first = errors[0]
            line = _line_of(node, first["loc"])
            where = ".".join(_visible(str(part)) for part in _without_platform(first["loc"]))
            # A terminal's text: the reason's code spans and the policies' words are Slack
            # text, and `&lt;` had been printed where the file says `<`.
            reason = unescape(_reason(first))
            raise RegistryError(f"{source}:{line}: {where}: {reason}.") from None
        lines = [_line_of(node, ("access", i)) for i in range(len(spec.access))]
        return cls(spec, source, lines)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Registry:
        env = os.environ if env is None else env
        path = pasted(env.get("DEPLOYBOT_CONFIG"))  # as every setting: no spaces or quotes
        if path:
            return cls.load(path)
        if Path(DEFAULT_FILE).is_file():
            return cls.load(DEFAULT_FILE)
        return cls.empty()

    def aliases(self) -> list[str]:
        return sorted(self.spec.apps)

    def names(self) -> dict[str, str]:
        """Each name a listed app goes by (its alias, its Heroku app or Beanstalk
        environment where that differs) → the alias to type: what a did-you-mean offers."""
        known = {alias: alias for alias in self.aliases()}
        for name, behind in self._behind.items():
            known.setdefault(name, behind[0])
        return known

    def channel_of(self, alias: str) -> str | None:
        """The app's home channel for alerts; None for an app without one or not listed."""
        try:
            return self.resolve(alias).channel
        except UnknownApp:
            return None

    def targets(self) -> list[Target]:
        return [self.resolve(alias) for alias in self.aliases()]

    def canonical(self, name: str) -> str:
        """The alias `name` stands for, whatever its case: `DEMO` is `demo`. Aliases are
        lowercase (the file's own rule) and so are Heroku app names, so a name in another
        case can only mean its lowercase self; whether that app exists is `resolve`'s to say.
        A listed app's Heroku app or Beanstalk environment name stands for its alias."""
        if name in self.spec.apps:
            return name
        name = name.lower()
        behind = self._behind.get(name, [])
        # A listed app's own name means its alias; never the same app unlisted, which
        # would hold none of the entry's guardrails, locks or rules.
        return behind[0] if len(behind) == 1 and name not in self.spec.apps else name

    def other_names(self, alias: str) -> tuple[str, ...]:
        """The Heroku app or Beanstalk environment behind a listed `alias`, where its name
        differs: access rules match it too (`()` for an app outside the registry)."""
        name = self._named.get(alias)
        return (name,) if name else ()

    def resolve(self, alias: str) -> Target:
        alias = self.canonical(alias)
        if alias in self._resolved:
            return self._resolved[alias]
        if alias in self.spec.apps:
            target = self._resolved[alias] = self._listed(alias)
            return target
        if alias in self._behind:  # two or more entries for one app: which one is meant
            behind = self._behind[alias]
            named = ", ".join(code(a) for a in behind[:3])
            more = f" and {len(behind) - 3} more" if len(behind) > 3 else ""
            raise UnknownApp(f"{code(alias)} is the app behind {named}{more}: name one of them.")
        if self.spec.heroku.allow_unlisted and re.fullmatch(_HEROKU_APP, alias):
            cap = {guardrails.ANY_TYPE: self.spec.heroku.unlisted_max}
            return Target(
                alias=alias,
                platform="heroku",
                name=alias,
                api_key_env=self.spec.heroku.api_key_env,
                guardrails=guardrails.Guardrails(max=cap),
                listed=False,
            )
        hint = suggest_app(alias, self.names())
        listed = f" Did you mean {hint}?" if hint else " `/deploy apps` lists them."
        raise UnknownApp(f"{code(alias)} is not an app I manage.{listed}")

    def _listed(self, alias: str) -> Target:
        entry = self.spec.apps[alias]
        if isinstance(entry, HerokuEntry):
            return Target(
                alias=alias,
                platform="heroku",
                name=entry.app or alias,
                api_key_env=entry.api_key_env or self.spec.heroku.api_key_env,
                source=entry.source,
                source_token_env=entry.source_token_env,
                run=tuple(entry.run),
                **entry.shared(),
            )
        return Target(
            alias=alias,
            platform="beanstalk",
            name=entry.environment,
            region=entry.region,
            aws_profile=entry.aws_profile,
            application=entry.application,
            bundle=(entry.bundle.bucket, entry.bundle.key) if entry.bundle else None,
            **entry.shared(),
        )

    def key_names(self) -> set[str]:
        """The environment variables that hold the Heroku keys of the listed apps."""
        return {t.api_key_env for t in self.targets() if t.api_key_env}

    def warnings(self) -> list[str]:
        """What check-config should mention without refusing to start: a file that lists no
        apps (tests and a bot being set up use one) reaches none, which a wrong or empty
        DEPLOYBOT_CONFIG also looks like; and settings the bot will never read."""
        found = [
            f"{code(alias)} is an Elastic Beanstalk environment, which its Auto Scaling group "
            "scales (MinSize/MaxSize in Beanstalk), so the bot reads nothing under its "
            "`autoscale:`"
            for alias, entry in self.spec.apps.items()
            if isinstance(entry, BeanstalkEntry) and "autoscale" in entry.model_fields_set
        ]
        if self.source is None or self.spec.apps or self.spec.heroku.allow_unlisted:
            return found
        return [
            f"{self.source} lists no apps, so the bot can reach none; add them under `apps:` "
            "(docs/registry.md), or write `heroku: {allow_unlisted: true}`"
        ]

    def problems(self, env: Mapping[str, str]) -> list[str]:
        """What would fail at run time: credentials named in the file but not set."""
        found = []
        names = self.key_names()
        if self.spec.heroku.allow_unlisted:
            names.add(self.spec.heroku.api_key_env)
        for name in sorted(names):
            if not env.get(name):
                users = [t.alias for t in self.targets() if t.api_key_env == name]
                used_by = f" (used by {', '.join(users)})" if users else ""
                found.append(f"environment variable {name} is not set{used_by}")
        return found


_PLATFORMS = "`platform: heroku` or `platform: beanstalk`"

_CHANNEL_WORDS = (
    "a Slack channel ID such as `C0123ABCD` (the channel's details in Slack show its ID)"
)
_ENV_RULE = "capital letters, digits and underscores, not starting with a digit"
_ENV_WORDS = f"the name of an environment variable: {_ENV_RULE}"
# What each pattern a setting must match asks for, in words: a refused value had been
# answered with the regex ("String should match pattern '^[CG][A-Z0-9]{2,31}$'").
PATTERN_WORDS = {
    _ENV_VAR: _ENV_WORDS,
    _CHANNEL: _CHANNEL_WORDS,
    _SLACK_CONVERSATION: _CHANNEL_WORDS,
    _REGION: "an AWS region such as `eu-west-1`",
    _HEROKU_APP: (
        "a Heroku app name: 2 to 30 lowercase letters, digits and dashes, starting with a letter"
    ),
    _BEANSTALK_ENV: (
        "a Beanstalk environment name: 4 to 40 letters, digits and dashes, not starting or "
        "ending with a dash"
    ),
    _PROCESS_TYPE: (
        "a process type such as `web` or `worker`: lowercase letters, digits, `-` and `_`, "
        "starting with a letter"
    ),
    _URL: "an address starting with `https://` (or `http://`)",
    _REF_URL: ("an http(s) address without spaces, with `{ref}` where the commit goes"),
    _REF_KEY: "an S3 key without spaces, with `{ref}` where the commit goes",
    _SLACK_USER: (
        "a Slack user ID such as `U0123ABCD` (a person's profile shows it under ⋮, Copy member ID)"
    ),
    _SLACK_GROUP: "a Slack user group ID such as `S0123ABCD`",
    _APP_PATTERN: (
        "an app alias or pattern: lowercase letters, digits, `-` and the wildcards `*`, `?` "
        "and `[…]`"
    ),
}


_MAPPING = "a mapping here (`key: value` lines indented under it)"
_WHOLE = "a whole number here"
# What a value of the wrong kind should have been, in words: pydantic's own had named this
# code's classes ("Input should be a valid dictionary or instance of GuardrailsEntry").
_KIND_WORDS = {
    "dict_type": _MAPPING,
    "model_type": _MAPPING,
    "model_attributes_type": _MAPPING,
    "list_type": "a list here (`- item` lines, or `[a, b]`)",
    "string_type": "text here, in quotes if YAML would read it as a number or a yes or no",
    "int_type": _WHOLE,
    "int_parsing": _WHOLE,
    "int_from_float": _WHOLE,
    "float_type": "a number here",
    "float_parsing": "a number here",
    "bool_type": "true or false here",
    "bool_parsing": "true or false here",
}

# The settings that take a time of day, "HH:MM".
_CLOCK_KEYS = frozenset({"from", "to", "digest"})


def _reason(error: Any) -> str:
    """A pydantic error in the registry's words: an app entry's platform missing, unknown or
    without settings had been said in pydantic's ("Unable to extract tag using
    discriminator 'platform'"); our own validators' without its "Value error, "."""
    kind = error["type"]
    if kind == "union_tag_not_found":
        return f"an app needs {_PLATFORMS}"
    if kind == "union_tag_invalid":
        return (
            f"{code(_visible(str(error['ctx']['tag']))[:40])} is not a platform: write {_PLATFORMS}"
        )
    if kind == "model_attributes_type" and error["input"] is None and len(error["loc"]) == 2:
        return "an app needs its settings under it, `platform:` at least"
    said = error["input"]
    if kind == "string_type" and type(said) is int and error["loc"][-1] in _CLOCK_KEYS:
        # YAML 1.1 reads an unquoted 18:00 (not 08:00) as the base-60 number 1080.
        hours, minutes = divmod(said, 60)
        if 0 <= hours < 24:
            return (
                f'write the time in quotes, like "{hours:02d}:{minutes:02d}"; unquoted, YAML '
                f"reads {hours}:{minutes:02d} as the number {said}"
            )
    if kind == "string_pattern_mismatch" and error["ctx"]["pattern"] == _ENV_VAR:
        # What a person pastes here by mistake is the secret the variable holds: quoted,
        # it went on to check-config's output and the dyno's log (and any log drain).
        return (
            f"this is not the name of an environment variable ({_ENV_RULE}); put the secret "
            "in a config var and write that variable's name here (the value is not shown, in "
            "case it is the secret itself)"
        )
    if kind in _KIND_WORDS:
        return f"write {_KIND_WORDS[kind]}"
    if kind == "too_long" and error["loc"][-1] == "run":
        most, given = error["ctx"]["max_length"], error["ctx"]["actual_length"]
        return f"list at most {most} commands here, not {given}"
    if kind == "string_too_long":
        most = error["ctx"]["max_length"]
        return f"write at most {most} characters here, not {len(str(said)):,}"
    if kind == "string_too_short":
        least = error["ctx"]["min_length"]
        if least == 1:
            return "write something here: it is empty"
        return f"write at least {least} characters here, not {len(str(said))}"
    if kind == "string_pattern_mismatch" and error["ctx"]["pattern"] in PATTERN_WORDS:
        # Masked before it is cut: a source or queue URL may carry its token (`user:token@`,
        # `?access_token=`), which went on to check-config's output and the dyno's log.
        shown = code(_visible(mask(str(said)))[:60])
        return f"{shown} is not {PATTERN_WORDS[error['ctx']['pattern']]}"
    return str(error["msg"]).removeprefix("Value error, ").rstrip(".")


def _visible(text: str) -> str:
    """`text` with a newline or other control shown as its escape (`shop\\n`): printed as it
    is, an alias `"shop\\n"` had broken check-config's one-line error in two."""
    return text if text.isprintable() else repr(text)[1:-1]


def _without_platform(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """pydantic's `loc` without the platform it puts after an app's alias (`apps.web.heroku.
    max`), which is no key of the file."""
    if len(loc) > 2 and loc[0] == "apps" and loc[2] in ("heroku", "beanstalk"):
        return loc[:2] + loc[3:]
    return loc


def _unknown_setting(loc: tuple[Any, ...]) -> str:
    """A sentence for the key at `loc` that its mapping's model has no field for: the
    closest field it has, else all of them."""
    name, model = str(loc[-1]), _model_at(loc[:-1])
    named = [str(part) for part in loc[:-1] if isinstance(part, str)]
    if model is not None and issubclass(model, _AppEntry):
        owner = "an app"
    elif not named:
        owner = "the registry"
    elif isinstance(loc[-2], int):
        owner = f"a `{named[-1]}` entry"
    else:
        owner = f"`{named[-1]}`"
    settings = [f.alias or n for n, f in model.model_fields.items()] if model else []
    near = closest(name, settings, limit=1)
    if near:
        return f"`{name[:40]}` is not a setting of {owner}; did you mean `{near[0]}`?"
    said = f"`{name[:40]}` is not a setting of {owner}"
    if not settings:
        return f"{said}."
    return f"{said}; its settings are {', '.join(f'`{s}`' for s in settings)}."


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model whose fields the mapping at pydantic's error `loc` holds, if one does."""
    kind: Any = RegistryFile
    for part in loc:
        kind = _unwrap(kind)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            field = kind.model_fields.get(str(part)) or next(
                (f for f in kind.model_fields.values() if f.alias == part), None
            )
            kind = field.annotation if field else None
        elif typing.get_origin(kind) in (dict, list):
            kind = typing.get_args(kind)[-1]
        elif isinstance(kind, tuple):
            # A discriminated union: pydantic's `loc` names the member by its tag.
            kind = next((m for m in kind if part in _tags(m)), None)
        else:
            return None
    kind = _unwrap(kind)
    return kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None


def _unwrap(kind: Any) -> Any:
    """`kind` without Annotated and None; a union of several models as a tuple of them."""
    while typing.get_origin(kind) is Annotated:
        kind = typing.get_args(kind)[0]
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        members = tuple(_unwrap(m) for m in typing.get_args(kind) if m is not type(None))
        return members[0] if len(members) == 1 else members
    return kind


def _tags(model: Any) -> tuple[Any, ...]:
    """The Literal values a union member's fields take: its discriminator's tag."""
    fields = getattr(model, "model_fields", {})
    return tuple(
        value
        for field in fields.values()
        if typing.get_origin(field.annotation) is Literal
        for value in typing.get_args(field.annotation)
    )


def _line_of(node: yaml.Node | None, loc: tuple[Any, ...], key: bool = False) -> int:
    """The 1-based line of the deepest YAML node that pydantic's error `loc` reaches; with
    `key`, of the last key in `loc` rather than its value (a block value starts below it)."""
    if node is None:
        return 1
    line = node.start_mark.line + 1
    for depth, part in enumerate(loc, 1):
        child: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if pair is not None and key and depth == len(loc):
                return pair[0].start_mark.line + 1
            child = pair[1] if pair else None
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            child = node.value[part]
        if child is None:
            continue  # a union tag such as `beanstalk` names no node of its own
        node = child
        line = node.start_mark.line + 1
    return line


def _within(data: object, budget: int) -> bool:
    """Whether `data` holds at most `budget` values, counting each alias's copy; stops
    counting as soon as it is over."""
    stack = [data]
    while stack:
        budget -= 1
        if budget < 0:
            return False
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return True


def _nodes(root: yaml.Node | None) -> Iterator[yaml.Node]:
    """Every node under `root`, in the file's order, each once: an alias may name the node
    it is inside, and a node many aliases name costs nothing more."""
    seen: set[int] = set()
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        if isinstance(node, yaml.MappingNode):
            stack += [part for pair in reversed(node.value) for part in reversed(pair)]
        elif isinstance(node, yaml.SequenceNode):
            stack += reversed(node.value)


def _long_number_line(root: yaml.Node | None) -> int:
    """The 1-based line of the first number too long for int() to read (1 if none)."""
    for node in _nodes(root):
        tag = node.tag if isinstance(node, yaml.ScalarNode) else ""
        if tag.endswith(":int") and len(node.value) > 4000:
            return node.start_mark.line + 1
    return 1


def _duplicate_key(root: yaml.Node | None) -> tuple[str, int] | None:
    """The first key given twice in one mapping, with the line of its second mention."""
    for node in _nodes(root):
        if isinstance(node, yaml.MappingNode):
            keys: set[str] = set()
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value != "<<":
                    if key.value in keys:
                        return key.value, key.start_mark.line + 1
                    keys.add(key.value)
    return None
