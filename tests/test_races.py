# ruff: noqa: B023  (each lambda runs inside its own loop turn: `_together` joins before the next)
"""Two processes at once on PostgreSQL (two web apps, or two engines, on one schema):
incidents recorded by web dynos and the worker together, two `/deploy watch`, a lock taken
while its holder unlocks, and an unlock racing a new lock. Each made a change twice, lost
one, or crashed before; each test repeats its race a few times (a loop, not a timer)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from bot.store.db import Database
from bot.store.incidents import Alerts
from policies.incidents import Event

T0 = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)
ON_POSTGRES = [pytest.param("postgres", marks=pytest.mark.postgres)]


def _together(*calls):
    """Run each call on its own thread, released at once by a barrier; re-raise errors."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []
    results: list = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait()
            results[i] = call()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]
    return results


@pytest.mark.parametrize("database_url", ON_POSTGRES, indirect=True)
def test_two_webhook_events_on_one_open_incident_both_count(database_url):
    dbs = [Database(database_url), Database(database_url)]
    alerts = [Alerts(db) for db in dbs]
    lost = 0
    tries = 20
    for i in range(tries):
        app = f"app{i}"
        alerts[0].record([Event(app, "crash", "web", T0)], T0, lambda _a: "C1")
        at = T0 + timedelta(seconds=10)
        _together(
            *(
                lambda a=a: a.record([Event(app, "crash", "web", at)], at, lambda _a: "C1")
                for a in alerts
            )
        )
        (row,) = [r for r in alerts[0].incidents(app)]
        if row.count != 3:
            lost += 1
    for db in dbs:
        db.dispose()
    assert lost == 0, f"count lost an event in {lost} of {tries} tries"


@pytest.mark.parametrize("database_url", ON_POSTGRES, indirect=True)
def test_a_reopened_incident_is_posted_once_when_two_dynos_see_its_event(database_url):
    dbs = [Database(database_url), Database(database_url)]
    alerts = [Alerts(db) for db in dbs]
    posts = []
    for i in range(10):
        app, key = f"app{i}", f"crash:app{i}:web"
        # A channel each: posts to one channel in a burst are summed up (flood control).
        channel = lambda _app, i=i: f"C{i}"  # noqa: E731
        alerts[0].record([Event(app, "crash", "web", T0)], T0, channel)
        quiet = T0 + timedelta(minutes=11)
        alerts[0].record([], quiet, channel)  # resolved
        assert alerts[0].incidents(app)[0].state == "resolved"
        at = quiet + timedelta(hours=1)  # past a comeback, which edits its old message
        # Two crash events of one dyno crash loop, delivered to two web dynos at once.
        _together(
            lambda: alerts[0].record([Event(app, "crash", "web", at)], at, channel),
            lambda: alerts[1].record(
                [Event(app, "crash", "web", at + timedelta(seconds=1))], at, channel
            ),
        )
        posts.append(sum(e.kind == "post" for e in alerts[0].outbox.entries(key)))
    for db in dbs:
        db.dispose()
    assert posts == [2] * 10  # the first opening and one reopening: it had been 3


@pytest.mark.parametrize("database_url", ON_POSTGRES, indirect=True)
def test_a_silence_clicked_while_a_webhook_event_is_recorded_stays(database_url):
    dbs = [Database(database_url), Database(database_url)]
    web, clicker = Alerts(dbs[0]), Alerts(dbs[1])
    lost = 0
    tries = 30
    until = T0 + timedelta(hours=4)
    for i in range(tries):
        app = f"app{i}"
        key = f"crash:{app}:web"
        web.record([Event(app, "crash", "web", T0)], T0, lambda _a: "C1")
        at = T0 + timedelta(seconds=30)
        _together(
            lambda: web.record([Event(app, "crash", "web", at)], at, lambda _a: "C1"),
            lambda: clicker.silence(key, until),
        )
        (row,) = web.incidents(app)
        if row.silenced_until is None:
            lost += 1
    for db in dbs:
        db.dispose()
    assert lost == 0, f"the silence was lost in {lost} of {tries} tries"


WATCH_REGISTRY = """\
apps:
  myapp:
    platform: heroku
    channel: CMYAPP
"""


@pytest.mark.parametrize("database_url", ON_POSTGRES, indirect=True)
def test_two_watches_at_once_leave_the_secret_heroku_signs_with(
    new_app, config, heroku, slack, tmp_path, monkeypatch
):
    from bot.store.webhook_secrets import WebhookSecrets
    from tests.conftest import ADMIN, OTHER_ADMIN
    from tests.webclient import SlackDriver, served_app

    with served_app(config, WATCH_REGISTRY, tmp_path, monkeypatch) as (web, served_config, _):
        first = SlackDriver(web.test_client(), slack)
        second = SlackDriver(new_app(served_config).test_client(), slack)  # another dyno
        _, url = first.command("watch myapp", ADMIN)
        assert "I am watching" in first.reply(url)["text"]
        db = Database(served_config.database_url)
        secrets_ = WebhookSecrets(db)
        heroku.latency = 0.002
        mismatched = 0
        tries = 15
        for _ in range(tries):
            (_, a), (_, b) = _together(
                lambda: first.command("watch myapp", ADMIN),
                lambda: second.command("watch myapp", OTHER_ADMIN),
            )
            assert "I am watching" in first.reply(a)["text"]
            assert "I am watching" in second.reply(b)["text"]
            [hook] = heroku.webhooks("myapp")
            if secrets_.accepted("myapp") != (hook["secret"],):
                mismatched += 1
        db.dispose()
        assert mismatched == 0, (
            f"Heroku signs with a secret the bot no longer has in {mismatched} of {tries} tries"
        )


@pytest.mark.parametrize("database_url", ON_POSTGRES, indirect=True)
def test_a_lock_sent_while_the_holder_unlocks_is_answered(new_app, config, heroku, slack):
    from tests.conftest import ADMIN, OTHER_ADMIN
    from tests.webclient import SlackDriver

    first = SlackDriver(new_app(config).test_client(), slack)
    second = SlackDriver(new_app(config).test_client(), slack)  # another web dyno
    broken = []
    tries = 30
    for i in range(tries):
        _, url = first.command(f"lock myapp holder {i}", ADMIN)
        assert "lock" in first.reply(url)["text"].lower()
        (_, unlock_url), (_, lock_url) = _together(
            lambda: first.command("unlock myapp", ADMIN),
            lambda: second.command(f"lock myapp taker {i}", OTHER_ADMIN),
        )
        first.reply(unlock_url)
        text = second.reply(lock_url)["text"]
        if "already locked" not in text and "locked `myapp`" not in text.replace("<@", ""):
            broken.append(text)
        _, url = first.command("unlock myapp", ADMIN)  # clear for the next round
        first.reply(url)
    from sqlalchemy import text as sql

    db = Database(config.database_url)
    with db.engine.connect() as connection:
        pending = connection.execute(
            sql("SELECT count(*) FROM audit_log WHERE verb = 'lock' AND outcome = 'pending'")
        ).scalar()
    db.dispose()
    assert broken == [], (
        f"{len(broken)} of {tries} ({pending} lock rows left pending): {broken[:1]}"
    )


@pytest.mark.parametrize("database_url", ON_POSTGRES, indirect=True)
def test_an_unlock_in_flight_does_not_remove_a_lock_taken_after_it_looked(
    new_app, config, heroku, slack, monkeypatch
):
    from bot.store.locks import Locks
    from tests.conftest import ADMIN, OTHER_ADMIN
    from tests.webclient import SlackDriver

    first = SlackDriver(new_app(config).test_client(), slack)
    second = SlackDriver(new_app(config).test_client(), slack)  # another web dyno
    _, url = first.command("lock myapp holder", ADMIN)
    first.reply(url)
    # Hold the holder's own unlock between its read of the lock and its delete (the few
    # milliseconds of its audit insert, widened), while an admin unlocks and re-locks.
    looked, go_on = threading.Event(), threading.Event()
    original = Locks.release
    calls = []

    def release(self, app):
        calls.append(app)
        if len(calls) == 1:
            looked.set()
            go_on.wait(20)
        return original(self, app)

    monkeypatch.setattr(Locks, "release", release)
    _, holder_unlock = first.command("unlock myapp", ADMIN)
    assert looked.wait(10)
    _, url = second.command("unlock myapp", OTHER_ADMIN)
    second.reply(url)
    _, url = second.command("lock myapp taking over for the release", OTHER_ADMIN)
    assert "already locked" not in second.reply(url)["text"]
    go_on.set()
    first.reply(holder_unlock)
    held = Locks(Database(config.database_url)).get("myapp")
    assert held is not None and held.user_id == OTHER_ADMIN, (
        f"OTHER_ADMIN's lock, taken after the holder's unlock looked, is gone: {held}"
    )


@pytest.mark.parametrize("database_url", ON_POSTGRES, indirect=True)
def test_confirm_racing_cancel_and_the_worker_expiry_decides_once(new_app, config, heroku, slack):
    from sqlalchemy import text as sql

    from bot.worker.main import Worker
    from handlers.render import CANCEL_ACTION, CONFIRM_ACTION
    from tests.conftest import ADMIN
    from tests.webclient import SlackDriver, button, patches

    first = SlackDriver(new_app(config).test_client(), slack)
    second = SlackDriver(new_app(config).test_client(), slack)
    worker = Worker(config)
    db = Database(config.database_url)
    bad = []
    for i in range(8):
        heroku.add_app(
            f"app{i}", formation={"web": (1, "standard-1x"), "worker": (1, "standard-1x")}
        )
        _, url = first.command(f"kill app{i} worker", ADMIN)
        value = button(first.reply(url), CONFIRM_ACTION)["value"]
        before = len(patches(heroku))
        if i % 2:
            # Due now: the worker's sweep and the click race for it.
            with db.engine.begin() as c:
                c.execute(
                    sql(
                        "UPDATE confirmations SET expires_at = now() + interval '30 ms' "
                        "WHERE state = 'pending'"
                    )
                )
            import time

            time.sleep(0.03)
            (_, a), _expired = _together(
                lambda: first.click(CONFIRM_ACTION, value, ADMIN), worker.expire_prompts
            )
            texts = [first.reply(a)["text"]]
        else:
            (_, a), (_, b) = _together(
                lambda: first.click(CONFIRM_ACTION, value, ADMIN),
                lambda: second.click(CANCEL_ACTION, value, ADMIN),
            )
            texts = [first.reply(a)["text"], second.reply(b)["text"]]
        with db.engine.connect() as c:
            outcomes = [
                r[0]
                for r in c.execute(
                    sql(f"SELECT outcome FROM audit_log WHERE app = 'app{i}' AND verb = 'kill'")
                )
            ]
        made = len(patches(heroku)) - before
        acted = [o for o in outcomes if o in ("ok", "cancelled", "expired")]
        if len(acted) != 1 or made != (outcomes.count("ok")):
            bad.append((i, outcomes, made, texts))
    db.dispose()
    assert bad == []


@pytest.mark.parametrize("database_url", ON_POSTGRES, indirect=True)
def test_a_cancel_during_a_refused_confirm_is_not_lost(new_app, config, heroku, slack):
    from bot.store.confirmations import Confirmations
    from handlers.render import CANCEL_ACTION, CONFIRM_ACTION
    from tests.conftest import ADMIN
    from tests.webclient import SlackDriver, button, wait_for

    first = SlackDriver(new_app(config).test_client(), slack)
    second = SlackDriver(new_app(config).test_client(), slack)
    confirmations = Confirmations(Database(config.database_url))
    _, url = first.command("kill myapp worker", ADMIN)
    value = button(first.reply(url), CONFIRM_ACTION)["value"]
    heroku.slow_methods = frozenset({"PATCH"})
    # Long enough for the Cancel to land while the PATCH waits, on a loaded CI machine too.
    heroku.latency = 2.0
    heroku.fail_next(422, methods=["PATCH"])  # Heroku refuses: nothing changed
    _, confirm_url = first.click(CONFIRM_ACTION, value, ADMIN)
    # The PATCH is on its way (the fake records it before its latency); the requester
    # thinks better of it. A fixed sleep had let a slow Confirm arrive after the Cancel.
    wait_for(lambda: any(r.method == "PATCH" for r in heroku.requests), timeout=30, poll=0.01)
    _, cancel_url = second.click(CANCEL_ACTION, value, ADMIN)
    cancel_text = second.reply(cancel_url)["text"]
    confirm_text = first.reply(confirm_url)["text"]
    # Cancel had been told "already confirmed" and lost: the refused Confirm opened the
    # prompt again, and a later click still killed the worker.
    assert "was already confirmed by" in cancel_text
    assert "Nothing was changed, and <@" in confirm_text and "stays cancelled" in confirm_text
    assert confirmations.get(value).state == "cancelled"
    _, url = first.click(CONFIRM_ACTION, value, ADMIN)
    assert "was cancelled; nothing was changed" in first.reply(url)["text"]
    assert heroku.formation("myapp")["worker"][0] == 1
    confirmations._db.dispose()
