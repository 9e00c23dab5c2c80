"""Deployments on Heroku end to end: signed Slack requests into the real web app, the
Heroku client (heroku3) against the fake Heroku over HTTP, answers through response_url.
Releases, rollback (once, however many clicks), maintenance, config, deploy locks, freezes,
and the failed-release alert (no Rollback button: the app still runs its last good release)."""

from __future__ import annotations

import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from bot.actions.path import record_expiry
from bot.sandbox.slack_requests import slash_command
from bot.store.audit import AuditLog
from bot.store.autoscale_settings import AutoscaleStore
from bot.store.confirmations import Confirmations
from bot.store.db import Database
from bot.web.app import close, create_app
from bot.worker.main import Worker
from handlers.alerts import ROLLBACK_ACTION
from handlers.render import CANCEL_ACTION, CONFIRM_ACTION
from tests.conftest import ADMIN, OTHER_ADMIN, USER
from tests.test_alerts_e2e import alert_messages, served, watch  # noqa: F401  (fixture)
from tests.webclient import SlackDriver, ack_text, button, settle, wait_for

SECRET_VALUE = "postgres://u:hunter2@db/x"


@pytest.fixture
def web(config):
    app = create_app(config)
    yield app
    close(app)  # the job in hand finishes while the fakes still answer
    app.extensions["deploybot"].db.dispose()


@pytest.fixture
def driver(web, slack):
    return SlackDriver(web.test_client(), slack)


def rollbacks(heroku):
    return heroku.calls("POST", "/apps/myapp/releases")


def say(driver, text, user=ADMIN):
    response, url = driver.command(text, user)
    ack_text(response)
    return driver.reply(url)


def history(config):
    db = Database(config.database_url)
    try:
        return AuditLog(db).recent(None, None)
    finally:
        db.dispose()


def test_releases_lists_newest_first_with_the_current_one_marked_and_escaped(driver, heroku):
    heroku.add_release("myapp", "Deploy <!channel> & co")
    heroku.add_release("myapp", "Deploy broken", status="failed")
    reply = say(driver, "releases myapp 3")
    lines = reply["text"].splitlines()
    assert lines[1].startswith("• `v5` · Deploy broken") and "*failed*" in lines[1]
    assert "`v4` · Deploy &lt;!channel&gt; &amp; co" in lines[2] and "← current" in lines[2]
    assert lines[3].startswith("• `v3`") and len(lines) == 5
    [listing] = heroku.calls("GET", "/apps/myapp/releases")
    assert listing.headers["Range"].startswith("version ..; order=desc, max=3")
    assert heroku.violations == []


def test_builds_list_newest_first_with_the_newest_failure_s_output_masked_and_escaped(
    driver, heroku
):
    heroku.add_build("myapp", "v1.4.1", description="Fix <!channel> & co", user="a@example.com")
    failing = [f"ERROR: could not reach {SECRET_VALUE}", "ERROR: No matching distribution"]
    heroku.add_build("myapp", "v1.4.2", failing=failing)
    text = say(driver, "builds myapp 5")["text"]
    lines = text.splitlines()
    assert lines[0] == "*Builds of `myapp`*, newest first"
    assert lines[1].startswith("• `v1.4.2` · by ") and lines[1].endswith("· *failed*")
    assert lines[2].startswith("• `v1.4.1` · Fix &lt;!channel&gt; &amp; co · by a@example.com")
    assert "The newest build failed; its output ends:" in text
    assert "ERROR: No matching distribution" in text and "Push rejected" in text
    assert "hunter2" not in text  # the output is masked as a ship's follow-up is
    [listing] = heroku.calls("GET", "/apps/myapp/builds")
    assert listing.headers["Range"].startswith("started_at ..; order=desc, max=5")
    assert heroku.violations == []


def test_fifty_long_builds_and_a_long_failure_fit_one_message_with_the_output_whole(
    driver, heroku, slack
):
    for k in range(49):
        heroku.add_build("myapp", f"v{k}-" + "x" * 300, description="d" * 500)
    heroku.add_build("myapp", "v-bad", failing=[f"line {k} " + "y" * 200 for k in range(60)])
    reply = say(driver, "builds myapp 50")
    sections = [block["text"]["text"] for block in reply["blocks"]]
    assert all(len(section) <= 3000 for section in sections)
    assert sum(len(section) for section in sections) <= 12_000
    # The output is one section whose code block opens and closes in it: split across two,
    # Slack had shown half of it as code and the rest as plain text.
    [failure] = [section for section in sections if "its output ends" in section]
    assert failure.count("```") == 2 and "Push rejected" in failure
    assert all(section.count("```") % 2 == 0 for section in sections)
    assert "`v-bad`" in sections[0] and slack.violations == []


def test_builds_of_an_app_without_any_say_how_one_is_made(driver, heroku):
    text = say(driver, "builds myapp")["text"]
    assert text.startswith("`myapp` has no builds yet.")
    assert "`git push heroku`" in text and "`/deploy ship myapp REF`" in text
    # A succeeded newest build shows no output: nothing to explain.
    heroku.add_build("myapp", "v2")
    assert "output ends" not in say(driver, "builds myapp")["text"]


def test_rollback_confirms_from_and_to_then_makes_one_release_however_many_clicks(
    driver, heroku, config
):
    prompt = say(driver, "rollback myapp")
    assert "asks to roll `myapp` back: `v3`" in prompt["text"]
    assert "→ `v2` (" in prompt["text"]  # both descriptions shown
    confirm = button(prompt, CONFIRM_ACTION)
    assert confirm["text"]["text"] == "Roll back"
    settle()
    assert rollbacks(heroku) == []

    _, url = driver.click(CONFIRM_ACTION, confirm["value"], OTHER_ADMIN)
    assert f"Only <@{ADMIN}>" in driver.reply(url)["text"]
    with ThreadPoolExecutor(4) as pool:
        clicks = list(
            pool.map(lambda _: driver.click(CONFIRM_ACTION, confirm["value"], ADMIN), range(4))
        )
    replies = [driver.reply(url) for _, url in clicks]
    settle()
    [call] = rollbacks(heroku)
    assert set(call.json) == {"release"}
    # The fake names the new release after the one whose id was posted.
    assert "`v4` · Rollback to v2" in say(driver, "releases myapp 1")["text"]
    done = [r for r in replies if "rolled `myapp` back" in r["text"]]
    assert len(done) == 1 and "as the new release `v4`" in done[0]["text"]
    assert sum("already confirmed" in r["text"] for r in replies) == 3
    entry, refused = [e for e in history(config) if e.verb == "rollback"]  # newest first
    assert (refused.outcome, refused.user_id) == ("refused", OTHER_ADMIN)  # the click above
    assert entry.outcome == "ok" and entry.command == "rollback myapp v2"
    assert entry.before == {"version": "v3"} and entry.after == {"version": "v4"}
    assert "`rollback myapp v2`" in say(driver, "history myapp")["text"]
    assert heroku.violations == []


@pytest.mark.parametrize("again", ["rollback myapp", "rollback myapp v2"])
def test_asking_for_a_rollback_again_while_the_first_prompt_waits_points_at_it(driver, again):
    # A second prompt for the same rollback had opened: two buttons for one change, and
    # the one left over expired into the history.
    assert button(say(driver, "rollback myapp"), CONFIRM_ACTION)
    repeat = say(driver, again)
    assert repeat["text"].startswith("You already asked for `rollback myapp v2` at "), repeat
    assert repeat["text"].endswith("press its button, or Cancel it.")
    assert not any(b["type"] == "actions" for b in repeat.get("blocks", []))
    # Someone else still gets a prompt of their own, and another release is another change.
    assert button(say(driver, "rollback myapp", OTHER_ADMIN), CONFIRM_ACTION)
    assert button(say(driver, "rollback myapp v1"), CONFIRM_ACTION)


def test_asking_for_the_same_config_change_again_points_at_the_waiting_prompt(driver):
    assert button(say(driver, "config set LOG_LEVEL=debug myapp"), CONFIRM_ACTION)
    repeat = say(driver, "config set LOG_LEVEL=debug myapp")
    assert repeat["text"].startswith("You already asked for `config set LOG_LEVEL=… myapp` at ")
    assert "debug" not in json.dumps(repeat)
    # Other values (a typo mended) are another change, which the hidden text cannot show.
    assert button(say(driver, "config set LOG_LEVEL=warn myapp"), CONFIRM_ACTION)


def test_a_slash_command_delivered_twice_asks_once(driver, slack):
    url = slack.new_response_url()
    body = slash_command("rollback myapp", url, user_id=ADMIN)
    driver.post(body)
    driver.post(body)  # Slack's retry carries the same trigger_id
    settle(1.0)
    assert len(slack.responses_for(url)) == 1


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("rollback myapp v99", "`myapp` has no release `v99`. See `/deploy releases myapp`."),
        ("rollback myapp v3", "`v3` is already the current release of `myapp`"),
        ("rollback myapp 3", "`v3` is already the current release of `myapp`"),
        ("rollback myapp v4", "`v4` of `myapp` failed, so it cannot be rolled back to"),
        # Both had been "`myapp` has no release `vX` among its last 50", as if it might.
        (
            "rollback myapp vX",
            "`vX` is not a Heroku release: write it like v41, a v and digits (`/deploy releases "
            "myapp` lists them).",
        ),
        ("rollback myapp v-1", "`v-1` is not a Heroku release: write it like v41"),
    ],
)
def test_bad_rollbacks_get_a_sentence_and_send_nothing(driver, heroku, text, says):
    heroku.add_release("myapp", "Deploy broken", status="failed")
    assert says in say(driver, text)["text"]
    assert rollbacks(heroku) == []


def test_a_release_older_than_the_newest_fifty_is_rolled_back_to_by_its_number(driver, heroku):
    # Heroku rolls back to any release whose slug it keeps; the bot had read only the newest
    # 50 and said the others were not "among its last 50", as if they might not exist.
    for number in range(55):
        heroku.release("myapp", f"Deploy {number:07x}")
    prompt = say(driver, "rollback myapp v2")
    assert "`v58` (Deploy 0000036) → `v2` (Deploy" in prompt["text"], prompt["text"]
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    assert "as the new release `v59`" in driver.reply(url)["text"]
    [rollback] = rollbacks(heroku)
    assert rollback.json == {"release": heroku.releases("myapp")[1]["id"]}
    assert say(driver, "rollback myapp v99")["text"] == (
        "`myapp` has no release `v99`. See `/deploy releases myapp`."
    )
    # Written with a leading zero, a number is still Heroku's: it had no release `v003`.
    assert "→ `v3` (Deploy" in say(driver, "rollback myapp v003")["text"]
    assert "→ `v57` (Deploy" in say(driver, "rollback myapp 057")["text"]
    assert heroku.violations == []


def test_a_rollback_needs_permission(driver, heroku):
    assert say(driver, "rollback myapp", USER)["text"].startswith("You may not roll `myapp` back")
    assert rollbacks(heroku) == []


def test_a_deploy_lock_holds_back_everyone_but_its_holder(driver, heroku, config):
    say(driver, "lock myapp checkout", OTHER_ADMIN)
    # Locked again by its holder, the lock takes the new reason (the trail says it did).
    locked = say(driver, 'lock myapp "chasing the checkout bug"', OTHER_ADMIN)
    assert "locked `myapp`: chasing the checkout bug" in locked["text"]
    refused = say(driver, "rollback myapp")
    assert f"`myapp` is locked by <@{OTHER_ADMIN}> (chasing the checkout bug)" in refused["text"]
    assert "already locked" in say(driver, "lock myapp mine now")["text"]
    # The trail names the holder as a mention, as every other refusal does: it had shown
    # their raw user ID ("already locked by UADMIN02").
    assert f"already locked by <@{OTHER_ADMIN}>" in say(driver, "history myapp")["text"]
    assert "asks to roll `myapp` back" in say(driver, "rollback myapp", OTHER_ADMIN)["text"]
    assert say(driver, "unlock myapp", USER)["text"].startswith("You may not unlock `myapp`")
    assert f"was locked by <@{OTHER_ADMIN}>" in say(driver, "unlock myapp")["text"]
    assert "asks to roll `myapp` back" in say(driver, "rollback myapp")["text"]
    assert rollbacks(heroku) == []
    verbs = [(e.verb, e.outcome) for e in history(config)]
    # Refusals are in the trail too: the lock's, the rule's and the one for a second lock.
    assert verbs == [
        ("unlock", "ok"),
        ("unlock", "refused"),
        ("lock", "refused"),
        ("rollback", "refused"),
        ("lock", "ok"),
        ("lock", "ok"),
    ]


def test_locking_again_says_which_reason_the_new_one_replaced(driver, heroku):
    say(driver, 'lock myapp "checkout <!here>"', OTHER_ADMIN)
    text = say(driver, "lock myapp payments", OTHER_ADMIN)["text"]
    assert text.startswith(
        f"<@{OTHER_ADMIN}> locked `myapp`: payments "
        "(it replaces the earlier reason: checkout &lt;!here&gt;). Only they may"
    )
    # The same reason again replaces nothing, and someone else's lock is refused as before.
    assert "replacing" not in say(driver, "lock myapp payments", OTHER_ADMIN)["text"]
    assert say(driver, "lock myapp mine", ADMIN)["text"] == (
        f"`myapp` is already locked by <@{OTHER_ADMIN}> (payments). Ask them to "
        "`/deploy unlock myapp` first."
    )


@pytest.mark.parametrize(
    "text", ["lock myap deploying", "pin myap web=3 for 1h", "config set FOO=bar myap"]
)
def test_a_mistyped_app_outside_the_registry_is_not_locked_pinned_or_prompted(
    driver, heroku, config, text
):
    # The default registry lets any Heroku app be named: a typo must not look done.
    reply = say(driver, text)
    assert reply["text"] == (
        "Heroku has no app called `myap`, or the bot's key cannot see it. Did you mean `myapp`?"
    )
    # Nothing was kept: no lock, no pin, no prompt.
    assert say(driver, "unlock myap")["text"] == "`myap` is not locked; nothing to do."
    assert say(driver, "pin myap off")["text"].startswith("`myap` was not pinned.")
    db = Database(config.database_url)
    try:
        assert AutoscaleStore(db).pins(datetime.now(UTC)) == {}
        assert Confirmations(db).expire_due(datetime.now(UTC) + timedelta(days=1)) == []
    finally:
        db.dispose()


def test_a_lock_taken_after_the_prompt_stops_the_confirm(driver, heroku):
    prompt = say(driver, "rollback myapp")
    say(driver, "lock myapp hold on", OTHER_ADMIN)
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    assert driver.reply(url)["text"].startswith("Nothing was changed: `myapp` is locked")
    assert rollbacks(heroku) == []


def test_a_deploy_lock_holds_back_config_changes_but_not_reading_them(driver, heroku, config):
    # A config change makes a release and restarts every dyno: it had gone through a lock.
    before = heroku.config_vars("myapp")
    prompt = say(driver, "config set LOG_LEVEL=debug myapp")  # asked before the lock
    locked = say(driver, "lock myapp migrating", OTHER_ADMIN)["text"]
    assert (
        "Only they may roll it back, ship it, promote to or from it, change its config, "
        "or run commands on it, until `/deploy unlock myapp`."
    ) in locked  # not "swap it": Heroku apps have no CNAMEs to swap
    for text in ("config set LOG_LEVEL=debug myapp", "config unset LOG_LEVEL myapp"):
        assert say(driver, text)["text"] == (
            f"`myapp` is locked by <@{OTHER_ADMIN}> (migrating), so only they may change its "
            "config. Ask them to `/deploy unlock myapp` when they are done."
        )
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    assert driver.reply(url)["text"].startswith("Nothing was changed: `myapp` is locked")
    assert say(driver, "config myapp")["text"].startswith("`myapp` has no config vars.")
    mine = say(driver, "config set LOG_LEVEL=debug myapp", OTHER_ADMIN)
    assert "asks to set `LOG_LEVEL` on `myapp`" in mine["text"]
    assert heroku.config_vars("myapp") == before
    refused = [e.outcome for e in history(config) if e.verb == "config"]
    assert refused == ["refused"] * 3


def test_rolling_back_a_rollback_says_it_goes_back_to_the_release_rolled_back_from(driver, heroku):
    first = say(driver, "rollback myapp")  # v3 → v2, made as v4 "Rollback to v2"
    assert "rolled back from" not in first["text"]
    _, url = driver.click(CONFIRM_ACTION, button(first, CONFIRM_ACTION)["value"], ADMIN)
    assert "as the new release `v4`" in driver.reply(url)["text"]
    # The previous release, as the Heroku CLI picks it, is v3: the one just rolled away
    # from. The prompt had read as any rollback's, and a bad release went out again.
    again = say(driver, "rollback myapp")["text"]
    assert again.startswith(f"<@{ADMIN}> asks to roll `myapp` back: `v4` (Rollback to v2) → `v3` (")
    assert again.endswith("`v3` is the release `v4` rolled back from: this undoes that rollback.")
    assert "rolled back from" not in say(driver, "rollback myapp v1")["text"]


def test_a_rollback_past_config_changes_says_they_go_back_too(driver, heroku):
    # Heroku rolls config vars back with the code: a secret rotated since comes back, and
    # the prompt had said nothing of it.
    heroku.set_config_vars("myapp", {"API_TOKEN": "old"})
    for line in ("config set API_TOKEN=rotated myapp", "config unset API_TOKEN myapp"):
        prompt = say(driver, line)
        _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
        driver.reply(url)
    prompt = say(driver, "rollback myapp v3")
    assert prompt["text"].endswith(
        "Heroku rolls config vars back too: `API_TOKEN`, changed since `v3`, go back to their "
        "values then."
    )
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    driver.reply(url)
    assert heroku.config_vars("myapp") == {"API_TOKEN": "old"}


@pytest.fixture
def with_registry(config, slack, tmp_path, monkeypatch):
    """The web app on a registry of `text`, as a driver; each app made is closed after."""
    made = []

    def start(text: str) -> SlackDriver:
        path = tmp_path / "deploybot.yml"
        path.write_text(text)
        monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
        made.append(create_app(config))
        return SlackDriver(made[-1].test_client(), slack)

    yield start
    for app in made:
        close(app)  # the job in hand finishes while the fakes still answer
        app.extensions["deploybot"].db.dispose()


def test_a_listed_app_heroku_cannot_find_is_not_answered_with_other_names(with_registry, heroku):
    # The registry's `myap` points at no Heroku app: the entry is wrong, not the typing.
    driver = with_registry(
        "heroku:\n  allow_unlisted: true\napps:\n  myap:\n    platform: heroku\n"
    )
    assert say(driver, "status myap")["text"] == (
        "Heroku has no app called `myap`, or the bot's key cannot see it. Check the name in "
        "the Heroku dashboard."
    )
    # A name outside the registry is offered both kinds: the Heroku apps and the aliases.
    assert say(driver, "status myappp")["text"].endswith("Did you mean `myapp` or `myap`?")


def test_a_freeze_refuses_a_rollback(with_registry, heroku):
    driver = with_registry(
        "apps:\n  myapp:\n    platform: heroku\n    guardrails:\n      freezes:\n"
        "        - {cron: '* * * * *', duration: 2h, reason: release freeze}\n"
    )
    reply = say(driver, "rollback myapp")
    assert "is frozen until" in reply["text"] and "release freeze" in reply["text"]
    assert "is frozen" in say(driver, "maintenance myapp on")["text"]
    assert "is frozen" in say(driver, "ship myapp")["text"]
    assert rollbacks(heroku) == [] and heroku.calls("PATCH", "/apps/myapp") == []


def test_a_forced_rollback_whose_answer_was_lost_still_breaks_glass_in_the_channel(
    with_registry, slack, heroku
):
    driver = with_registry(
        "apps:\n  myapp:\n    platform: heroku\n    channel: CMYAPP\n    guardrails:\n"
        "      freezes:\n        - {cron: '* * * * *', duration: 2h, reason: release freeze}\n"
    )
    prompt = say(driver, 'rollback myapp --force "hotfix"')
    heroku.drop_next(methods=["POST"])  # made; its answer never comes
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    text = driver.reply(url)["text"]
    assert "rolled `myapp` back" in text and "so it was made" in text
    # Read back as made, it is a rollback like any other: the freeze's notice goes out.
    [notice] = slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
    assert notice.args["channel"] == "CMYAPP" and "Break-glass" in notice.args["text"]


def test_a_break_glass_notice_slack_rate_limits_for_a_moment_is_posted_again(
    with_registry, slack, heroku
):
    # Answered 429 "Retry-After: 1", the notice was logged as not posted and never sent:
    # a freeze broken with nobody in the channel told.
    driver = with_registry(
        "apps:\n  myapp:\n    platform: heroku\n    channel: CMYAPP\n    guardrails:\n"
        "      freezes:\n        - {cron: '* * * * *', duration: 2h, reason: release freeze}\n"
    )
    slack.fail_next("chat.postMessage", status=429, retry_after=1)
    assert "scaled `myapp`" in say(driver, 'scale web=2 myapp --force "hotfix"')["text"]
    [notice] = slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
    assert notice.args["channel"] == "CMYAPP" and "Break-glass" in notice.args["text"]
    assert slack.faults_served == [("chat.postMessage", 429)]


def test_cancel_rolls_nothing_back(driver, heroku):
    prompt = say(driver, "rollback myapp v1")
    assert "→ `v1` (Initial release)" in prompt["text"]
    _, url = driver.click(CANCEL_ACTION, button(prompt, CANCEL_ACTION)["value"], ADMIN)
    assert "cancelled `rollback myapp v1`" in driver.reply(url)["text"]
    assert rollbacks(heroku) == []


def maintenance_on(driver, user=ADMIN):
    """`maintenance myapp on`, confirmed: the reply to the click."""
    prompt = say(driver, "maintenance myapp on", user)
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], user)
    return driver.reply(url)


def test_maintenance_on_asks_first_and_turns_on_once_off_at_once(driver, heroku, config):
    # Maintenance mode takes the site offline for everyone using it, as a kill does; it
    # had gone on at once where a kill asks first.
    prompt = say(driver, "maintenance myapp on")
    assert prompt["text"] == (
        f"<@{ADMIN}> asks to turn maintenance mode on for `myapp`: its users get Heroku's "
        "maintenance page instead of the app until it is turned off."
    )
    confirm = button(prompt, CONFIRM_ACTION)
    assert confirm["text"]["text"] == "Turn maintenance on"
    settle()
    assert heroku.calls("PATCH", "/apps/myapp") == [] and heroku.maintenance("myapp") is False
    replies = []
    for _ in range(2):
        _, url = driver.click(CONFIRM_ACTION, confirm["value"], ADMIN)
        replies.append(driver.reply(url)["text"].splitlines()[0])
    assert replies[0] == f"<@{ADMIN}> turned maintenance mode on for `myapp`."
    assert "already confirmed" in replies[1]
    assert heroku.maintenance("myapp") is True
    assert (
        "`myapp`'s maintenance mode is already on; nothing to do."
        in say(driver, "maintenance myapp on")["text"]
    )
    [patch] = heroku.calls("PATCH", "/apps/myapp")
    assert patch.json == {"maintenance": True}
    # Back online needs no question.
    off = say(driver, "maintenance myapp off")["text"].splitlines()[0]
    assert off == f"<@{ADMIN}> turned maintenance mode off for `myapp`."
    assert heroku.maintenance("myapp") is False
    done_off, done_on = [e for e in history(config) if e.verb == "maintenance"]
    assert (done_on.command, done_on.outcome, done_on.confirmed_by) == (
        "maintenance myapp on",
        "ok",
        ADMIN,
    )
    assert (done_off.outcome, done_off.confirmed_by) == ("ok", None)
    assert heroku.violations == []


def test_maintenance_turned_on_after_the_prompt_is_not_turned_on_again(driver, heroku, config):
    prompt = say(driver, "maintenance myapp on")
    heroku.set_maintenance("myapp", True)  # someone used the Heroku dashboard meanwhile
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    assert driver.reply(url)["text"].startswith(
        "Nothing was changed: `myapp`'s maintenance mode was turned on meanwhile."
    )
    assert heroku.calls("PATCH", "/apps/myapp") == []


def test_maintenance_off_while_an_on_prompt_waits_says_the_prompt_is_still_open(driver, heroku):
    prompt = say(driver, "maintenance myapp on")
    # "already off; nothing to do" alone had left the asker's "on" prompt live, unsaid.
    off = say(driver, "maintenance myapp off")["text"]
    assert off.startswith("`myapp`'s maintenance mode is already off; nothing to do. ")
    assert "Your request to turn it on is still open until " in off
    assert off.endswith(": Cancel it if it is no longer wanted.")
    _, url = driver.click(CANCEL_ACTION, button(prompt, CANCEL_ACTION)["value"], ADMIN)
    driver.reply(url)
    off = say(driver, "maintenance myapp off")["text"]
    assert off == "`myapp`'s maintenance mode is already off; nothing to do."
    # Another person's prompt is theirs to answer.
    say(driver, "maintenance myapp on", OTHER_ADMIN)
    assert say(driver, "maintenance myapp off")["text"] == off
    assert heroku.calls("PATCH", "/apps/myapp") == []


def test_a_config_prompt_confirmed_after_its_var_changed_changes_nothing(driver, heroku, config):
    heroku.set_config_vars("myapp", {"LOG_LEVEL": "info"})
    older = say(driver, "config set LOG_LEVEL=debug myapp")
    newer = say(driver, "config set LOG_LEVEL=warn myapp", OTHER_ADMIN)
    _, url = driver.click(CONFIRM_ACTION, button(newer, CONFIRM_ACTION)["value"], OTHER_ADMIN)
    assert "set `LOG_LEVEL` on `myapp`" in driver.reply(url)["text"]
    # The older prompt, pressed later, had set `debug` over the `warn` just set, unsaid.
    _, url = driver.click(CONFIRM_ACTION, button(older, CONFIRM_ACTION)["value"], ADMIN)
    assert driver.reply(url)["text"].startswith(
        "Nothing was changed: `LOG_LEVEL` on `myapp` changed since this was asked for. "
        "`/deploy config myapp` shows it now; ask again to change it."
    )
    assert heroku.config_vars("myapp") == {"LOG_LEVEL": "warn"}
    assert len(heroku.calls("PATCH", "/apps/myapp/config-vars")) == 1
    refused = [e for e in history(config) if e.outcome == "refused"]
    assert [e.command for e in refused] == ["config set LOG_LEVEL=… myapp"]
    # Nothing of either value is kept: neither in the refusal nor in the prompt rows.
    assert "warn" not in refused[0].error and "debug" not in refused[0].error
    assert heroku.violations == []


def test_a_deploy_lock_does_not_hold_back_maintenance_mode(driver, heroku):
    # An incident tool: whoever is on call takes the site down, the holder away or not.
    say(driver, "lock myapp migrating", OTHER_ADMIN)
    done = maintenance_on(driver)["text"]
    assert done.startswith(f"<@{ADMIN}> turned maintenance mode on for `myapp`.")


def test_status_says_when_maintenance_mode_is_on_and_who_holds_the_lock(driver, heroku):
    plain = say(driver, "status myapp", USER)
    assert "Maintenance" not in plain["text"] and "Locked" not in plain["text"]
    heroku.set_maintenance("myapp", True)  # turned on in the dashboard: read from Heroku
    say(driver, 'lock myapp "migrating <!channel>"', OTHER_ADMIN)
    reply = say(driver, "status myapp", USER)
    maintenance, lock = reply["blocks"][1]["text"]["text"].splitlines()
    assert maintenance == "*Maintenance mode is on* (`/deploy maintenance myapp off` ends it)."
    since = r"<!date\^\d+\^\{date_short_pretty\} \{time\}\|\d{4}-\d\d-\d\d \d\d:\d\d UTC>"
    assert re.fullmatch(
        rf"\*Locked\* by <@{OTHER_ADMIN}> since {since}: migrating &lt;!channel&gt;", lock
    )
    assert (
        "Maintenance mode is on" in reply["text"] and "migrating &lt;!channel&gt;" in reply["text"]
    )
    assert heroku.violations == []


def test_maintenance_whose_answer_was_lost_is_read_back_from_the_app(driver, heroku, config):
    heroku.drop_next(methods=["PATCH"])  # Heroku turns it on; the answer never comes
    text = maintenance_on(driver)["text"]
    # It had said only that it may have been made, and to check.
    assert "turned maintenance mode on for `myapp`" in text
    assert "I read it back: maintenance mode is on, so it was made." in text
    [entry] = [e for e in history(config) if e.verb == "maintenance"]
    assert entry.outcome == "ok"
    # Answered 503 before Heroku acted: not seen, so said as maybe still under way.
    heroku.fail_next(503, count=5, methods=["PATCH"])
    text = say(driver, "maintenance myapp off")["text"]
    assert heroku.maintenance("myapp") is True
    assert "I read it back: maintenance mode is on, not what was asked, yet" in text
    assert text.count("Check ") == 1 and "turned maintenance" not in text
    [entry, _] = [e for e in history(config) if e.verb == "maintenance"]
    assert entry.outcome == "unknown"


def test_the_worker_settles_maybe_made_maintenance_from_the_app(heroku, config):
    settled = swept(
        config,
        {
            "on": ("maintenance", {"maintenance": False}, {"maintenance": True}),
            "off": ("maintenance", {"maintenance": True}, {"maintenance": False}),
            "a Heroku ship": ("ship", None, {"ref": "main"}),
        },
        lambda: heroku.set_maintenance("myapp", True),  # what the first request did
    )
    # Before, both had been settled "unknown: nothing to read back".
    assert settled["on"].outcome == "ok"
    assert "Read back: maintenance mode is on." in settled["on"].error
    assert settled["off"].outcome == "not-applied"
    assert settled["a Heroku ship"].outcome == "unknown"
    assert "Nothing to read back" in settled["a Heroku ship"].error


def test_config_masks_values_except_for_those_allowed_config(driver, heroku):
    long = "x" * 250  # a certificate, say: more than a list shows
    heroku.set_config_vars(
        "myapp",
        {"DATABASE_URL": SECRET_VALUE, "LOG_LEVEL": "info", "FEATURE_FLAGS": "", "CERT": long},
    )
    masked = say(driver, "config myapp", USER)["text"]
    assert "`DATABASE_URL` ••••••" in masked and SECRET_VALUE not in masked
    assert "`FEATURE_FLAGS` ••••••" in masked  # that it is empty is a value too
    shown = say(driver, "config myapp", ADMIN)["text"]
    assert f"`DATABASE_URL` `{SECRET_VALUE}`" in shown
    assert "• `FEATURE_FLAGS` (empty)\n" in shown  # it had been "• `FEATURE_FLAGS` ``"
    assert f"• `CERT` `{'x' * 199}…`" in shown  # cut where it is said to be, not silently
    assert say(driver, "config set LOG_LEVEL=debug myapp", USER)["text"].startswith(
        "You may not change `myapp`'s config"
    )


def test_config_hides_the_bot_s_own_credentials_from_everyone(driver, heroku, config, slack):
    # The bot's own app (or any app given the same key) holds what lets a person act as the
    # bot outside every rule and audit row: shown even to admins, it had been in Slack.
    heroku.set_config_vars(
        "myapp",
        {
            "HEROKU_API_KEY": config.heroku_api_key,
            "SLACK_BOT_TOKEN": slack.bot_token,
            "SLACK_SIGNING_SECRET": config.slack_signing_secret,
            "LOG_LEVEL": "info",
        },
    )
    shown = say(driver, "config myapp", ADMIN)["text"]
    for secret in (config.heroku_api_key, slack.bot_token, config.slack_signing_secret):
        assert secret not in shown, shown
    assert "• `HEROKU_API_KEY` ••••••\n" in shown and "• `LOG_LEVEL` `info`" in shown
    assert "The bot's own credentials are hidden from everyone." in shown


def test_config_set_confirms_and_never_writes_the_value_down(driver, heroku, slack, config, caplog):
    caplog.set_level(logging.DEBUG)
    response, url = driver.command(f"config set DATABASE_URL={SECRET_VALUE} myapp", ADMIN)
    assert SECRET_VALUE not in ack_text(response)
    prompt = driver.reply(url)
    assert "asks to set `DATABASE_URL` on `myapp` (values hidden)" in prompt["text"]
    assert SECRET_VALUE not in str(prompt)
    assert heroku.calls("PATCH", "/apps/myapp/config-vars") == []
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    assert "set `DATABASE_URL` on `myapp`" in driver.reply(url)["text"]
    assert heroku.config_vars("myapp") == {"DATABASE_URL": SECRET_VALUE}
    [entry] = history(config)
    assert SECRET_VALUE not in str(entry.as_json())
    assert entry.command == "config set DATABASE_URL=… myapp"
    assert SECRET_VALUE not in caplog.text
    db = Database(config.database_url)
    try:
        from sqlalchemy import text

        with db.session() as session:
            stored = [str(row) for row in session.execute(text("SELECT * FROM confirmations"))]
        assert stored and SECRET_VALUE not in " ".join(stored)
    finally:
        db.dispose()


def test_a_config_prompt_clicked_after_it_expired_forgets_the_value(driver, heroku, config):
    from sqlalchemy import text, update

    from bot.store.models import Confirmation

    _, url = driver.command(f"config set DATABASE_URL={SECRET_VALUE} myapp", ADMIN)
    prompt = driver.reply(url)
    db = Database(config.database_url)
    try:
        with db.session() as session, session.begin():
            past = datetime.now(UTC) - timedelta(minutes=1)
            session.execute(update(Confirmation).values(expires_at=past))
        # Clicked before the worker's sweep: the click expires it, and must wipe it too,
        # since the sweep only looks at pending rows.
        _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
        assert "expired" in driver.reply(url)["text"]
        assert heroku.calls("PATCH", "/apps/myapp/config-vars") == []
        with db.session() as session:
            stored = [str(row) for row in session.execute(text("SELECT * FROM confirmations"))]
        assert stored and SECRET_VALUE not in " ".join(stored)
        # The expiry's audit row names the key, not the value.
        [entry] = history(config)
        assert entry.outcome == "expired" and entry.requested == {"set": ["DATABASE_URL"]}
    finally:
        db.dispose()


def test_a_config_prompt_the_worker_expires_audits_the_key_and_forgets_the_value(
    driver, heroku, config
):
    from sqlalchemy import text

    _, url = driver.command(f"config set DATABASE_URL={SECRET_VALUE} myapp", ADMIN)
    driver.reply(url)
    worker = Worker(config)
    try:
        later = datetime.now(UTC) + timedelta(minutes=11)
        [(pending, _)] = worker.confirmations.expire_due(later)
        record_expiry(worker.audit, pending)
        [entry] = history(config)
        # It had been {"forgotten": True}: the wipe ran before the row was read.
        assert entry.outcome == "expired" and entry.requested == {"set": ["DATABASE_URL"]}
        with worker.db.session() as session:
            stored = [str(row) for row in session.execute(text("SELECT * FROM confirmations"))]
        assert stored and SECRET_VALUE not in " ".join(stored)
    finally:
        worker.db.dispose()


def test_a_cancelled_config_prompt_audits_the_key_not_the_value(driver, heroku, config):
    _, url = driver.command(f"config set DATABASE_URL={SECRET_VALUE} myapp", ADMIN)
    prompt = driver.reply(url)
    _, url = driver.click(CANCEL_ACTION, button(prompt, CANCEL_ACTION)["value"], ADMIN)
    assert "cancelled" in driver.reply(url)["text"]
    [entry] = history(config)
    assert entry.outcome == "cancelled" and entry.requested == {"set": ["DATABASE_URL"]}
    assert SECRET_VALUE not in str(entry.as_json())


def test_a_config_change_whose_answer_was_lost_is_read_back_without_its_values(
    driver, heroku, config
):
    prompt = say(driver, f"config set DATABASE_URL={SECRET_VALUE} myapp")
    heroku.drop_next(methods=["PATCH"])  # Heroku sets it; the answer never comes
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    text = driver.reply(url)["text"]
    # It had said only to check: a second send is harmless here, but the user cannot know.
    assert "set `DATABASE_URL` on `myapp`" in text
    assert "I read it back: `DATABASE_URL` holds the value asked, so it was made." in text
    assert SECRET_VALUE not in text
    [entry] = [e for e in history(config) if e.verb == "config"]
    assert entry.outcome == "ok" and SECRET_VALUE not in str(entry.as_json())
    # Not made (a 500, which is not retried, answered before Heroku acted): said so.
    prompt = say(driver, "config unset DATABASE_URL myapp")
    heroku.fail_next(500, methods=["PATCH"])
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    text = driver.reply(url)["text"]
    assert text.startswith(f"<@{ADMIN}> asked `config unset DATABASE_URL myapp`.")
    assert (
        "I read it back: `DATABASE_URL` is still set, not what was asked, yet" in text
        and "`/deploy config myapp`" in text
    )
    assert heroku.config_vars("myapp") == {"DATABASE_URL": SECRET_VALUE}
    # The trail says what the reply said: it had kept the platform's generic "Check
    # `/deploy status myapp`", and a change read back as made still told to check.
    listed = say(driver, "history myapp")["text"].splitlines()
    unsure_row, made_row = (line for line in listed if "config " in line)
    assert unsure_row.startswith("? may have changed") and unsure_row.endswith(
        ": Heroku's API failed (500). I read it back: `DATABASE_URL` is still set, not what was "
        "asked, yet: it may still be under way. Check `/deploy config mya…"
    ), unsure_row
    assert made_row.startswith("✓") and made_row.endswith(
        ": The connection to Heroku's API dropped after the request was sent, so it may have "
        "been carried out. I read it back: `DATABASE_URL` holds the value as…"
    ), made_row
    assert "/deploy status" not in "\n".join(listed)


def test_a_value_typed_without_quotes_and_no_app_is_not_kept_in_the_trail(driver, heroku, config):
    # `config set K=hunter2 part2`: "part2" was taken for the app, and "no app called
    # `part2`" went into the history the whole team reads.
    ack, url = driver.command("config set PASSWORD=hunter2 part2", ADMIN)
    # The ack, before the app is looked up, had repeated it: "Working on `config set
    # PASSWORD=… part2`".
    assert ack_text(ack) == "Working on `config set PASSWORD=… …`…"
    said = driver.reply(url)["text"]
    assert said == (
        "No app goes by the word after `PASSWORD=…`. Name an app `/deploy apps` lists, after "
        'the variables; a value with spaces goes in quotes: `config set KEY="…" APP`.'
    )
    [entry] = [e for e in history(config) if e.verb == "config"]
    assert "part2" not in repr(entry)
    # A name close to an app's is a slip of the app, not a value: it gets the suggestion.
    assert "Did you mean `myapp`?" in say(driver, "config set PASSWORD=x myap")["text"]
    assert heroku.config_vars("myapp").get("PASSWORD") is None


def test_the_ack_names_a_listed_app_and_hides_any_other_word_after_a_value(with_registry, heroku):
    driver = with_registry("apps:\n  shop:\n    platform: heroku\n    app: myapp\n")
    ack, url = driver.command("config set PASSWORD=x shop", ADMIN)
    assert ack_text(ack) == "Working on `config set PASSWORD=… shop`…"
    driver.reply(url)
    # Not listed: it may be a value's second word (`PASSWORD=hunter2 part2`).
    ack, url = driver.command("config set PASSWORD=hunter2 part2", ADMIN)
    assert ack_text(ack) == "Working on `config set PASSWORD=… …`…"
    driver.reply(url)


def test_config_unset_and_bad_keys(driver, heroku):
    heroku.set_config_vars("myapp", {"LOG_LEVEL": "info"})
    assert "`NOPE` is not set on `myapp`" in say(driver, "config unset NOPE myapp")["text"]
    # Setting what is set had asked, then made a release and restarted every dyno (on
    # Beanstalk, an environment update) to change nothing.
    assert say(driver, "config set LOG_LEVEL=info myapp")["text"] == (
        "`LOG_LEVEL` already has that value on `myapp`; nothing to set."
    )
    # Heroku's rule, here as the app is Heroku's: Beanstalk takes both names.
    for key in ("MY-KEY", "spring.profiles.active"):
        assert say(driver, f"config set {key}=1 myapp")["text"] == (
            f"`{key}` is not a valid config var name on Heroku: use letters, digits and "
            "underscores."
        )
    prompt = say(driver, "config unset LOG_LEVEL myapp")
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    assert "unset `LOG_LEVEL` on `myapp`" in driver.reply(url)["text"]
    [patch] = heroku.calls("PATCH", "/apps/myapp/config-vars")
    assert patch.json == {"LOG_LEVEL": None}
    assert heroku.config_vars("myapp") == {}
    assert heroku.violations == []


def test_a_word_after_a_listed_app_is_the_one_blamed(with_registry):
    # "`myapp` is not a config action": the app blamed where the word after it was wrong.
    driver = with_registry(REGISTRY)
    response, _ = driver.command("config myapp frob", ADMIN)
    assert ack_text(response).startswith(
        "`frob` after the app is one word too many: `/deploy config myapp` lists the vars"
    )
    response, _ = driver.command("config frob myapp", ADMIN)
    assert ack_text(response).startswith("`frob` is not a config action")


def test_setting_a_var_to_an_empty_value_says_so_in_the_prompt_and_the_answer(driver, heroku):
    # `config set K= demo` had asked to "set `K` (values hidden)": an empty value, which
    # Heroku takes, looked like any other, and a typo's empty value was confirmed unseen.
    heroku.set_config_vars("myapp", {"LOG_LEVEL": "info"})
    prompt = say(driver, "config set LOG_LEVEL= myapp")
    assert prompt["text"].startswith(
        f"<@{ADMIN}> asks to set `LOG_LEVEL` on `myapp` to an empty value."
    )
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    assert driver.reply(url)["text"].startswith(
        f"<@{ADMIN}> set `LOG_LEVEL` on `myapp` to an empty value."
    )
    assert heroku.config_vars("myapp") == {"LOG_LEVEL": ""}
    # With others, the empty one is named; the rest stay hidden.
    prompt = say(driver, f"config set TOKEN={SECRET_VALUE} DEBUG= myapp")
    said = "asks to set `TOKEN`, `DEBUG` on `myapp` (values hidden; `DEBUG` to an empty value)."
    assert said in prompt["text"]
    assert SECRET_VALUE not in str(prompt)
    assert heroku.violations == []


def test_a_value_with_curly_quotes_is_pointed_out_before_the_click(driver, heroku):
    # macOS and iOS curl a typed `"`; the value is stored as typed, and the prompt hides
    # values, so `GREETING=“hi”` had been confirmed with its curly quotes unseen.
    prompt = say(driver, "config set GREETING=“hi” PLAIN=ok myapp")
    assert prompt["text"].endswith(
        "The value of `GREETING` has curly quotes (“ ” or ‘ ’), kept as typed: if your "
        "keyboard curled straight ones, cancel and type them again as `\"` or `'`."
    )
    assert "curly" not in say(driver, 'config set GREETING="hi" myapp')["text"]
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    driver.reply(url)
    assert heroku.config_vars("myapp")["GREETING"] == "“hi”"


def test_a_heroku_var_whose_name_starts_with_a_digit_can_be_set_and_unset(driver, heroku):
    # Heroku's schema takes any `^\w+$` name, a digit first too. "not starting with a digit"
    # had refused to set `9LIVES`, and to unset such a var the app has: `config myapp`
    # listed it, and no command could remove it.
    heroku.set_config_vars("myapp", {"3SCALE_PROVIDER_KEY": "x"})
    prompt = say(driver, "config unset 3SCALE_PROVIDER_KEY myapp")
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    assert "unset `3SCALE_PROVIDER_KEY` on `myapp`" in driver.reply(url)["text"]
    prompt = say(driver, "config set 9LIVES=1 myapp")
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    assert "set `9LIVES` on `myapp`" in driver.reply(url)["text"]
    assert heroku.config_vars("myapp") == {"9LIVES": "1"}
    assert heroku.violations == []


def test_a_failed_release_alert_says_the_app_runs_its_last_good_release_and_offers_no_rollback(
    heroku,
    slack,
    served,  # noqa: F811
):
    app, config, _ = served
    driver = SlackDriver(app.test_client(), slack)
    try:
        watch(driver, heroku)
        heroku.add_release("myapp", "Deploy 0badc0d", status="failed")  # v4: release phase
        assert heroku.deliveries.wait()
        worker = Worker(config)
        try:
            worker.send_alerts()
        finally:
            worker.db.dispose()
        [alert] = alert_messages(slack)
        assert "release failed" in alert["text"] and "`v4` failed" in alert["text"]
        # Its Rollback button had asked "roll `myapp` back: `v3` → `v2`": v4 never went live,
        # so that undid the release the app runs. Now it says so, and offers no rollback.
        assert alert["text"].endswith(
            "`myapp` still runs its last good release, since a failed release never goes "
            "live: `/deploy releases myapp` shows which."
        )
        actions = [b["action_id"] for block in alert["blocks"] for b in block.get("elements", [])]
        assert ROLLBACK_ACTION not in actions and "deploybot_alert_ack" in actions
        assert "`v3` · Deploy" in say(driver, "releases myapp")["text"].split("← current")[0]
        # A Rollback button on an alert posted before this change only says so.
        value = button(alert, "deploybot_alert_ack")["value"]
        where = {"channel_id": "CMYAPP", "message_ts": alert["ts"]}
        response, url = driver.click(ROLLBACK_ACTION, value, ADMIN, **where)
        ack_text(response)
        assert driver.reply(url)["text"] == (
            "`myapp` still runs its last good release, since a failed release never goes "
            "live, so there is nothing to roll back. `/deploy releases myapp` shows which it "
            "runs."
        )
        settle()
        assert rollbacks(heroku) == []
        assert [e.verb for e in history(config)] == ["watch"]
        assert heroku.violations == []
    finally:
        app.extensions["deploybot"].db.dispose()


REGISTRY = """\
heroku:
  allow_unlisted: true
apps:
  myapp:
    platform: heroku
    source: https://example.com/acme/shop/archive/{ref}.tar.gz
    run: ["python manage.py migrate"]
"""


@pytest.fixture
def registered(with_registry, heroku):
    """The web app with a registry naming myapp's source and allowed commands, and a
    pipeline myapp (staging) → other-app (production)."""
    heroku.add_pipeline("shop", {"myapp": "staging", "other-app": "production"})
    return with_registry(REGISTRY)


def test_ship_and_run_follow_ups_name_the_app_as_it_was_asked_for(with_registry, slack):
    # An entry named `shop` for the Heroku app `myapp`: the thread had said "for `myapp`".
    driver = with_registry(
        "apps:\n  shop:\n    platform: heroku\n    app: myapp\n"
        "    source: https://example.com/acme/shop/archive/{ref}.tar.gz\n"
        '    run: ["python manage.py migrate"]\n'
    )
    driver.command("ship shop v1.4.2", ADMIN)
    [_, built] = slack.wait_for_calls("chat.postMessage", n=2, timeout=10)
    assert "The build of `v1.4.2` for `shop` succeeded" in built.args["text"]
    driver.command("run shop python manage.py migrate", ADMIN)
    [*_, ran] = slack.wait_for_calls("chat.postMessage", n=4, timeout=10)
    assert "on `shop` succeeded: exit status 0." in ran.args["text"]


def test_ship_builds_the_ref_from_the_registry_source_and_follows_the_build(
    registered, heroku, slack, config
):
    registered.command("ship myapp v1.4.2", ADMIN)
    [anchor, follow_up] = slack.wait_for_calls("chat.postMessage", n=2, timeout=10)
    assert "is shipping `v1.4.2` to `myapp`" in anchor.args["text"]
    assert follow_up.args["thread_ts"] == anchor.response["ts"]
    assert (
        "Done: The build of `v1.4.2` for `myapp` succeeded and released as `v4`."
        in (follow_up.args["text"])
    )
    assert "Released v4" in follow_up.args["text"]  # the output's tail
    [build] = heroku.calls("POST", "/apps/myapp/builds")
    assert build.json == {
        "source_blob": {
            "url": "https://example.com/acme/shop/archive/v1.4.2.tar.gz",
            "version": "v1.4.2",
        }
    }
    # The output stream lives on another host in Heroku: the API key never goes there.
    assert heroku.stream_requests
    assert all("Authorization" not in r.headers for r in heroku.stream_requests)
    assert heroku.violations == []


def test_a_failed_build_says_so_with_its_last_lines(registered, heroku, slack, config):
    heroku.fail_next_build("myapp", ["ERROR: No matching distribution found for nope==1.0"])
    registered.command("ship myapp", ADMIN)
    follow_up = slack.wait_for_calls("chat.postMessage", n=2, timeout=10)[1].args
    assert "Failed: The build of `main` for `myapp` failed." in follow_up["text"]
    assert "No matching distribution found for nope==1.0" in follow_up["text"]
    assert "Push rejected" in follow_up["text"]
    [entry] = [e for e in history(config) if e.verb == "ship"]
    assert entry.outcome == "error" and "nope==1.0" not in (entry.error or "")


def test_a_ref_the_source_does_not_have_is_a_failed_build_and_no_release(
    registered, heroku, slack, config
):
    # Heroku takes the build, then cannot fetch the tarball: it fails, and nothing is
    # released. The fake had built and released any ref at all.
    heroku.source_exists = lambda url: "/no-such-ref." not in url
    registered.command("ship myapp no-such-ref", ADMIN)
    follow_up = slack.wait_for_calls("chat.postMessage", n=2, timeout=10)[1].args["text"]
    assert "Failed: The build of `no-such-ref` for `myapp` failed." in follow_up
    assert "The source could not be fetched" in follow_up and "Released" not in follow_up
    assert [r["version"] for r in heroku.releases("myapp")] == [1, 2, 3]
    [entry] = [e for e in history(config) if e.verb == "ship"]
    assert entry.outcome == "error"


def test_a_build_whose_release_phase_fails_is_not_said_to_have_released(
    registered, heroku, slack, config
):
    # The build succeeds and makes `v4`, whose release command fails: Heroku never puts it
    # live. The thread had said "succeeded and released as `v4`".
    heroku.fail_next_release_phase("myapp", ["django.db.utils.OperationalError: <no db>"])
    registered.command("ship myapp v1.4.2", ADMIN)
    follow_up = slack.wait_for_calls("chat.postMessage", n=2, timeout=10)[1].args["text"]
    assert follow_up.startswith(
        "Failed: The build of `v1.4.2` for `myapp` succeeded, but its release `v4` failed "
        "in the release phase, so `myapp` still runs its last good release."
    )
    assert "OperationalError: &lt;no db&gt;" in follow_up and "released as" not in follow_up
    [entry] = [e for e in history(config) if e.verb == "ship"]
    assert entry.outcome == "error"
    assert heroku.violations == []


def test_a_build_still_running_when_the_wait_ends_is_not_said_to_have_failed(
    registered, heroku, slack, config, monkeypatch
):
    # Had read "Failed: The build of `myapp` is still running; see the dashboard.", and
    # its audit row `error`, of a build that may yet succeed.
    from bot.platforms.heroku import HerokuPlatform

    monkeypatch.setattr(HerokuPlatform, "_wait", lambda self, app, path, timeout, stopping: None)
    registered.command("ship myapp v1.4.2", ADMIN)
    follow_up = slack.wait_for_calls("chat.postMessage", n=2, timeout=10)[1].args["text"]
    assert follow_up == (
        "The build of `myapp` was still running when I stopped watching it: check "
        "`/deploy builds myapp` in a few minutes."
    )
    [entry] = [e for e in history(config) if e.verb == "ship"]
    assert entry.outcome == "unknown"


def test_a_failed_poll_is_not_a_failed_build(registered, heroku, slack, config, monkeypatch):
    from bot.actions import path

    monkeypatch.setattr(path, "FOLLOW_UP_PAUSE_S", 0.05)
    heroku.fail_next(500, count=1, methods=["GET"])  # the first poll of the build
    registered.command("ship myapp v1.4.2", ADMIN)
    [_, follow_up] = slack.wait_for_calls("chat.postMessage", n=2, timeout=10)
    assert "Done: The build of `v1.4.2` for `myapp` succeeded" in follow_up.args["text"]
    # Every poll failing: how it ended is not known, which is no "Failed:".
    heroku.fail_next(500, count=3, methods=["GET"])
    registered.command("ship myapp v1.4.3", ADMIN)
    last = slack.wait_for_calls("chat.postMessage", n=4, timeout=10)[-1].args["text"]
    assert last.startswith("I could not follow it to the end: Heroku's API failed (500)")
    assert "Check `/deploy status myapp` to see how it went." in last
    [entry, _] = [e for e in history(config) if e.verb == "ship"]
    assert entry.outcome == "unknown"


def test_a_ship_whose_answer_was_lost_finds_its_build_and_follows_it(
    registered, heroku, slack, config
):
    heroku.clock = lambda: datetime.now(UTC)  # Heroku's clock is the bot's, give or take
    heroku.drop_next(methods=["POST"])  # the build starts; its answer never comes
    registered.command("ship myapp v1.4.2", ADMIN)
    [anchor, follow_up] = slack.wait_for_calls("chat.postMessage", n=2, timeout=10)
    # It had said only to check: a second ship would have built and released again.
    assert "is shipping `v1.4.2` to `myapp`" in anchor.args["text"]
    assert "I found its build, so it was made." in anchor.args["text"]
    assert "Done: The build of `v1.4.2` for `myapp` succeeded" in follow_up.args["text"]
    assert len(heroku.calls("POST", "/apps/myapp/builds")) == 1
    [entry] = [e for e in history(config) if e.verb == "ship"]
    assert entry.outcome == "ok"
    # Lost before Heroku made anything: it says it sees no build, and where to look.
    heroku.fail_next(500, methods=["POST"])
    _, url = registered.command("ship myapp v1.4.3", ADMIN)
    assert (
        "I see no build of `v1.4.3` on `myapp` among its newest, yet"
        in (registered.reply(url)["text"])
    )


def test_shipping_is_refused_while_locked_frozen_or_without_a_source(registered, heroku):
    say(registered, "lock myapp release train", OTHER_ADMIN)
    assert "is locked by" in say(registered, "ship myapp")["text"]
    say(registered, "unlock myapp", OTHER_ADMIN)
    assert "`other-app` has no `source:`" in say(registered, "ship other-app")["text"]
    assert "is not a git ref" in ack_text(registered.command("ship myapp ../x", ADMIN)[0])
    assert heroku.calls("POST", "/apps/myapp/builds") == []


def test_promote_moves_the_slug_to_the_next_stage_and_not_past_the_last(registered, heroku, slack):
    registered.command("promote myapp", ADMIN)
    [reply, _] = slack.wait_for_calls("chat.postMessage", n=2, timeout=10)
    # Which release went out is named: the answer had said only the two apps.
    assert "promoting `myapp`'s `v3` (Deploy e443df7) to `other-app`." in reply.args["text"]
    [promotion] = heroku.calls("POST", "/pipeline-promotions")
    assert len(promotion.json["targets"]) == 1
    last = say(registered, "promote other-app")
    assert "in the production stage" in last["text"] and "nothing to promote to" in last["text"]
    assert len(heroku.calls("POST", "/pipeline-promotions")) == 1
    assert "Promote myapp v3" in heroku.releases("other-app")[-1]["description"]
    # `swap PROD STAGING` on Heroku had been pointed at `/deploy promote other-app`, the
    # production stage, which has nothing to promote to: the earlier stage is promoted.
    swapped = say(registered, "swap other-app myapp")["text"]
    assert swapped.endswith(
        "To move `myapp`'s release to the next stage of their pipeline, promote it: "
        "`/deploy promote myapp`."
    )
    # Typed the other way round, it still names the earlier stage, not production.
    assert say(registered, "swap myapp other-app")["text"].endswith("`/deploy promote myapp`.")
    assert heroku.violations == []


def test_promoting_what_the_next_stage_already_runs_releases_nothing(registered, heroku, slack):
    # A second `promote myapp` had released v3's slug to production again: a release that
    # changed nothing, restarted every dyno and read as a deploy in the history.
    registered.command("promote myapp", ADMIN)
    slack.wait_for_calls("chat.postMessage", n=2, timeout=10)
    again = say(registered, "promote myapp")["text"]
    assert again == (
        "`other-app` already runs the slug of `myapp`'s v3, so there is nothing new to "
        "promote: `/deploy releases other-app` shows what it runs."
    )
    assert len(heroku.calls("POST", "/pipeline-promotions")) == 1
    # A deploy to staging since, a slug of its own, is news again.
    heroku.release("myapp", "Deploy 9b1c2d3")
    registered.command("promote myapp", ADMIN)
    slack.wait_for_calls("chat.postMessage", n=4, timeout=10)
    assert len(heroku.calls("POST", "/pipeline-promotions")) == 2
    assert heroku.releases("other-app")[-1]["description"] == "Promote myapp v4"
    assert heroku.violations == []


def test_a_promotion_leaves_out_a_next_stage_app_that_already_runs_its_slug(
    with_registry, heroku, slack
):
    heroku.add_app("third-app")
    heroku.add_pipeline("shop", {"myapp": "staging", "other-app": "production",
                                 "third-app": "production"})  # fmt: skip
    driver = with_registry(REGISTRY)
    driver.command("promote myapp", ADMIN)
    slack.wait_for_calls("chat.postMessage", n=2, timeout=10)
    heroku.release("third-app", "Deploy hotfix")  # production diverged on one app
    driver.command("promote myapp", ADMIN)
    [*_, anchor, done] = slack.wait_for_calls("chat.postMessage", n=4, timeout=10)
    assert anchor.args["text"].startswith(
        f"<@{ADMIN}> is promoting `myapp`'s `v3` (Deploy e443df7) to `third-app`. "
        "`other-app` already runs the slug of `myapp`'s v3, so I left it out."
    )
    first, second = heroku.calls("POST", "/pipeline-promotions")
    assert len(first.json["targets"]) == 2 and len(second.json["targets"]) == 1
    assert heroku.releases("other-app")[-1]["description"] == "Promote myapp v3"
    assert "`third-app` runs `v" in done.args["text"]


def test_a_promotion_is_in_the_history_of_the_app_it_released_to(registered, config, slack):
    registered.command("promote myapp", ADMIN)
    slack.wait_for_calls("chat.postMessage", n=2, timeout=10)
    # `history other-app` had not shown it: the row named only the app promoted from, so
    # "who put this on production?" went unanswered where it was asked.
    downstream = say(registered, "history other-app")["text"]
    assert "`promote myapp`" in downstream
    assert "`promote myapp`" in say(registered, "history myapp")["text"]
    [entry] = [e for e in history(config) if e.verb == "promote"]  # still one row
    assert entry.app == "myapp"


def test_a_pending_promotion_is_followed_to_its_end_in_a_thread(registered, heroku, slack, config):
    # Heroku answers a promotion pending and its targets stay pending for seconds: the
    # reply had ended "Heroku had not said how it went when I looked", and nothing followed.
    registered.command("promote myapp", ADMIN)
    [anchor, follow_up] = slack.wait_for_calls("chat.postMessage", n=2, timeout=10)
    assert anchor.args["text"].startswith(
        f"<@{ADMIN}> is promoting `myapp`'s `v3` (Deploy e443df7) to `other-app`."
    )
    assert "I will follow up in this thread." in anchor.args["text"]
    assert "had not said how it went" not in anchor.args["text"]
    assert follow_up.args["thread_ts"] == anchor.response["ts"]
    assert follow_up.args["text"].startswith(
        "Done: The promotion of `myapp` to `other-app` succeeded: `other-app` runs `v4`."
    )
    [entry] = [e for e in history(config) if e.verb == "promote"]
    assert entry.outcome == "ok" and entry.after == {"other-app": "succeeded"}
    assert heroku.violations == []


def test_a_promotion_whose_answer_was_lost_is_read_back_from_the_next_stage(
    registered, heroku, config
):
    heroku.drop_next(methods=["POST"])  # Heroku promotes; the answer never comes
    text = say(registered, "promote myapp")["text"]
    # It had said only that it may have been made, and to check.
    assert "promoted `myapp`'s `v3` (" in text and ") to `other-app`." in text
    assert "I read it back: `other-app` runs v4 (Promote myapp v3), so it was made." in text
    [entry] = [e for e in history(config) if e.verb == "promote"]
    assert entry.outcome == "ok"
    # Answered 503 before Heroku acted: v4, seconds old, is from the promotion before (of
    # v3: a deploy since gives this promotion something new to send).
    heroku.release("myapp", "Deploy 9b1c2d3")
    heroku.fail_next(503, count=5, methods=["POST"])
    text = say(registered, "promote myapp")["text"]
    assert len(heroku.calls("POST", "/pipeline-promotions")) == 2
    assert "I read it back: no new release promoted to `other-app`, not what was asked, yet" in text
    assert text.count("Check ") == 1 and "`/deploy releases other-app`" in text


def test_the_worker_settles_maybe_made_promotions_from_the_next_stage(registered, heroku, config):
    settled = swept(
        config,
        {
            name: ("promote", {"newest": {"other-app": newest}}, {"to": ["other-app"]})
            for name, newest in (("made", "v3"), ("not made", "v4"))
        },
        lambda: heroku.add_release("other-app", "Promote myapp v3 abc1234"),  # v4: the first's
    )
    # Before, both had been settled "unknown: nothing to read back".
    assert settled["made"].outcome == "ok"
    assert "`other-app` runs v4 (Promote myapp v3 abc1234)" in settled["made"].error
    assert settled["not made"].outcome == "not-applied"


def test_a_lock_taken_by_the_registry_name_holds_back_a_promotion(with_registry, heroku):
    # Locks are kept by the name people type; the pipeline names the Heroku app.
    heroku.add_pipeline("shop", {"myapp": "staging", "other-app": "production"})
    driver = with_registry(REGISTRY + "  prod:\n    platform: heroku\n    app: other-app\n")
    say(driver, "lock prod incident 42", OTHER_ADMIN)
    refused = say(driver, "promote myapp")
    assert f"locked by <@{OTHER_ADMIN}> (incident 42)" in refused["text"]
    assert heroku.calls("POST", "/pipeline-promotions") == []


def test_the_heroku_name_of_a_listed_app_is_that_app_with_its_lock_and_guardrails(
    with_registry, heroku
):
    # Typed by its Heroku name, `other-app` had resolved as an unlisted app: no lock, no
    # protection, and a kill that only its requester had to confirm.
    driver = with_registry(
        REGISTRY + "  prod:\n    platform: heroku\n    app: other-app\n"
        "    guardrails:\n      protected: true\n"
    )
    say(driver, "lock prod incident 42", OTHER_ADMIN)
    refused = say(driver, "rollback other-app")
    assert f"`prod` is locked by <@{OTHER_ADMIN}> (incident 42)" in refused["text"]
    asked = say(driver, "kill other-app")
    assert "`prod` is protected: killing `prod` needs a second person's approval" in (asked["text"])
    assert heroku.calls("POST", "/apps/other-app/releases") == []


def test_a_freeze_of_the_downstream_app_holds_back_a_promotion(with_registry, heroku):
    heroku.add_pipeline("shop", {"myapp": "staging", "other-app": "production"})
    driver = with_registry(
        REGISTRY + "  prod:\n    platform: heroku\n    app: other-app\n    guardrails:\n"
        "      freezes:\n        - {cron: '* * * * *', duration: 2h, reason: launch week}\n"
    )
    refused = say(driver, "promote myapp")
    assert "is frozen until" in refused["text"] and "launch week" in refused["text"]
    assert heroku.calls("POST", "/pipeline-promotions") == []


def test_a_promotion_forced_through_the_next_stages_freeze_breaks_glass_in_its_channel(
    with_registry, heroku, slack
):
    # The freeze that matters is production's: forced through it, its channel had not been
    # told (only the promoted app's own freeze was judged for the notice).
    heroku.add_pipeline("shop", {"myapp": "staging", "other-app": "production"})
    driver = with_registry(
        REGISTRY + "  prod:\n    platform: heroku\n    app: other-app\n    channel: CPROD\n"
        "    guardrails:\n      freezes:\n"
        "        - {cron: '* * * * *', duration: 2h, reason: launch week}\n"
    )
    heroku.promotion_pending_reads = 0  # done when first read: answered in the reply
    promoted = say(driver, 'promote myapp --force "hotfix"')
    assert "promoted `myapp`" in promoted["text"]
    [notice] = [
        call.args
        for call in slack.calls_to("chat.postMessage")
        if "Break-glass" in call.args.get("text", "")
    ]
    assert notice["channel"] == "CPROD" and "launch week" in notice["text"]
    assert "Their reason: hotfix" in notice["text"]


def test_run_starts_only_allowed_commands_and_reports_output_and_exit_status(
    registered, heroku, slack
):
    heroku.run_output["python manage.py migrate"] = (["Applying hello.0002... OK"], 0)
    refused = say(registered, "run myapp rm -rf /")
    # It had been three sentences: not allowed, what it allows, how an admin adds one.
    assert refused["text"] == (
        "`rm -rf /` is not a command `myapp` may run from chat: it allows only "
        "`python manage.py migrate`. An admin can add more under the app's `run:` in the "
        "registry."
    )
    assert heroku.calls("POST", "/apps/myapp/dynos") == []
    registered.command("run myapp python manage.py migrate", ADMIN)
    [anchor, follow_up] = slack.wait_for_calls("chat.postMessage", n=2, timeout=10)
    assert "started `python manage.py migrate` on `myapp` as `run.1000`" in anchor.args["text"]
    assert "Done: `run.1000` on `myapp` succeeded: exit status 0." in follow_up.args["text"]
    assert "Applying hello.0002... OK" in follow_up.args["text"]
    [dyno] = heroku.calls("POST", "/apps/myapp/dynos")
    assert dyno.json == {"command": "python manage.py migrate", "attach": False}
    assert heroku.violations == []


def test_a_deploy_lock_holds_back_run_by_anyone_but_its_holder(registered, heroku):
    # A migration run from chat during someone's release train had gone through their lock.
    say(registered, "lock myapp release train", OTHER_ADMIN)
    refused = say(registered, "run myapp python manage.py migrate")
    assert refused["text"] == (
        f"`myapp` is locked by <@{OTHER_ADMIN}> (release train), so only they may run "
        "commands on it. Ask them to `/deploy unlock myapp` when they are done."
    )
    assert heroku.calls("POST", "/apps/myapp/dynos") == []
    registered.command("run myapp python manage.py migrate", OTHER_ADMIN)
    wait_for(lambda: heroku.calls("POST", "/apps/myapp/dynos"))


def test_logs_mask_secrets_and_escape_markup(driver, heroku):
    heroku.log("myapp", "web.1", "Booting with DATABASE_URL=postgres://u:pw@db/x <!channel>")
    heroku.log("myapp", "worker.1", "job done")
    reply = say(driver, "logs myapp web.1 5", USER)  # read-only, like status
    assert "DATABASE_URL=••••••" in reply["text"] and "pw@" not in reply["text"]
    assert "&lt;!channel&gt;" in reply["text"] and "job done" not in reply["text"]
    [session] = heroku.calls("POST", "/apps/myapp/log-sessions")
    assert session.json == {"lines": 5, "tail": False, "dyno_name": "web.1"}
    assert heroku.violations == []


def test_logs_hide_the_tokens_in_router_paths_the_bot_polls_or_is_posted_at(driver, heroku):
    # Heroku's router logs every request's path: the app's HireFire endpoint, which the
    # worker reads each tick, and on the bot's own app each drain's `/drain/<token>`.
    hirefire, drain = "hf0Secret1Token2", "dr41nTok3n_xyz-0123456789abcdef"
    heroku.log(
        "myapp", "router", f'at=info method=GET path="/hirefire/{hirefire}/info"', source="heroku"
    )
    heroku.log("myapp", "router", f"at=info method=POST path=/drain/{drain}", source="heroku")
    heroku.log("myapp", "web.1", "posting with xoxb-1234-5678-abcdefghijkl")
    reply = say(driver, "logs myapp 5", USER)
    text = reply["text"]
    assert hirefire not in text and drain not in text and "abcdefghijkl" not in text, text
    assert 'path="/hirefire/[redacted]/info"' in text and "path=/drain/[redacted]" in text


def test_logs_leave_out_ansi_colour_sequences_and_keep_the_words(driver, heroku):
    heroku.log("myapp", "web.1", "\x1b[32mINFO\x1b[0m GET / \x1b[1;31m500\x1b[m in 3ms")
    reply = say(driver, "logs myapp web.1 5", USER)
    # Slack had shown `[32mINFO[0m GET / [1;31m500[m`, the ESC itself unseen.
    assert "INFO GET / 500 in 3ms" in reply["text"]
    assert "\x1b" not in reply["text"] and "[32m" not in reply["text"]


def test_logs_longer_than_a_message_show_whole_newest_lines_and_say_how_many(driver, heroku):
    for n in range(300):
        heroku.log("myapp", "web.1", f"request {n:03} " + "x" * 80)
    reply = say(driver, "logs myapp 300", USER)
    [block] = reply["blocks"]
    title, fence, *body, end = block["text"]["text"].split("\n")
    # It had said "Last 300 log lines" above 25, the first of them cut mid-line.
    assert fence == end == "```" and len(block["text"]["text"]) <= 3000
    assert all(re.search(r"app\[web\.1\]: request \d{3} x{80}$", line) for line in body)
    assert body[-1].endswith("request 299 " + "x" * 80) and 20 < len(body) < 300
    assert title == (
        f"*Last {len(body)} log lines of `myapp`* (secrets masked): 300 were asked for, more "
        "than one Slack message holds. `heroku logs -n 300 -a myapp` shows them all."
    )
    assert say(driver, "logs myapp 5", USER)["text"].startswith(
        "*Last 5 log lines of `myapp`* (secrets masked)\n```"
    )


def test_releases_follow_next_range_across_pages(heroku, monkeypatch):
    from bot.platforms import heroku as heroku_module

    monkeypatch.setattr(heroku_module, "PAGE_MAX", 2)
    for n in range(3):
        heroku.add_release("myapp", f"Deploy {n}")
    found = heroku_module.HerokuPlatform("test-key", heroku.url).releases("myapp", 5)
    assert [r.version for r in found] == ["v6", "v5", "v4", "v3", "v2"]
    ranges = [r.headers["Range"] for r in heroku.calls("GET", "/apps/myapp/releases")]
    assert ranges[0] == "version ..; order=desc, max=2;"
    assert len(ranges) == 3 and ranges[1].startswith("version ]")


def test_a_cancelled_config_prompt_keeps_no_value(driver, heroku, config):
    from sqlalchemy import text

    prompt = say(driver, f"config set DATABASE_URL={SECRET_VALUE} myapp")
    _, url = driver.click(CANCEL_ACTION, button(prompt, CANCEL_ACTION)["value"], ADMIN)
    assert "cancelled `config set DATABASE_URL=… myapp`" in driver.reply(url)["text"]
    db = Database(config.database_url)
    try:
        with db.session() as session:
            stored = " ".join(
                str(row) for row in session.execute(text("SELECT * FROM confirmations"))
            )
    finally:
        db.dispose()
    assert "config set" in stored and SECRET_VALUE not in stored
    assert heroku.calls("PATCH", "/apps/myapp/config-vars") == []


def test_a_private_source_is_shipped_through_the_hosts_signed_redirect(
    config, slack, heroku, tmp_path, monkeypatch
):
    from werkzeug.wrappers import Request, Response

    from bot.sandbox.fakes.server import LocalServer

    seen = []

    def github(environ, start_response):
        request = Request(environ)
        seen.append(request.headers.get("Authorization"))
        if request.headers.get("Authorization") != "Bearer gh-token" or "nope" in request.path:
            return Response("Not Found", status=404)(environ, start_response)
        signed = f"https://codeload.example/acme/shop/legacy.tar.gz/{request.path.rsplit('/', 1)[-1]}?token=TMP"
        return Response("", status=302, headers={"Location": signed})(environ, start_response)

    with LocalServer(github) as host:
        path = tmp_path / "deploybot.yml"
        path.write_text(
            "apps:\n  myapp:\n    platform: heroku\n"
            f"    source: {host.url}/repos/acme/shop/tarball/{{ref}}\n"
            "    source_token_env: SHOP_SOURCE_TOKEN\n"
        )
        monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
        web = create_app(config)
        driver = SlackDriver(web.test_client(), slack)
        try:
            assert "SHOP_SOURCE_TOKEN is not set" in say(driver, "ship myapp v1")["text"]
            monkeypatch.setenv("SHOP_SOURCE_TOKEN", "gh-token")
            assert "that ref does not exist" in say(driver, "ship myapp nope")["text"]
            assert heroku.calls("POST", "/apps/myapp/builds") == []
            driver.command("ship myapp v1", ADMIN)
            slack.wait_for_calls("chat.postMessage", n=2, timeout=10)
        finally:
            close(web)
            web.extensions["deploybot"].db.dispose()
    [build] = heroku.calls("POST", "/apps/myapp/builds")
    assert (
        build.json["source_blob"]["url"]
        == "https://codeload.example/acme/shop/legacy.tar.gz/v1?token=TMP"
    )
    assert seen == ["Bearer gh-token", "Bearer gh-token"]  # only the source host saw it
    assert all("gh-token" not in str(r.headers) for r in heroku.requests)


def test_a_rollback_answered_503_is_not_sent_again(driver, heroku, config):
    # A POST makes a release each time: one answered 5xx may have been made, so a second
    # send could roll back twice. (A 429 was refused before anything was done: retried.)
    confirm = button(say(driver, "rollback myapp"), CONFIRM_ACTION)
    heroku.fail_next(503, methods=["POST"])
    _, url = driver.click(CONFIRM_ACTION, confirm["value"], ADMIN)
    text = driver.reply(url)["text"]
    settle()
    assert len(rollbacks(heroku)) == 1
    assert "Heroku's API failed (503)" in text
    # Read back: the app still runs v3, which a slow request may yet change.
    assert "I read it back: it runs v3" in text and "not what was asked, yet" in text
    assert text.count("Check `/deploy") == 1


def test_a_read_back_shows_a_long_release_description_clipped_and_as_typed(driver, heroku):
    # The app owner writes the description the read-back quotes: no mention, no 5 KB reply.
    heroku.release("myapp", "<!here> " + "x" * 5000)
    confirm = button(say(driver, "rollback myapp"), CONFIRM_ACTION)
    heroku.fail_next(503, methods=["POST"])
    _, url = driver.click(CONFIRM_ACTION, confirm["value"], ADMIN)
    text = driver.reply(url)["text"]
    settle()
    assert "I read it back: it runs v4 (&lt;!here&gt; xxx" in text and "<!here>" not in text
    assert "x…)" in text and len(text) < 1000
    assert "Check `/deploy" in text  # the advice after it is not cut off


def test_a_rollback_whose_answer_was_lost_is_read_back_from_the_releases(driver, heroku, config):
    confirm = button(say(driver, "rollback myapp"), CONFIRM_ACTION)
    heroku.drop_next(methods=["POST"])  # Heroku makes the release; its answer never comes
    _, url = driver.click(CONFIRM_ACTION, confirm["value"], ADMIN)
    text = driver.reply(url)["text"]
    assert "dropped after the request was sent" in text
    assert "I read it back: it runs v4 (Rollback to v2), so it was made." in text
    assert len(rollbacks(heroku)) == 1
    [entry] = [e for e in history(config) if e.verb == "rollback"]
    assert entry.outcome == "ok"


def swept(config, rows, then=lambda: None):
    """Audit rows left `unknown` by a lost answer ({name: (verb, before, asked)}), settled
    by the worker's reconcile pass after `then` (what the platform did meanwhile); each
    settled row by its name."""
    from bot.actions.reconcile import SETTLE_AFTER
    from bot.services import Services
    from bot.store.audit import Actor

    services = Services(config)
    try:
        audit = AuditLog(services.db)
        ids = {}
        for name, (verb, before, asked) in rows.items():
            ids[name] = audit.start(Actor(ADMIN), verb, "myapp", f"{verb} myapp", before, asked)
            audit.finish(ids[name], "unknown", error="The connection dropped.")
        then()
        later = datetime.now(UTC) + SETTLE_AFTER + timedelta(minutes=1)
        assert services.actions.reconciler.sweep(later) == len(rows)
        settled = {e.id: e for e in audit.recent("myapp", limit=None)}
        return {name: settled[i] for name, i in ids.items()}
    finally:
        services.db.dispose()


def test_the_worker_settles_maybe_made_rollbacks_from_the_releases(heroku, config):
    settled = swept(
        config,
        {
            name: ("rollback", {"version": "v3"}, {"version": asked})
            for name, asked in (("made", "v2"), ("not made", "v1"), ("v2's prefix", "v"))
        },
        # What the first request did: v4. Before, a rollback row was settled "unknown:
        # nothing to read back".
        lambda: heroku.add_release("myapp", "Rollback to v2"),
    )
    assert settled["made"].outcome == "ok"
    assert "Read back: it runs v4 (Rollback to v2)." in settled["made"].error
    assert settled["not made"].outcome == "unknown"  # v4 is neither v3 nor v1
    assert settled["v2's prefix"].outcome == "unknown"  # "to v2" is not "to v"


def test_a_confirmed_change_heroku_refused_says_how_to_retry(driver, heroku):
    # It said "already confirmed" at the next click, about a change nobody made.
    heroku.add_release("myapp", "Deploy abc1234")
    prompt = say(driver, "rollback myapp")
    value = button(prompt, CONFIRM_ACTION)["value"]
    heroku.fail_next(422, methods=["POST"], body={"id": "invalid_params", "message": "Try later"})
    _, url = driver.click(CONFIRM_ACTION, value, ADMIN)
    refused = driver.reply(url)["text"]
    assert "Heroku refused the change to `myapp`: Try later." in refused
    assert "Nothing was changed; the request stays open" in refused
    _, url = driver.click(CONFIRM_ACTION, value, ADMIN)
    assert "rolled `myapp` back" in driver.reply(url)["text"]
    # Config's values are wiped once the click is decided: the command must come again.
    prompt = say(driver, "config set FOO=bar myapp")
    heroku.fail_next(422, methods=["PATCH"], body={"id": "invalid_params", "message": "No"})
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    assert "Nothing was changed; send the command again to retry." in driver.reply(url)["text"]
    assert heroku.config_vars("myapp") == {}


def test_a_lost_answer_sends_the_user_to_the_app_by_its_registry_name(with_registry, heroku):
    """The platform knows only its own name for the app; the advice names the one typed."""
    driver = with_registry(
        'apps:\n  prod:\n    platform: heroku\n    app: myapp\n    run: ["python manage.py migrate"]\n'
    )
    heroku.drop_next(methods=["POST"])
    reply = say(driver, "run prod python manage.py migrate")
    assert "Check `/deploy status prod` before trying again." in reply["text"], reply["text"]
    assert "myapp" not in reply["text"]
    assert len(heroku.calls("POST", "/apps/myapp/dynos")) == 1


@pytest.mark.parametrize(
    "reason", ["don't ship, chasing the checkout bug", "hotfix - do not ship", "-- see #ops"]
)
def test_a_lock_reason_is_the_words_as_typed_apostrophes_and_dashes_too(driver, reason):
    # It had said "There is an unmatched quote in your command." to an apostrophe, and
    # "`-` is not an option I know." to a dash, so the app stayed unlocked.
    response, url = driver.command(f"lock myapp {reason}", OTHER_ADMIN)
    assert "'\"'\"'" not in ack_text(response)  # `Working on` it as typed, not shell-quoted
    locked = driver.reply(url)
    assert f"locked `myapp`: {reason}." in locked["text"]
    refused = say(driver, "rollback myapp")
    assert f"`myapp` is locked by <@{OTHER_ADMIN}> ({reason})" in refused["text"]


@pytest.mark.parametrize("text", ["rollback myapp -a other-app", "ship myapp -a other-app"])
def test_an_app_before_the_app_option_is_not_taken_for_a_version_or_ref(driver, heroku, text):
    # `myapp` was read as the release (or the git ref) of other-app: "`other-app` has no
    # release `myapp`", or a build of a ref called `myapp`.
    ack, _ = driver.command(text, ADMIN)
    assert (
        "`myapp` stands where the usage puts APP, and `-a` names `other-app` too."
        in json.loads(ack.data)["text"]
    )
    settle()
    assert heroku.requests == []


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ('lock myapp -a other-app "release freeze"', "The app is given twice: `myapp` and"),
        ('lock myapp --force "hotfix"', "`--force` only passes a freeze, and no freeze holds"),
    ],
)
def test_an_option_in_a_lock_is_read_as_the_option_not_as_the_reason(driver, text, says):
    # `myapp` was locked with the reason `-a other-app release freeze` or `--force hotfix`.
    ack, _ = driver.command(text, OTHER_ADMIN)
    assert says in json.loads(ack.data)["text"]
    assert "is not locked" in say(driver, "unlock myapp", OTHER_ADMIN)["text"]
    locked = say(driver, 'lock -a myapp "release freeze"', OTHER_ADMIN)
    assert "locked `myapp`: release freeze." in locked["text"]


@pytest.mark.parametrize(
    "text",
    [
        'maintenance myapp on --force "hotfix"',
        'ship myapp v2 --force "hotfix"',
        'config set LOG_LEVEL=debug myapp --force "hotfix"',
        # `run` had taken `--force "hotfix"` for words of the command: "`python manage.py
        # migrate --force hotfix` is not a command `myapp` may run", frozen or not.
        'run myapp python manage.py migrate --force "hotfix"',
        'run myapp --force "hotfix" python manage.py migrate',
    ],
)
def test_a_change_forced_through_a_freeze_breaks_glass_in_the_channel(
    with_registry, slack, heroku, text
):
    # Only scale, restart and rollback had said so: a forced ship, maintenance or config
    # change went through the freeze with nobody in the app's channel told.
    driver = with_registry(
        REGISTRY.replace("    run:", "    channel: CMYAPP\n    run:")
        + "    guardrails:\n      freezes:\n"
        "        - {cron: '* * * * *', duration: 2h, reason: release freeze}\n"
    )
    response, url = driver.command(text, ADMIN)
    ack_text(response)
    if text.startswith(("config", "maintenance")):  # they ask first
        prompt = driver.reply(url)
        _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
        done = "set `LOG_LEVEL` on" if text.startswith("config") else "turned maintenance mode on"
        assert done in driver.reply(url)["text"]

    def notices():
        calls = slack.calls_to("chat.postMessage")
        return [c.args for c in calls if "Break-glass" in c.args.get("text", "")]

    wait_for(notices, timeout=10)
    [notice] = notices()
    assert notice["channel"] == "CMYAPP" and "release freeze" in notice["text"]
    assert "Their reason: hotfix" in notice["text"] and "debug" not in notice["text"]
    if text.startswith(("ship", "run")):  # let its thread end before the app is closed
        posts = lambda: slack.calls_to("chat.postMessage")  # noqa: E731
        wait_for(lambda: any("Done:" in c.args.get("text", "") for c in posts()), timeout=20)


def test_what_slack_escapes_in_a_command_is_read_as_typed(driver, heroku):
    """Slack sends `&`, `<` and `>` typed in a slash command as `&amp;`, `&lt;`, `&gt;`
    (the driver's bodies do, as Slack's clients do): a config value with a query string
    had been stored with `&amp;` in it, and a lock's reason shown with entities doubled."""
    url = "https://hooks.example.com/in?a=1&b=<2>"
    _, reply_url = driver.command(f"config set HOOK_URL={url} myapp", ADMIN)
    prompt = driver.reply(reply_url)
    _, done = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    assert "set `HOOK_URL` on `myapp`" in driver.reply(done)["text"]
    assert heroku.config_vars("myapp")["HOOK_URL"] == url
    reply = say(driver, "lock myapp R&D <fix> &lt;", ADMIN)
    assert "R&amp;D &lt;fix&gt; &amp;lt;" in reply["text"], reply["text"]
    assert "&amp;amp;" not in reply["text"]


def test_a_long_build_output_ends_the_follow_up_with_whole_lines_and_says_how_many():
    from bot.platforms.base import Settled
    from handlers.render import settled_message

    output = tuple(f"step {n:03}: compiling assets for the storefront bundle" for n in range(300))
    text = settled_message(Settled(True, "The build of `v2` succeeded.", output, output=True))[
        "text"
    ]
    block = text.split("```\n", 1)[1].split("\n```", 1)[0].splitlines()
    assert all(line in output for line in block), block[0]  # none begins mid-line
    assert block[-1] == output[-1]
    assert text.endswith(f"(the last {len(block)} of 300 lines)")
    short = settled_message(Settled(False, "The run failed.", output[:3], output=True))["text"]
    assert "the last" not in short and output[0] in short


@pytest.mark.parametrize(
    ("named", "field"),
    [("worker", "type"), ("web.2", "dyno_name"), ("web-1234abcde-123ab", "dyno_name")],
)
def test_logs_of_a_process_type_ask_by_type_and_of_a_dyno_by_its_name(driver, heroku, named, field):
    """Heroku's log-session takes a process type as `type` and a dyno as `dyno_name`
    (`web.1`, or on Fir `web-1234abcde-123ab`); a type had been sent as a dyno's name."""
    heroku.log("myapp", "worker.1", "job 1 done")
    heroku.log("myapp", "worker.2", "job 2 done")
    heroku.log("myapp", "web.1", "GET /")
    reply = say(driver, f"logs myapp {named} 5", USER)
    [session] = heroku.calls("POST", "/apps/myapp/log-sessions")
    assert session.json == {"lines": 5, "tail": False, field: named}
    if named == "worker":
        assert "job 1 done" in reply["text"] and "job 2 done" in reply["text"]
        assert "GET /" not in reply["text"]
    assert heroku.violations == []


def test_logs_of_an_app_called_like_a_process_type_are_its_logs(driver, heroku):
    """`logs web myapp` is told to put the app first only when no app is called `web`."""
    assert say(driver, "logs web myapp 5", USER)["text"].startswith(
        "Put the app first: `/deploy logs myapp web 5`."
    )
    heroku.add_app("web", formation={"web": (1, "standard-1x")})
    heroku.log("web", "myapp.1", "the web app's own line")
    reply = say(driver, "logs web myapp 5", USER)
    assert "the web app's own line" in reply["text"] and "Put the app first" not in reply["text"]


def test_logs_of_a_dyno_or_type_the_app_does_not_have_name_those_it_has(driver, heroku):
    # They had said "No log lines from `web.9` of `myapp` yet", as if some might come, as a
    # restart of them had before it named what the app has.
    heroku.log("myapp", "web.1", "GET /")
    assert say(driver, "logs myapp web.9", USER)["text"] == (
        "`myapp` has no `web.9` dyno (it has: `web.1`, `worker.1`)."
    )
    assert say(driver, "logs myapp clock", USER)["text"] == (
        "`myapp` has no `clock` process type (it has: `web`, `worker`)."
    )
    assert say(driver, "logs myapp web-1234abcde-123ab", USER)["text"] == (
        "`myapp` has no `web-1234abcde-123ab` dyno (it has: `web.1`, `worker.1`)."
    )
    # One it has, with nothing logged yet, is still told so; one gone whose lines are kept
    # (a one-off dyno that has exited) still shows them.
    assert say(driver, "logs myapp worker.1", USER)["text"] == (
        "No log lines from `worker.1` of `myapp` yet."
    )
    heroku.log("myapp", "run.1000", "Process exited with status 0", source="heroku")
    assert "Process exited" in say(driver, "logs myapp run.1000", USER)["text"]
    assert heroku.violations == []


def test_logs_of_a_heroku_app_by_a_beanstalk_instance_id_say_to_name_a_dyno(driver, heroku):
    # It had asked Heroku for dyno `i-0123…` and said "No log lines from `i-0123…` of `myapp`
    # yet", as if they might come; Beanstalk answers a dyno name likewise.
    reply = say(driver, "logs myapp i-0123456789abcdef0", USER)
    assert reply["text"] == (
        "`myapp` is a Heroku app: logs take a dyno such as `web.1` or a process type, not "
        "the Beanstalk instance ID `i-0123456789abcdef0`. `/deploy status myapp` lists the dynos."
    )
    assert heroku.calls("POST", "/apps/myapp/log-sessions") == []


def test_a_promotion_names_each_target_and_says_why_one_did_not_succeed():
    from bot.actions.results import Deployed
    from bot.platforms.base import Promotion
    from handlers.render import message

    result = Deployed(
        "myapp",
        "promote",
        ADMIN,
        promotions=(
            Promotion("other-app", "succeeded", None),
            Promotion("eu-app", "failed", "release <phase> *failed*"),
            Promotion("us-app", "pending", None),
        ),
    )
    text = message(result)["text"]
    assert text == (
        f"<@{ADMIN}> promoted `myapp` to `other-app`, "
        "`eu-app` (failed: release &lt;phase&gt; *failed*), `us-app` (pending)."
    ), text


@pytest.mark.parametrize("user", [USER, ADMIN])
def test_config_past_one_message_says_where_to_read_every_variable(driver, heroku, user):
    # It had ended "…and 301 more lines, more than one Slack message holds. Ask about one
    # app to see it", about the one app asked about.
    names = [f"FEATURE_FLAG_{n:04}_ROLLOUT_PERCENTAGE" for n in range(600)]
    heroku.set_config_vars("myapp", dict.fromkeys(names, "25"))
    text = say(driver, "config myapp", user)["text"]
    shown = [line for line in text.splitlines() if line.startswith("• `FEATURE_FLAG_")]
    assert 0 < len(shown) < 600
    assert text.endswith(
        f"…and {600 - len(shown):,} more variables, more than one Slack message holds. "
        "`heroku config -a myapp` lists them all."
    ), text[-300:]
    assert "Ask about one app" not in text


def test_status_names_the_release_the_app_runs_not_a_newer_failed_one(driver, heroku):
    heroku.add_release("myapp", "Deploy 0badc0d", status="failed")  # v4 never went live
    reply = say(driver, "status myapp")
    context = [e["text"] for b in reply["blocks"] if b["type"] == "context" for e in b["elements"]]
    assert any("Release: v3 " in text for text in context), context
    assert not any("v4" in text for text in context), context
    # `releases` agrees: v3 is current.
    assert "`v3`" in say(driver, "releases myapp")["text"].split("← current")[0].splitlines()[-1]


def test_status_says_a_newer_release_is_still_in_its_release_phase(driver, heroku):
    # Just shipped: Heroku's newest release is `pending` while its release command runs.
    # Status showed v3 as the release, with no word of v4, as if the deploy had not happened.
    heroku.add_release("myapp", "Deploy abc1234", status="pending")
    reply = say(driver, "status myapp")
    context = [e["text"] for b in reply["blocks"] if b["type"] == "context" for e in b["elements"]]
    [line] = [text for text in context if "Release: v3 " in text]
    assert "v4 Deploy abc1234 is still in its release phase, not live yet" in line, line
    assert "v4 Deploy abc1234 is still in its release phase" in reply["text"], reply["text"]
    # Once it succeeds it is the release, and nothing is said of a pending one.
    heroku.add_release("myapp", "Deploy def5678")
    reply = say(driver, "status myapp")
    context = [e["text"] for b in reply["blocks"] if b["type"] == "context" for e in b["elements"]]
    assert any("Release: v5 Deploy def5678" in text for text in context), context
    assert "release phase" not in str(reply)


def test_an_expired_release_is_marked_and_never_offered_as_a_rollback(driver, heroku):
    heroku.expire_release("myapp", 2)  # its slug is gone
    listing = say(driver, "releases myapp")["text"]
    [v2] = [line for line in listing.splitlines() if "`v2`" in line]
    assert "*expired*" in v2
    # The default skips it (v1 is the newest good release before v3).
    prompt = say(driver, "rollback myapp")["text"]
    assert "→ `v1`" in prompt, prompt
    # Named, it is refused at once rather than after a click that Heroku refuses: it had
    # been offered by default, and refused only after Confirm.
    said = say(driver, "rollback myapp v2")["text"]
    assert said.startswith("`v2` of `myapp` expired, so it cannot be rolled back to."), said
    assert rollbacks(heroku) == []


def test_a_rollback_whose_release_phase_fails_is_followed_and_said_to_have_failed(
    driver, heroku, slack, config
):
    # Heroku answers the rollback's release `pending` while its release command runs, and
    # never puts it live if that fails: it had been said "rolled back" and nothing more.
    heroku.add_release("myapp", "Deploy abc1234")
    prompt = say(driver, "rollback myapp")
    heroku.fail_next_release_phase("myapp", ["migrate: column <x> missing"])
    driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    [anchor, follow_up] = slack.wait_for_calls("chat.postMessage", n=2, timeout=10)
    assert "rolled `myapp` back: `v4`" in anchor.args["text"] and "`v5`" in anchor.args["text"]
    assert follow_up.args["thread_ts"] == anchor.response["ts"]
    assert follow_up.args["text"].startswith(
        "Failed: The release `v5` of `myapp` failed in the release phase, so `myapp` still "
        "runs its last good release."
    )
    assert "column &lt;x&gt; missing" in follow_up.args["text"]
    [entry] = [e for e in history(config) if e.verb == "rollback"]
    assert entry.outcome == "error"
    assert heroku.violations == []


def test_a_release_that_expired_after_the_prompt_is_not_sent_and_closes_it(driver, heroku, config):
    # Heroku pruned its slug while the prompt was open: the Confirm had been sent, refused,
    # and answered "the request stays open", though every click would be refused alike.
    prompt = say(driver, "rollback myapp v2")
    value = button(prompt, CONFIRM_ACTION)["value"]
    heroku.expire_release("myapp", 2)
    _, url = driver.click(CONFIRM_ACTION, value, ADMIN)
    said = driver.reply(url)["text"]
    assert said.startswith(
        "Nothing was changed: `v2` of `myapp` expired since the rollback was asked for, so it "
        "cannot be rolled back to. Pick another from `/deploy releases myapp`."
    ), said
    assert rollbacks(heroku) == []
    _, url = driver.click(CONFIRM_ACTION, value, ADMIN)
    assert "already" in driver.reply(url)["text"]
    assert heroku.violations == []


def test_a_heroku_swap_is_pointed_at_the_promotion_that_works(tmp_path):
    import io

    from bot.sandbox import console
    from bot.sandbox.demo import Sandbox

    sandbox = Sandbox(admins=frozenset({console.CONSOLE_USER}))
    out = io.StringIO()
    lines = ("swap demo demo-shop", "swap demo-staging demo", "swap demo-api demo")
    with sandbox as config:
        console.run(config, lines, False, out=out, registry=sandbox.registry)
    said = [line for line in out.getvalue().splitlines() if "swapping CNAMEs" in line]
    assert len(said) == 3, said
    # A Beanstalk environment is never offered to `promote`, which refuses it.
    assert "promote demo-shop" not in said[0] and "`demo-shop` is a Beanstalk" in said[0]
    # Staging typed first: promote staging, not production (which has nothing to promote to).
    assert said[1].endswith("`/deploy promote demo-staging`.") and "promote demo`" not in said[1]
    # Not in one pipeline: no promotion that `promote` refuses.
    assert "/deploy promote" not in said[2]
