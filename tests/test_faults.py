"""The actions path under faults, through the real web app: a change that may have been
made is read back and said as it stands, never "not changed, try again"; rows left pending
or unknown get a final outcome from the worker's reconciliation pass; throttling answers at
once and holds no thread; a failed read at click time leaves the prompt usable."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from bot.actions.background import THREADS as BACKGROUND_THREADS
from bot.logs import LogfmtFormatter
from bot.store.audit import Actor, AuditLog
from bot.worker.main import Worker
from handlers.render import CANCEL_ACTION, CONFIRM_ACTION
from policies.heroku_webhooks import one_off_detail
from tests.conftest import ADMIN, HEROKU_KEY, USER
from tests.webclient import SlackDriver, button, settle

OTHER_KEY = "other-account-key"


@pytest.fixture
def web(new_app, config):
    app = new_app(config)
    yield app
    app.extensions["deploybot"].db.dispose()


@pytest.fixture
def driver(web, slack):
    return SlackDriver(web.test_client(), slack)


def audit(web) -> AuditLog:
    return AuditLog(web.extensions["deploybot"].db)


def reconcile(config, minutes: float) -> int:
    """Run the worker's reconciliation pass as if `minutes` had passed."""
    worker = Worker(config)
    try:
        return worker.reconcile(datetime.now(UTC) + timedelta(minutes=minutes))
    finally:
        worker.services().db.dispose()
        worker.db.dispose()


def patches(heroku):
    return [r for r in heroku.requests if r.method == "PATCH"]


def test_a_dropped_connection_after_the_change_is_read_back_not_called_a_failure(
    web, driver, heroku
):
    heroku.drop_next(methods=["PATCH"])
    _, url = driver.command("scale web+1 myapp", ADMIN)
    reply = driver.reply(url)
    text = reply["text"]
    assert "dropped after the request was sent" in text
    assert "web is now 2" in text and "so it was made" in text
    assert "Try again" not in text and "nothing was changed" not in text
    assert reply["response_type"] == "in_channel"
    assert len(patches(heroku)) == 1 and heroku.formation("myapp")["web"][0] == 2
    [entry] = audit(web).recent()
    assert entry.outcome == "ok" and entry.after["web"][0] == 2
    # What the user was told, where it had kept "Check `/deploy status myapp` before trying
    # again." on a change read back as made.
    assert entry.error.startswith("The connection to Heroku's API dropped") and entry.error in text
    assert entry.error.endswith("I read it back: web is now 2 × Standard-1X, so it was made.")


def test_a_maybe_failed_write_that_did_not_land_stays_unknown_then_the_worker_settles_it(
    web, driver, heroku, config
):
    heroku.fail_next(503, count=10, methods=["PATCH"])
    _, url = driver.command("scale web+1 myapp", ADMIN)
    text = driver.reply(url)["text"]
    assert "web is now 1" in text and "not what was asked, yet" in text
    assert "/deploy status myapp" in text
    [entry] = audit(web).recent()
    assert entry.outcome == "unknown"  # a slow request may still land: not final yet

    assert reconcile(config, minutes=0) == 0  # too fresh for the pass: left alone
    assert reconcile(config, minutes=5) == 1
    assert reconcile(config, minutes=10) == 0  # once
    [entry] = audit(web).recent()
    assert entry.outcome == "not-applied" and "Read back: web is now 1" in entry.error
    _, url = driver.command("history myapp failed", ADMIN)
    assert "not applied" in driver.reply(url)["text"]


def test_a_row_left_pending_by_a_dead_process_gets_its_outcome_from_the_read_back(
    web, heroku, config
):
    log = audit(web)
    # The process wrote its intent, Heroku applied the change, and the process died.
    entry = log.start(
        Actor(ADMIN),
        "scale",
        "myapp",
        "scale web=3 myapp",
        {"web": [1, "Standard-1X"]},
        {"web": [3, None]},
    )
    web.extensions["deploybot"].resolve("myapp").platform.scale("myapp", {"web": (3, None)})
    restart = log.start(Actor(ADMIN), "restart", "myapp", "restart myapp", None, {"target": "all"})
    assert reconcile(config, minutes=5) == 2
    rows = {e.id: e for e in log.recent()}
    assert rows[entry].outcome == "ok" and "stopped before it heard back" in rows[entry].error
    assert rows[entry].finished_at is not None
    # A restart leaves nothing to read back: it says so instead of staying pending.
    assert rows[restart].outcome == "unknown"


def test_throttling_answers_at_once_and_an_unrelated_command_is_not_kept_waiting(
    new_app, driver, heroku, slack, tmp_path, monkeypatch, config
):
    registry = tmp_path / "deploybot.yml"
    registry.write_text(
        "heroku:\n  allow_unlisted: true\n"
        "apps:\n  other-app:\n    platform: heroku\n    api_key_env: OTHER_HEROKU_KEY\n"
    )
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(registry))
    monkeypatch.setenv("OTHER_HEROKU_KEY", OTHER_KEY)
    heroku.api_keys = frozenset({HEROKU_KEY, OTHER_KEY})
    web = new_app(config)
    try:
        driver = SlackDriver(web.test_client(), slack)
        heroku.fail_next(429, count=100, retry_after=3600, methods=["PATCH"])
        started = time.monotonic()
        urls = [driver.command("scale web=2 myapp", ADMIN)[1] for _ in range(10)]
        replies = [driver.reply(url)["text"] for url in urls]
        throttled_in = time.monotonic() - started
        assert all("rate-limiting" in r and "allows the next call at" in r for r in replies)
        # No retries, and once one 429 is stored the rest are answered without a call: only
        # the commands already running on the other listener threads reached Heroku.
        assert 1 <= len(patches(heroku)) <= BACKGROUND_THREADS

        started = time.monotonic()
        _, url = driver.command("status other-app", USER)
        status = driver.reply(url)
        status_in = time.monotonic() - started
        assert "Status of `other-app`: web=2" in status["text"]
        print(
            f"\nten throttled commands answered in {throttled_in:.2f} s; "
            f"then an unrelated status in {status_in:.2f} s"
        )
    finally:
        web.extensions["deploybot"].db.dispose()


def test_throttling_never_sleeps_through_a_long_retry_after(driver, heroku, monkeypatch):
    import urllib3.util.retry

    sleeps: list[float] = []
    monkeypatch.setattr(urllib3.util.retry.time, "sleep", sleeps.append)
    heroku.fail_next(429, count=100, retry_after=3600)
    _, url = driver.command("status myapp", USER)
    assert "rate-limiting" in driver.reply(url)["text"]
    # status's four reads go out together: each was answered 429 at once, none retried.
    assert sleeps == [] and 1 <= len(heroku.requests) <= 4


def test_a_failed_read_at_click_time_leaves_the_prompt_usable(web, driver, heroku, monkeypatch):
    from bot.platforms import heroku as heroku_module

    monkeypatch.setattr(heroku_module, "MAX_RETRY_AFTER", 0.5)  # a 1 s Retry-After: no retry
    _, url = driver.command("kill myapp worker", ADMIN)
    prompt = driver.reply(url)
    value = button(prompt, CONFIRM_ACTION)["value"]
    heroku.fail_next(503, count=10, methods=["GET"])
    _, url = driver.click(CONFIRM_ACTION, value, ADMIN)
    text = driver.reply(url)["text"]
    assert "503" in text and "stays open" in text
    assert patches(heroku) == [] and audit(web).recent() == []
    heroku._faults.clear()
    heroku.fail_next(429, count=1, retry_after=1, methods=["PATCH"])  # refused at the write
    _, url = driver.click(CONFIRM_ACTION, value, ADMIN)
    assert "rate-limiting" in driver.reply(url)["text"]
    [refused] = audit(web).recent()
    assert refused.outcome == "error"
    time.sleep(1.1)  # the stored Retry-After passes
    _, url = driver.click(CONFIRM_ACTION, value, ADMIN)
    assert "worker 1 → 0" in driver.reply(url)["text"]
    assert len(patches(heroku)) == 2
    assert [e.outcome for e in audit(web).recent()] == ["ok", "error"]


def test_an_expensive_change_asks_first_with_its_cost(web, driver, heroku):
    _, url = driver.command("scale web=99 myapp", ADMIN)
    prompt = driver.reply(url)
    assert "Monthly cost: ≈ $50/month → $2,500/month (+$2,450/month)" in prompt["text"]
    assert "threshold" in prompt["text"]
    button(prompt, CONFIRM_ACTION)
    settle()
    assert patches(heroku) == []
    # A new size, often what moves the cost, is in the question as it will be in the answer.
    _, url = driver.command("scale web=2:performance-l myapp", ADMIN)
    resized = driver.reply(url)["text"]
    assert "asks to scale `myapp`: web 1 → 2 (standard-1x → performance-l)." in resized
    # A size with no known price counted as $0, so `web=3:private-2xl` ran at once however
    # much it costs: it cannot be judged, so it is asked.
    _, url = driver.command("scale web=3:private-2xl myapp", ADMIN)
    prompt = driver.reply(url)
    assert (
        "Monthly cost: ≈ $50/month → unknown: no price is known for `private-2xl`.\n"
        "With its cost unknown, I ask first."
    ) in prompt["text"]
    button(prompt, CONFIRM_ACTION)
    assert patches(heroku) == []
    # A small change goes ahead as before.
    _, url = driver.command("scale web=2 myapp", ADMIN)
    assert "web 1 → 2" in driver.reply(url)["text"]


def test_an_unlisted_app_has_a_default_max(web, driver, heroku):
    _, url = driver.command("scale web=999 myapp", ADMIN)
    text = driver.reply(url)["text"]
    assert "100" in text and patches(heroku) == []
    [entry] = audit(web).recent()
    assert entry.outcome == "refused"


def history_of(driver, word: str) -> str:
    _, url = driver.command(f"history myapp {word}", ADMIN)
    return driver.reply(url)["text"]


def test_refused_requests_are_in_the_history(web, driver, heroku):
    _, url = driver.command("scale web=2 myapp", USER)
    driver.reply(url)
    assert [e.outcome for e in audit(web).recent()] == ["refused"]
    assert "(refused)" in history_of(driver, "refused")
    assert "No cancelled requests" in history_of(driver, "cancelled")


def test_cancelled_and_expired_requests_are_in_the_history(web, driver, heroku):
    _, url = driver.command('kill myapp --force "x` <!channel> &"', ADMIN)
    value = button(driver.reply(url), CANCEL_ACTION)["value"]
    _, url = driver.click(CANCEL_ACTION, value, ADMIN)
    cancelled = driver.reply(url)["text"]
    assert "<!channel>" not in cancelled and "&lt;!channel&gt;" in cancelled
    assert cancelled.count("`") == 2  # the backtick inside cannot close the code span
    assert "cancelled" in history_of(driver, "cancelled")
    assert [e.outcome for e in audit(web).recent()] == ["cancelled"]


def test_an_expired_prompt_is_in_the_history_and_its_message_is_shown_as_typed(
    web, driver, heroku, slack, config
):
    from sqlalchemy import update

    from bot.store.models import Confirmation

    _, url = driver.command('kill myapp --force "x` <!channel>"', ADMIN)
    driver.reply(url)
    services = web.extensions["deploybot"]
    with services.db.session() as session, session.begin():
        session.execute(
            update(Confirmation).values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    worker = Worker(config)
    try:
        assert worker.expire_prompts() == 1
    finally:
        worker.db.dispose()
    expired = slack.wait_for_responses(url, n=2, timeout=10)[-1]["text"]
    assert "expired" in expired and "<!channel>" not in expired and expired.count("`") == 4
    assert [e.outcome for e in audit(web).recent()] == ["expired"]
    assert "expired" in history_of(driver, "expired")


FAULTS = {
    "dropped after applying": lambda heroku: heroku.drop_next(methods=["PATCH"]),
    "429 Retry-After 3600": lambda heroku: heroku.fail_next(429, count=20, retry_after=3600),
    "503 on the write": lambda heroku: heroku.fail_next(503, count=20, methods=["PATCH"]),
    "503 Retry-After 3600": lambda heroku: heroku.fail_next(503, count=20, retry_after=3600),
    "one 503, then fine": lambda heroku: heroku.fail_next(503, count=1, methods=["PATCH"]),
    "timeout": None,  # set up in the test: a slow fake and a short read timeout
}
SAYS_DONE = ("so it was made", "scaled `myapp`")
SAYS_NOT_DONE = ("nothing was", "Nothing was")


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_no_fault_makes_a_relative_change_twice_or_misreports_it(
    web, driver, heroku, monkeypatch, fault
):
    """`scale web+1` under each fault: web moves by at most one, and the reply never says
    "nothing was changed" about a change made, nor "done" about one not made."""
    from bot.platforms import heroku as heroku_module

    if fault == "timeout":
        monkeypatch.setattr(heroku_module, "READ_TIMEOUT", 0.3)
        heroku.latency, heroku.slow_methods = 0.6, frozenset({"PATCH"})
    else:
        FAULTS[fault](heroku)
    _, url = driver.command("scale web+1 myapp", ADMIN)
    text = driver.reply(url)["text"]
    heroku.latency = 0
    heroku._faults.clear()
    time.sleep(0.7 if fault == "timeout" else 0)  # let a slow PATCH land
    moved = heroku.formation("myapp")["web"][0] - 1
    wrong = 0
    if moved == 1 and any(words in text for words in SAYS_NOT_DONE):
        wrong += 1
    if moved == 0 and any(words in text for words in SAYS_DONE):
        wrong += 1
    if moved not in (0, 1):
        wrong += 1
    if moved == 0 and not any(words in text for words in SAYS_NOT_DONE):
        # Unsure is allowed only when it cannot tell: then it must say to check first.
        assert "/deploy status myapp" in text, text
    print(f"\n{fault}: web moved by {moved}; wrong: {wrong}; said: {text[:160]}")
    assert wrong == 0, text
    assert "Traceback" not in text


def test_a_write_answered_5xx_is_not_sent_again_and_is_read_back(web, driver, heroku):
    """Heroku makes the change and answers 503; a retry would meet a 429. The retry had been
    sent, and its 429 reported "nothing was done" of a dyno added: `scale web+1` asked
    again then added a second."""
    from bot.sandbox.fakes.heroku import _Fault, _Reply

    made = heroku._formation_batch_update

    def applied_then_503(call):
        made(call)
        heroku._faults.append(_Fault(429, 1, 3600.0, frozenset({"PATCH"})))
        return _Reply(503, {"id": "unavailable", "message": "The API is temporarily unavailable."})

    heroku._formation_batch_update = applied_then_503
    try:
        _, url = driver.command("scale web+1 myapp", ADMIN)
        text = driver.reply(url)["text"]
    finally:
        heroku._formation_batch_update = made
        heroku._faults.clear()
    assert len([r for r in heroku.requests if r.method == "PATCH"]) == 1
    assert heroku.formation("myapp")["web"][0] == 2
    assert "Heroku's API failed (503)" in text and "web is now 2" in text
    assert "so it was made" in text and "nothing was" not in text.lower()
    [entry] = audit(web).recent()
    assert entry.outcome == "ok"


def test_a_restart_whose_answer_was_lost_says_to_check_and_is_settled_later(
    web, driver, heroku, config
):
    heroku.drop_next(methods=["DELETE"])
    _, url = driver.command("restart myapp web", ADMIN)
    reply = driver.reply(url)
    assert "dropped after the request was sent" in reply["text"]
    assert "Restarting twice does no harm" in reply["text"]
    assert "nothing was changed" not in reply["text"]
    assert reply["text"].lower().count("check `/deploy status") == 1  # one piece of advice
    [entry] = audit(web).recent()
    assert entry.outcome == "unknown"
    assert reconcile(config, minutes=5) == 1
    [entry] = audit(web).recent()
    assert entry.outcome == "unknown" and "Nothing to read back" in entry.error


def test_a_failed_statement_names_no_value_it_was_given(database):
    # The error's log line (`safely`, the background job, the worker's scheduler) would
    # otherwise carry a webhook secret, a drain token or a config value with it.
    with pytest.raises(DBAPIError) as caught, database.engine.connect() as connection:
        connection.execute(text("SELECT * FROM no_such_table WHERE x = :v"), {"v": "sk_live_42"})
    assert "no_such_table" in str(caught.value) and "sk_live_42" not in str(caught.value)


def test_a_log_line_carries_no_credential_of_a_known_shape():
    secrets_seen = {
        "AKIAIOSFODNN7EXAMPLE": "Credential=AKIAIOSFODNN7EXAMPLE/20261201/us-east-1",
        "hunter2": "could not connect to postgres://admin:hunter2@db.example:5432/prod",
        "eyJhbGciOi.payload.sig": "Authorization: Bearer eyJhbGciOi.payload.sig",
        "q1w2e3r4t5": "GET https://app.example/hirefire/q1w2e3r4t5/info failed",
        "xoxe-1-abc": "refresh xoxe-1-abc",
    }
    record = logging.makeLogRecord(
        {"name": "x", "levelname": "ERROR", "msg": " | ".join(secrets_seen.values())}
    )
    record.why = secrets_seen["hunter2"]  # an `extra` value is redacted as the message is
    line = LogfmtFormatter().format(record)
    assert not [secret for secret in secrets_seen if secret in line], line
    assert "/hirefire/[redacted]/info" in line


def test_a_failed_one_off_dyno_alert_masks_its_command_line():
    detail = one_off_detail(
        {"name": "run.4821", "command": "STRIPE_KEY=sk_live_1 psql postgres://a:pw@db/prod"}, 1
    )
    assert "sk_live_1" not in detail and ":pw@" not in detail
    assert detail.startswith("run.4821 “STRIPE_KEY=")


def test_an_app_s_own_heroku_key_pasted_with_a_newline_is_read_as_meant(
    new_app, slack, heroku, tmp_path, monkeypatch, config
):
    # DEPLOYBOT_CONFIG's api_key_env names a config var the bot reads for that app alone;
    # HEROKU_API_KEY was trimmed of a pasted newline, that one was sent with it, and
    # Heroku refused every command on the app as "unauthorized".
    heroku.api_keys = frozenset({HEROKU_KEY, OTHER_KEY})
    text = _status_of_other_app(new_app, config, slack, tmp_path, monkeypatch, f' "{OTHER_KEY}"\n')
    assert "Status of `other-app`: web=" in text, text


def test_a_refused_key_is_named_by_the_variable_that_holds_it(
    new_app, slack, heroku, tmp_path, monkeypatch, config
):
    # It always said "check HEROKU_API_KEY": for an app on another account's key, the admin
    # checked a key that works and fixed nothing.
    text = _status_of_other_app(new_app, config, slack, tmp_path, monkeypatch, "revoked-key")
    assert "An admin should check OTHER_HEROKU_KEY." in text, text


def _status_of_other_app(new_app, config, slack, tmp_path, monkeypatch, key: str) -> str:
    """`status other-app`'s answer, for an app whose registry entry names its own key's
    variable (OTHER_HEROKU_KEY, set to `key`)."""
    registry = tmp_path / "deploybot.yml"
    registry.write_text(
        "apps:\n  other-app:\n    platform: heroku\n    api_key_env: OTHER_HEROKU_KEY\n"
    )
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(registry))
    monkeypatch.setenv("OTHER_HEROKU_KEY", key)
    web = new_app(config)
    try:
        driver = SlackDriver(web.test_client(), slack)
        _, url = driver.command("status other-app", USER)
        return driver.reply(url)["text"]
    finally:
        web.extensions["deploybot"].db.dispose()
