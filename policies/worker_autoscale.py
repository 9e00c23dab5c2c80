"""Worker dynos from their job queue: the calculator for process types other than `web`.

The app reports its queues the way HireFire reads them, `GET <app URL>/hirefire/<token>/info`
returning `[{"name": "worker", "value": N}, ...]` (the `hirefire-resource` package for
Python, the gem for Ruby), so apps already instrumented for HireFire work unchanged. The
value is what the app chose for that process type: the job queue latency in seconds
(`target=latency:30s`) or the number of jobs waiting (`target=jobs:50`, per dyno).

One optional extra entry, `<type>_busy` (e.g. `worker_busy`), is the number of jobs
running now. When the app reports it above 0, the type is never scaled down: Heroku stops
a dyno with SIGTERM and 30 s later SIGKILL, and a long job dies with it (a known complaint
about HireFire). Apps that do not report it are scaled down as their queue empties.

Pure: the caller fetches the numbers and acts; nothing here does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from policies.guardrails import within_max_step
from policies.slack_text import code

Kind = Literal["latency", "jobs"]
BUSY_SUFFIX = "_busy"
_EPSILON = 1e-9


@dataclass(frozen=True)
class WorkerTarget:
    kind: Kind
    value: float  # seconds of queue latency, or jobs per dyno

    def describe(self) -> str:
        if self.kind == "latency":
            return f"job queue latency {self.value:g} s"
        return f"{self.value:g} jobs per dyno"


def parse_worker_target(text: str) -> WorkerTarget:
    """`latency:30s` (also `30`, `2m`) or `jobs:50`; a ValueError says what is wrong."""
    kind, _, raw = text.strip().lower().partition(":")
    try:
        if kind == "latency" and raw.endswith("m"):
            value = float(raw.removesuffix("m")) * 60
        elif kind == "latency":
            value = float(raw.removesuffix("s"))
        elif kind == "jobs":
            value = float(raw)
        else:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"target {code(text)}: use latency:30s (job queue latency) or jobs:50 (per dyno)"
        ) from None
    if value <= 0 or not math.isfinite(value):
        raise ValueError(f"target {code(text)}: the value must be more than 0")
    return WorkerTarget(kind, value)  # type: ignore[arg-type]


@dataclass(frozen=True)
class WorkerDecision:
    current: int
    desired: int
    reason: str  # one sentence for the channel

    @property
    def changed(self) -> bool:
        return self.desired != self.current


def busy_jobs(info: Mapping[str, float], process_type: str) -> float | None:
    """Jobs in progress for `process_type`, when the endpoint reports them."""
    return info.get(process_type + BUSY_SUFFIX)


def decide_worker(
    target: WorkerTarget,
    process_type: str,
    current: int,
    low: int,
    high: int,
    info: Mapping[str, float],
    tolerance: float = 0.10,
    max_step: int | None = None,
) -> WorkerDecision:
    """The desired count of `process_type` from the endpoint's `info` (name to value).

    jobs: ceil(waiting / per dyno). latency: the HPA rule, ceil(current x latency /
    target), outside the tolerance band; with nothing running and jobs waiting, one dyno;
    an empty queue (latency 0) asks for `low`. Never below what runs while the endpoint
    reports jobs in progress; always within [low, high]. A type the endpoint does not
    list keeps its count (a typo in the proc's name must not stop every worker).
    """
    value = info.get(process_type)
    if value is None or not _is_count(value):
        # No number is no data, not "no jobs": keep what runs, and say it as an unread
        # queue, so that a type the app never reports is an alert after a while
        # (`is_unread`), not a hold that only `autoscale APP status` shows.
        keep = min(max(current, low), high)
        what = (
            f"the endpoint lists no {process_type}{_near_miss(info, process_type)}"
            if value is None
            else f"the endpoint's {process_type} is {value:g}, not a number of 0 or more"
        )
        return WorkerDecision(
            current, keep, _arrow(f"{_UNREAD}({what})", process_type, current, keep)
        )
    if target.kind == "jobs":
        wanted = _ceil(value / target.value, high)
        shown = f"{value:g} jobs waiting, {target.value:g} per dyno"
    else:
        shown = f"job queue latency {value:g} s against {target.value:g} s"
        ratio = value / target.value
        if value == 0:
            wanted = 0
        elif current == 0:
            wanted = 1
        elif abs(ratio - 1) <= tolerance:
            wanted = current
        else:
            wanted = _ceil(current * ratio, high)
    desired = min(max(wanted, low), high)
    why = ""
    busy = busy_jobs(info, process_type)
    if desired < current and busy is not None and busy != 0:
        # Anything but a clean 0 may be jobs that a scale-down would kill.
        desired, why = (
            current,
            (
                f", but {busy:g} jobs are in progress"
                if _is_count(busy)
                else f", but the endpoint's {process_type}{BUSY_SUFFIX} is {busy:g}, not a count"
            ),
        )
    desired, step = within_max_step(max_step, current, desired)  # the registry's guardrail
    why += step
    return WorkerDecision(current, desired, _arrow(shown + why, process_type, current, desired))


def unread_reason(why: str, process_type: str, current: int) -> str:
    """A held decision's reason when the endpoint gave no numbers (`why`); the alert
    detector knows such decisions by it (`is_unread`)."""
    return f"{_UNREAD}({why}): {process_type} stays at {current}"


def is_unread(reason: str) -> bool:
    return reason.startswith(_UNREAD)


def unread_cause(reason: str) -> tuple[str, str]:
    """An unread reason (`unread_reason`) split into its cause, the same for every type
    read from one endpoint that could not be read, and what it held ("worker stays at 1")."""
    cause, _, held = reason.rpartition(": ")
    return (cause, held) if cause else (reason, "")


_UNREAD = "could not read the job queue "


def _near_miss(info: Mapping[str, float], process_type: str) -> str:
    """The name the endpoint lists for `process_type` in another case (`Worker`), if any:
    names are matched exactly, as Heroku's process types are. Only such a name is shown,
    so nothing else the app wrote reaches the reason."""
    near = sorted(name for name in info if name.casefold() == process_type.casefold())
    if not near:
        return ""
    return f", but {near[0]}: names must match the process type exactly"


def _ceil(wanted: float, high: int) -> int:
    """ceil(wanted), at most `high`: a huge count over a small target is infinity, which
    math.ceil refuses."""
    return math.ceil(min(wanted, high) - _EPSILON)


def _is_count(value: float) -> bool:
    return math.isfinite(value) and value >= 0


def _arrow(what: str, ptype: str, current: int, desired: int) -> str:
    if desired == current:
        return f"{what}: {ptype} stays at {current}"
    return f"{what} → {ptype} {current}→{desired}"
