"""What a `dyno` notification means: formation crashes, one-off failures, and whatever else
Heroku (or a forger with the secret) might put in the fields, without ever raising."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from policies.heroku_webhooks import WebhookEvent, is_one_off
from policies.incidents import step

AT = datetime(2026, 11, 30, 15, 2, tzinfo=UTC)


def event(**data) -> WebhookEvent:
    return WebhookEvent("d1", "dyno", "update", "myapp", AT, data)


def test_a_formation_crash_is_critical_and_names_its_type_and_exit():
    crash = event(name="web.2", type="web", state="crashed", exit_status=1).incident_event()
    assert crash is not None
    assert (crash.kind, crash.subject, crash.detail) == (
        "crash",
        "web",
        "web.2 crashed (exit status 1)",
    )


def test_one_offs_are_told_apart_by_type_or_management():
    assert is_one_off({"type": "scheduler"}) and is_one_off({"type": "run"})
    assert is_one_off({"type": "release"})
    assert is_one_off({"type": "worker", "management": "run:detached"})
    assert not is_one_off({"type": "web", "management": None})


def test_a_failed_one_off_is_a_notice_with_command_and_status_escaped_when_shown():
    notice = event(
        name="run.4821",
        type="run",
        state="crashed",
        exit_status=137,
        management="run:detached",
        command="rake `cleanup` <!channel>",
    ).incident_event()
    assert notice is not None and notice.kind == "one_off_failed" and notice.subject == "run"
    assert notice.detail == (
        "run.4821 “rake `cleanup` <!channel>” exited with status 137 "
        "(killed with SIGKILL: usually over its memory, or past its time limit)."
    )
    [shown] = step({}, [notice], AT, lambda app: "C1").notices
    assert "“rake ˋcleanupˋ &lt;!channel&gt;” exited with status 137" in shown.text


def test_a_one_off_that_ends_well_or_is_still_running_is_no_news():
    assert event(type="scheduler", state="down", exit_status=0).incident_event() is None
    assert event(type="run", state="up").incident_event() is None
    assert event(type="run", state="starting").incident_event() is None


_ANY = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=300)


_STATES = st.sampled_from(["crashed", "up", "down", "starting"]) | _ANY
_TYPES = st.sampled_from(["web", "run", "scheduler", "release"]) | _ANY


@given(
    st.dictionaries(
        st.sampled_from(["name", "exit_status", "management", "command"]),
        _ANY | st.lists(_ANY, max_size=3) | st.dictionaries(st.text(max_size=5), _ANY, max_size=3),
    ),
    _STATES,
    _TYPES,
)
def test_no_dyno_data_makes_it_raise(data, state, process_type):
    found = event(**data, state=state, type=process_type).incident_event()
    assert found is None or found.kind in ("crash", "one_off_failed")
    if found is not None:
        assert found.subject.replace("-", "").replace("_", "").isalnum()
        for notice in step({}, [found], AT, lambda app: "C1").notices:
            assert "<" not in notice.text and len(notice.text) < 1000
