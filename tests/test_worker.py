"""The worker dyno from the Procfile line: one leader at a time, takeover when it dies,
and its jobs doing their work (expired prompts say so in Slack)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.audit import Actor
from bot.confirmations import Confirmations
from bot.db import Database
from tests.test_gunicorn import procfile_line

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

FAST = {
    "DEPLOYBOT_EXPIRE_SECONDS": "0.5",
    "DEPLOYBOT_LEASE_RETRY_SECONDS": "0.5",
    "DEPLOYBOT_LEASE_CHECK_SECONDS": "0.5",
}


@contextlib.contextmanager
def worker(database_url: str, log_path: Path):
    env = {
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "DATABASE_URL": database_url,
        "PYTHONPATH": str(ROOT),
        **FAST,
    }
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            ["bash", "-c", procfile_line("worker")],
            env=env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=30)


def wait_for(predicate, timeout: float = 30.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError("timed out")


def leads(path: Path) -> bool:
    return "worker is the leader" in path.read_text()


def test_one_leader_and_a_takeover_when_it_dies(database_url, tmp_path):
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    with worker(database_url, first_log) as first:
        wait_for(lambda: leads(first_log))
        with worker(database_url, second_log):
            wait_for(lambda: "waiting for the lease" in second_log.read_text())
            time.sleep(2)
            assert not leads(second_log)  # the lease is held: the second one waits
            os.killpg(first.pid, signal.SIGKILL)  # the leader dies without letting go
            took = wait_for(lambda: leads(second_log))
            assert took < 30
    for path in (first_log, second_log):
        assert "Traceback" not in path.read_text(), path.read_text()


def test_an_unanswered_prompt_expires_and_its_message_says_so(database_url, tmp_path, slack):
    database = Database(database_url)
    url = slack.new_response_url()
    asked = datetime.now(UTC) - timedelta(minutes=11)
    actor = Actor("UADMIN01", channel_id="C1", reply_to=url)
    Confirmations(database).create(
        actor, "myapp", "kill myapp", {"web": [1, "basic"]}, {"web": [0, None]}, asked
    )
    database.dispose()
    with worker(database_url, tmp_path / "w.log"):
        [message] = slack.wait_for_responses(url, n=1, timeout=30)
    assert message["replace_original"] is True
    assert "request `kill myapp` expired at" in message["text"]
