"""`/deploy status` makes its reads at once: they reach the fake Heroku together (a barrier
in the fake opens only when all have arrived), and every answer, failures included, is
the one the reads made in turn gave. Then the pool itself: errors in the old order, no
thread left behind, no wait for a slow read behind a failed one."""

from __future__ import annotations

import threading
import time

import pytest

from bot.platforms import heroku as heroku_module
from bot.platforms.base import NoSuchApp
from bot.platforms.together import read_together
from tests.conftest import HEROKU_KEY, USER

READS = ("/apps/myapp/formation", "/apps/myapp/dynos", "/apps/myapp/releases", "/apps/myapp")
FORMATION, DYNOS, RELEASES, APP = READS


def in_turn(reads):  # type: ignore[no-untyped-def]
    """How status made its reads before: one after another, stopping at the first error."""
    return [read() for read in reads]


def status_text(driver, heroku, app: str, faults) -> str:  # type: ignore[no-untyped-def]
    heroku._faults.clear()
    for status, path, body in faults:
        heroku.fail_next(status, count=1 if path else 10, path=path, body=body)
    _, url = driver.command(f"status {app}", USER)
    return driver.reply(url)["text"]


def test_the_four_reads_reach_heroku_together(driver, heroku):
    # A status that read in turn would leave its first read waiting here until the timeout.
    gathered = heroku.gather(len(READS), timeout=3)
    _, url = driver.command("status myapp", USER)
    assert "Status of `myapp`: web=1, worker=1" in driver.reply(url)["text"]
    assert not gathered.broken
    assert sorted(r.path for r in heroku.requests) == sorted(READS)


FORBIDDEN = {"id": "forbidden", "message": "You do not have access to the app myapp."}


@pytest.mark.parametrize(
    ("app", "faults", "says"),
    [
        ("nosuchapp", [], "Heroku has no app called `nosuchapp`"),
        ("myapp", [(401, None, None)], "Heroku rejected the bot's API key"),
        *[("myapp", [(500, path, None)], "Heroku's API failed (500)") for path in READS],
        # Several reads failing in different ways: the first in the old order is told.
        (
            "myapp",
            [(403, DYNOS, FORBIDDEN), (500, RELEASES, None), (422, APP, None)],
            "may not do that on `myapp`",
        ),
        ("myapp", [(500, FORMATION, None), (403, APP, FORBIDDEN)], "Heroku's API failed (500)"),
    ],
    ids=["no-such-app", "wrong-key", "formation", "dynos", "releases", "app", "mixed", "mixed-2"],
)
def test_every_answer_is_the_one_reads_in_turn_gave(driver, heroku, monkeypatch, app, faults, says):
    together = status_text(driver, heroku, app, faults)
    monkeypatch.setattr(heroku_module, "read_together", in_turn)
    assert status_text(driver, heroku, app, faults) == together
    assert together.count(says) == 1, together
    assert "Traceback" not in together and "Check `/deploy status" not in together


def test_throttled_reads_say_so_once_and_never_sleep(driver, heroku, monkeypatch):
    import urllib3.util.retry

    sleeps: list[float] = []
    monkeypatch.setattr(urllib3.util.retry.time, "sleep", sleeps.append)
    heroku.fail_next(429, count=100, retry_after=3600)
    _, url = driver.command("status myapp", USER)
    text = driver.reply(url)["text"]
    assert text.count("rate-limiting") == 1 and "allows the next call at" in text
    # The reads were on the wire together; none was retried, and the throttle now stored
    # answers the next status without a call.
    assert sleeps == [] and 1 <= len(heroku.requests) <= len(READS)
    sent = len(heroku.requests)
    _, url = driver.command("status myapp", USER)
    assert "rate-limiting" in driver.reply(url)["text"] and len(heroku.requests) == sent


@pytest.mark.parametrize(
    ("app", "faults", "says"),
    [
        ("nosuchapp", [], "Heroku has no app called `nosuchapp`"),
        ("myapp", [(401, None)], "Heroku rejected the bot's API key"),
        ("myapp", [(429, None)], "rate-limiting"),
    ],
    ids=["no-such-app", "wrong-key", "rate-limited"],
)
def test_an_answer_that_ends_the_status_stops_the_reads_not_sent(
    driver, heroku, monkeypatch, app, faults, says
):
    # The dynos read is answered 503 "try again in a second" (Retry-After, which the client
    # honours); by then the other reads have been told that the app is missing, the key
    # wrong or the account out of calls: asking again would spend the budget for nothing.
    import urllib3.util.retry

    slept: list[float] = []
    real_sleep = time.sleep  # the same function as urllib3's, until patched

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(urllib3.util.retry.time, "sleep", sleep)
    dynos = DYNOS.replace("myapp", app)
    heroku.fail_next(503, count=10, path=dynos, retry_after=1)
    for status, path in faults:
        heroku.fail_next(status, count=10, path=path, retry_after=1 if status == 429 else None)
    _, url = driver.command(f"status {app}", USER)
    text = driver.reply(url)["text"]
    assert text.count(says) == 1 and "Traceback" not in text, text
    reads = [r for r in heroku.requests if r.path.startswith(f"/apps/{app}")]
    # The dynos read went once at most (the others may have been answered before it left),
    # waited once at most (its 503 may have come after their answers), and sent no more.
    assert len(heroku.calls("GET", dynos)) <= 1 and len(reads) <= len(READS)
    assert slept in ([], [1])


def test_a_read_not_sent_when_another_ends_the_call_is_never_sent(heroku):
    platform = heroku_module.HerokuPlatform(HEROKU_KEY, heroku.url)
    answered = threading.Event()

    def first():  # type: ignore[no-untyped-def]
        try:
            return platform.maintenance("nosuchapp")
        finally:
            answered.set()

    def second():  # type: ignore[no-untyped-def]
        assert answered.wait(5)
        return platform.dynos("myapp")

    with pytest.raises(NoSuchApp):
        read_together([first, second])
    assert [r.path for r in heroku.requests] == ["/apps/nosuchapp"]
    assert read_threads() == []


def test_reads_that_time_out_are_answered_once_without_hanging(driver, heroku, monkeypatch):
    monkeypatch.setattr(heroku_module, "READ_TIMEOUT", 0.2)
    heroku.latency = 1.0
    _, url = driver.command("status myapp", USER)
    text = driver.reply(url)["text"]
    assert text.count("did not answer in time") == 1 and "Try again in a minute" in text


# -- the pool -------------------------------------------------------------------------------


class Failed(Exception):
    pass


def read_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("read_")]


def test_results_come_back_in_the_order_asked_and_no_thread_stays():
    release = threading.Barrier(3, timeout=5)  # all three running at once, or it breaks

    def read(value: int):  # type: ignore[no-untyped-def]
        release.wait()
        return value

    assert read_together([lambda: read(1), lambda: read(2), lambda: read(3)]) == [1, 2, 3]
    assert read_threads() == []


def test_the_first_failure_in_order_wins_even_when_a_later_one_came_first():
    later_failed = threading.Event()

    def first():  # type: ignore[no-untyped-def]
        assert later_failed.wait(5)
        raise Failed("first")

    def second():  # type: ignore[no-untyped-def]
        later_failed.set()
        raise Failed("second")

    with pytest.raises(Failed, match="first"):
        read_together([lambda: "fine", first, second])


def test_a_failure_is_raised_once_every_read_has_ended():
    # No read lands after the answer (a straggler would spend the budget unseen); each
    # read's own timeouts bound the wait.
    ended = threading.Event()

    def slow():  # type: ignore[no-untyped-def]
        time.sleep(0.2)
        ended.set()

    def fails():  # type: ignore[no-untyped-def]
        raise Failed("fast")

    with pytest.raises(Failed, match="fast"):
        read_together([fails, slow])
    assert ended.is_set() and read_threads() == []
