"""A value typed into `/deploy config set K=V APP` stays out of the channel. Slack shows a
slash command as it was typed beside any `in_channel` answer to its `response_url`, so a
public answer to such a command (the confirmation prompt) would have shown the value to
everyone there, whatever the prompt itself hid. Through the real web app and fake Slack."""

from __future__ import annotations

import json

from handlers.render import CONFIRM_ACTION
from tests.conftest import ADMIN
from tests.test_alerts_e2e import driver, served  # noqa: F401
from tests.webclient import button, settle, wait_for

SECRET = "s3cret-typed-value"
CHANNEL = "CMYAPP"  # myapp's channel in the registry of tests/test_alerts_e2e.py


def shown_to_channel(slack, url: str) -> list[dict]:
    """The answers to the command's response_url that Slack shows with the typed command."""
    return [
        r.payload
        for r in slack.responses_for(url)
        if r.payload.get("response_type") == "in_channel"
    ]


def test_a_config_set_prompt_is_the_bots_post(driver, slack, heroku):  # noqa: F811
    _, url = driver.command(f"config set API_TOKEN={SECRET} myapp", ADMIN, channel=CHANNEL)
    wait_for(lambda: slack.messages(CHANNEL))
    settle()
    assert shown_to_channel(slack, url) == []
    [prompt] = slack.messages(CHANNEL)
    assert "asks to set `API_TOKEN` on `myapp` (values hidden)" in prompt["text"]
    assert SECRET not in json.dumps(prompt)
    # The prompt in the channel still works: Confirm sets the value.
    confirm = button(prompt, CONFIRM_ACTION)
    _, click = driver.click(CONFIRM_ACTION, confirm["value"], ADMIN, channel_id=CHANNEL)
    assert "set `API_TOKEN` on `myapp`" in driver.reply(click)["text"]
    assert heroku.config_vars("myapp")["API_TOKEN"] == SECRET
    assert shown_to_channel(slack, url) == []


def test_unposted_it_goes_to_the_asker_alone(driver, slack, heroku):  # noqa: F811
    slack.fail_next("chat.postMessage", status=500)
    _, url = driver.command(f"config set API_TOKEN={SECRET} myapp", ADMIN, channel=CHANNEL)
    [answer] = driver.replies(url)
    assert answer["response_type"] == "ephemeral"
    assert "asks to set `API_TOKEN` on `myapp` (values hidden)" in answer["text"]
    assert "API_TOKEN" not in heroku.config_vars("myapp")


def test_a_short_rate_limit_is_waited_out_and_the_prompt_still_goes_to_the_channel(
    driver,  # noqa: F811
    slack,
    heroku,
):
    # Slack's 429 asking for a second: waited out on the command's job thread, as every
    # other post there is, not turned into a prompt only the asker sees.
    slack.fail_next("chat.postMessage", retry_after=1)
    _, url = driver.command(f"config set API_TOKEN={SECRET} myapp", ADMIN, channel=CHANNEL)
    wait_for(lambda: slack.responses_for(url) or slack.messages(CHANNEL), timeout=10)
    settle()
    assert [r.payload.get("response_type") for r in slack.responses_for(url)] == []
    [prompt] = slack.messages(CHANNEL)
    assert "asks to set `API_TOKEN` on `myapp` (values hidden)" in prompt["text"]
