"""Worker dynos from job-queue numbers: the calculator (`policies.worker_autoscale`) and
the client (`bot.metrics.hirefire`) against a small real Flask app that serves the
endpoint with the `hirefire-resource` package, as an instrumented app does."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from hirefire_resource import HireFire
from hirefire_resource.configuration import Configuration
from hirefire_resource.middleware.wsgi.flask import HireFireMiddleware
from werkzeug.serving import make_server

from bot.metrics import hirefire
from bot.metrics.hirefire import QueueInfoError, fetch_queue_info
from policies.slack_text import code
from policies.worker_autoscale import WorkerTarget, decide_worker, parse_worker_target
from tests.test_detect import services_with

TOKEN = "hf-test-token"


class Queue:
    """What the app's procs read: a queue's latency, its size and the jobs running."""

    def __init__(self) -> None:
        self.latency = 0.0
        self.waiting = 0
        self.running = 0


@pytest.fixture
def queue(monkeypatch) -> Iterator[Queue]:
    monkeypatch.setenv("HIREFIRE_TOKEN", TOKEN)
    # hirefire-resource keeps its configuration on the class: a fresh one per test.
    monkeypatch.setattr(HireFire, "configuration", Configuration())
    state = Queue()
    with HireFire.configure() as config:
        config.dyno("worker", lambda: state.latency)
        config.dyno("mailer", lambda: state.waiting)
        config.dyno("worker_busy", lambda: state.running)
    yield state


@pytest.fixture
def app_url(queue) -> Iterator[str]:
    app = Flask("instrumented")

    @app.get("/")
    def home() -> str:
        return "the app itself"

    app.wsgi_app = HireFireMiddleware(app)  # type: ignore[method-assign]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()


def test_the_endpoint_of_hirefire_resource_is_read(app_url, queue):
    queue.latency, queue.waiting, queue.running = 42.5, 120, 3
    info = fetch_queue_info(app_url, TOKEN)
    assert info == {"worker": 42.5, "mailer": 120.0, "worker_busy": 3.0}


def test_a_wrong_token_or_no_app_says_why(app_url):
    with pytest.raises(QueueInfoError, match="answered 404"):
        fetch_queue_info(app_url, "not-the-token")
    with pytest.raises(QueueInfoError, match="cannot reach") as caught:
        fetch_queue_info("http://127.0.0.1:9", TOKEN)
    # The reason is shown in chat and logged; the URL in requests' message holds the token.
    assert TOKEN not in str(caught.value) and "hirefire/" not in str(caught.value)


def test_an_endpoint_that_never_answers_is_a_timeout(monkeypatch):
    monkeypatch.setattr(hirefire, "TIMEOUT_S", 0.2)
    with socket.create_server(("127.0.0.1", 0)) as silent:  # connects, never answers
        port = silent.getsockname()[1]
        with pytest.raises(QueueInfoError) as caught:
            fetch_queue_info(f"http://127.0.0.1:{port}", TOKEN)
    assert str(caught.value) == "the app's HireFire endpoint did not answer within 0.2 s"


@pytest.mark.parametrize("text", ["latency:<!here>", "jobs:`x`", "<@U1>:5"])
def test_a_target_that_is_no_target_is_quoted_escaped_in_a_code_span(text):
    # The answer goes to Slack as it is: the target had been put in backticks raw.
    with pytest.raises(ValueError) as caught:
        parse_worker_target(text)
    assert str(caught.value).startswith(f"target {code(text)}: "), caught.value


def test_latency_scales_workers_up_and_down_when_idle(app_url, queue):
    latency = parse_worker_target("latency:30s")
    queue.latency = 90.0
    up = decide_worker(latency, "worker", 2, 0, 10, fetch_queue_info(app_url, TOKEN))
    assert (up.desired, up.changed) == (6, True)
    assert up.reason == "job queue latency 90 s against 30 s → worker 2→6"
    queue.latency = 0.0
    down = decide_worker(latency, "worker", 6, 0, 10, fetch_queue_info(app_url, TOKEN))
    assert down.desired == 0  # nothing waits and nothing runs
    # From zero, one dyno for any waiting job; never above max.
    queue.latency = 5.0
    assert decide_worker(latency, "worker", 0, 0, 10, fetch_queue_info(app_url, TOKEN)).desired == 1
    queue.latency = 3000.0
    assert (
        decide_worker(latency, "worker", 4, 0, 10, fetch_queue_info(app_url, TOKEN)).desired == 10
    )


def test_the_registry_max_step_paces_a_worker_type(app_url, queue):
    latency = parse_worker_target("latency:30s")
    queue.latency = 90.0
    info = fetch_queue_info(app_url, TOKEN)
    up = decide_worker(latency, "worker", 2, 0, 10, info, max_step=3)
    assert up.reason == (
        "job queue latency 90 s against 30 s (the registry's max_step allows 3 at a time; "
        "6 wanted) → worker 2→5"
    )


def test_never_down_while_the_endpoint_reports_jobs_in_progress(app_url, queue):
    latency = WorkerTarget("latency", 30.0)
    queue.latency, queue.running = 0.0, 2
    held = decide_worker(latency, "worker", 3, 0, 10, fetch_queue_info(app_url, TOKEN))
    assert held.desired == 3
    assert "but 2 jobs are in progress: worker stays at 3" in held.reason
    queue.running = 0
    assert decide_worker(latency, "worker", 3, 0, 10, fetch_queue_info(app_url, TOKEN)).desired == 0
    # A rise is never held back by running jobs.
    queue.latency, queue.running = 120.0, 5
    assert (
        decide_worker(latency, "worker", 3, 0, 10, fetch_queue_info(app_url, TOKEN)).desired == 10
    )


def test_jobs_per_dyno(app_url, queue):
    jobs = parse_worker_target("jobs:50")
    queue.waiting = 120
    assert decide_worker(jobs, "mailer", 1, 0, 10, fetch_queue_info(app_url, TOKEN)).desired == 3
    queue.waiting = 0
    # `mailer` has no `mailer_busy` entry, so an empty queue lets it go to min.
    assert decide_worker(jobs, "mailer", 3, 1, 10, fetch_queue_info(app_url, TOKEN)).desired == 1


def test_a_type_the_endpoint_does_not_list_keeps_its_count(app_url):
    info = fetch_queue_info(app_url, TOKEN)
    decision = decide_worker(WorkerTarget("jobs", 10), "urgent", 2, 0, 5, info)
    assert decision.desired == 2 and "lists no urgent" in decision.reason


@pytest.mark.parametrize(
    "target", [WorkerTarget("jobs", 0.5), WorkerTarget("latency", 0.001)], ids=str
)
def test_a_number_past_any_float_once_divided_asks_for_max(target):
    # 1e308 jobs over 0.5 a dyno is infinity, and math.ceil(inf) had raised OverflowError
    # out of the tick, which then scaled no app's workers while this one answered so.
    decision = decide_worker(target, "worker", 2, 0, 10, {"worker": 1e308})
    assert decision.desired == 10 and "worker 2→10" in decision.reason


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [("latency:30s", "latency", 30.0), ("latency:2m", "latency", 120.0), ("jobs:50", "jobs", 50.0)],
)
def test_targets_parse(text, kind, value):
    assert parse_worker_target(text) == WorkerTarget(kind, value)


@pytest.mark.parametrize("text", ["latency:", "queue:30s", "jobs:0", "jobs:many", "latency:-1s"])
def test_bad_targets_say_what_to_write(text):
    with pytest.raises(ValueError, match=r"latency:30s|more than 0"):
        parse_worker_target(text)


@pytest.fixture
def services(config, app_url, tmp_path, monkeypatch):
    registry = (
        "apps:\n  myapp:\n    platform: heroku\n    channel: CMYAPP\n"
        f"    autoscale:\n      queue_url: {app_url}\n"
    )
    services = services_with(config, tmp_path, monkeypatch, registry)
    yield services
    services.db.dispose()


def test_a_worker_type_scales_from_the_real_endpoint(services, heroku, queue):
    from bot.store.audit import Actor
    from bot.worker.autoscale import Autoscaler
    from bot.worker.autoscale_workers import WorkerAutoscaler
    from policies.commands import parse
    from tests.conftest import ADMIN

    said = []
    run = services.actions.run
    reply = run(
        Actor(ADMIN, source="console"),
        parse("autoscale myapp worker on target=latency:30s min=0 max=10"),
    )
    assert (
        "set autoscaling of `myapp`: on, worker 0–10, target job queue latency 30 s" in reply.text
    )
    status = run(Actor(ADMIN, source="console"), parse("autoscale myapp status")).text
    assert "Worker `worker`: on, worker 0–10, target job queue latency 30 s (chat, <@" in status
    assert "its queue from the registry's `queue_url`, token from `HIREFIRE_TOKEN`" in status
    scaler = WorkerAutoscaler(
        services, Autoscaler(services, lambda channel, text: said.append((channel, text)))
    )

    queue.latency = 75.0  # 1 worker, 75 s behind: 3 keep it at 30 s
    [up] = scaler.tick()
    assert (up.actual, up.desired, up.acted, up.process_type) == (1, 3, True, "worker")
    assert heroku.formation("myapp")["worker"][0] == 3
    assert said[-1] == ("CMYAPP", f"Autoscaler on `myapp`: {up.reason}")

    queue.latency, queue.running = 0.0, 1  # the queue is empty but a job still runs
    [held] = scaler.tick()
    assert (held.desired, held.acted) == (3, False)
    assert heroku.formation("myapp")["worker"][0] == 3

    queue.running = 0
    [down] = scaler.tick()
    assert (down.desired, down.acted) == (0, True), down.reason
    assert heroku.formation("myapp")["worker"][0] == 0


def test_worker_autoscaling_needs_the_registry_queue_url(config, queue):
    from bot.services import Services
    from bot.store.audit import Actor
    from policies.commands import parse
    from tests.conftest import ADMIN

    services = Services(config)
    try:
        reply = services.actions.run(
            Actor(ADMIN, source="console"), parse("autoscale myapp worker on target=jobs:50")
        )
        assert "has no job-queue endpoint" in reply.text
        assert "`autoscale: queue_url: https://…`" in reply.text
    finally:
        services.db.dispose()


# -- The tick's formation knowledge, API budget and decision rows -------------------------

FORMATION = "/apps/myapp/formation"
NOW = datetime(2026, 6, 3, 12, 0, 30, tzinfo=UTC)


def _worker_on(services, mode="on"):
    from bot.store.audit import Actor
    from policies.commands import parse
    from tests.conftest import ADMIN

    reply = services.actions.run(
        Actor(ADMIN, source="console"),
        parse(f"autoscale myapp worker {mode} target=latency:30s min=0 max=10"),
    )
    assert reply.public, reply.text


def _scalers(services, said, **kwargs):
    from bot.worker.autoscale import Autoscaler
    from bot.worker.autoscale_workers import WorkerAutoscaler

    web = Autoscaler(services, lambda channel, text: said.append((channel, text)), **kwargs)
    return web, WorkerAutoscaler(services, web)


def test_the_worker_tick_reads_the_formation_only_when_nothing_told_it(services, heroku, queue):
    _worker_on(services, mode="shadow")
    _, scaler = _scalers(services, [])
    queue.latency = 30.0  # on target: nothing to do
    reads = len(heroku.calls("GET", FORMATION))
    for tick in range(60):  # a quarter of an hour of 15 s ticks
        [decision] = scaler.tick(NOW + timedelta(seconds=15 * tick))
        assert decision.actual == 1 and decision.desired == 1
    assert len(heroku.calls("GET", FORMATION)) == reads + 1  # the first tick's, no more
    scaler.tick(NOW + timedelta(minutes=15))  # 15 minutes of silence: read again
    assert len(heroku.calls("GET", FORMATION)) == reads + 2


def test_a_worker_type_whose_formation_stays_unread_is_said_once_in_the_channel(
    services, heroku, queue
):
    # The app renamed on Heroku: each tick's read answered 404, logged, and the worker type
    # was left as it was with nothing said where people look.
    _worker_on(services)
    said: list[tuple[str | None, str]] = []
    _, scaler = _scalers(services, said)
    queue.latency = 90.0
    gone = {"id": "not_found", "message": "Couldn't find that app."}
    heroku.fail_next(404, count=1000, body=gone, path=FORMATION)
    for tick in range(40):  # ten minutes
        assert scaler.tick(NOW + timedelta(seconds=15 * tick)) == []
    [(channel, text)] = said
    assert channel == "CMYAPP"
    assert text.startswith(
        "Autoscaler on `myapp`: not autoscaled for 5 min, as what runs could not be read: "
    )
    assert text.endswith(" I try again each tick."), text


def test_webhooks_and_our_own_writes_keep_worker_counts_known(services, heroku, queue):
    _worker_on(services)
    web, scaler = _scalers(services, [])
    queue.latency = 90.0
    [up] = scaler.tick(NOW)
    assert (up.actual, up.desired, up.acted) == (1, 3, True)
    reads = len(heroku.calls("GET", FORMATION))
    queue.latency = 30.0
    [held] = scaler.tick(NOW + timedelta(seconds=15))
    assert held.actual == 3  # Heroku's answer to our scale: no read
    # Someone scales by hand; Heroku's formation webhook says so.
    assert web.observe_formation("myapp", "worker", 5, NOW + timedelta(seconds=20))
    [after] = scaler.tick(NOW + timedelta(seconds=30))
    assert after.actual == 5
    assert len(heroku.calls("GET", FORMATION)) == reads


def test_a_scale_made_but_not_read_back_is_not_posted_as_not_done(services, heroku, queue):
    """The PATCH is made and its answer lost, and the read-back fails too: the channel had
    read "Not done" of a change Heroku made, and the tick trusted the old count."""
    from bot.sandbox.fakes.heroku import _Fault

    _worker_on(services)
    said: list = []
    _, scaler = _scalers(services, said)
    made = heroku._formation_batch_update

    def then_reads_fail(call):
        heroku._formation_batch_update = made
        heroku._faults.append(_Fault(503, 4, None, frozenset({"GET"})))
        return made(call)

    heroku._formation_batch_update = then_reads_fail
    heroku.drop_next(methods=["PATCH"])
    queue.latency = 90.0
    [decision] = scaler.tick(NOW)
    assert heroku.formation("myapp")["worker"][0] == 3 and not decision.acted
    [(channel, text)] = said[-1:]
    assert channel == "CMYAPP" and "Not done" not in text
    assert "It may have been made:" in text and "I could not read the formation back" in text
    reads = len(heroku.calls("GET", FORMATION))
    queue.latency = 30.0  # on target now
    [after] = scaler.tick(NOW + timedelta(seconds=15))  # reads what runs, not the old 1
    assert len(heroku.calls("GET", FORMATION)) > reads
    assert after.actual == 3 and not after.acted


def test_worker_scaling_spends_from_the_accounts_budget(services, heroku, queue, caplog):
    from bot.store.worker_autoscale_settings import WorkerAutoscaleStore, WorkerSettings
    from policies.budget import Budget
    from tests.conftest import ADMIN

    # Stored directly: the command's own formation read would tell the budget Heroku's figure.
    WorkerAutoscaleStore(services.db).save(
        WorkerSettings("myapp", "worker", "on", 0, 10, "latency", 30.0, ADMIN, NOW)
    )
    said: list = []
    # 450 left is the reserve: the autoscaler may not spend it, not even on a read.
    _, scaler = _scalers(services, said, budget=Budget(tokens=450))
    queue.latency = 90.0
    with caplog.at_level("WARNING", logger="bot.worker.autoscale"):
        assert scaler.tick(NOW) == []
    assert heroku.requests == [] and said == []
    assert "Heroku API budget low" in caplog.text
    # It refills at 1.25 a second: a few seconds later the tick reads and scales.
    [decision] = scaler.tick(NOW + timedelta(seconds=4))
    assert decision.acted and len(heroku.requests) == 3  # a read, then the actions path's two


def test_worker_decisions_are_stored_shown_and_forgotten(services, heroku, queue):
    from bot.store.audit import Actor
    from bot.store.autoscale_settings import AutoscaleStore
    from policies.commands import parse
    from tests.conftest import ADMIN

    _worker_on(services)
    _, scaler = _scalers(services, [])
    queue.latency = 90.0
    scaler.tick(NOW)
    queue.latency = 30.0
    scaler.tick(NOW + timedelta(seconds=15))
    store = AutoscaleStore(services.db)
    rows = store.decisions("myapp", process_type="worker")
    assert [(d.actual, d.desired, d.acted) for d in rows] == [(3, 3, False), (1, 3, True)]
    assert store.decisions("myapp") == []  # web's history (charts, detectors) is web's alone
    assert store.recent_decisions({"myapp"}, NOW - timedelta(minutes=10)) == {}
    status = services.actions.run(Actor(ADMIN, source="console"), parse("autoscale myapp status"))
    assert (
        "• 12:00:45 UTC held: job queue latency 30 s against 30 s: worker stays at 3" in status.text
    )
    assert "• 12:00:30 UTC acted: job queue latency 90 s against 30 s → worker 1→3" in status.text
    assert store.forget_decisions_before(NOW + timedelta(seconds=1)) == 1
    assert len(store.decisions("myapp", process_type=None)) == 1


def test_an_unreadable_endpoint_is_a_held_decision_that_says_why(services, heroku, monkeypatch):
    _worker_on(services)
    _, scaler = _scalers(services, [])
    # (The app in this test reads the same variable: it cannot be given another token.)
    monkeypatch.delenv("HIREFIRE_TOKEN")
    [held] = scaler.tick(NOW)
    assert (held.actual, held.desired, held.acted) == (1, 1, False)
    assert held.reason == (
        "could not read the job queue (HIREFIRE_TOKEN is not set in the bot): worker stays at 1"
    )
    assert heroku.formation("myapp")["worker"][0] == 1


def test_turning_a_worker_type_on_without_the_bots_token_says_so(services, monkeypatch):
    """Set and confirmed, it had read nothing, the channel hearing of it only from the
    job-queue-unread alert ten minutes on."""
    from bot.store.audit import Actor
    from policies.commands import parse
    from tests.conftest import ADMIN

    monkeypatch.delenv("HIREFIRE_TOKEN")
    run = services.actions.run
    reply = run(Actor(ADMIN, source="console"), parse("autoscale myapp worker on max=5"))
    assert reply.text.endswith(
        "`HIREFIRE_TOKEN` is not set in the bot, so the queue cannot be read until it is: "
        "set it to the token in the app's HireFire endpoint."
    )
    status = run(Actor(ADMIN, source="console"), parse("autoscale myapp status")).text
    assert "token from `HIREFIRE_TOKEN` (not set in the bot)" in status
    off = run(Actor(ADMIN, source="console"), parse("autoscale myapp worker off")).text
    assert "HIREFIRE_TOKEN" not in off


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("autoscale myapp worker on target=latency:0s", "the value must be more than 0"),
        ("autoscale myapp mailer on target=jobs:5", "(it has: `web`, `worker`)"),
        ("autoscale myapp on target=latency:30s", "is a job-queue target, for a worker type"),
        ("autoscale myapp worker on target=30s", "is not a worker target"),
    ],
)
def test_wrong_input_is_told_plainly(services, line, said):
    from bot.store.audit import Actor
    from policies.commands import CommandError, parse
    from tests.conftest import ADMIN

    try:
        command = parse(line)
    except CommandError as error:
        assert said in str(error)
        return
    reply = services.actions.run(Actor(ADMIN, source="console"), command)
    assert said in reply.text and not reply.public


def test_a_held_change_on_a_protected_app_leaves_no_prompt_or_audit_row_per_tick(
    config, app_url, queue, heroku, tmp_path, monkeypatch
):
    from bot.store.audit import AuditLog
    from bot.store.confirmations import Confirmations

    registry = (
        "apps:\n  myapp:\n    platform: heroku\n    channel: CMYAPP\n"
        "    guardrails:\n      protected: true\n"
        f"    autoscale:\n      queue_url: {app_url}\n"
    )
    services = services_with(config, tmp_path, monkeypatch, registry)
    try:
        _worker_on(services)
        said: list = []
        _, scaler = _scalers(services, said)
        queue.latency = 0.0  # nothing queued: worker=0 is what min=0 allows
        audited = len(AuditLog(services.db).recent("myapp", limit=None))
        for tick in range(8):  # two minutes of ticks
            [held] = scaler.tick(NOW + timedelta(seconds=15 * tick))
            assert (held.desired, held.acted) == (0, False)
        assert held.reason.endswith(
            "Not done: `myapp` is protected: scaling `worker` of `myapp` to 0 needs a second "
            "person's approval. To ask for it, scale by hand: `/deploy scale worker=0 myapp`."
        )
        assert heroku.formation("myapp")["worker"][0] == 1
        assert len(said) == 1  # said once, not every tick
        # Nobody can answer a prompt the autoscaler opened: none is made, none expires
        # into history, and no refusal is audited every 15 s.
        # (The actions path stamps prompts with the real clock, not the tick's.)
        later = datetime.now(UTC) + timedelta(days=1)
        assert Confirmations(services.db).expire_due(later) == []
        assert len(AuditLog(services.db).recent("myapp", limit=None)) == audited
        # A change made in between: held again for the same reason is news again.
        queue.latency = 90.0
        [up] = scaler.tick(NOW + timedelta(minutes=3))
        assert up.acted and len(said) == 2
        queue.latency = 0.0
        [held] = scaler.tick(NOW + timedelta(minutes=4))
        assert (held.desired, held.acted) == (0, False) and len(said) == 3
    finally:
        services.db.dispose()


def test_a_worker_type_turned_off_while_its_endpoint_answered_is_not_scaled(
    services, heroku, queue, monkeypatch
):
    from bot.worker import autoscale_workers

    _worker_on(services)
    _, scaler = _scalers(services, [])
    queue.latency = 75.0
    read = autoscale_workers.fetch_queue_info

    def answered_slowly(url, token, token_env):
        info = read(url, token, token_env)
        _worker_on(services, mode="shadow")  # a person, meanwhile
        return info

    monkeypatch.setattr(autoscale_workers, "fetch_queue_info", answered_slowly)
    [decision] = scaler.tick(NOW)
    assert (decision.desired, decision.acted) == (3, False)
    assert "Not done: its settings or pin changed while this tick ran" in decision.reason
    assert heroku.formation("myapp")["worker"][0] == 1


def test_a_worker_max_above_the_guardrail_and_the_default_max_are_as_web_s(
    config, app_url, tmp_path, monkeypatch
):
    from bot.store.audit import Actor
    from policies.commands import parse
    from tests.conftest import ADMIN

    registry = (
        "apps:\n  myapp:\n    platform: heroku\n    guardrails:\n      max: {worker: 40}\n"
        f"    autoscale:\n      queue_url: {app_url}\n"
    )
    services = services_with(config, tmp_path, monkeypatch, registry)
    try:
        run = services.actions.run
        reply = run(Actor(ADMIN, source="console"), parse("autoscale myapp worker on max=60"))
        # Web's refusal had said where the cap came from and worker's had not.
        assert reply.text == (
            "`myapp` allows at most 40 `worker` dynos (the registry's `max`), so max=60 is "
            "refused. Ask for 40 or fewer, or raise the registry's `max`."
        )
        # With no max given, ten as for web, not the whole cap (it had been 0–40).
        reply = run(Actor(ADMIN, source="console"), parse("autoscale myapp worker on"))
        assert "on, worker 0–10, target job queue latency 30 s" in reply.text
    finally:
        services.db.dispose()


def test_a_worker_type_gone_from_the_formation_can_still_be_turned_off(services, heroku, queue):
    # `worker` dropped from the Procfile: `autoscale myapp worker off` had been refused as
    # "`myapp` has no `worker` process type", so the setting stayed on with no way out.
    from bot.store.audit import Actor
    from policies.commands import parse
    from tests.conftest import ADMIN

    _worker_on(services)
    with heroku._lock:
        heroku._apps["myapp"].processes.pop("worker")
    run = services.actions.run
    reply = run(Actor(ADMIN, source="console"), parse("autoscale myapp worker off"))
    assert reply.public, reply.text
    assert "set autoscaling of `myapp`: off, worker 0–10" in reply.text
    status = run(Actor(ADMIN, source="console"), parse("autoscale myapp status")).text
    assert "Worker `worker`: off" in status
    # Turning it on again is still refused: there is nothing to scale.
    again = run(Actor(ADMIN, source="console"), parse("autoscale myapp worker on"))
    assert "`myapp` has no `worker` process type" in again.text and not again.public


def test_a_token_pasted_with_a_newline_or_quotes_is_read_as_meant(app_url, queue, monkeypatch):
    # `heroku config:set HIREFIRE_TOKEN="$(cat token)"` keeps the newline: it was sent with
    # it, the endpoint answered 404, and the queue was never read.
    from bot.worker.autoscale_workers import _read_queue

    queue.latency = 7.0
    # The app reads HIREFIRE_TOKEN (this process's, as set by the fixture); the bot reads
    # the variable its registry names, as it would on its own dyno.
    monkeypatch.setenv("BOT_HIREFIRE_TOKEN", f' "{TOKEN}"\n')
    assert _read_queue(app_url, "BOT_HIREFIRE_TOKEN") == {
        "worker": 7.0,
        "mailer": 0.0,
        "worker_busy": 0.0,
    }


def test_a_worker_types_status_shows_only_what_applies_to_it(services, heroku):
    """`autoscale APP worker status` had led with web's settings, web's scale-down hold and
    web's step per tick, none of which moves a worker type."""
    from bot.store.audit import Actor
    from policies.commands import parse
    from tests.conftest import ADMIN

    def run(text: str) -> str:
        return services.actions.run(Actor(ADMIN, source="console"), parse(text)).text

    run("autoscale myapp on target=rpm:300 min=1 max=4")
    run("autoscale myapp set max_step=2")
    run("autoscale myapp worker on target=latency:30s min=0 max=10")
    status = run("autoscale myapp worker status")
    assert status.startswith(
        "Worker `worker`: on, worker 0–10, target job queue latency 30 s (chat, <@"
    ), status
    for web_only in ("rpm", "Scale-down", "Step per tick", "web 1–4"):
        assert web_only not in status, (web_only, status)
    # The whole app's status still says it all.
    whole = run("autoscale myapp status")
    assert "Step per tick: 2 dynos" in whole and "Worker `worker`: on" in whole


def test_a_worker_types_status_shows_the_registrys_step_that_holds_it(
    config, app_url, tmp_path, monkeypatch, heroku
):
    from bot.store.audit import Actor
    from policies.commands import parse
    from tests.conftest import ADMIN

    services = services_with(
        config,
        tmp_path,
        monkeypatch,
        "apps:\n  myapp:\n    platform: heroku\n    guardrails:\n      max_step: 2\n"
        f"    autoscale:\n      queue_url: {app_url}\n",
    )
    try:
        actor = Actor(ADMIN, source="console")
        services.actions.run(actor, parse("autoscale myapp worker on target=jobs:50 max=10"))
        status = services.actions.run(actor, parse("autoscale myapp worker status")).text
        assert status.splitlines()[1] == (
            "Step per tick: at most 2 dynos (the registry's `guardrails: max_step:`)."
        ), status
    finally:
        services.db.dispose()
