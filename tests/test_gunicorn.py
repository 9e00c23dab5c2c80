"""The web dyno as Heroku starts it: the Procfile's web line under gunicorn, driven over HTTP."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from benchmarks import procfile
from bot.sandbox.fakes.dyno import FakeEndpoints, web_dyno_env
from bot.sandbox.slack_requests import button_click, sign, slash_command
from bot.store.db import Database
from bot.store.drains import Drains
from handlers.render import CONFIRM_ACTION
from tests.conftest import ADMIN, HEROKU_KEY, SIGNING_SECRET
from tests.webclient import button

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dyno_env(database_url: str, heroku, slack, port: int) -> dict[str, str]:
    """Only the environment contract, as a Heroku dyno would have it."""
    contract = web_dyno_env(
        database_url=database_url,
        fakes=FakeEndpoints.of(heroku, slack),
        heroku_key=HEROKU_KEY,
        signing_secret=SIGNING_SECRET,
        admin=ADMIN,
    )
    return {
        **contract,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "PORT": str(port),
    }


@contextlib.contextmanager
def web_dyno(database_url: str, heroku, slack, tmp_path, release: bool) -> Iterator[str]:
    port = free_port()
    env = dyno_env(database_url, heroku, slack, port)
    if release:  # the release phase migrates, as on Heroku
        subprocess.run(["bash", "-c", procfile.line("release")], env=env, cwd=ROOT, check=True)
    log = open(tmp_path / "gunicorn.log", "w+")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        ["bash", "-c", procfile.line("web")],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass  # not listening yet, or still booting its workers
            if process.poll() is not None:
                break
            time.sleep(0.1)
        else:
            pytest.fail("gunicorn did not become healthy")
        if process.poll() is not None:
            log.seek(0)
            pytest.fail(f"gunicorn exited:\n{log.read()}")
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        log.seek(0)
        output = log.read()
        log.close()
        assert "Traceback" not in output, output
        assert HEROKU_KEY not in output and SIGNING_SECRET not in output


def post(base: str, body: str) -> requests.Response:
    return requests.post(f"{base}/slack/events", data=body, headers=sign(SIGNING_SECRET, body))


def test_on_an_empty_sqlite_file(heroku, slack, tmp_path):
    database_url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    with web_dyno(database_url, heroku, slack, tmp_path, release=False) as base:
        scale_and_kill(base, heroku, slack)


def test_after_the_release_phase(database_url, heroku, slack, tmp_path):
    with web_dyno(database_url, heroku, slack, tmp_path, release=True) as base:
        scale_and_kill(base, heroku, slack)


def scale_and_kill(web_dyno: str, heroku, slack) -> None:
    url = slack.new_response_url()
    ack = post(web_dyno, slash_command("scale web=2 myapp", url, user_id=ADMIN))
    assert ack.status_code == 200 and "Working on" in ack.json()["text"]
    [reply] = slack.wait_for_responses(url, n=1, timeout=15)
    assert reply["response_type"] == "in_channel" and "web 1 → 2" in reply["text"]
    assert [r.json for r in heroku.requests if r.method == "PATCH"] == [
        {"updates": [{"type": "web", "quantity": 2}]}
    ]

    url = slack.new_response_url()
    assert post(web_dyno, slash_command("kill myapp", url, user_id=ADMIN)).status_code == 200
    [prompt] = slack.wait_for_responses(url, n=1, timeout=15)
    value = button(prompt, CONFIRM_ACTION)["value"]
    assert len([r for r in heroku.requests if r.method == "PATCH"]) == 1
    click_urls = [slack.new_response_url() for _ in range(2)]
    for click_url in click_urls:  # a double click lands on whichever worker: still one kill
        assert post(web_dyno, button_click(CONFIRM_ACTION, value, click_url, user_id=ADMIN)).ok
    replies = [slack.wait_for_responses(u, n=1, timeout=15)[0] for u in click_urls]
    assert sum("killed `myapp`" in r["text"] for r in replies) == 1
    assert len([r for r in heroku.requests if r.method == "PATCH"]) == 2
    assert heroku.formation("myapp")["web"][0] == 0
    assert heroku.violations == []

    bad = post(web_dyno, slash_command("scale web=lots myapp", url, user_id=ADMIN))
    assert bad.status_code == 200 and "`web=lots`" in bad.json()["text"]
    forged = requests.post(
        f"{web_dyno}/slack/events",
        data=slash_command("kill myapp", url, user_id=ADMIN),
        headers=sign("forged", "x"),
    )
    assert forged.status_code == 401


def test_the_web_process_imports_neither_boto3_nor_alembic() -> None:
    # boto3 costs each web worker about 24 MB and alembic 0.3 s of start-up; the web process
    # loads them only when a Beanstalk app is used or a SQLite file must be migrated.
    code = "import sys, bot.web.app; print(sorted({'boto3', 'botocore', 'alembic'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_building_the_app_starts_no_thread(config) -> None:
    # gunicorn preloads the app in the master and forks the workers from it: a thread
    # started while building it would exist only in the master, never in a worker.
    from bot.web.app import create_app

    before = {thread.ident for thread in threading.enumerate()}
    create_app(config)
    started = [t.name for t in threading.enumerate() if t.ident not in before]
    assert started == []


def test_a_flusher_made_before_the_fork_is_waited_for_in_the_worker() -> None:
    # With preload_app the master builds the Flusher and a worker starts it: stop() must
    # still see its thread alive and wait for the flush it is in, or the worker exits
    # with the last windows unsaved (a Thread object made before a fork is not).
    from bot.metrics.aggregate import Aggregator
    from bot.web.log_drain import Flusher

    class SlowStore:
        def save(self, windows) -> int:  # type: ignore[no-untyped-def]
            time.sleep(0.2)
            return 0

    flusher = Flusher(Aggregator(), SlowStore(), interval=0.01)  # type: ignore[arg-type]
    pid = os.fork()
    if pid == 0:  # the worker
        try:
            flusher.start()
            time.sleep(0.05)  # the thread is inside a slow save now
            alive = flusher._thread is not None and flusher._thread.is_alive()
            flusher.stop()
            os._exit(0 if alive else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_stopping_the_dyno_answers_every_command_its_background_processes_accepted(
    heroku, slack, tmp_path
):
    # Each worker's jobs run in its child process; on SIGTERM (a dyno restart) gunicorn's
    # worker_exit has the child finish every accepted job before the worker exits.
    heroku.latency = 1.0  # a status reads at once: about 1 s a job, two at a time per worker
    database_url = f"sqlite:///{tmp_path / 'stop.sqlite3'}"
    urls = [slack.new_response_url() for _ in range(8)]
    with web_dyno(database_url, heroku, slack, tmp_path, release=False) as base:
        for url in urls:
            ack = post(base, slash_command("status myapp", url, user_id=ADMIN))
            assert ack.status_code == 200 and "Working on" in ack.json()["text"]
        unanswered = [url for url in urls if not slack.responses_for(url)]
        assert unanswered  # still working when the stop comes
    # The master has exited, so its workers (which waited for their children) have too.
    assert all("Status of `myapp`" in slack.responses_for(u)[0].payload["text"] for u in urls)


def test_the_master_outlasts_the_background_processes_grace_within_herokus_30_seconds():
    # At 20 s, the child's own grace, the master killed its workers and exited while their
    # children were still answering "nothing was done": a dyno's answers went with it.
    from bot.actions.background import STOP_GRACE
    from bot.web import gunicorn_conf

    assert STOP_GRACE + 5 <= gunicorn_conf.graceful_timeout < 30


def _start_on(database_url: str, revision: str | None, monkeypatch, caplog) -> str:
    """gunicorn's on_starting on a PostgreSQL database at `revision`; what it logged."""
    import logging

    from bot.web import gunicorn_conf
    from tests.test_worker_faults import _set_revision

    if not database_url.startswith("postgresql"):
        pytest.skip("the web process migrates a SQLite file itself")
    _set_revision(database_url, revision)
    monkeypatch.setenv("DATABASE_URL", database_url)
    with caplog.at_level(logging.INFO):
        gunicorn_conf.on_starting(None)
    return caplog.text


def test_a_web_dyno_on_a_database_behind_its_release_says_to_migrate(
    database_url, monkeypatch, caplog
):
    # The release phase did not run (a fresh database promoted, a `pg:reset`): the web dyno
    # had started in silence, and every command failed into a ProgrammingError traceback.
    said = _start_on(database_url, None, monkeypatch, caplog)
    assert "behind this release" in said and "python -m bot migrate" in said


def test_a_web_dyno_after_a_rollback_says_it_runs_on_the_newer_schema(
    database_url, monkeypatch, caplog
):
    _start_on(database_url, "9999", monkeypatch, caplog)
    [newer] = [r for r in caplog.records if "newer than this release" in r.getMessage()]
    assert newer.revision == "9999"  # type: ignore[attr-defined]


def test_a_web_dyno_on_another_apps_database_does_not_start(database_url, monkeypatch, caplog):
    # DATABASE_URL naming another app's Alembic database: the bot would write its audit
    # trail and settings into it. Exit code 3 stops gunicorn (and shows the dyno crashed).
    with pytest.raises(SystemExit) as stopped:
        _start_on(database_url, "ae1027a6acf", monkeypatch, caplog)
    assert stopped.value.code == 3
    assert "ae1027a6acf" in caplog.text and "DATABASE_URL" in caplog.text


def test_a_web_dyno_starts_while_the_database_is_unreachable(monkeypatch, caplog):
    # A database restarting as the dyno boots: the web dyno starts (its /healthz says 503
    # until the database is back) rather than crash-looping in a traceback.
    import logging

    from bot.web import gunicorn_conf

    monkeypatch.setenv("DATABASE_URL", f"postgres://u:pw@127.0.0.1:{free_port()}/db")
    with caplog.at_level(logging.INFO):
        gunicorn_conf.on_starting(None)
    assert "database unreachable" in caplog.text


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("WEB_CONCURRENCY", "0"),
        ("WEB_CONCURRENCY", "-1"),
        ("GUNICORN_THREADS", "0"),
        ("GUNICORN_THREADS", "four"),
    ],
)
def test_a_worker_or_thread_count_that_is_no_count_stops_the_web_dyno_in_a_line(name, value):
    # WEB_CONCURRENCY=0 had started a gunicorn master with no worker: listening, answering
    # nothing, every Slack command timing out (H12) with no line saying why; a misspelt
    # GUNICORN_THREADS ended in a traceback. (A WEB_CONCURRENCY that is no number at all
    # stops gunicorn itself, which reads it before this file.)
    env = {**os.environ, "PYTHONPATH": str(ROOT), name: value}
    out = subprocess.run(
        [sys.executable, "-c", "import bot.web.gunicorn_conf"],
        env=env,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert out.returncode != 0
    assert "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip().count("\n") == 0 and name in out.stderr, out.stderr


@pytest.mark.parametrize("value", ["two", "'2'", "", " 3 ", "4", "0"])
def test_check_config_refuses_a_web_concurrency_whenever_gunicorn_itself_would(value):
    # gunicorn reads WEB_CONCURRENCY as it is imported, before the config file: the release
    # phase and check-config must refuse every value that stops it there, in a sentence.
    from bot.config import setting_problems

    env = {**os.environ, "PYTHONPATH": str(ROOT), "WEB_CONCURRENCY": value}
    out = subprocess.run(
        [sys.executable, "-c", "import gunicorn.config"], env=env, capture_output=True,
        text=True,
    )  # fmt: skip
    gunicorn_stops = "ValueError" in out.stderr
    named = [p for p in setting_problems({"WEB_CONCURRENCY": value}) if "WEB_CONCURRENCY" in p]
    assert gunicorn_stops == any("gunicorn reads it" in p for p in named), (out.stderr, named)
    assert gunicorn_stops or out.returncode == 0


@pytest.mark.parametrize(("port", "bind"), [("", "0.0.0.0:5000"), ('"5001"', "0.0.0.0:5001")])
def test_the_port_is_read_as_the_app_reads_it(port, bind):
    # gunicorn had bound `0.0.0.0:` (empty) and `0.0.0.0:"5001"` (pasted in quotes) and
    # stopped with "Error: '' is not a valid port number.", where the app reads 5000 and 5001.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PORT": port}
    code = "import bot.web.gunicorn_conf as g; print(g.bind)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == bind, out.stderr


def test_a_port_that_is_no_port_stops_the_web_dyno_in_a_line_naming_it():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PORT": "http"}
    out = subprocess.run(
        [sys.executable, "-c", "import bot.web.gunicorn_conf"], env=env, capture_output=True,
        text=True,
    )  # fmt: skip
    assert out.returncode != 0 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.strip() == "deploybot: PORT must be a TCP port number, not 'http'."


@pytest.mark.parametrize(("workers", "threads", "read"), [(" 3 ", "2 ", "3 2"), ("3", "", "3 4")])
def test_worker_and_thread_counts_pasted_with_spaces_or_left_empty_are_read(workers, threads, read):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "WEB_CONCURRENCY": workers}
    env["GUNICORN_THREADS"] = threads
    code = "import bot.web.gunicorn_conf as g; print(g.workers, g.threads)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == read, out.stderr


def _raw_post(base: str, path: str, chunks: bytes) -> bytes:
    """POST `chunks` as the body of a chunked request, framing and all, on a raw socket:
    no client library sends a body whose chunk framing is broken."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n\r\n".encode()
            + chunks
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.split(b"\r\n", 1)[0]


@pytest.mark.parametrize("path", ["/slack/events", "/webhooks/heroku", "/drain/"])
def test_a_chunked_body_with_broken_framing_is_a_400_not_a_500(heroku, slack, tmp_path, path):
    # gunicorn raised InvalidChunkSize out of the app's read of the body: a 500 and a
    # "request failed" log line, for what is the client's mistake.
    database_url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"
    with web_dyno(database_url, heroku, slack, tmp_path, release=False) as base:
        if path == "/drain/":  # a known token: an unknown one is a 403 before any read
            db = Database(database_url)
            try:
                path += Drains(db).get_or_create("myapp", base, ADMIN, datetime.now(UTC)).token
            finally:
                db.dispose()
        for broken in (b"zz\r\nhello\r\n0\r\n\r\n", b"5\r\nhelloXX0\r\n\r\n"):
            status = _raw_post(base, path, broken)
            assert status.startswith(b"HTTP/1.1 400"), (broken, status)
