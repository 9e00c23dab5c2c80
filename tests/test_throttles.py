"""The shared Heroku throttle row is read at most once a second and written at most once
every few seconds per process, except near the floor and after a 429, so a burst of
commands does not queue on one row; another dyno's 429 still holds within that second."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from bot.store.throttles import LOW_REMAINING, READ_EVERY, WRITE_EVERY, Throttles

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
ACCOUNT = "HEROKU_API_KEY"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_remaining_is_stored_every_few_seconds_and_every_time_near_the_floor(database):
    clock = Clock()
    throttles = Throttles(database, clock)
    throttles.observe(ACCOUNT, 4000, NOW)
    throttles.observe(ACCOUNT, 3999, NOW)  # within WRITE_EVERY: not stored
    assert throttles.get(ACCOUNT).remaining == 4000
    clock.now += WRITE_EVERY
    throttles.observe(ACCOUNT, 3998, NOW)
    assert throttles.get(ACCOUNT).remaining == 3998
    throttles.observe(ACCOUNT, LOW_REMAINING - 1, NOW)
    throttles.observe(ACCOUNT, LOW_REMAINING - 2, NOW)  # near the floor: each one stored
    assert throttles.get(ACCOUNT).remaining == LOW_REMAINING - 2


def test_a_429_holds_here_at_once_and_on_another_dyno_within_a_second(database):
    clock = Clock()
    here, there = Throttles(database, clock), Throttles(database, clock)
    assert here.until(ACCOUNT, NOW) is None and there.until(ACCOUNT, NOW) is None
    until = NOW + timedelta(minutes=10)
    here.throttle(ACCOUNT, until, NOW)
    assert here.until(ACCOUNT, NOW) == until  # its own 429: at once
    assert there.until(ACCOUNT, NOW) is None  # the other dyno trusts its read a moment
    clock.now += READ_EVERY
    assert there.until(ACCOUNT, NOW) == until
    # A shorter 429 seen elsewhere does not shorten the stored one.
    there.throttle(ACCOUNT, NOW + timedelta(minutes=1), NOW)
    assert there.get(ACCOUNT).throttled_until == until


def test_a_shorter_429_stored_after_a_longer_one_it_did_not_see_keeps_the_longer(
    database, monkeypatch
):
    # Two threads (a status's reads) or two dynos get 429s at once: each reads the row,
    # then writes. The one that read before the other's longer time was stored must not
    # overwrite it with its shorter one.
    here, there = Throttles(database), Throttles(database)
    longer, shorter = NOW + timedelta(minutes=10), NOW + timedelta(minutes=1)
    here.throttle(ACCOUNT, longer, NOW)
    monkeypatch.setattr(there, "get", lambda account: None)  # its read came before that write
    there.throttle(ACCOUNT, shorter, NOW)
    assert here.get(ACCOUNT).throttled_until == longer
    # Once the longer one has passed, a new 429 is stored as before.
    later = NOW + timedelta(minutes=20)
    monkeypatch.undo()
    there.throttle(ACCOUNT, later + timedelta(minutes=1), later)
    assert here.get(ACCOUNT).throttled_until == later + timedelta(minutes=1)


def test_threads_asking_together_read_the_row_once(database):
    """A Home page's formation reads run 8 at a time: each asked `until` at once, and each
    read the row before any had cached it."""
    throttles = Throttles(database, Clock())
    start, reads, real_get = threading.Barrier(8, timeout=10), [], throttles.get

    def counted_get(account: str):
        reads.append(account)
        time.sleep(0.05)  # a database round trip, long enough for the others to arrive
        return real_get(account)

    throttles.get = counted_get  # type: ignore[method-assign]

    def ask() -> None:
        start.wait()
        throttles.until(ACCOUNT, NOW)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert reads == [ACCOUNT]
