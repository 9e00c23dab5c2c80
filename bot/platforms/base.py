"""The `Platform` interface every platform client implements, and the plain data it returns."""

from __future__ import annotations

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


@dataclass(frozen=True)
class Traffic:
    """An environment's recent traffic as its platform reports it (Beanstalk)."""

    per_minute: tuple[int, ...]  # requests in each whole minute, oldest first (CloudWatch)
    latest_seconds: int  # what the `latest_*` figures cover (Beanstalk health: 10 s)
    latest_requests: int
    latest_statuses: dict[str, int]  # "2xx" -> n, over the latest seconds
    latency_ms: dict[str, float]  # "p50", "p95", "p99", ... over the latest seconds
    # Why `per_minute` is missing (CloudWatch failed while health answered); None: it is not.
    per_minute_problem: str | None = None


@dataclass(frozen=True)
class Settled:
    """How a slow change (a Beanstalk update) ended."""

    ok: bool
    summary: str
    events: tuple[str, ...] = ()


class PlatformError(Exception):
    """A platform call failed; `str(error)` is a plain sentence fit to show in Slack.

    `changed` says whether the platform may have applied the change anyway (a timeout
    after the request was sent), so the reply can tell the user to check.
    """

    def __init__(self, message: str, *, changed: bool | None = False) -> None:
        super().__init__(message)
        self.changed = changed

    @property
    def outcome(self) -> str:
        """The audit outcome: `changed=None` means the request may have landed, so
        "unknown", not "error"."""
        return "unknown" if self.changed is None else "error"


class Platform(Protocol):
    """What the actions path needs from a platform; the same verbs on every platform."""

    unit: str  # what its apps run on, as users call it: "dyno" or "instance"

    def formation(self, app: str) -> tuple[Formation, ...]: ...

    def scale(self, app: str, targets: Targets) -> tuple[Formation, ...]: ...

    def restart(self, app: str, target: str | None) -> None: ...

    def status(self, app: str) -> AppStatus: ...

    def settles_slowly(self) -> bool:
        """True when changes return at once but take minutes (Beanstalk): follow them up."""
        ...

    def wait_until_settled(self, app: str, timeout: float, stopping: Event) -> Settled:
        """Block until `app` is done changing, `timeout` passes, or `stopping` is set."""
        ...


def formation_map(formation: tuple[Formation, ...]) -> dict[str, tuple[int, str]]:
    """Formation as the plain mapping the policies work on: type → (quantity, size)."""
    return {f.type: (f.quantity, f.size) for f in formation}
