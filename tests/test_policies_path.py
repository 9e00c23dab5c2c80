"""Access rules, guardrails, approvals and break-glass through the real web app: signed
Slack requests in, fake Heroku and fake Slack (user groups included) over HTTP."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.registry import Registry, RegistryError
from bot.sandbox.slack_requests import slash_command
from handlers.render import CANCEL_ACTION, CONFIRM_ACTION
from tests.conftest import ADMIN, OTHER_ADMIN, USER
from tests.webclient import SlackDriver, ack_text, button, settle

OPS, INTERN, APPROVER = "UOPS0001", "UINTERN1", "UAPPROVE1"
REGISTRY = """\
heroku:
  allow_unlisted: false
access:
  - allow: [scale, restart]
    groups: [SOPS]
    apps: ["my*"]
  - allow: [approve]
    users: [UAPPROVE1]
  - deny: [kill]
    users: [UADMIN02]
  - allow: [scale]
    users: [UINTERN1]
    channels: [COPS]
apps:
  myapp:
    platform: heroku
    channel: CMYAPP
    guardrails:
      max: {web: 5}
      max_step: 2
      sizes: [standard-1x, standard-2x]
      protected: true
  other:
    platform: heroku
    app: other-app
    channel: COTHER
    guardrails:
      freezes:
        - cron: "* * * * *"
          duration: 1h
          timezone: Europe/Paris
          reason: release freeze
"""


@pytest.fixture
def web(new_app, config, tmp_path, monkeypatch, slack):
    path = tmp_path / "deploybot.yml"
    path.write_text(REGISTRY)
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
    slack.set_usergroup("SOPS", [OPS])
    return new_app(config)


@pytest.fixture
def driver(web, slack):
    return SlackDriver(web.test_client(), slack)


def patches(heroku):
    return [r for r in heroku.requests if r.method == "PATCH"]


def say(driver, text, user, channel="C0CONSOLE"):
    url = driver.slack.new_response_url()
    driver.post(slash_command(text, url, user_id=user, channel_id=channel))
    return driver.reply(url)


@pytest.mark.parametrize(
    ("text", "user", "channel", "says"),
    [
        # A user group member may scale through the group's rule...
        ("scale web=2 myapp", OPS, "C0CONSOLE", "scaled `myapp`: web 1 → 2"),
        # ...but not an app outside its pattern, nor kill.
        ("scale web=2 other", OPS, "C0CONSOLE", "You may not scale `other`: no rule allows it"),
        ("kill myapp", OPS, "C0CONSOLE", "You may not kill `myapp`: no rule allows it"),
        # A channel rule allows only in its channel, and says where.
        ("scale web=2 myapp", INTERN, "COPS", "scaled `myapp`: web 1 → 2"),
        ("scale web=2 myapp", INTERN, "CRANDOM", "allows it only in <#COPS>"),
        # Deny wins, even over DEPLOYBOT_ADMINS, and names its line.
        ("kill myapp", OTHER_ADMIN, "C0CONSOLE", "Denied by the rule at"),
        # Read-only verbs stay open.
        ("status myapp", USER, "C0CONSOLE", "Status of `myapp`"),
    ],
)
def test_access_rules(driver, heroku, text, user, channel, says):
    reply = say(driver, text, user, channel)
    assert says in reply["text"]
    if "Denied by" in says:
        assert "deploybot.yml:9 (kill on every app)" in reply["text"]
    if "scaled" not in says:
        settle(0.1)
        assert patches(heroku) == []


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("scale web=6 myapp", "allows at most 5 for `web`"),
        ("scale web+3 myapp", "at most 2 per command"),
        ("scale web=2:performance-l myapp", "`performance-l` is not an allowed size"),
    ],
)
def test_guardrails_refuse_before_any_call(driver, heroku, text, says):
    assert says in say(driver, text, ADMIN)["text"]
    settle(0.1)
    assert patches(heroku) == []


def test_a_protected_kill_needs_a_second_persons_approval(driver, heroku, slack):
    prompt = say(driver, "kill myapp", ADMIN)
    assert "`myapp` is protected" in prompt["text"]
    assert "Monthly cost: ≈ $50/month → $0/month (-$50/month)" in prompt["text"]
    approve = button(prompt, CONFIRM_ACTION)
    assert approve["text"]["text"] == "Approve"

    for user, refusal in [
        (ADMIN, "must come from someone other than"),
        (USER, "You may not approve changes to `myapp`"),
    ]:
        _, url = driver.click(CONFIRM_ACTION, approve["value"], user)
        reply = driver.reply(url)
        assert refusal in reply["text"] and reply["replace_original"] is False
        # Said once: it had been "You may not approve changes to `myapp`. You may not approve
        # `myapp`: no rule allows it. …".
        assert reply["text"].count("You may not") <= 1, reply["text"]
    settle(0.1)
    assert patches(heroku) == []

    _, url = driver.click(CONFIRM_ACTION, approve["value"], APPROVER)
    done = driver.reply(url)
    assert f"<@{ADMIN}> killed `myapp`: web 1 → 0, worker 1 → 0" in done["text"]
    assert f"Approved by <@{APPROVER}>" in str(done["blocks"])
    assert len(patches(heroku)) == 1


def test_asking_again_for_a_change_waiting_for_approval_points_at_the_first_request(driver, heroku):
    first = say(driver, "scale web=0 myapp", ADMIN)
    assert button(first, CONFIRM_ACTION)["text"]["text"] == "Approve"
    # The same change again, by the asker or by someone else: one request, not two prompts
    # for approvers to answer (and for the trail to show expiring).
    again = say(driver, "scale web=0 myapp", ADMIN)
    assert CONFIRM_ACTION not in str(again), again
    assert again["text"].startswith("You already asked for `scale web=0 myapp` at "), again
    assert "waiting for a second person's approval until" in again["text"]
    other = say(driver, "scale web=0 myapp", OPS)
    assert other["text"].startswith(f"<@{ADMIN}> already asked for `scale web=0 myapp` at ")
    assert "Approve or Cancel that request instead of asking again" in other["text"]
    _, url = driver.click(CONFIRM_ACTION, button(first, CONFIRM_ACTION)["value"], APPROVER)
    assert f"<@{ADMIN}> scaled `myapp`: web 1 → 0" in driver.reply(url)["text"]
    assert len(patches(heroku)) == 1


def test_the_approver_may_also_cancel(driver, heroku):
    prompt = say(driver, "scale web=0 myapp", ADMIN)
    _, url = driver.click(CANCEL_ACTION, button(prompt, CANCEL_ACTION)["value"], APPROVER)
    assert "cancelled" in driver.reply(url)["text"]
    settle(0.1)
    assert patches(heroku) == []


def test_a_freeze_refuses_changes_unless_an_admin_breaks_glass(driver, heroku, slack):
    refused = say(driver, "scale web=3 other", ADMIN)["text"]
    assert "`other` is frozen until" in refused and "(release freeze)" in refused
    assert 'An admin can pass it with `--force "reason"`' in refused

    done = say(driver, 'scale web=3 other --force "hotfix for INC-42"', ADMIN)
    assert "scaled `other`: web 2 → 3" in done["text"]
    [notice] = slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
    assert notice.args["channel"] == "COTHER"
    assert "Break-glass" in notice.args["text"] and "hotfix for INC-42" in notice.args["text"]
    assert "(release freeze)" in notice.args["text"]
    assert len(patches(heroku)) == 1


def test_the_bot_will_not_kill_its_own_app(new_app, config, tmp_path, monkeypatch, slack, heroku):
    monkeypatch.delenv("DEPLOYBOT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    web = new_app(replace(config, heroku_app_name="myapp"))
    driver = SlackDriver(web.test_client(), slack)
    assert "I will not kill myself" in say(driver, "kill myapp", ADMIN)["text"]
    assert (
        "I will not scale my own web dynos to 0" in say(driver, "scale web=0 myapp", ADMIN)["text"]
    )
    prompt = say(driver, "kill myapp worker", ADMIN)  # its worker may go
    assert button(prompt, CONFIRM_ACTION)
    settle(0.1)
    assert patches(heroku) == []


def test_an_expired_request_replaces_its_prompt(web, driver, heroku):
    prompt = say(driver, "scale web=0 myapp", ADMIN)
    actions = web.extensions["deploybot"].actions
    later = actions._now() + __import__("datetime").timedelta(minutes=11)
    actions._now = lambda: later
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], APPROVER)
    reply = driver.reply(url)
    assert "expired at" in reply["text"] and "nothing was changed" in reply["text"]
    assert reply["replace_original"] is True
    settle(0.1)
    assert patches(heroku) == []


def test_whoami_says_what_and_why(driver):
    text = say(driver, "whoami", OPS)["text"]
    assert f"You are <@{OPS}> (user groups: SOPS)" in text
    assert "scale" in text and "myapp" in text and "deploybot.yml:4" in text


def test_whoami_names_approve_as_the_button_it_is_not_a_command_to_type(driver):
    # `approve` is no verb of the grammar: a line `approve`: … read as one to type.
    ack = driver.post(
        slash_command("approve myapp", driver.slack.new_response_url(), user_id=APPROVER)
    )
    assert "`approve` is not a command I know" in ack_text(ack)
    lines = say(driver, "whoami", APPROVER)["text"].splitlines()
    assert not [line for line in lines if line.startswith("`approve`")]
    [button_line] = [line for line in lines if line.startswith("The Approve button")]
    assert button_line.startswith("The Approve button on someone else's protected change: every")
    assert button_line.endswith("deploybot.yml:7).")


@pytest.mark.parametrize(
    ("snippet", "says"),
    [
        ("access:\n  - allow: [deploy]\n", ":2: access.0: `deploy` is not a verb"),
        ("access:\n  - allow: [scale]\n    users: [bob]\n", ":3: access.0.users.0"),
        (
            "access:\n  - allow: [scale]\n    deny: [kill]\n",
            ":2: access.0: a rule needs exactly one",
        ),
        ("access:\n  - allow: [scale]\n    channels: [general]\n", ":3: access.0.channels.0"),
        (
            "apps:\n  a:\n    platform: heroku\n    guardrails:\n      freezes:\n"
            "        - {cron: '0 17 * * FRI', duration: 2h, timezone: Mars/Base, reason: x}\n",
            ":6: apps.a.guardrails.freezes.0",
        ),
    ],
)
def test_a_bad_policy_file_names_its_line(snippet, says):
    with pytest.raises(RegistryError) as caught:
        Registry.parse(snippet, "deploybot.yml")
    assert says in str(caught.value)
