"""`bot.actions.reconcile.judge`: what a read-back says about a change, table by table and
for any formation (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.actions.reconcile import judge, now_running

BEFORE = {"web": [1, "Standard-1X"], "worker": [1, "Standard-1X"]}


@pytest.mark.parametrize(
    ("requested", "now", "outcome"),
    [
        ({"web": [2, None]}, {"web": (2, "Standard-1X")}, "ok"),
        ({"web": [2, None]}, {"web": (1, "Standard-1X")}, "not-applied"),
        ({"web": [2, None]}, {"web": (3, "Standard-1X")}, "unknown"),  # someone else too
        ({"web": [2, "standard-2x"]}, {"web": (2, "Standard-2X")}, "ok"),  # sizes by case
        ({"web": [2, "standard-2x"]}, {"web": (2, "Standard-1X")}, "unknown"),
        ({"web": [0, None], "worker": [0, None]}, {"web": (0, "?"), "worker": (1, "?")}, "unknown"),
        ({"clock": [1, None]}, {"web": (1, "Standard-1X")}, "unknown"),  # the type is gone
    ],
)
def test_judge(requested, now, outcome):
    assert judge(BEFORE, requested, now) == outcome


_types = st.sampled_from(["web", "worker", "clock"])
_counts = st.integers(min_value=0, max_value=5)


@given(
    st.dictionaries(_types, _counts, min_size=1),
    st.dictionaries(_types, _counts, min_size=1),
    st.dictionaries(_types, _counts),
)
def test_ok_exactly_when_what_was_asked_runs(before, requested, now):
    shown = {t: (q, "Basic") for t, q in now.items()}
    outcome = judge(
        {t: [q, "Basic"] for t, q in before.items()},
        {t: [q, None] for t, q in requested.items()},
        shown,
    )
    asked_runs = all(now.get(t) == q for t, q in requested.items())
    assert (outcome == "ok") == asked_runs
    if outcome == "not-applied":
        assert all(now.get(t) == before.get(t) for t in requested)
    assert now_running(requested, shown).count("is now") == len(requested)


def test_two_workers_sweeping_at_once_settle_a_row_once(config, heroku, monkeypatch):
    # A deploy: the old worker's pass, slow on the platform's reads, runs on past the 20 s
    # it is waited for after SIGTERM, and the new leader's first pass reads the same rows.
    # Both settled each: the row's note said "Read back: …" twice in `/deploy history`.
    from datetime import UTC, datetime, timedelta

    from bot.actions.reconcile import SETTLE_AFTER
    from bot.platforms.heroku import HerokuPlatform
    from bot.services import Services
    from bot.store.audit import Actor, AuditLog
    from tests.conftest import ADMIN

    old, new = Services(config), Services(config)
    audit = AuditLog(old.db)
    entry = audit.start(
        Actor(ADMIN), "scale", "myapp", "scale web=3 myapp", {"web": [1, None]}, {"web": [3, None]}
    )  # the web dyno died before Heroku answered: the row stays pending
    later = datetime.now(UTC) + SETTLE_AFTER + timedelta(minutes=1)
    formation = HerokuPlatform.formation
    overlapped = []

    def slow_read(self, app):
        if not overlapped:
            overlapped.append(None)
            overlapped[0] = new.actions.reconciler.sweep(later)  # the new leader's pass
        return formation(self, app)

    monkeypatch.setattr(HerokuPlatform, "formation", slow_read)
    try:
        swept = old.actions.reconciler.sweep(later)
        assert overlapped == [1] and swept == 0  # the old pass finds it settled already
        [row] = [e for e in audit.recent("myapp", limit=None) if e.id == entry]
        assert row.outcome == "not-applied"
        assert row.error == (
            "The bot stopped before it heard back. Read back: web is now 1 × Standard-1X."
        )
    finally:
        old.db.dispose()
        new.db.dispose()
