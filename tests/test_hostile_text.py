"""Outside strings reach Slack as typed, never as mentions, links or broken code spans:
Heroku release descriptions and actor e-mails (in `/deploy status` and release notices),
a build's version, description, e-mail and output (in `/deploy builds`),
`--force` reasons (in the break-glass notice), words typed wrong, and the registry's own
texts (a freeze's reason, the allowed sizes), through the real web app, the fake Heroku
and the fake Slack's recorded calls."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import requests

from bot.worker.main import Worker
from policies.heroku_webhooks import sign
from tests.conftest import ADMIN, USER
from tests.webclient import SlackDriver, ack_text, served_app

HOSTILE = "Deploy <!channel> <http://evil.example|login> `x` & <@UEVIL001>"
RAW = ("<!channel>", "<http://evil.example", "<@UEVIL001>", "<!here>")

REGISTRY = """\
apps:
  myapp:
    platform: heroku
    channel: CMYAPP
    guardrails:
      freezes:
        - cron: "* * * * *"
          duration: 2m
          timezone: UTC
          reason: "always frozen <!channel> <http://evil.example|login> & `x`"
      sizes: ["<!channel>", standard-1x]
"""


@pytest.fixture
def served(config, tmp_path, monkeypatch):
    """The web app on a real port (Heroku must reach it), knowing its own URL."""
    with served_app(config, REGISTRY, tmp_path, monkeypatch) as served:
        yield served


@pytest.fixture
def driver(served, slack):
    return SlackDriver(served[0].test_client(), slack)


def assert_shown_as_typed(payload: object) -> None:
    dumped = json.dumps(payload, ensure_ascii=False)
    for raw in RAW:
        assert raw not in dumped, raw
    assert "&lt;!channel&gt;" in dumped or "&lt;!here&gt;" in dumped


def test_a_release_description_and_email_in_status(driver, heroku):
    heroku.release("myapp", HOSTILE, email="<!here>@evil.example")
    _, url = driver.command("status myapp", USER)
    reply = driver.reply(url)
    assert_shown_as_typed(reply)
    assert "&lt;http://evil.example|login&gt;" in json.dumps(reply)


def test_a_build_s_version_description_email_and_output_in_builds(driver, heroku):
    heroku.add_build(
        "myapp",
        "<!channel>`v1`",
        description=HOSTILE,
        failing=[HOSTILE, "```", "<!here>"],
        user="<!here>@evil.example",
    )
    _, url = driver.command("builds myapp", USER)
    reply = driver.reply(url)
    assert_shown_as_typed(reply)
    # The output's code block is not closed early by a fence in the output itself.
    [failure] = [b["text"]["text"] for b in reply["blocks"] if "output ends" in b["text"]["text"]]
    assert failure.count("```") == 2


def deliver_release(driver, heroku, served, description: str) -> None:
    """`watch myapp`, then Heroku's notice of release v42 described as `description`, then
    one worker pass that posts it."""
    _, config, base = served
    response, url = driver.command("watch myapp", ADMIN)
    ack_text(response)
    driver.reply(url)
    [hook] = heroku.webhooks("myapp")
    body = json.dumps(
        {
            "id": "11111111-2222-3333-4444-555555555555",
            "action": "update",
            "resource": "release",
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "actor": {"email": "<!here>@evil.example"},
            "data": {
                "app": {"name": "myapp"},
                "version": 42,
                "status": "succeeded",
                "description": description,
            },
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "Heroku-Webhook-Id": "release-delivery-1",
        "Heroku-Webhook-Hmac-SHA256": sign(hook["secret"], body),
    }
    assert requests.post(f"{base}/webhooks/heroku", data=body, headers=headers, timeout=10).ok
    worker = Worker(config)
    try:
        assert worker.send_alerts() == 1
    finally:
        worker.services().db.dispose()
        worker.db.dispose()


def test_a_release_notice_from_a_webhook(driver, heroku, slack, served):
    # A freeze never holds `watch` back, so `--force` is refused, its reason not echoed.
    response, _ = driver.command(f'watch myapp --force "{HOSTILE}"', ADMIN)
    refusal = ack_text(response)
    assert "no freeze holds back `watch`: leave it out" in refusal
    assert not any(raw in refusal for raw in RAW)
    deliver_release(driver, heroku, served, HOSTILE)
    [notice] = slack.messages("CMYAPP")
    assert "v42" in notice["text"]
    assert_shown_as_typed(notice)


def test_a_long_release_description_is_clipped_in_the_notice(driver, heroku, slack, served):
    # An app owner writes the description: a 200 KB one must not become a 200 KB message.
    deliver_release(driver, heroku, served, "<!channel> " + "x" * 200_000)
    [notice] = slack.messages("CMYAPP")
    assert "`v42` &lt;!channel&gt; xxx" in notice["text"]
    assert notice["text"].endswith("…")
    assert len(json.dumps(notice)) < 3000


def test_a_force_reason_in_the_break_glass_notice(driver, heroku, slack):
    _, url = driver.command(f'scale web=2 myapp --force "{HOSTILE}"', ADMIN)
    driver.reply(url)
    assert heroku.formation("myapp")["web"][0] == 2
    notices = [m for m in slack.messages("CMYAPP") if "Break-glass" in m["text"]]
    assert notices
    for notice in notices:
        assert_shown_as_typed(notice)
        # The command's code span holds the reason's backtick without closing early.
        assert "ˋxˋ &amp; &lt;@UEVIL001&gt;'`" in notice["text"]


@pytest.mark.parametrize("text", ["status <!channel>", "scale web=<!channel> myapp", "<!here>"])
def test_a_mistyped_command_is_echoed_as_typed(driver, text):
    # The ack names the word it could not read: as typed, never as a mention.
    response, _ = driver.command(text, USER)
    answer = ack_text(response)
    assert "Usage: `/deploy" in answer
    assert_shown_as_typed({"text": answer})


def test_a_freeze_reason_from_the_registry_in_the_refusal(driver):
    _, url = driver.command("scale web=2 myapp", ADMIN)
    refusal = driver.reply(url)
    assert "is frozen until" in refusal["text"]
    assert_shown_as_typed(refusal)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("run myapp <!channel> `rm` &", "is not a command `myapp` may run from chat"),
        ("autoscale myapp schedule add <!channel> 08:00-18:00 min=3", "Not a schedule window"),
        ("autoscale myapp schedule add mon 08:00-18:00 min=3 tz=<!here>", "unknown timezone"),
        ("scale web=1:performance-m myapp --force now", "is not an allowed size"),
    ],
)
def test_typed_words_and_registry_texts_in_refusals(driver, text, says):
    _, url = driver.command(text, ADMIN)
    reply = driver.reply(url)
    assert says in reply["text"]
    assert_shown_as_typed(reply)


def test_a_long_release_description_is_clipped_in_status(driver, heroku):
    heroku.release("myapp", "<!here> " + "x" * 5000)
    _, url = driver.command("status myapp", USER)
    reply = driver.reply(url)
    assert_shown_as_typed(reply)
    assert "&lt;!here&gt; xxx" in json.dumps(reply)
    assert len(json.dumps(reply)) < 3000


# The bidirectional embeddings, overrides and isolates: one left open turns the rest of
# the line around in Slack, the bot's own words after it too.
BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
RLO = "\u202e"  # RIGHT-TO-LEFT OVERRIDE


def assert_turns_nothing(payload: object) -> None:
    dumped = json.dumps(payload, ensure_ascii=False)
    assert not any(char in dumped for char in BIDI), dumped


def test_a_direction_override_from_heroku_turns_nothing_around(driver, heroku):
    heroku.release("myapp", f"fixed {RLO}gnp.exe")
    heroku.log("myapp", "web.1", f"GET /{RLO}olleh 200")
    _, url = driver.command("status myapp", USER)
    status = driver.reply(url)
    _, url = driver.command("logs myapp 5", USER)
    logs = driver.reply(url)
    for reply in (status, logs):
        assert_turns_nothing(reply)
    assert "fixed gnp.exe" in json.dumps(status, ensure_ascii=False)
    assert "GET /olleh 200" in logs["text"]


def test_a_direction_override_typed_in_a_lock_reason_turns_nothing_around(driver):
    response, url = driver.command(f'lock myapp "checkout {RLO}gub"', ADMIN)
    ack = ack_text(response)
    reply = driver.reply(url)
    for payload in ({"text": ack}, reply):
        assert_turns_nothing(payload)
    assert "checkout gub" in reply["text"]


def test_accents_scripts_and_emoji_in_a_lock_reason_are_shown_as_typed(driver):
    # Right-to-left text with its mark (U+200F) and emoji joined by U+200D keep every
    # character: only the embeddings, overrides and isolates are left out.
    reason = "café 日本語 \u200fשלום 🚀 👨\u200d👩\u200d👧"
    _, url = driver.command(f'lock myapp "{reason}"', ADMIN)
    assert reason in driver.reply(url)["text"]


# A commit message as a description: its line breaks, kept, would start lines of their own,
# and one starting "• " would read as a release or build the app never had.
MULTILINE = "Fix login\r\n\n• v99 · by boss@example.com\n*bold*"


def assert_one_line_each(text: str, bullets: int) -> None:
    assert "\n• v99" not in text and "\n*bold" not in text and "\r" not in text
    assert text.count("\n• ") == bullets, text
    assert "Fix login • v99 · by boss@example.com *bold*" in text


def texts(part: object) -> str:
    """Every text of a reply, its blocks' fields and elements too, a line break between each."""
    if isinstance(part, str):
        return part
    inner = part.values() if isinstance(part, dict) else part if isinstance(part, list) else ()
    return "\n".join(texts(each) for each in inner)


def test_a_multi_line_description_stays_on_its_bullet_in_releases_and_builds(driver, heroku):
    heroku.release("myapp", MULTILINE)
    _, url = driver.command("releases myapp", USER)
    text = driver.reply(url)["text"]
    assert_one_line_each(text, text.count("\n• "))
    assert text.count("\n") == len(heroku.releases("myapp")) + 1
    heroku.add_build("myapp", "abc123", description=MULTILINE)
    _, url = driver.command("builds myapp", USER)
    text = driver.reply(url)["text"]
    assert_one_line_each(text, 1)


def test_a_multi_line_description_stays_on_one_line_in_status_and_the_notice(
    driver, heroku, slack, served
):
    heroku.release("myapp", MULTILINE)
    _, url = driver.command("status myapp", USER)
    assert_one_line_each(texts(driver.reply(url)), 0)
    deliver_release(driver, heroku, served, MULTILINE)
    [notice] = slack.messages("CMYAPP")
    assert_one_line_each(notice["text"], 0)
