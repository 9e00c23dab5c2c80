"""Tables that gain rows with time or traffic are pruned: autoscale decisions thinned after two
days and forgotten after eight (tests/test_cost.py), drain batch ids after an hour, Slack request keys after two days, answered prompts
after a week, incidents' past openings after 35 days; a lost claim of a key is no database
error."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import event, func, select

from bot.store.audit import Actor
from bot.store.autoscale_settings import AutoscaleStore, Decision
from bot.store.confirmations import Confirmations
from bot.store.db import pool_size
from bot.store.drain_claims import KEEP as KEEP_DRAIN
from bot.store.models import WorkerHeartbeat
from bot.store.request_keys import KEEP, RequestKeys

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_old_decisions_are_forgotten(database):
    store = AutoscaleStore(database)
    for age in (timedelta(days=3), timedelta(hours=1)):
        store.record(Decision("myapp", NOW - age, 1, 1, False, "steady", 1))
    assert store.forget_decisions_before(NOW - timedelta(days=2)) == 1
    assert [d.at for d in store.decisions("myapp")] == [NOW - timedelta(hours=1)]


def test_drain_batch_ids_left_from_before_drain_claims_go_sooner_than_slack_keys(database):
    keys = RequestKeys(database)
    two_hours_ago = NOW - timedelta(hours=2)
    assert keys.claim("drain:myapp:frame-1", two_hours_ago)
    assert keys.claim("slack:trigger-1", two_hours_ago)
    assert keys.forget_older_than(NOW - KEEP, NOW - KEEP_DRAIN) == 1
    assert keys.claim("drain:myapp:frame-1", NOW)  # forgotten, so claimable again
    assert not keys.claim("slack:trigger-1", NOW)


def test_answered_and_expired_prompts_are_forgotten_after_a_week(database):
    prompts = Confirmations(database)
    actor = Actor("UADMIN01", channel_id="C1")

    def ask(days_ago: float) -> str:
        asked = NOW - timedelta(days=days_ago)
        return prompts.create(actor, "myapp", "kill myapp", {}, {}, asked).id

    old_cancelled, old_unanswered, recent = ask(8), ask(8), ask(1)
    assert prompts.decide(old_cancelled, "UADMIN01", "cancelled", NOW - timedelta(days=8))
    # Still pending (the expiry job has not run): not this job's to judge.
    assert prompts.forget_before(NOW - timedelta(days=7)) == 1
    assert prompts.get(old_cancelled) is None
    assert prompts.get(old_unanswered) is not None and prompts.get(recent) is not None
    assert len(prompts.expire_due(NOW)) == 2
    assert prompts.forget_before(NOW - timedelta(days=7)) == 1
    assert prompts.get(old_unanswered) is None and prompts.get(recent) is not None


def test_the_pool_size_comes_from_one_setting():
    assert pool_size({}) == 3
    assert pool_size({"DEPLOYBOT_DB_POOL_SIZE": "5"}) == 5
    # Read as check-config reads it: pasted with its quotes, it had been "ok" there and
    # the default here.
    assert pool_size({"DEPLOYBOT_DB_POOL_SIZE": '"5"\n'}) == 5
    # A value check-config names is the default, whatever was wrong with it: 100000 had
    # been handed to SQLAlchemy as the pool's size.
    for wrong in ("0", "-2", "100000", "many", "5.5"):
        assert pool_size({"DEPLOYBOT_DB_POOL_SIZE": wrong}) == 3, wrong


def test_a_lost_claim_is_no_error_in_the_database(database):
    # Every Slack retry, and every worker-down reply after the first, loses a claim: it
    # must not be a failed INSERT (an ERROR line in PostgreSQL's log, a rolled-back
    # transaction), only an insert that did nothing.
    keys = RequestKeys(database)
    errors: list[BaseException] = []
    event.listen(
        database.engine, "handle_error", lambda context: errors.append(context.original_exception)
    )
    assert keys.claim("slack:trigger-1", NOW)
    assert not keys.claim("slack:trigger-1", NOW)
    assert not keys.claim("slack:trigger-1", NOW + timedelta(seconds=1))
    assert errors == []


def test_the_heartbeats_of_worker_processes_long_gone_are_forgotten(config):
    """Off Heroku a worker is named by host and process id, a new row at each restart; the
    heartbeat table had kept one per restart for good."""
    from bot.store.heartbeats import Heartbeats
    from bot.worker.main import Worker

    worker = Worker(config)
    beats = Heartbeats(worker.db)
    now = datetime.now(UTC)  # the job reads the clock
    for n, age in enumerate((timedelta(days=8), timedelta(days=8), timedelta(minutes=1))):
        beats.beat(f"host:{n}", n == 2, now - age, None, now - age)
    worker.forget_request_keys()
    assert beats.latest(leader_only=False).worker == "host:2"
    with worker.db.session() as session:
        assert session.scalar(select(func.count()).select_from(WorkerHeartbeat)) == 1
    worker.db.dispose()


def test_incident_openings_are_kept_for_35_days_once_resolved(database):
    from bot.store.incidents import Alerts
    from bot.store.models import IncidentOpening
    from bot.worker.main import KEEP_OPENINGS
    from policies.incidents import Event

    alerts = Alerts(database)
    for age in (timedelta(days=40), timedelta(days=1)):
        at = NOW - age
        alerts.record([Event("myapp", "crash", "web", at)], at, lambda app: None)
        alerts.record([], at + timedelta(minutes=11), lambda app: None)  # resolved
    alerts.record([Event("myapp", "crash", "web", NOW)], NOW, lambda app: None)  # open
    assert alerts.forget_openings_before(NOW - KEEP_OPENINGS) == 1
    with database.session() as session:
        kept = session.scalars(select(IncidentOpening.opened_at)).all()
    assert len(kept) == 2  # the open one, and the one that resolved a day ago
