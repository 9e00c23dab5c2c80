"""The web process's background pool: bounded (a full pool says no at once instead of
queueing), a failing job frees its slot, and a slash command that finds it full is
answered "busy" by the ack, with no work left behind."""

from __future__ import annotations

import os
import threading

import pytest

from bot.actions.background import BUSY, NICE, Background
from tests.conftest import ADMIN, USER
from tests.webclient import ack_text, patches, settle


def test_a_full_pool_refuses_at_once_and_a_failed_job_frees_its_slot(caplog) -> None:
    pool = Background(threads=1, queue=1)
    release = threading.Event()
    done: list[str] = []
    try:
        assert pool.try_submit(release.wait, 10)  # running
        assert pool.try_submit(done.append, "queued")  # waiting
        assert not pool.try_submit(done.append, "refused")
        assert pool.refused == 1
        release.set()
        pool.close()
    finally:
        release.set()
    assert done == ["queued"]

    pool = Background(threads=1, queue=0)
    assert pool.try_submit(lambda: 1 / 0)
    pool.close()  # the failure was logged, and its slot given back before shutdown
    assert "background job failed" in caplog.text
    assert pool._slots.acquire(blocking=False)


def test_a_command_that_finds_the_pool_full_is_answered_busy_and_nothing_runs(
    driver, web, heroku, slack
) -> None:
    services = web.extensions["deploybot"]
    release = threading.Event()
    usual, services.background = services.background, Background(threads=1, queue=0)
    try:
        assert services.background.try_submit(release.wait, 10)  # the one slot, taken
        response, url = driver.command("scale web=2 myapp", ADMIN)
        assert ack_text(response) == BUSY
        response, _ = driver.command("help", USER)  # no background work: answered as ever
        assert "scale" in ack_text(response)
    finally:
        release.set()
        services.background.close()
        services.background = usual
    settle()
    assert patches(heroku) == [] and slack.responses_for(url) == []
    response, url = driver.command("scale web=2 myapp", ADMIN)  # room again
    assert "Working on" in ack_text(response)
    assert "web" in driver.reply(url)["text"]


def test_pool_threads_run_at_a_lower_cpu_priority_than_the_request_threads() -> None:
    # Acks win the CPU from background jobs: the pool's threads are niced, the caller not.
    if not hasattr(os, "getpriority"):
        pytest.skip("no per-thread nice on this platform")
    own = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen: list[int] = []
    pool = Background(threads=1, queue=0)
    assert pool.try_submit(
        lambda: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    )
    pool.close()
    assert seen == [min(19, own + NICE)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own
