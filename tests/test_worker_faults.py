"""The worker's jobs under faults, through the real scheduler: a job that keeps failing or
hangs leaves the others on their clock and shows in `/deploy about` and `/healthz?deep=1`;
connections PostgreSQL drops mid-run are replaced and the lease taken again."""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from bot.logs import LogfmtFormatter
from bot.store.autoscale_settings import AutoscaleStore
from bot.store.db import Database, normalize_url
from bot.store.heartbeats import Beat, Heartbeats
from bot.worker.main import Worker
from tests.conftest import USER
from tests.test_worker import slow_traffic
from tests.webclient import wait_for

FAST = {
    "DEPLOYBOT_HEARTBEAT_SECONDS": "0.2",
    "DEPLOYBOT_COMPACT_SECONDS": "0.2",
    "DEPLOYBOT_BEANSTALK_SECONDS": "0.2",
    "DEPLOYBOT_LEASE_CHECK_SECONDS": "0.2",
    "DEPLOYBOT_LEASE_RETRY_SECONDS": "0.2",
}
SECRET = "xoxb-1111-2222-abcdefSECRET"
_NO_BEAT = Beat("", False, None, datetime.min.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC))


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def worker(config, fast) -> Iterator[Worker]:
    made = Worker(config)
    yield made
    made.stopping.set()
    made.db.dispose()


class _Broken:
    """Metrics whose compaction fails every time, with a secret in its message."""

    def compact(self, _now: int) -> dict[str, int]:
        raise RuntimeError(f"compaction broke near {SECRET}")


class _Stuck:
    """A Beanstalk sampler whose call never answers (until the test lets it go)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def poll(self, now: datetime | None = None) -> int:
        self.entered.set()
        self.release.wait(60)
        return 0

    def trouble(self, now: datetime) -> str | None:
        return None


def test_a_failing_job_and_a_hung_one_show_while_the_others_keep_time(worker, driver, caplog):
    worker.metrics = _Broken()  # type: ignore[assignment]
    stuck = _Stuck()
    worker._sampler = stuck  # type: ignore[assignment]
    beats = Heartbeats(worker.db)
    scheduler = worker.scheduler()
    with caplog.at_level(logging.INFO):
        scheduler.start()
        try:
            assert stuck.entered.wait(10)
            wait_for(lambda: beats.latest(leader_only=False) is not None)
            first = beats.latest(leader_only=False).ticked_at
            # The other jobs keep their clock: the heartbeat goes on while compaction fails
            # and the sampler hangs.
            wait_for(
                lambda: beats.latest(leader_only=False).ticked_at > first + timedelta(seconds=0.5)
            )
            wait_for(lambda: "compact" in (beats.latest(leader_only=False).trouble or ""))
            # Ten minutes on, on the worker's clock, the sampler is still in its call.
            later = datetime.now(UTC) + timedelta(minutes=10)
            worker.jobs.now = lambda: later
            wait_for(lambda: "beanstalk" in (beats.latest(leader_only=False).trouble or ""))
        finally:
            stuck.release.set()
            scheduler.shutdown(wait=True)
    trouble = beats.latest(leader_only=False).trouble
    assert "compact failing since" in trouble and "RuntimeError" in trouble
    assert "beanstalk running for 10 min" in trouble
    # The heartbeat carried leader=False (no lease here): mark it the leader's for the web.
    Heartbeats(worker.db).beat(worker.name, True, datetime.now(UTC), None, worker.started_at,
                               trouble)  # fmt: skip
    _, url = driver.command("about", USER)
    text = driver.reply(url)["text"]
    [line] = [line for line in text.splitlines() if "Jobs in trouble" in line]
    assert line.startswith(":warning: Jobs in trouble: ")
    assert "compact failing since" in line and "beanstalk running for 10 min" in line
    deep = driver.client.get("/healthz?deep=1")
    assert deep.status_code == 503 and deep.json["worker"]["ok"] is False
    # Which job and which error are for people (`/deploy about`, above), not for anyone who
    # can reach the URL: it had shown "compact failing since … RuntimeError".
    assert deep.json["worker"]["trouble"] == (
        "A worker job is failing or hung: /deploy about says which."
    )
    assert "compact" not in deep.get_data(as_text=True)
    failed = [r for r in caplog.records if r.getMessage() == "job failed"]
    assert failed and {r.job for r in failed} == {"compact"}
    logged = "\n".join(LogfmtFormatter().format(r) for r in caplog.records)
    assert SECRET not in logged


def test_one_failed_run_is_no_trouble_and_a_good_run_clears_it(caplog):
    from bot.worker.jobs import JobWatch

    at = datetime(2026, 12, 2, 12, 0, 5, tzinfo=UTC)
    watch = JobWatch(now=lambda: at)
    outcomes = [True, True, False, True]  # raises?

    def job() -> None:
        if outcomes.pop(0):
            raise OSError("connection reset")

    run = watch.wrap("reconcile", job, 60)
    run()
    assert watch.trouble() is None  # a database restart: gone by the next run
    run()
    assert watch.trouble() == "reconcile failing since 12:00:05 UTC (2 runs in a row, OSError)"
    run()
    assert watch.trouble() is None
    run()
    assert watch.trouble() is None


# Not marked postgres as a whole: `database_url`'s PostgreSQL run carries the mark, and
# CI fails on a marked test's skip, which the SQLite run is.
def test_connections_dropped_mid_run_are_replaced_and_the_lease_taken_again(
    config, database_url, fast, caplog
):
    """PostgreSQL ends every connection of the worker (a failover, `pg_terminate_backend`):
    the leader sees its lease gone, takes it again, and its jobs go on on fresh connections.
    Only this test's own connections are ended: they carry an application_name of their own."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's sessions")
    name = f"faults-{secrets.token_hex(4)}"
    worker = Worker(replace(config, database_url=f"{database_url}&application_name={name}"))
    beats_db = Database(database_url)
    beats = Heartbeats(beats_db)
    admin = create_engine(normalize_url(database_url))
    runner = threading.Thread(target=worker.run)
    with caplog.at_level(logging.INFO):
        runner.start()
        try:
            wait_for(lambda: (beats.latest() or _NO_BEAT).worker == worker.name)
            with admin.begin() as connection:
                ended = connection.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                ).scalar()
            assert ended >= 2  # the lease's session and the pool's
            cut = datetime.now(UTC)
            wait_for(lambda: "worker lost the lease" in caplog.text)
            # Between losing the lease and taking it again no leader beats: latest() is None.
            wait_for(lambda: (beats.latest() or _NO_BEAT).ticked_at > cut + timedelta(seconds=1))
        finally:
            worker.stopping.set()
            runner.join(timeout=30)
            admin.dispose()
    try:
        assert not runner.is_alive()
        leading = [r for r in caplog.records if r.getMessage() == "worker is the leader"]
        assert len(leading) == 2
        assert beats.latest().leader and beats.latest().trouble is None
    finally:
        beats_db.dispose()


class _Lease:
    """Held, then lost with its session (a database failover), then held again."""

    def __init__(self) -> None:
        self.checks = [False]
        self.held = False
        self.acquired = 0

    def try_acquire(self) -> bool:
        self.held, self.acquired = True, self.acquired + 1
        return True

    def still_held(self) -> bool:
        self.held = self.checks.pop(0) if self.checks else True
        return self.held

    def release(self) -> None:
        self.held = False


def test_a_hung_job_does_not_keep_the_worker_from_leading_again(worker, monkeypatch):
    """The lease goes with a failover while a job sits in a call that never answers: the
    worker had waited for that job before queueing for the lease again, so with one worker
    dyno nothing ran (no autoscaling, no alerts) until someone restarted it."""
    monkeypatch.setattr("bot.worker.main.JOBS_STOP_SECONDS", 0.5)
    stuck = _Stuck()
    worker._sampler = stuck  # type: ignore[assignment]
    worker.lease = _Lease()  # type: ignore[assignment]
    beats = Heartbeats(worker.db)
    runner = threading.Thread(target=worker.run)
    runner.start()
    try:
        assert stuck.entered.wait(10)
        wait_for(lambda: worker.lease.acquired == 2, timeout=10)
        again = datetime.now(UTC)
        wait_for(lambda: beats.latest(leader_only=False).ticked_at > again, timeout=10)
        later = datetime.now(UTC) + timedelta(minutes=10)
        worker.jobs.now = lambda: later
        wait_for(lambda: "beanstalk running" in (beats.latest(leader_only=False).trouble or ""))
    finally:
        stuck.release.set()
        worker.stopping.set()
        runner.join(timeout=30)
    assert not runner.is_alive()


def test_the_admins_hear_once_that_a_job_keeps_failing(config, fast, slack, caplog):
    """Nobody runs `/deploy about` while alerts are quietly not sent: the worker tells the
    admin channel itself, directly (the outbox may be what fails), once per trouble."""
    worker = Worker(replace(config, admin_channel="C0ADMINS"))
    worker.metrics = _Broken()  # type: ignore[assignment]
    scheduler = worker.scheduler()
    scheduler.start()
    try:
        [post] = slack.wait_for_calls("chat.postMessage", timeout=10)
        time.sleep(1)  # five more heartbeats, the trouble unchanged
    finally:
        scheduler.shutdown(wait=True)
        worker.db.dispose()
    assert [call.args["channel"] for call in slack.calls_to("chat.postMessage")] == ["C0ADMINS"]
    assert post.args["text"].startswith(":rotating_light: deploybot worker jobs in trouble: ")
    assert "compact failing since" in post.args["text"]


def test_the_admins_trouble_post_waits_out_slacks_retry_after(config, slack):
    """Slack's 429 on the trouble post had been forgotten: the post was tried again at the
    next heartbeat, every 15 s, whatever `Retry-After` asked."""
    worker = Worker(replace(config, admin_channel="C0ADMINS"))
    failing = worker.jobs.wrap("compact", lambda: 1 / 0, 60)
    failing(), failing()  # two runs in a row: trouble
    try:
        slack.fail_next("chat.postMessage", count=1, status=429, retry_after=1)
        worker.heartbeat()
        assert slack.faults_served == [("chat.postMessage", 429)]
        worker.heartbeat()  # within Retry-After: not asked again
        assert slack.calls_to("chat.postMessage") == []
        time.sleep(1.2)
        worker.heartbeat()
        [post] = slack.calls_to("chat.postMessage")
        assert post.args["channel"] == "C0ADMINS" and "compact failing" in post.args["text"]
    finally:
        worker.db.dispose()


class _Taken:
    """Another worker holds the lease."""

    held = False

    def try_acquire(self) -> bool:
        return False


def test_an_alert_whose_sent_mark_was_lost_is_marked_by_a_worker_that_no_longer_leads(
    config, slack
):
    """Slack took the leader's post, then the database went before the row was marked sent,
    and with it the lease: another worker led once the database was back, and posted the
    alert again when its claim ran out, since only the old leader knew it had gone and it
    stored that only once it led again."""
    from sqlalchemy.exc import OperationalError

    old, new = Worker(config), Worker(config)
    try:
        now = datetime.now(UTC)
        old.alerts.outbox.enqueue("crash:myapp:web", "C0MYAPP", "post", "web crashed", now)
        old.send_alerts(now - timedelta(seconds=1))  # nothing due yet: the sender is made
        assert old._sender is not None
        mark_sent = old._sender._mark_sent
        marks: list[object] = []

        def database_gone_once(*args):
            marks.append(args)
            if len(marks) == 1:
                raise OperationalError("UPDATE alert_outbox", {}, Exception("server closed"))
            mark_sent(*args)

        old._sender._mark_sent = database_gone_once  # type: ignore[method-assign]
        with pytest.raises(OperationalError):
            old.send_alerts(now)
        # The database is back; the lease went with it, and the other worker has it.
        old.lease = _Taken()  # type: ignore[assignment]
        old.stopping.set()
        assert old._wait_for_lease() is False
        assert new.send_alerts(now + timedelta(seconds=61)) == 0
        assert [c.args["text"] for c in slack.calls_to("chat.postMessage")] == ["web crashed"]
    finally:
        old.db.dispose()
        new.db.dispose()


def test_a_worker_whose_lease_session_is_gone_does_not_scale(config, database_url, heroku, fast):
    """A network cut ends the leader's session: PostgreSQL lets another worker take the lease
    at once, while this one learns it only at its next check (10 s). A scale in between
    would make two actors; each scale asks the lease first."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's sessions")
    name = f"fence-{secrets.token_hex(4)}"
    worker = Worker(replace(config, database_url=f"{database_url}&application_name={name}"))
    slow_traffic(worker.db, high=6)
    admin = create_engine(normalize_url(database_url))
    try:
        assert worker.lease.try_acquire()
        with admin.begin() as connection:
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
        worker.autoscale()
        assert heroku.formation("myapp")["web"][0] == 1
        assert [r for r in heroku.requests if r.method == "PATCH"] == []
        [decision] = AutoscaleStore(worker.db).decisions("myapp")
        assert not decision.acted and "lost its lease" in decision.reason
    finally:
        worker.lease.release()
        worker.db.dispose()
        admin.dispose()


def _set_revision(database_url: str, revision: str | None) -> None:
    """Put the migrated database at `revision` (None: no revision, as before any migration)."""
    database = Database(database_url)
    try:
        with database.engine.begin() as connection:
            connection.execute(text("DELETE FROM alembic_version"))
            if revision is not None:
                connection.execute(
                    text("INSERT INTO alembic_version (version_num) VALUES (:r)"), {"r": revision}
                )
    finally:
        database.dispose()


def _head() -> str:
    from alembic.script import ScriptDirectory

    from bot.store.db import _alembic_config

    [head] = ScriptDirectory.from_config(_alembic_config()).get_heads()
    return head


def test_a_worker_on_a_database_behind_its_release_waits_for_the_migration_saying_so(
    config, database_url, fast, caplog, monkeypatch
):
    """The release phase did not run (a fresh database promoted, `pg:reset`): the worker had
    led and run every job into a ProgrammingError traceback, a screenful each few seconds,
    none of them saying to migrate. It now says so once and waits, leading once migrated."""
    monkeypatch.setattr("bot.worker.main.SCHEMA_RECHECK_SECONDS", 0.2)
    _set_revision(database_url, None)
    worker = Worker(config)
    runner = threading.Thread(target=worker.run)
    with caplog.at_level(logging.INFO):
        runner.start()
        try:
            wait_for(lambda: "python -m bot migrate" in caplog.text, timeout=10)
            assert not worker.lease.held
            _set_revision(database_url, _head())  # the migration ran
            wait_for(lambda: "worker is the leader" in caplog.text, timeout=10)
        finally:
            worker.stopping.set()
            runner.join(timeout=30)
    assert not runner.is_alive()
    said = [r.getMessage() for r in caplog.records if "python -m bot migrate" in r.getMessage()]
    assert len(said) == 1, said  # once, not at every lease retry
    assert "job failed" not in caplog.text


def test_a_worker_after_a_rollback_runs_on_the_newer_schema_and_says_so(
    config, database_url, fast, caplog
):
    """`heroku rollback`: the older release runs on the newer, additive schema."""
    _set_revision(database_url, "9999")
    worker = Worker(config)
    runner = threading.Thread(target=worker.run)
    with caplog.at_level(logging.INFO):
        runner.start()
        try:
            wait_for(lambda: "worker is the leader" in caplog.text, timeout=10)
        finally:
            worker.stopping.set()
            runner.join(timeout=30)
    [newer] = [r for r in caplog.records if "newer" in r.getMessage()]
    assert newer.revision == "9999" and newer.release == _head()  # type: ignore[attr-defined]


def test_a_worker_on_another_apps_database_stops_with_a_sentence(config, database_url, fast):
    """DATABASE_URL pointing at another app's Alembic database: no job may write to it. The
    CLI prints the ConfigError as its one line and exits 2, and Heroku shows the dyno crashed."""
    from bot.config import ConfigError

    _set_revision(database_url, "ae1027a6acf")
    worker = Worker(config)
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(worker.run())
        except Exception as error:
            outcome.append(error)

    runner = threading.Thread(target=run)
    runner.start()
    runner.join(timeout=10)
    worker.stopping.set()
    runner.join(timeout=30)
    [error] = outcome
    assert isinstance(error, ConfigError), error
    assert "ae1027a6acf" in str(error) and "DATABASE_URL" in str(error)
