"""FakeSlack, driven by slack_sdk's and slack_bolt's own HTTP clients as the bot drives it."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import requests
from slack_bolt.context.respond import Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot.sandbox.fakes.slack import SPEC_PATH, FakeSlack

CHANNEL = "C0123456789"
USER = "U0123456789"
BLOCKS = [{"type": "section", "text": {"type": "mrkdwn", "text": "*deployed*"}}]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeSlack]:
    # One server for the module: each stop waits out Werkzeug's 0.5 s poll interval.
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def fake(server: FakeSlack) -> Iterator[FakeSlack]:
    yield server
    server.reset()


@pytest.fixture
def client(fake: FakeSlack) -> WebClient:
    return WebClient(token=fake.bot_token, base_url=fake.api_url)


def api_error(call: Any, *args: Any, **kwargs: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as raised:
        call(*args, **kwargs)
    return raised.value


def success_schema(method: str) -> dict[str, Any]:
    spec = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    [operation] = spec["paths"][f"/{method}"].values()
    return {**operation["responses"]["200"]["schema"], "definitions": spec["definitions"]}


def test_lifecycle_and_urls() -> None:
    fake = FakeSlack()
    with pytest.raises(RuntimeError):
        fake.url  # noqa: B018
    with fake:
        assert fake.url.startswith("http://127.0.0.1:")
        assert fake.api_url == fake.url + "/api/"
        assert logging.getLogger("werkzeug").level == logging.WARNING
        assert requests.get(fake.url + "/elsewhere", timeout=5).status_code == 404
        assert requests.get(fake.new_response_url(), timeout=5).status_code == 405


def test_auth_test(fake: FakeSlack, client: WebClient) -> None:
    response = client.auth_test()
    assert response["team_id"] == "T0CONSOLE" and response["user_id"] == "U0BOT"
    assert response["bot_id"] == fake.bot_id
    jsonschema.Draft4Validator(success_schema("auth.test")).validate(response.data)
    [call] = fake.calls_to("auth.test")
    assert call.headers["Authorization"] == "Bearer xoxb-test"
    assert call.response == response.data


def test_post_message_with_blocks(
    fake: FakeSlack, client: WebClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake, "team_id", "T0123456789")  # as long as real ones
    first = client.chat_postMessage(channel=CHANNEL, text="deployed", blocks=BLOCKS)
    second = client.chat_postMessage(channel=CHANNEL, text="again", thread_ts=first["ts"])
    jsonschema.Draft4Validator(success_schema("chat.postMessage")).validate(first.data)

    assert first["channel"] == CHANNEL and first["ts"] == "1700000000.000100"
    assert first["message"]["blocks"] == BLOCKS and first["message"]["ts"] == first["ts"]
    assert float(first["ts"]) < float(second["ts"])
    assert second["message"]["thread_ts"] == first["ts"]
    [call, _] = fake.calls_to("chat.postMessage")
    assert call.args == {"channel": CHANNEL, "text": "deployed", "blocks": BLOCKS}
    assert "token" not in call.args
    assert [m["text"] for m in fake.messages(CHANNEL)] == ["deployed", "again"]
    assert fake.violations == []


def test_form_encoded_body_and_token_field(fake: FakeSlack) -> None:
    response = requests.post(
        fake.api_url + "chat.postMessage",
        data={"token": fake.bot_token, "channel": CHANNEL, "blocks": json.dumps(BLOCKS)},
        timeout=5,
    )
    assert response.status_code == 200 and response.json()["ok"] is True
    [call] = fake.calls_to("chat.postMessage")
    assert call.args == {"channel": CHANNEL, "blocks": BLOCKS}


def test_a_token_in_a_json_body_does_not_count(fake: FakeSlack) -> None:
    body = {"token": fake.bot_token, "channel": CHANNEL, "text": "hi"}
    response = requests.post(fake.api_url + "chat.postMessage", json=body, timeout=5)
    assert response.json() == {"ok": False, "error": "not_authed"}


def test_malformed_json_body(fake: FakeSlack) -> None:
    response = requests.post(
        fake.api_url + "chat.postMessage",
        data="{not json",
        headers={"Authorization": "Bearer xoxb-test", "Content-Type": "application/json"},
        timeout=5,
    )
    assert response.json() == {"ok": False, "error": "invalid_json"}


def test_update_edits_the_stored_message(fake: FakeSlack, client: WebClient) -> None:
    posted = client.chat_postMessage(channel=CHANNEL, text="scaling", blocks=BLOCKS)
    updated = client.chat_update(channel=CHANNEL, ts=posted["ts"], text="scaled")
    jsonschema.Draft4Validator(success_schema("chat.update")).validate(updated.data)
    assert (updated["channel"], updated["ts"], updated["text"]) == (CHANNEL, posted["ts"], "scaled")
    [message] = fake.messages(CHANNEL)
    assert message["text"] == "scaled" and "blocks" not in message and "edited" in message

    error = api_error(client.chat_update, channel=CHANNEL, ts="1600000000.000100", text="x")
    assert error.response["error"] == "message_not_found"
    error = api_error(client.chat_update, channel="C0OTHER0000", ts=posted["ts"], text="x")
    assert error.response["error"] == "message_not_found"


def test_post_ephemeral(fake: FakeSlack, client: WebClient) -> None:
    response = client.chat_postEphemeral(channel=CHANNEL, user=USER, text="hi", blocks=BLOCKS)
    jsonschema.Draft4Validator(success_schema("chat.postEphemeral")).validate(response.data)
    assert fake.messages(CHANNEL) == []
    error = api_error(client.chat_postEphemeral, channel=CHANNEL, user="", text="no user")
    assert error.response["error"] == "invalid_arguments"
    assert fake.violations == ["chat.postEphemeral: missing required argument(s) user"]


def test_views_publish(fake: FakeSlack, client: WebClient) -> None:
    view = {"type": "home", "blocks": BLOCKS}
    first = client.views_publish(user_id=USER, view=view)
    second = client.views_publish(user_id=USER, view=view, hash=first["view"]["hash"])
    assert first["view"]["id"] == second["view"]["id"]
    assert second["view"]["blocks"] == BLOCKS and fake.home_view(USER) == second["view"]
    [call, _] = fake.calls_to("views.publish")
    assert call.args == {"user_id": USER, "view": view}

    error = api_error(client.views_publish, user_id=USER, view=view, hash="stale")
    assert error.response["error"] == "hash_conflict"
    error = api_error(client.views_publish, user_id=USER, view={"type": "modal"})
    assert error.response["error"] == "invalid_arguments"


def test_invalid_and_missing_tokens(fake: FakeSlack) -> None:
    wrong = WebClient(token="xoxb-wrong", base_url=fake.api_url)
    error = api_error(wrong.chat_postMessage, channel=CHANNEL, text="hi")
    assert error.response.status_code == 200
    assert error.response.data == {"ok": False, "error": "invalid_auth"}
    error = api_error(WebClient(base_url=fake.api_url).auth_test)
    assert error.response["error"] == "not_authed"
    assert fake.messages(CHANNEL) == []


@pytest.mark.parametrize(
    "method, args",
    [
        ("chat.postMessage", {"channel": CHANNEL}),
        ("chat.postEphemeral", {"channel": CHANNEL, "user": USER, "text": ""}),
        ("chat.update", {"channel": CHANNEL, "ts": "1700000000.000100", "blocks": []}),
    ],
)
def test_no_text(client: WebClient, method: str, args: dict[str, Any]) -> None:
    error = api_error(client.api_call, method, json=args)
    assert error.response["error"] == "no_text"


def test_missing_required_argument(fake: FakeSlack, client: WebClient) -> None:
    error = api_error(client.api_call, "chat.postMessage", json={"text": "where to?"})
    assert error.response.status_code == 200
    assert error.response.data == {"ok": False, "error": "invalid_arguments"}
    assert fake.violations == ["chat.postMessage: missing required argument(s) channel"]
    [call] = fake.calls_to("chat.postMessage")
    assert call.args == {"text": "where to?"} and call.response["error"] == "invalid_arguments"


def test_malformed_blocks(fake: FakeSlack, client: WebClient) -> None:
    error = api_error(
        client.chat_postMessage, channel=CHANNEL, text="x", blocks=[{"text": "no type"}]
    )
    assert error.response["error"] == "invalid_blocks"
    assert len(fake.violations) == 1


def test_unknown_method(fake: FakeSlack, client: WebClient) -> None:
    error = api_error(client.api_call, "chat.postMesage", json={"channel": CHANNEL})
    assert error.response.status_code == 200
    assert error.response.data == {"ok": False, "error": "unknown_method"}


def test_a_spec_method_the_fake_does_not_implement(fake: FakeSlack, client: WebClient) -> None:
    error = api_error(client.conversations_list)
    assert error.response["error"] == "not_implemented_in_fake"
    assert fake.violations == [
        "conversations.list: in Slack's spec but not implemented by FakeSlack"
    ]


def test_rate_limit_reaches_slack_sdk(fake: FakeSlack, client: WebClient) -> None:
    fake.fail_next("chat.postMessage", retry_after=7)
    error = api_error(client.chat_postMessage, channel=CHANNEL, text="hi")
    assert error.response.status_code == 429
    assert error.response.headers["retry-after"] == "7"
    assert error.response.data == {"ok": False, "error": "ratelimited"}
    assert client.chat_postMessage(channel=CHANNEL, text="hi")["ok"]
    assert fake.faults_served == [("chat.postMessage", 429)]
    # The refused request is not a call Slack acted on.
    assert len(fake.calls_to("chat.postMessage")) == 1


def test_faults_queue_in_order_and_only_hit_their_method(
    fake: FakeSlack, client: WebClient
) -> None:
    fake.fail_next("auth.test", count=2, status=500)
    fake.fail_next("auth.test", status=429, retry_after=3)
    assert client.chat_postMessage(channel=CHANNEL, text="unaffected")["ok"]
    statuses = []
    for _ in range(4):
        try:
            statuses.append(client.auth_test().status_code)
        except SlackApiError as error:
            statuses.append(error.response.status_code)
    assert statuses == [500, 500, 429, 200]


def test_response_url(fake: FakeSlack) -> None:
    url = fake.new_response_url()
    assert url.startswith(fake.url + "/response/")
    sent = WebhookClient(url).send(
        text="scaled", blocks=BLOCKS, response_type="in_channel", replace_original=False
    )
    assert (sent.status_code, sent.body) == (200, "ok")
    assert sent.headers["Content-Type"].startswith("text/html")
    Respond(response_url=url)(text="", blocks=BLOCKS, replace_original=True)
    Respond(response_url=url)(delete_original=True)

    payloads = fake.wait_for_responses(url, n=3)
    assert payloads[0] == {
        "text": "scaled",
        "blocks": BLOCKS,
        "response_type": "in_channel",
        "replace_original": False,
    }
    assert payloads[1]["replace_original"] is True and payloads[2]["delete_original"] is True
    assert [r.payload for r in fake.responses_for(url)] == payloads
    assert fake.responses_for(fake.new_response_url()) == []
    assert fake.violations == []


def test_response_url_refuses_empty_messages(fake: FakeSlack) -> None:
    url = fake.new_response_url()
    assert WebhookClient(url).send(text="").status_code == 400
    assert fake.responses_for(url) == [] and len(fake.violations) == 1


def test_response_url_use_limit(fake: FakeSlack) -> None:
    url = fake.new_response_url()
    webhook = WebhookClient(url)
    statuses = [webhook.send(text=f"reply {i}").status_code for i in range(6)]
    assert statuses == [200] * 5 + [404]
    assert len(fake.responses_for(url)) == 5
    assert len(fake.violations) == 1 and "over Slack's limit of 5" in fake.violations[0]
    assert WebhookClient(fake.new_response_url()).send(text="fresh").status_code == 200


def test_response_url_expires_after_thirty_minutes(
    fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]
    monkeypatch.setattr(fake, "clock", lambda: now[0])
    url = fake.new_response_url()
    assert WebhookClient(url).send(text="in time").status_code == 200
    now[0] += 30 * 60 + 1
    late = WebhookClient(url).send(text="too late")
    assert (late.status_code, late.body) == (404, "expired_url")


def test_unknown_response_url(fake: FakeSlack) -> None:
    response = WebhookClient(fake.url + "/response/nope").send(text="hi")
    assert response.status_code == 404
    assert fake.violations == ["response_url nope: no such URL"]


def test_response_url_rate_limit(fake: FakeSlack) -> None:
    url = fake.new_response_url()
    fake.fail_next("response_url", retry_after=2)
    limited = WebhookClient(url).send(text="hi")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
    assert WebhookClient(url).send(text="hi").status_code == 200
    assert len(fake.responses_for(url)) == 1


def test_wait_for_responses_and_calls_from_other_threads(
    fake: FakeSlack, client: WebClient
) -> None:
    url = fake.new_response_url()

    def later() -> None:
        time.sleep(0.1)
        WebhookClient(url).send(text="late reply")
        client.views_publish(user_id=USER, view={"type": "home", "blocks": []})

    thread = threading.Thread(target=later)
    thread.start()
    assert fake.wait_for_responses(url, n=1, timeout=5) == [{"text": "late reply"}]
    [call] = fake.wait_for_calls("views.publish", n=1, timeout=5)
    assert call.args["user_id"] == USER
    thread.join()


def test_wait_timeouts_say_what_arrived(fake: FakeSlack, client: WebClient) -> None:
    url = fake.new_response_url()
    WebhookClient(url).send(text="only one")
    client.auth_test()
    with pytest.raises(AssertionError, match=r"expected 2 response.*got 1.*only one"):
        fake.wait_for_responses(url, n=2, timeout=0.1)
    with pytest.raises(AssertionError, match=r"expected 1 call.*got 0.*\['auth.test'\]"):
        fake.wait_for_calls("chat.postMessage", timeout=0.1)


def test_latency(fake: FakeSlack, client: WebClient) -> None:
    fake.latency = 0.2
    started = time.monotonic()
    client.auth_test()
    assert time.monotonic() - started >= 0.2


def test_concurrent_posts_get_unique_increasing_ts(fake: FakeSlack) -> None:
    def post(i: int) -> None:
        client = WebClient(token=fake.bot_token, base_url=fake.api_url)
        client.chat_postMessage(channel=CHANNEL, text=f"message {i}")

    threads = [threading.Thread(target=post, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    calls = fake.wait_for_calls("chat.postMessage", n=20)
    stamps = [call.response["ts"] for call in calls]
    assert len(set(stamps)) == 20
    assert [m["ts"] for m in fake.messages(CHANNEL)] == sorted(stamps, key=float)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _button(text: str = "Go", value: str = "v", action_id: str = "a") -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "value": value,
        "action_id": action_id,
    }


# One block past each of Block Kit's documented limits (docs.slack.dev, reference/block-kit).
PAST_A_LIMIT = {
    "empty section text": [_section("")],
    "field over 2,000": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2001}]}],
    "11 fields": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "x"}] * 11}],
    "header over 150": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
    "11 context elements": [
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11}
    ],
    "context text over 3,000": [
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c" * 3001}]}
    ],
    "26 buttons": [
        {"type": "actions", "elements": [_button(action_id=f"a{i}") for i in range(26)]}
    ],
    "button text over 75": [{"type": "actions", "elements": [_button(text="b" * 76)]}],
    "button value over 2,000": [{"type": "actions", "elements": [_button(value="v" * 2001)]}],
    "action_id over 255": [{"type": "actions", "elements": [_button(action_id="a" * 256)]}],
    "block_id over 255": [{**_section("x"), "block_id": "b" * 256}],
}


@pytest.mark.parametrize("blocks", PAST_A_LIMIT.values(), ids=PAST_A_LIMIT.keys())
def test_every_block_kit_limit_is_refused_as_slack_refuses_it(
    fake: FakeSlack, client: WebClient, blocks: list[dict[str, Any]]
) -> None:
    # Each had been accepted: a reply past one of them reached the user in tests, and
    # nobody in Slack.
    error = api_error(client.chat_postMessage, channel=CHANNEL, text="t", blocks=blocks)
    assert error.response["error"] == "invalid_blocks"
    error = api_error(client.views_publish, user_id=USER, view={"type": "home", "blocks": blocks})
    # A view's refusal names each problem, as Slack's does.
    assert error.response["error"] == "invalid_arguments"
    assert error.response["response_metadata"]["messages"]
    url = fake.new_response_url()
    assert WebhookClient(url).send(text="t", blocks=blocks).status_code == 400
    assert fake.responses_for(url) == [] and fake.messages(CHANNEL) == []
    assert len(fake.violations) == 3
    fake.violations.clear()


def test_blocks_at_each_limit_are_taken(fake: FakeSlack, client: WebClient) -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "x" * 2000}] * 10},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c" * 3000}] * 10},
        {
            "type": "actions",
            "block_id": "b" * 255,
            "elements": [
                _button(text="b" * 75, value="v" * 2000, action_id=f"{i:0255d}") for i in range(25)
            ],
        },
    ]
    client.chat_postMessage(channel=CHANNEL, text="t" * 40_000, blocks=blocks)
    client.views_publish(user_id=USER, view={"type": "home", "blocks": blocks})
    assert fake.violations == []


def test_a_message_text_over_40000_characters_is_msg_too_long(
    fake: FakeSlack, client: WebClient
) -> None:
    error = api_error(client.chat_postMessage, channel=CHANNEL, text="t" * 40_001)
    assert error.response["error"] == "msg_too_long"
    url = fake.new_response_url()
    assert WebhookClient(url).send(text="t" * 40_001).status_code == 400
    assert fake.responses_for(url) == [] and len(fake.violations) == 2
    fake.violations.clear()


def test_a_home_view_past_its_own_limits_is_refused(fake: FakeSlack, client: WebClient) -> None:
    view = {"type": "home", "blocks": BLOCKS, "private_metadata": "m" * 3001}
    error = api_error(client.views_publish, user_id=USER, view=view)
    assert error.response["error"] == "invalid_arguments"
    assert fake.violations == [
        "views.publish: view private_metadata of 3,001 characters, over 3,000"
    ]
    fake.violations.clear()


def test_an_immediate_answer_is_judged_as_a_message(fake: FakeSlack) -> None:
    # A slash command's or a click's HTTP answer is a message Slack shows: the same limits.
    # It never reaches the fake's server, so the test driver hands it over.
    assert fake.judge_answer({"text": "Working on `apps`…"}) is None
    assert fake.judge_answer({"text": "t" * 40_001}) == "msg_too_long"
    assert fake.judge_answer({"text": "t", "blocks": [_section("x" * 3001)]}) == "invalid_blocks"
    assert fake.violations == [
        "immediate answer: text of 40,001 characters, over 40,000",
        "immediate answer: block 0 (section): text of 3,001 characters, over 3,000",
    ]
    fake.violations.clear()
