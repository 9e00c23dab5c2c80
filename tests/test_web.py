"""The web app end to end through Flask: signed Slack requests in, Heroku calls and
response_url messages out, against the fake Heroku and fake Slack over real HTTP."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.sandbox.slack_requests import sign, slash_command
from bot.store.audit import AuditLog
from bot.web.app import close, create_app
from handlers.alerts import ACK_ACTION, SILENCE_ACTION
from handlers.charts import CHART_ACTION
from handlers.clicks import NOT_MINE
from handlers.render import CANCEL_ACTION, CONFIRM_ACTION
from policies.commands import SUMMARY, USAGE, VERBS
from tests.conftest import ADMIN, OTHER_ADMIN, SIGNING_SECRET, USER
from tests.webclient import SlackDriver, ack_text, button, settle, wait_for


@pytest.fixture
def web(new_app, config):
    return new_app(config)


@pytest.fixture
def driver(web, slack):
    return SlackDriver(web.test_client(), slack)


def patches(heroku):
    return [r for r in heroku.requests if r.method == "PATCH"]


def test_healthz_checks_the_database(driver):
    response = driver.client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"ok": True, "database": "ok"}


OUR_THREADS = ("background", "followup", "drain-claims", "metrics-flush")


def test_closing_the_app_answers_the_command_in_hand_and_stops_its_threads(config, heroku, slack):
    # Left running, an app's job, claim and flush threads went on calling the fakes (and
    # the database) of a test that had ended: one posted to a stopped fake Slack in CI.
    web = create_app(config)
    driver = SlackDriver(web.test_client(), slack)
    heroku.latency = 0.2  # the status is still reading Heroku when close() is called
    _, url = driver.command("status myapp", ADMIN)
    intake, flusher = web.extensions["deploybot.metrics"]
    intake.receive("myapp", {"Logplex-Frame-Id": "f1"}, b"")  # starts the claimer
    flusher.start()
    threads = [t for t in threading.enumerate() if t.name.startswith(OUR_THREADS)]
    assert threads
    close(web)
    assert [t.name for t in threads if t.is_alive()] == []
    # Answered, not dropped: close waited for the job.
    [answer] = slack.responses_for(url)
    assert "myapp" in answer.payload["text"]


def test_healthz_reports_an_unreachable_database(config):
    web = create_app(replace(config, database_url="postgresql://postgres@127.0.0.1:9/none"))
    response = web.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["ok"] is False


def test_commands_while_the_database_is_unreachable_say_so_plainly(config, slack, heroku, caplog):
    """Heroku Postgres restarting, or a connection limit: a change is refused before
    anything is done (its request key is the first thing written), a read says why it
    cannot answer; neither is "something went wrong" with an error id, nor a trace."""
    web = create_app(replace(config, database_url="postgresql://postgres@127.0.0.1:9/none"))
    driver = SlackDriver(web.test_client(), slack)
    try:
        _, scaled = driver.command("scale web=2 myapp", ADMIN)
        _, read = driver.command("status myapp", ADMIN)
        [change] = driver.replies(scaled)
        [status] = driver.replies(read)
    finally:
        close(web)
    assert change["text"] == (
        "I cannot reach my database just now, so I changed nothing: every change is recorded "
        "there first. Try again in a minute."
    )
    assert status["text"] == (
        "I cannot reach my database just now, so I could not finish this; if you asked for a "
        "change, check the app before trying again. If it goes on, whoever runs deploybot can "
        "look with `heroku pg:info`."
    )
    assert heroku.calls("PATCH", "/apps/myapp/formation") == []
    assert "Traceback" not in caplog.text and "unhandled error" not in caplog.text


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Slack-Signature": "v0=" + "0" * 64, "X-Slack-Request-Timestamp": "now"},
        "wrong-secret",
        "stale",
    ],
    ids=["no-headers", "garbage", "wrong-secret", "stale-timestamp"],
)
def test_unsigned_or_badly_signed_requests_are_rejected(driver, heroku, headers):
    body = slash_command("scale web=2 myapp", driver.slack.new_response_url(), user_id=ADMIN)
    if headers == "wrong-secret":
        headers = sign("not-the-secret", body)
    elif headers == "stale":
        headers = sign(SIGNING_SECRET, body, timestamp=int(time.time()) - 600)
    else:
        headers = {"Content-Type": "application/x-www-form-urlencoded", **headers}
    response = driver.post(body, headers=headers)
    assert response.status_code == 401
    settle()
    assert patches(heroku) == []


def test_scale_makes_one_schema_valid_patch_and_answers_in_channel(driver, heroku):
    ack, url = driver.command("scale web=2 myapp", ADMIN)
    assert "Working on `scale web=2 myapp`" in ack_text(ack)
    reply = driver.reply(url)
    assert reply["response_type"] == "in_channel"
    assert f"<@{ADMIN}> scaled `myapp`: web 1 → 2" in reply["text"]
    [patch] = patches(heroku)
    assert patch.path == "/apps/myapp/formation"
    assert patch.json == {"updates": [{"type": "web", "quantity": 2}]}
    assert heroku.violations == []
    assert heroku.formation("myapp")["web"][0] == 2


def test_scale_with_size_and_relative_terms(driver, heroku):
    _, url = driver.command("scale web+2:standard-2x worker-1 -a myapp", ADMIN)
    with pytest.raises(AssertionError):
        # web+2:size is refused by the grammar before anything is sent
        driver.reply(url)
    _, url = driver.command("scale web=3:standard-2x worker+1 -a myapp", ADMIN)
    reply = driver.reply(url)
    assert "web 1 → 3 (Standard-1X → Standard-2X)" in reply["text"]
    assert patches(heroku)[-1].json == {
        "updates": [
            {"type": "web", "quantity": 3, "dyno_size": {"name": "standard-2x"}},
            {"type": "worker", "quantity": 2},
        ]
    }
    assert heroku.violations == []


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("scale web=two myapp", "`web=two`"),
        ("scale web=2", "Say which app"),
        ("frobnicate", "`frobnicate` is not a command"),
        # A new user's `/deploy status` had not been told where to find the names.
        ("status", "Say which app. `/deploy apps` lists them. Usage: `/deploy status APP`"),
        ('restart "myapp', "unmatched quote"),
        ("\u0000\u202e💥", "holds a control character (U+0000)"),
        ("\u202e💥", "`💥` is not a command I know"),  # the override left out
        # A near miss is suggested, never run: a guess must not change anything.
        ("scal web=2 myapp", "`scal` is not a command I know. Did you mean `scale web=2 myapp`?"),
        ("stauts myapp", "`stauts` is not a command I know. Did you mean `status myapp`?"),
        ("myapp status", "Did you mean `status myapp`? The verb comes first."),
        ("help scal", "Did you mean `scale` or `autoscale`?"),
    ],
)
def test_bad_input_gets_a_clear_ephemeral_answer_and_no_call(driver, heroku, text, says):
    ack, _ = driver.command(text, ADMIN)
    body = json.loads(ack.data)
    assert body["response_type"] == "ephemeral"
    assert says in body["text"] and "Usage:" in body["text"]
    settle()
    assert heroku.requests == []


def test_app_names_ignore_case(web, driver, heroku):
    _, url = driver.command("status MYAPP", USER)
    assert "myapp" in driver.reply(url)["text"]
    _, url = driver.command("scale web=2 -a MyApp", ADMIN)
    assert "web 1 → 2" in driver.reply(url)["text"]
    [entry] = AuditLog(web.extensions["deploybot"].db).recent(None, 5)
    assert (entry.app, entry.command) == ("myapp", "scale web=2 myapp")


@pytest.mark.parametrize("text", ["status payload-api", "scale web=2 -a payloads", "help payload"])
def test_a_command_with_the_word_payload_is_still_a_command(driver, heroku, text):
    # bolt reads any form body containing "payload" as a button click, and answered 404.
    ack, url = driver.command(text, ADMIN)
    assert ack.status_code == 200
    if text.startswith("help"):
        assert "/deploy" in ack_text(ack)
    else:
        assert "Heroku has no app called `payload" in driver.reply(url)["text"]


def test_help_and_empty_text_answer_in_the_ack(driver, heroku):
    for text in ("", "help", "help kill"):
        ack, _ = driver.command(text, USER)
        assert "/deploy" in ack_text(ack)
    assert "kill myapp" in ack_text(driver.command("help kill", USER)[0])


def test_help_fits_in_what_slack_recommends_for_a_message(driver, heroku):
    # It had been 4,218 characters: Slack recommends keeping a message under 4,000.
    text = ack_text(driver.command("help", USER)[0])
    assert len(text) < 4000, len(text)
    listed = [line.split("`")[1].split()[1] for line in text.splitlines() if line[:1] == "•"]
    assert listed == list(VERBS)
    # One verb's own help stays in full: its every form and what it does.
    autoscale = ack_text(driver.command("help autoscale", USER)[0])
    assert USAGE["autoscale"] in autoscale and SUMMARY["autoscale"] in autoscale


def test_help_says_first_to_someone_who_may_change_nothing(driver, heroku):
    # The list of verbs had read as an offer: each change was then refused one by one.
    for text in ("help", "help scale"):
        said = ack_text(driver.command(text, USER)[0])
        assert said.startswith(
            "You may not change any app in this channel: only read-only verbs (`status`, "
            "`logs`, `history`, …) are open to you. Only the admins in DEPLOYBOT_ADMINS may "
            "change apps: ask one of them to add your Slack user ID.\n"
        ), said
        assert "/deploy scale TYPE=N" in said  # the help itself follows
    assert ack_text(driver.command("help", ADMIN)[0]).startswith("*deploybot* scales")


def test_the_ack_echoes_a_long_command_clipped(driver, heroku):
    # 20 terms, as many as `scale` takes, of 30-character types: past what the ack echoes.
    terms = " ".join(f"t{i:02}{'x' * 27}=1" for i in range(20))
    said = ack_text(driver.command(f"scale {terms} myapp", ADMIN)[0])
    # It had echoed all the terms back: with 3,000 of them a 24,000-character answer.
    assert len(said) < 300, len(said)
    assert said.startswith(f"Working on `scale t00{'x' * 27}=1") and said.endswith("…`…")
    terms = " ".join(f"t{i}=1" for i in range(3000))
    said = ack_text(driver.command(f"scale {terms} myapp", ADMIN)[0])
    assert said.startswith("That is 3,000 scale terms, and one `scale` takes at most 20"), said
    assert len(said) < 300, len(said)


def test_non_admins_may_look_but_not_change(driver, heroku):
    _, url = driver.command("scale web=3 myapp", USER)
    reply = driver.reply(url)
    assert reply["response_type"] == "ephemeral"
    assert "You may not scale `myapp`: only the admins in DEPLOYBOT_ADMINS" in reply["text"]
    _, url = driver.command("status myapp", USER)
    assert "myapp" in driver.reply(url)["text"]
    assert patches(heroku) == []


def test_status_shows_formation_dynos_and_release(driver, heroku):
    _, url = driver.command("status myapp", USER)
    reply = driver.reply(url)
    assert reply["response_type"] == "in_channel"
    rendered = json.dumps(reply["blocks"])
    assert "`web` 1" in rendered and "`worker` 1" in rendered
    assert "`web.1` up" in rendered
    assert "Release: v" in rendered


@pytest.mark.parametrize(
    ("text", "method", "path", "says"),
    [
        ("restart myapp", "DELETE", "/apps/myapp/dynos", "every dyno of `myapp`"),
        ("restart myapp web", "DELETE", "/apps/myapp/formations/web", "the `web` dynos"),
        ("restart myapp web.1", "DELETE", "/apps/myapp/dynos/web.1", "dyno `web.1`"),
    ],
)
def test_restart_all_by_type_or_one_dyno(driver, heroku, text, method, path, says):
    _, url = driver.command(text, ADMIN)
    assert says in driver.reply(url)["text"]
    deletes = [r for r in heroku.requests if r.method == "DELETE"]
    assert [(r.method, r.path) for r in deletes] == [(method, path)]
    assert heroku.violations == []


def test_restart_of_a_fir_dyno_restarts_that_dyno(driver, heroku):
    # On Fir a dyno is `web-1234abcde-123ab`, no dot: it had been sent to the process-type
    # endpoint (`formations/web-…`), and told the app has no such dyno.
    heroku.add_app("firapp", formation={"web": (2, "standard-1x")}, generation="fir")
    name = heroku.dynos("firapp")[1]["name"]
    assert re.fullmatch(r"web-[0-9a-f]{9}-[0-9a-z]{5}", name)
    _, url = driver.command(f"restart firapp {name}", ADMIN)
    assert f"dyno `{name}`" in driver.reply(url)["text"]
    deletes = [(r.method, r.path) for r in heroku.requests if r.method == "DELETE"]
    assert deletes == [("DELETE", f"/apps/firapp/dynos/{name}")]
    assert heroku.violations == []


def test_kill_waits_for_the_requesters_click_and_acts_once(driver, heroku):
    _, url = driver.command("kill myapp", ADMIN)
    prompt = driver.reply(url)
    assert "asks to kill `myapp`: web 1 → 0, worker 1 → 0" in prompt["text"]
    confirm = button(prompt, CONFIRM_ACTION)
    assert confirm["text"]["text"] == "Kill myapp"
    settle()
    assert patches(heroku) == []

    # Somebody else, even an admin, cannot confirm another person's kill.
    _, url = driver.click(CONFIRM_ACTION, confirm["value"], OTHER_ADMIN)
    refusal = driver.reply(url)
    assert f"Only <@{ADMIN}>" in refusal["text"] and refusal["replace_original"] is False
    assert patches(heroku) == []

    # A double click (or Slack delivering it twice) acts once.
    with ThreadPoolExecutor(4) as pool:
        clicks = list(
            pool.map(lambda _: driver.click(CONFIRM_ACTION, confirm["value"], ADMIN), range(4))
        )
    assert [response.status_code for response, _ in clicks] == [200] * 4
    replies = [driver.reply(url) for _, url in clicks]
    settle()
    assert len(patches(heroku)) == 1
    done = [r for r in replies if "killed `myapp`" in r["text"]]
    assert len(done) == 1 and done[0]["replace_original"] is True
    assert "web 1 → 0, worker 1 → 0" in done[0]["text"]
    assert sum("already confirmed" in r["text"] for r in replies) == 3
    assert heroku.formation("myapp") == {"web": (0, "Standard-1X"), "worker": (0, "Standard-1X")}
    assert heroku.violations == []


def test_cancel_leaves_everything_as_it_was(driver, heroku):
    _, url = driver.command("kill myapp worker", ADMIN)
    prompt = driver.reply(url)
    _, url = driver.click(CANCEL_ACTION, button(prompt, CANCEL_ACTION)["value"], ADMIN)
    assert "cancelled `kill myapp worker`" in driver.reply(url)["text"]
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    assert "was cancelled" in driver.reply(url)["text"]
    settle()
    assert patches(heroku) == []
    assert heroku.formation("myapp")["worker"][0] == 1


@pytest.mark.parametrize("action", [CONFIRM_ACTION, CANCEL_ACTION, CHART_ACTION])
def test_a_click_without_a_value_is_told_so(driver, heroku, caplog, action):
    _, url = driver.command("kill myapp worker", ADMIN)
    driver.reply(url)
    response, url = driver.click_without(action, "unused", ADMIN, "value")
    ack_text(response)
    # It had said nothing: a KeyError in the click's job, with its traceback in the log.
    assert driver.reply(url)["text"] == NOT_MINE
    assert patches(heroku) == []
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.parametrize("value", ["abc\x00def", "\ud800"], ids=["NUL", "lone surrogate"])
@pytest.mark.parametrize("action", [CONFIRM_ACTION, CANCEL_ACTION, ACK_ACTION, SILENCE_ACTION])
def test_a_click_whose_value_no_button_of_ours_holds_is_told_so(driver, caplog, action, value):
    # The value is looked up in the database: a NUL was a DataError from PostgreSQL, a lone
    # surrogate an error from both drivers; the clicker got "Something went wrong" (or,
    # acknowledging, nothing) and the log a traceback.
    _, url = driver.click(action, value, ADMIN)
    assert driver.reply(url)["text"] == NOT_MINE
    assert not [r for r in caplog.records if r.exc_info or r.levelname == "ERROR"]


@pytest.mark.parametrize(
    "value",
    [
        "myapp --force|6h|channel",
        "|6h|thread",
        "<!here>|1h|home",
        # A window or a place no button of ours holds had been drawn anyway: 6 h, here.
        "myapp|99d|channel",
        "myapp|6h|elsewhere",
    ],
)
def test_a_chart_button_naming_no_app_is_told_so(driver, slack, value):
    _, url = driver.click(CHART_ACTION, value, ADMIN)
    assert driver.reply(url)["text"] == NOT_MINE
    assert slack.calls_to("chat.postMessage") == []


def test_a_confirm_without_a_response_url_is_answered_in_a_dm(driver, heroku, slack, caplog):
    _, url = driver.command("kill myapp worker", ADMIN)
    value = button(driver.reply(url), CONFIRM_ACTION)["value"]
    ack_text(driver.click_without(CONFIRM_ACTION, value, ADMIN, "response_url")[0])
    # It had acted and then said nothing: its answer raised for want of a response_url.
    [post] = slack.wait_for_calls("chat.postMessage", timeout=10)
    assert post.args["channel"] == ADMIN and "killed `myapp`" in post.args["text"]
    assert heroku.formation("myapp")["worker"][0] == 0
    assert not [r for r in caplog.records if r.exc_info]


def test_scale_to_zero_counts_as_a_kill(driver, heroku):
    _, url = driver.command("scale web=0 myapp", ADMIN)
    prompt = driver.reply(url)
    assert "asks to scale `myapp`: web 1 → 0" in prompt["text"]
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    assert "web 1 → 0" in driver.reply(url)["text"]
    assert [p.json for p in patches(heroku)] == [{"updates": [{"type": "web", "quantity": 0}]}]


def test_a_kill_prompt_lists_only_the_types_it_changes(driver, heroku):
    heroku.add_app("half-app", formation={"web": (1, "basic"), "worker": (0, "basic")})
    _, url = driver.command("kill half-app", ADMIN)
    prompt = driver.reply(url)
    # It had asked "web 1 → 0, worker 0 → 0".
    assert prompt["text"].startswith(
        f"<@{ADMIN}> asks to kill `half-app`: web 1 → 0. Dynos scaled to 0 stop serving at once."
    )
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    assert f"<@{ADMIN}> killed `half-app`: web 1 → 0." in driver.reply(url)["text"]
    assert heroku.formation("half-app") == {"web": (0, "Basic"), "worker": (0, "Basic")}
    # A scale that stops nothing running is not said to: worker is already at 0.
    _, url = driver.command("scale web=3 worker=0 half-app", ADMIN)
    assert "stop serving" not in driver.reply(url)["text"]


def test_an_expired_confirmation_is_refused(web, driver, heroku):
    _, url = driver.command("kill myapp", ADMIN)
    prompt = driver.reply(url)
    actions = web.extensions["deploybot"].actions
    real_now = actions._now
    actions._now = lambda: real_now() + timedelta(minutes=11)
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    assert "expired" in driver.reply(url)["text"]
    settle()
    assert patches(heroku) == []


@pytest.mark.parametrize(
    ("text", "setup", "says"),
    [
        ("status nosuchapp", None, "Heroku has no app called `nosuchapp`"),
        ("scale web=2:huge-9x myapp", None, "`huge-9x` is not a Heroku dyno size"),
        ("scale web=2:standard-3x myapp", None, "Did you mean `standard-2x` or `standard-1x`?"),
        ("scale web=2:basic myapp", None, "Heroku refused the change to `myapp`"),
        # Scale and kill had said "The app has no `clock` process type", naming no app.
        ("scale clock=1 myapp", None, "`myapp` has no `clock` process type (it has: `web`"),
        ("kill myapp clock", None, "`myapp` has no `clock` process type (it has: `web`"),
        # These had said "Heroku could not find that on `myapp`: Couldn't find that dyno."
        ("restart myapp clock.1", None, "`myapp` has no `clock.1` dyno (it has: `web.1`"),
        ("restart myapp clock", None, "`myapp` has no `clock` process type (it has: `web`"),
        ("scale web=2 myapp", (429, 10), "rate-limiting"),
        ("scale web=2 myapp", (503, 10), "Heroku's API failed (503)"),
        ("scale web=2 myapp", (401, 1), "rejected the bot's API key"),
        ("scale web=2 myapp", (403, 1), "may not do that on `myapp`"),
    ],
)
def test_heroku_errors_become_plain_sentences(driver, heroku, text, setup, says):
    if setup:
        status, count = setup
        heroku.fail_next(status, count=count)
    _, url = driver.command(text, ADMIN)
    reply = driver.reply(url)
    assert says in reply["text"]
    assert reply["response_type"] == "ephemeral"
    assert "Traceback" not in reply["text"]


@pytest.mark.parametrize(
    "text", ["status mypap", "scale web=2 mypap", "restart mypap", "history mypap", "kill mypap"]
)
def test_a_mistyped_app_gets_the_closest_names_the_heroku_key_can_see(driver, heroku, text):
    # No registry: the names come from Heroku's app list, read once the app was not found.
    _, url = driver.command(text, ADMIN)
    assert driver.reply(url)["text"] == (
        "Heroku has no app called `mypap`, or the bot's key cannot see it. Did you mean `myapp`?"
    )
    assert heroku.calls("GET", "/apps") and heroku.violations == []


@pytest.mark.parametrize(
    "text",
    ["alerts mypap", "metrics mypap", "chart mypap", "cost mypap", "ship mypap", "run mypap x"],
)
def test_verbs_that_read_what_is_stored_say_a_mistyped_app_does_not_exist(driver, heroku, text):
    # They had answered as for a real app with nothing to show: no open alerts, no traffic
    # (add a drain), its cost "unknown" in a list, no `source:` or `run:` in the registry.
    _, url = driver.command(text, ADMIN)
    assert driver.reply(url)["text"] == (
        "Heroku has no app called `mypap`, or the bot's key cannot see it. Did you mean `myapp`?"
    )
    # One read says so (the formation); the did-you-mean's app list follows only the 404.
    assert len(heroku.calls("GET", "/apps/mypap/formation")) == 1
    assert heroku.violations == []


def test_a_change_to_a_mistyped_app_leaves_the_same_error_row_whichever_verb(web, driver):
    # `ship` and `run` check the name first, and had answered without a row, where a change
    # whose formation read found no app (`scale`, `restart`, `kill`, `rollback`) keeps an
    # `error` one: docs/faults.md, "The audit trail keeps every request".
    texts = ["scale web=2 mypap", "restart mypap", "ship mypap", "run mypap x"]
    for text in texts:
        _, url = driver.command(text, ADMIN)
        assert "Did you mean `myapp`?" in driver.reply(url)["text"]
    entries = AuditLog(web.extensions["deploybot"].db).recent(None, 10)
    assert sorted(e.command for e in entries) == sorted(texts)
    assert {(e.outcome, e.error) for e in entries} == {
        (
            "error",
            "Heroku has no app called `mypap`, or the bot's key cannot see it. Check the name "
            "in the Heroku dashboard.",
        )
    }


@pytest.mark.parametrize("text", ["alerts myapp", "metrics myapp", "chart myapp"])
def test_a_real_app_with_nothing_stored_costs_one_read_and_answers_as_before(driver, heroku, text):
    _, url = driver.command(text, ADMIN)
    assert "Heroku has no app" not in driver.reply(url)["text"]
    assert len(heroku.calls("GET", "/apps/myapp/formation")) <= 1


def test_a_name_close_to_no_app_keeps_the_advice_to_check_it(driver, heroku):
    _, url = driver.command("status zzzzzz", ADMIN)
    assert driver.reply(url)["text"] == (
        "Heroku has no app called `zzzzzz`, or the bot's key cannot see it. Check the name in "
        "the Heroku dashboard."
    )


def test_a_limit_heroku_gives_without_a_message_reaches_the_user(driver, heroku):
    body = {"id": "cannot_update_above_limit", "limit": 100}
    heroku.fail_next(422, body=body, methods=["PATCH"])
    _, url = driver.command("scale web=3 myapp", ADMIN)
    text = driver.reply(url)["text"]
    assert "Heroku refused the change to `myapp`" in text and "Heroku's limit is 100" in text


def test_a_passing_heroku_outage_is_retried(driver, heroku):
    heroku.fail_next(503, count=1)
    heroku.fail_next(429, count=1, retry_after=0)
    _, url = driver.command("scale web=2 myapp", ADMIN)
    assert "web 1 → 2" in driver.reply(url)["text"]
    assert heroku.formation("myapp")["web"][0] == 2


def test_a_bug_becomes_a_short_message_with_an_error_id(web, driver, caplog):
    services = web.extensions["deploybot"]

    def broken(app):
        raise RuntimeError("boom at /secret/path")

    services.actions._resolve = broken
    with caplog.at_level(logging.ERROR):
        _, url = driver.command("status myapp", USER)
        reply = driver.reply(url)
    assert "Something went wrong inside deploybot (error `" in reply["text"]
    assert "boom" not in reply["text"] and "Traceback" not in reply["text"]


def test_every_change_is_audited(web, driver, heroku):
    _, url = driver.command("scale web=2 myapp", ADMIN)
    driver.reply(url)
    _, url = driver.command("scale web=2:basic myapp", ADMIN)
    driver.reply(url)
    entries = AuditLog(web.extensions["deploybot"].db).recent()
    failed, done = entries
    assert (done.verb, done.app, done.user_id, done.outcome) == ("scale", "myapp", ADMIN, "ok")
    assert done.before["web"][0] == 1 and done.after["web"][0] == 2
    assert done.requested == {"web": [2, None]}
    assert done.channel_id and done.team_id and done.finished_at is not None
    assert failed.outcome == "error" and "Heroku refused" in failed.error


def test_no_admins_means_no_changes_and_a_warning(new_app, config, slack, heroku, caplog):
    with caplog.at_level(logging.WARNING):
        web = new_app(replace(config, admins=frozenset()))
    assert "DEPLOYBOT_ADMINS is empty" in caplog.text
    driver = SlackDriver(web.test_client(), slack)
    _, url = driver.command("scale web=2 myapp", ADMIN)
    assert "no admins" in driver.reply(url)["text"]
    assert patches(heroku) == []


def test_start_up_makes_no_slack_or_heroku_call(config, slack, heroku):
    create_app(config)
    assert slack.calls == [] and heroku.requests == []


def test_app_home_without_apps_says_how_to_add_one(driver, slack):
    body = json.dumps(
        {
            "type": "event_callback",
            "team_id": "T1",
            "api_app_id": "A1",
            "event": {"type": "app_home_opened", "user": USER, "channel": "D1", "tab": "home"},
            "event_id": "Ev1",
            "event_time": 1,
        }
    )
    headers = {**sign(SIGNING_SECRET, body), "Content-Type": "application/json"}
    assert driver.post(body, headers=headers).status_code == 200
    [call] = slack.wait_for_calls("views.publish", n=1, timeout=10)
    assert call.args["user_id"] == USER
    view = json.dumps(call.args["view"])
    assert "You can see no apps yet" in view and "/deploy status myapp" in view


def test_a_retried_command_on_two_web_processes_acts_once(new_app, config, heroku, slack):
    # Two apps with engines of their own stand for two web dynos sharing the database.
    first, second = new_app(config).test_client(), new_app(config).test_client()
    url = slack.new_response_url()
    body = slash_command("scale web=3 myapp", url, user_id=ADMIN)
    retries = [
        (first, {}),
        (second, {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}),
        (first, {"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_timeout"}),
        (second, {"X-Slack-Retry-Num": "3", "X-Slack-Retry-Reason": "http_timeout"}),
    ]
    with ThreadPoolExecutor(4) as pool:
        responses = list(
            pool.map(
                lambda r: r[0].post(
                    "/slack/events", data=body, headers={**sign(SIGNING_SECRET, body), **r[1]}
                ),
                retries,
            )
        )
    assert [r.status_code for r in responses] == [200] * 4
    slack.wait_for_responses(url, n=1, timeout=10)
    settle(0.3)
    assert len(patches(heroku)) == 1
    # (The first line: no worker runs here, so a second line says so.)
    assert [r.payload["text"].split("\n")[0] for r in slack.responses_for(url)] == [
        f"<@{ADMIN}> scaled `myapp`: web 1 → 3."
    ]
    assert heroku.formation("myapp")["web"][0] == 3


def test_a_double_click_on_two_web_processes_acts_once(new_app, config, heroku, slack):
    first, second = (SlackDriver(new_app(config).test_client(), slack) for _ in range(2))
    _, url = first.command("kill myapp worker", ADMIN)
    value = button(first.reply(url), CONFIRM_ACTION)["value"]
    drivers = [first, second, first, second]
    with ThreadPoolExecutor(4) as pool:
        clicks = list(pool.map(lambda d: d.click(CONFIRM_ACTION, value, ADMIN), drivers))
    replies = [first.reply(url) for _, url in clicks]
    settle()
    assert len(patches(heroku)) == 1
    assert sum("killed `myapp`" in r["text"] for r in replies) == 1
    assert sum("already confirmed" in r["text"] for r in replies) == 3


def test_an_answer_slack_rate_limits_for_a_moment_is_sent_again(driver, slack):
    # A response_url answered 429 "Retry-After: 1": the command's answer was dropped, and
    # the user, told "Working on…", never heard the result.
    slack.fail_next("response_url", status=429, retry_after=1)
    _, url = driver.command("status myapp", USER)
    assert "`myapp`" in driver.reply(url)["text"]
    assert slack.faults_served == [("response_url", 429)]


def test_an_answer_slack_rate_limits_for_long_is_logged_once_and_not_waited_for(
    driver, slack, caplog
):
    # An hour's Retry-After is not waited out on a background thread, nor asked again.
    slack.fail_next("response_url", status=429, retry_after=3600)
    with caplog.at_level(logging.WARNING, logger="handlers.replies"):
        _, url = driver.command("status myapp", USER)
        wait_for(lambda: any(r.name == "handlers.replies" for r in caplog.records), timeout=10)
    assert slack.responses_for(url) == [] and slack.faults_served == [("response_url", 429)]
    [line] = [r for r in caplog.records if r.name == "handlers.replies"]
    assert line.status == 429 and url not in line.getMessage()
