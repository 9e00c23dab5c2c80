"""The `Platform` interface every platform client implements, and the plain data it returns."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from threading import Event
from typing import Protocol

# process type → (quantity, size or None to keep the current size)
Targets = Mapping[str, tuple[int, str | None]]


@dataclass(frozen=True)
class Formation:
    type: str
    quantity: int
    size: str


@dataclass(frozen=True)
class Dyno:
    name: str
    type: str
    state: str
    size: str
    since: datetime | None


@dataclass(frozen=True)
class Release:
    version: str  # "v42" on Heroku, the version label on Beanstalk
    description: str
    created_at: datetime | None
    user: str
    id: str = ""  # Heroku's release id (what a rollback names); the label on Beanstalk
    status: str = "succeeded"  # Heroku: pending, succeeded, failed; Beanstalk: PROCESSED, …
    current: bool = False  # the release the app (environment) runs now
    # Heroku: the id of the slug it runs, which a promotion, rollback or config change
    # shares with an earlier release; "" where none is known (Beanstalk).
    slug: str = ""

    @property
    def good(self) -> bool:
        """Whether the release went out and can be gone back to: not failed, pending, or
        expired (Heroku's status for a release whose slug is gone)."""
        return self.status.lower() not in ("failed", "pending", "expired")


@dataclass(frozen=True)
class Build:
    """A Heroku build from source (or a Beanstalk version deploy), as started."""

    id: str
    status: str  # pending, succeeded, failed
    version: str  # the git ref or version label built
    created_at: datetime | None = None  # as listed (Heroku); None when just started
    description: str = ""  # the source's (a commit message), from outside
    user: str = ""  # who started it, from outside
    output_url: str = ""  # where its output streams (Heroku), read without the API key


@dataclass(frozen=True)
class Promotion:
    """A pipeline promotion's result for one downstream app."""

    app: str
    status: str  # pending, succeeded, failed
    error: str | None = None
    promotion: str | None = None  # the pipeline promotion's id: a pending one is followed


class AboutApp(Exception):
    """An error whose words name an app by the platform's own name for it, `app`, written
    as a code span. The client `bot.services` hands out for an app knows the name the user
    typed (its alias in the registry) and has the error say that instead (`name_as`): who
    typed `shop` is not told of `shop-prod`, a Beanstalk environment they may never have
    seen. `own`: the platform's name is what the words are about (no such environment),
    so it stays, and the alias is said beside it."""

    def __init__(self, message: str, *, app: str | None = None, own: bool = False) -> None:
        super().__init__(message)
        self.app = app
        self.own = own
        self._named = False

    def name_as(self, name: str, alias: str) -> None:
        """Say `alias` where the words name `name`, once; an error about another app (the
        other side of a swap) is left as it is."""
        if self._named or self.app != name or alias == name:
            return
        self._named = True
        self.args = (_named(str(self), name, alias, self.own), *self.args[1:])
        fact = getattr(self, "fact", None)
        if isinstance(fact, str):
            self.fact = _named(fact, name, alias, self.own)


def _named(text: str, name: str, alias: str, own: bool) -> str:
    span, said = f"`{name}`", f"`{alias}`"
    if own and span in text:
        head, tail = text.split(span, 1)
        return f"{head}{span} (the registry's name for {said}){_named(tail, name, alias, False)}"
    # Also inside a command to type (`/deploy status shop-prod`), which must name the alias.
    typed = re.compile(rf"(`/deploy [a-z]+ ){re.escape(name)}(?=`)")
    return typed.sub(lambda found: found.group(1) + alias, text.replace(span, said))


class NotSupported(AboutApp):
    """The platform has no such thing (maintenance mode on Beanstalk): say so plainly."""


@dataclass(frozen=True)
class AppStatus:
    app: str
    formation: tuple[Formation, ...]
    dynos: tuple[Dyno, ...]
    release: Release | None
    state: str | None = None  # Beanstalk: Ready, Updating, …
    health: str | None = None  # Beanstalk: Green, Yellow, Red, Grey
    notes: tuple[str, ...] = ()  # health causes, request metrics, scaling limits
    unit: str = "dyno"  # what runs the app: Heroku dynos, Beanstalk instances
    maintenance: bool | None = None  # Heroku's maintenance mode; None: the platform has none
    # Heroku: a newer release than `release` still in its release phase (status pending).
    pending: Release | None = None


@dataclass(frozen=True)
class Traffic:
    """An environment's recent traffic as its platform reports it (Beanstalk)."""

    # Requests in each whole minute, oldest first (CloudWatch), up to the newest reported.
    per_minute: tuple[int, ...]
    latest_seconds: int  # what the `latest_*` figures cover (Beanstalk health: 10 s)
    latest_requests: int
    latest_statuses: dict[str, int]  # "2xx" -> n, over the latest seconds
    latency_ms: dict[str, float]  # "p50", "p95", "p99", ... over the latest seconds
    # Why `per_minute` is missing (CloudWatch failed while health answered); None: it is not.
    per_minute_problem: str | None = None
    # The newest minutes CloudWatch had not reported yet (late): not in `per_minute`.
    unreported_minutes: int = 0
    # Why the `latest_*` figures are missing (basic health reports none); None: they are not.
    latest_problem: str | None = None


@dataclass(frozen=True)
class Settled:
    """How a slow change (a Beanstalk update) ended."""

    ok: bool
    summary: str
    events: tuple[str, ...] = ()
    output: bool = False  # `events` are output lines (a build's, a run's): show them verbatim
    unknown: bool = False  # not followed to its end (the platform could not be read): not ok


@dataclass(frozen=True)
class LogTail:
    """The tail of one Beanstalk instance's logs: the instance, its lines, and the other
    instances whose tails came back with it (those one may ask for next)."""

    instance: str | None
    lines: list[str]
    others: tuple[str, ...] = ()


class PlatformError(AboutApp):
    """A platform call failed; `str(error)` is a plain sentence fit to show in Slack.

    `changed` says whether the platform may have applied the change anyway (a timeout
    after the request was sent), so the reply can tell the user to check. `app`: the
    platform's name for the app the words name (`AboutApp`).
    """

    def __init__(
        self,
        message: str,
        *,
        changed: bool | None = False,
        app: str | None = None,
        own: bool = False,
    ) -> None:
        super().__init__(message, app=app, own=own)
        self.changed = changed
        # What happened, without the advice: a reply that reads the app back gives its own.
        self.fact = message
        # Set by the actions path once an audit row holds this error, so none is added.
        self.audited = False

    @property
    def outcome(self) -> str:
        """The audit outcome: `changed=None` means the request may have landed, so
        "unknown", not "error"."""
        return "unknown" if self.changed is None else "error"


class ReadFailed(PlatformError):
    """The platform failed to answer a read (a 5xx): the message says what could not be
    read; a change that needed the read was not asked for."""


class NoSuchApp(PlatformError):
    """The platform has no app called `app`, or the bot's key cannot see it: `fact` says
    so, and the advice after it says what to do."""

    def __init__(self, app: str, fact: str, advice: str) -> None:
        super().__init__(f"{fact} {advice}", app=app, own=True)
        self.fact = fact


def lost_answer(fact: str, app: str, *, write: bool) -> PlatformError:
    """A call that was sent and whose answer was lost (`fact` says how): a write may have
    been made, so the user is sent to `status` first; a read changed nothing."""
    if not write:
        return PlatformError(f"{fact} Try again in a minute.", app=app)
    error = PlatformError(check_first(fact, app), changed=None, app=app)
    error.fact = fact
    return error


def check_first(fact: str, app: str) -> str:
    """A lost answer's sentences: what happened, and to look at `app` before asking again.
    The actions path says it again with the app's name in the registry, where the platform
    knew only its own (a Beanstalk environment's, a Heroku app's behind an alias)."""
    return f"{fact} Check `/deploy status {app}` before trying again."


class Throttled(PlatformError):
    """The platform refused the call for its rate limit until `until`; nothing was done."""

    def __init__(self, message: str, *, until: datetime) -> None:
        super().__init__(message, changed=False)
        self.until = until


class Platform(Protocol):
    """What the actions path needs from a platform; the same verbs on every platform."""

    unit: str  # what its apps run on, as users call it: "dyno" or "instance"

    def formation(self, app: str) -> tuple[Formation, ...]: ...

    def scale(self, app: str, targets: Targets) -> tuple[Formation, ...]: ...

    def restart(self, app: str, target: str | None) -> None: ...

    def status(self, app: str) -> AppStatus: ...

    def refuse_scale(self, app: str, targets: Targets) -> None:
        """Raise a PlatformError for a `scale` to `targets` the platform would refuse however
        the app stands (a single-instance environment's kill), before a prompt is opened:
        its Confirm could only be refused."""
        ...

    def settles_slowly(self) -> bool:
        """True when changes return at once but take minutes (Beanstalk): follow them up."""
        ...

    def wait_until_settled(
        self, app: str, timeout: float, stopping: Event, alias: str | None = None
    ) -> Settled:
        """Block until `app` is done changing, `timeout` passes, or `stopping` is set. The
        summary names it `alias`, the name its change was asked by, where one is given."""
        ...


def formation_map(formation: tuple[Formation, ...]) -> dict[str, tuple[int, str]]:
    """Formation as the plain mapping the policies work on: type → (quantity, size)."""
    return {f.type: (f.quantity, f.size) for f in formation}


# Here, not in beanstalk.py: the actions path says these without importing boto3.
RESTART_WHOLE = "`{app}` is a Beanstalk environment: restart all of it, without `{target}`."
NO_MAINTENANCE = (
    "`{app}` is a Beanstalk environment, and maintenance mode is not a Beanstalk feature. "
    "Swap its CNAME to a maintenance environment, or scale it, instead."
)
