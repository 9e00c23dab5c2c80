"""The worker's one backoff from AWS's Throttling, per AWS profile and region: both of its
Beanstalk health reads (the sampler's every 10 s, the detectors' every 60 s) ask it before
calling and tell it how AWS answered.

AWS throttles per account and region: after a throttle, that account's environments are
left alone for a while (20 s, doubling to 5 minutes), where each reader asked again on its
own clock, keeping the throttle on for the account's other calls (a person's scale or
status); a throttle that lasts is said by `trouble`, which the heartbeat stores for
`/deploy about`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

THROTTLED_FIRST = timedelta(seconds=20)  # an account's first wait after AWS throttles it
THROTTLED_MOST = timedelta(minutes=5)  # its longest, doubled up to after each throttle
THROTTLED_SAID_AFTER = timedelta(minutes=5)  # a throttle this long is said in `about`

Account = tuple[str | None, str | None]  # an app's AWS profile and region


@dataclass(frozen=True)
class _Backoff:
    since: datetime  # the first throttle of this spell
    wait: timedelta
    until: datetime  # no call on the account before this


class AwsBackoff:
    """Shared by the worker's jobs, which run on the scheduler's threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._throttled: dict[Account, _Backoff] = {}

    def waiting(self, account: Account, now: datetime) -> bool:
        """Whether `account` is not to be called at `now`."""
        with self._lock:
            backoff = self._throttled.get(account)
        return backoff is not None and now < backoff.until

    def throttled(self, account: Account, now: datetime) -> timedelta:
        """AWS throttled a call on `account`: how long it is now left alone."""
        with self._lock:
            backoff = self._throttled.get(account)
            if backoff is not None and now < backoff.until:
                return backoff.until - now  # another reader's call, in flight meanwhile
            wait = THROTTLED_FIRST if backoff is None else min(2 * backoff.wait, THROTTLED_MOST)
            since = now if backoff is None else backoff.since
            self._throttled[account] = _Backoff(since, wait, now + wait)
            return wait

    def answered(self, account: Account) -> None:
        """AWS answered a call on `account`: it is not throttled now."""
        with self._lock:
            self._throttled.pop(account, None)

    def trouble(self, now: datetime) -> str | None:
        """A sentence for `/deploy about` while AWS has throttled an account's health reads
        for `THROTTLED_SAID_AFTER` or more; None otherwise."""
        with self._lock:
            spells = list(self._throttled.items())
        long = sorted(
            ((profile or "", region or "", backoff.since)
             for (profile, region), backoff in spells
             if now - backoff.since >= THROTTLED_SAID_AFTER),
            key=lambda found: found[2],
        )  # fmt: skip
        if not long:
            return None
        where = ", ".join(
            f"profile `{profile}` in {region}" if profile else f"default credentials in {region}"
            for profile, region, _ in long
        )
        return (
            f"beanstalk health throttled by AWS since {long[0][2]:%H:%M:%S} UTC ({where}): "
            f"asked every {int(THROTTLED_MOST.total_seconds() // 60)} min at most until it passes"
        )
