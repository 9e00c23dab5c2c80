"""The web process's background runner: bounded (a full runner says no at once instead of
queueing), a failing job frees its slot, jobs are registered names with plain data, and a
slash command that finds it full is answered "busy" by the ack, with no work left behind.

In a child process (as under gunicorn): a job never leaves the ack waiting, a dead child
is replaced and the user whose job it was running is told, jobs it had not started run in
the next one, and closing finishes every accepted job first. When the dyno stops
(SIGTERM), jobs still waiting after the grace period are answered "nothing was done"
instead of being cut off unanswered by the kill that follows."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.actions.background import BUSY, LOST, NICE, NOT_RUN, Background
from bot.sandbox.slack_requests import sign, slash_command
from bot.store.db import pool_size
from tests.conftest import ADMIN, SIGNING_SECRET, USER
from tests.webclient import ack_text, patches, settle, wait_for


class Gate:
    """Holds jobs in a child process until opened: a file, as a process-shared lock or
    event would stay taken by a child killed while waiting on it."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def wait(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.path) and time.monotonic() < deadline:
            time.sleep(0.01)

    def set(self) -> None:
        Path(self.path).touch()


def marking_sigterm(ready: Path, signalled: Path) -> Callable[[], None]:
    """A child hook: touches `ready` once the child's SIGTERM handler is in place and
    `signalled` once that handler has run, so a test waits for each instead of sleeping
    (half a second had not been enough for a niced child on a loaded machine)."""

    def hook() -> None:
        handler = signal.getsignal(signal.SIGTERM)

        def marked(signum: int, frame: object) -> None:
            handler(signum, frame)  # type: ignore[operator]
            signalled.touch()

        signal.signal(signal.SIGTERM, marked)
        ready.touch()

    return hook


def test_a_full_pool_refuses_at_once_and_a_failed_job_frees_its_slot(caplog) -> None:
    pool = Background(threads=1, queue=1)
    release = threading.Event()
    done: list[str] = []
    pool.register("hold", release.wait)
    pool.register("note", done.append)
    pool.register("fail", lambda: 1 / 0)
    try:
        assert pool.try_submit("hold", 10)  # running
        assert pool.try_submit("note", "queued")  # waiting
        assert not pool.try_submit("note", "refused")
        assert pool.refused == 1
        release.set()
        pool.close()
    finally:
        release.set()
    assert done == ["queued"]

    pool = Background(threads=1, queue=0, jobs=pool)
    assert pool.try_submit("fail")
    pool.close()  # the failure was logged, and its slot given back before shutdown
    assert "background job failed" in caplog.text
    assert pool._slots.acquire(blocking=False)


def test_jobs_are_registered_names_with_plain_data() -> None:
    pool = Background(threads=1, queue=1)
    pool.register("note", print)
    with pytest.raises(KeyError):
        pool.try_submit("unregistered")
    with pytest.raises(ValueError):
        pool.register("note", repr)  # a second function under a taken name
    with pytest.raises((TypeError, AttributeError, pickle_error())):
        pool.try_submit("note", lambda: None)  # a closure cannot cross to a child process
    assert pool._slots.acquire(blocking=False) and pool._slots.acquire(blocking=False)
    pool.close()


def pickle_error() -> type[Exception]:
    import pickle

    return pickle.PicklingError


def test_a_command_that_finds_the_pool_full_is_answered_busy_and_nothing_runs(
    driver, web, heroku, slack
) -> None:
    services = web.extensions["deploybot"]
    release = threading.Event()
    usual = services.background
    services.background = Background(threads=1, queue=0, jobs=usual)
    services.background.register("hold", release.wait)
    try:
        assert services.background.try_submit("hold", 10)  # the one slot, taken
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
    pool.register(
        "look", lambda: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    )
    assert pool.try_submit("look")
    pool.close()
    assert seen == [min(19, own + NICE)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == own


# ---------------------------------------------------------------------------------------------
# In a child process, as each gunicorn worker runs them.


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def append(path: str, text: str) -> None:
    with open(path, "a") as file:
        file.write(f"{text} {os.getpid()}\n")


def test_jobs_run_in_a_niced_child_process_and_close_finishes_every_accepted_one(
    tmp_path,
) -> None:
    out = tmp_path / "out"
    gate = Gate(tmp_path / "gate")
    pool = Background(threads=2, queue=20)
    pool.register("note", lambda text: (gate.wait(10), append(str(out), text)))
    pool.register("nice", lambda: append(str(out), str(os.getpriority(os.PRIO_PROCESS, 0))))
    pool.start_process()
    try:
        assert pool.child_pid not in (None, os.getpid())
        assert all(pool.try_submit("note", f"job{i}") for i in range(10))
        assert lines(out) == []  # held by the gate: all ten accepted, none finished
    finally:
        gate.set()
        pool.close()  # gunicorn's worker_exit: returns once all ten are done
    done = lines(out)
    assert sorted(line.split()[0] for line in done) == [f"job{i}" for i in range(10)]
    assert {line.split()[1] for line in done} == {str(pool.child_pid)}
    assert not pool.try_submit("note", "after close")

    pool = Background(threads=1, queue=0, jobs=pool)
    pool.start_process()
    assert pool.try_submit("nice")
    pool.close()
    assert lines(out)[-1].split()[0] == str(min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICE))


def test_a_full_child_refuses_at_once_and_a_slot_frees_when_its_job_ends(tmp_path) -> None:
    gate = Gate(tmp_path / "gate")
    pool = Background(threads=1, queue=1)
    pool.register("hold", lambda: gate.wait(10))
    pool.start_process()
    try:
        assert pool.try_submit("hold") and pool.try_submit("hold")
        assert not pool.try_submit("hold")
        assert pool.refused == 1
        gate.set()
        # The slots come back with the child's reports of each job's end, read when a job
        # is next submitted (no thread wakes for them).
        for _ in range(200):
            pool._child.collect()  # type: ignore[union-attr]
            if pool._slots._value == 2:  # type: ignore[attr-defined]
                break
            threading.Event().wait(0.05)
        assert pool.try_submit("hold") and pool.try_submit("hold")
    finally:
        gate.set()
        pool.close()


def test_held_jobs_are_handed_over_on_release_or_at_once_when_the_answer_fails(
    tmp_path,
) -> None:
    out = tmp_path / "out"
    pool = Background(threads=1, queue=4)
    pool.register("note", lambda text: append(str(out), text))
    pool.start_process()
    try:
        with pool.holding() as release:
            assert pool.try_submit("note", "held")
        with pytest.raises(ZeroDivisionError), pool.holding():
            assert pool.try_submit("note", "failed answer")
            1 / 0  # noqa: B018
        release()
        release()  # once only
    finally:
        pool.close()
    assert sorted(line.split()[0] for line in lines(out)) == ["failed", "held"]


def test_a_held_job_the_closing_pool_refuses_is_answered_not_run(tmp_path) -> None:
    answered: list[tuple[str, bool]] = []
    pool = Background(threads=1, queue=4)
    pool.register(
        "note", lambda text: None, lost=lambda text, started: answered.append((text, started))
    )
    pool.start_process()
    with pool.holding() as release:
        assert pool.try_submit("note", "acked as under way")
    pool.close()  # the worker stops before the answer was closed
    release()
    assert answered == [("acked as under way", False)]


@pytest.mark.parametrize("size", [1000, 8192])  # written by the ack itself, by the sender
def test_jobs_the_pipe_has_no_room_for_wait_for_the_sender_and_every_job_runs_once(
    tmp_path, size: int
) -> None:
    out = tmp_path / "out"
    count = 2 * (1 << 20) // size  # twice what the 1 MiB jobs pipe holds
    pool = Background(threads=2, queue=count)
    pool.register("note", lambda text, padding: append(str(out), text))
    pool.start_process()
    child = pool.child_pid
    assert child is not None
    os.kill(child, signal.SIGSTOP)  # the child reads nothing: the pipe fills up
    try:
        submitter = threading.Thread(
            target=lambda: [pool.try_submit("note", f"job{i}", "x" * size) for i in range(count)]
        )
        submitter.start()
        submitter.join(60)
        assert not submitter.is_alive()  # no ack waited for the stopped child
        assert lines(out) == []
    finally:
        os.kill(child, signal.SIGCONT)
        pool.close()
    assert sorted(line.split()[0] for line in lines(out)) == sorted(f"job{i}" for i in range(count))


def test_a_dead_child_is_replaced_its_running_job_answered_lost_and_the_rest_run(
    tmp_path,
) -> None:
    out, lost, started = tmp_path / "out", tmp_path / "lost", tmp_path / "started"
    gate = Gate(tmp_path / "gate")
    pool = Background(threads=1, queue=10)
    pool.register(
        "note",
        lambda text: (append(str(started), text), gate.wait(30), append(str(out), text)),
        lost=lambda text, started: append(str(lost), text),
    )
    pool.start_process()
    first = pool.child_pid
    try:
        assert all(pool.try_submit("note", f"job{i}") for i in range(4))
        # job0 runs (held by the gate), job1..3 wait. Nothing reads the child's reports
        # before it dies: the watcher finds job0's start among its last ones.
        for _ in range(200):
            if lines(started):
                break
            threading.Event().wait(0.05)
        assert first is not None
        os.kill(first, signal.SIGKILL)
        for _ in range(200):
            if pool.child_pid != first and lines(lost):
                break
            threading.Event().wait(0.05)
        assert pool.child_pid != first
        gate.set()
    finally:
        gate.set()
        pool.close()
    assert [line.split()[0] for line in lines(lost)] == ["job0"]  # told, not run again
    assert sorted(line.split()[0] for line in lines(out)) == ["job1", "job2", "job3"]
    assert {line.split()[1] for line in lines(out) + lines(lost)} == {str(pool.child_pid)}


def test_after_sigterm_jobs_waiting_past_the_grace_are_answered_not_run(tmp_path) -> None:
    out, told, started = tmp_path / "out", tmp_path / "told", tmp_path / "started"
    signalled = tmp_path / "signalled"
    gate = Gate(tmp_path / "gate")
    pool = Background(threads=1, queue=10, stop_grace=0.0)
    pool.register(
        "note",
        lambda text: (append(str(started), text), gate.wait(30), append(str(out), text)),
        lost=lambda text, started: append(str(told), f"{text} started={started}"),
    )
    pool.in_child(after_fork=marking_sigterm(tmp_path / "ready", signalled))
    pool.start_process()
    child = pool.child_pid
    try:
        assert all(pool.try_submit("note", f"job{i}") for i in range(5))
        wait_for(lambda: lines(started), timeout=30, poll=0.02)  # job0 runs, held by the gate
        assert child is not None
        os.kill(child, signal.SIGTERM)  # what Heroku sends every process of a stopping dyno
        wait_for(signalled.exists, timeout=30, poll=0.02)  # before job0 ends and job1 starts
        gate.set()
        wait_for(lambda: len(lines(out)) + len(lines(told)) == 5, timeout=10, poll=0.02)
    finally:
        gate.set()
        pool.close()
    assert [line.split()[0] for line in lines(out)] == ["job0"]  # started before: finished
    assert [line.split()[:2] for line in lines(told)] == [
        [f"job{i}", "started=False"] for i in range(1, 5)
    ]


def test_a_child_signalled_alone_exits_and_the_next_one_runs_jobs(tmp_path) -> None:
    out = tmp_path / "out"
    pool = Background(threads=1, queue=10, stop_grace=0.0)
    pool.register("note", lambda text: append(str(out), text))
    pool.start_process()
    first = pool.child_pid
    try:
        assert first is not None
        os.kill(first, signal.SIGTERM)
        wait_for(lambda: pool.child_pid != first, timeout=10, poll=0.02)
        assert pool.child_pid != first  # not a child answering "restarting" for ever
        assert pool.try_submit("note", "after")
    finally:
        pool.close()
    assert [line.split() for line in lines(out)] == [["after", str(pool.child_pid)]]


def test_through_the_web_app_a_command_reaches_the_child_once_its_ack_is_sent(
    driver, web, heroku, slack
) -> None:
    # Written into the child's pipe during the ack, the job woke the child while the ack
    # was still being answered; gunicorn closes the answer after sending it.
    services = web.extensions["deploybot"]
    services.start_background_process()
    try:
        url = slack.new_response_url()
        body = slash_command("status myapp", url, user_id=ADMIN)
        response = driver.client.post(
            "/slack/events", data=body, headers=sign(SIGNING_SECRET, body)
        )
        assert "Working on" in ack_text(response)
        assert services.background._child._pending == {}  # accepted, not yet in the pipe
        response.close()
        assert "Status of `myapp`" in driver.reply(url)["text"]
    finally:
        services.background.close()


def test_through_the_web_app_a_command_whose_process_dies_is_answered_and_the_next_works(
    driver, web, heroku, slack, tmp_path
) -> None:
    services = web.extensions["deploybot"]
    crashed = tmp_path / "crashed"
    run = services.actions.run

    def crash_once(actor, command):  # type: ignore[no-untyped-def]
        # Forked into the child with the rest of the process: the first command kills it.
        if not crashed.exists():
            crashed.touch()
            os._exit(9)
        return run(actor, command)

    services.actions.run = crash_once
    services.start_background_process()
    first = services.background.child_pid
    try:
        response, url = driver.command("scale web=2 myapp", ADMIN)
        assert "Working on" in ack_text(response)
        assert driver.reply(url)["text"] == LOST  # never silence
        assert services.background.child_pid != first
        assert patches(heroku) == []
        response, url = driver.command("scale web=2 myapp", ADMIN)  # the new child serves
        assert "Working on" in ack_text(response)
        assert "web 1 → 2" in driver.reply(url)["text"]
    finally:
        services.background.close()
        services.actions.run = run


@contextlib.contextmanager
def one_held_job(
    web, tmp_path: Path, after_fork: Callable[[], None] | None = None, **options: Any
) -> Iterator[Background]:
    """The web app's jobs on a one-thread child pool whose thread a job holds until the
    block ends; put back as it was after."""
    services = web.extensions["deploybot"]
    gate = Gate(tmp_path / "gate")
    usual = services.background
    services.background = pool = Background(threads=1, jobs=usual, **options)
    pool.register("hold", lambda: gate.wait(30))
    pool.in_child(after_fork=after_fork)
    services.start_background_process()
    try:
        assert pool.try_submit("hold")
        yield pool
    finally:
        gate.set()
        pool.close()
        services.background = usual


def test_through_the_web_app_a_command_the_stopping_dyno_never_started_is_answered(
    driver, web, heroku, slack, tmp_path
) -> None:
    ready, signalled = tmp_path / "ready", tmp_path / "signalled"
    hook = marking_sigterm(ready, signalled)
    with one_held_job(web, tmp_path, after_fork=hook, queue=5, stop_grace=0.0) as pool:
        response, url = driver.command("scale web=2 myapp", ADMIN)
        assert "Working on" in ack_text(response)
        assert pool.child_pid is not None
        wait_for(ready.exists, timeout=30, poll=0.02)  # a SIGTERM now is handled, not fatal
        os.kill(pool.child_pid, signal.SIGTERM)
        wait_for(signalled.exists, timeout=30, poll=0.02)  # before the held job ends
    assert driver.reply(url)["text"] == NOT_RUN
    assert patches(heroku) == []  # and indeed nothing was done


def test_through_the_web_app_a_full_child_answers_busy(
    driver, web, heroku, slack, tmp_path
) -> None:
    with one_held_job(web, tmp_path, queue=0):
        response, url = driver.command("scale web=2 myapp", ADMIN)
        assert ack_text(response) == BUSY
    assert patches(heroku) == [] and slack.responses_for(url) == []


def test_the_worker_and_its_child_share_the_workers_database_connections(web, tmp_path) -> None:
    # DEPLOYBOT_DB_POOL_SIZE is per web worker: the child that runs the jobs takes all but
    # one connection, the worker keeps one (drain claims and flushes, /healthz).
    services = web.extensions["deploybot"]
    if services.db.is_sqlite:
        pytest.skip("SQLite has no connection budget")
    out = tmp_path / "out"
    services.background.register("size", lambda: append(str(out), str(services.db.size())))
    services.start_background_process()
    try:
        assert services.background.try_submit("size")
    finally:
        services.background.close()
    assert [line.split()[0] for line in lines(out)] == [str(pool_size() - 1)]
    assert services.db.size() == 1
    services.db.ping()  # the worker's own connection works
