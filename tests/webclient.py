"""Drive the real Flask app exactly as Slack does: signed form posts to /slack/events."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from flask.testing import FlaskClient

from bot.config import Config
from bot.sandbox.fakes.server import LocalServer
from bot.sandbox.fakes.slack import FakeSlack
from bot.sandbox.slack_requests import button_click, sign, slash_command
from tests.conftest import SIGNING_SECRET


class SlackDriver:
    def __init__(self, client: FlaskClient, slack: FakeSlack) -> None:
        self.client = client
        self.slack = slack
        # A `config set`'s public answer is the bot's own post in the channel, not an answer
        # at its response_url (handlers.delivery.public_as_bot): where its posts begin.
        self._posted_from: dict[str, tuple[str, int]] = {}

    def post(self, body: str, headers: dict[str, str] | None = None) -> Any:
        headers = sign(SIGNING_SECRET, body) if headers is None else headers
        response = self.client.post("/slack/events", data=body, headers=headers)
        # Read and closed, as gunicorn does: the jobs an ack submits reach the background
        # process when its answer is closed (bot/web/after_answer.py).
        response.get_data()
        response.close()
        if response.is_json and isinstance(response.get_json(silent=True), dict):
            self.slack.judge_answer(response.get_json())  # a limit passed: a violation
        return response

    def command(
        self, text: str, user: str, channel: str | None = None, team: str | None = None
    ) -> tuple[Any, str]:
        """Send `/deploy text` (typed in `channel`, by a member of `team`, if given); returns
        the ack response and the command's response_url."""
        url = self.slack.new_response_url()
        where = {"channel_id": channel} if channel else {}
        where |= {"team_id": team} if team else {}
        if text.split()[:2] == ["config", "set"]:
            posts = len(self.slack.calls_to("chat.postMessage"))
            self._posted_from[url] = (channel or "C0CONSOLE", posts)
        return self.post(slash_command(text, url, user_id=user, **where)), url

    def click(self, action_id: str, value: str, user: str, **where: str | None) -> tuple[Any, str]:
        """Press a button; like Slack, every click carries a response_url of its own.
        `where` may name the `channel_id` and `message_ts` of a channel message's button,
        and the clicker's own team (`user_team_id`), a partner's in a Slack Connect channel."""
        url = self.slack.new_response_url()
        where = {name: value for name, value in where.items() if value is not None}
        return self.post(button_click(action_id, value, url, user_id=user, **where)), url

    def click_without(self, action_id: str, value: str, user: str, *fields: str) -> tuple[Any, str]:
        """Press a button whose payload lacks `fields`: `value` (the button's) and
        `response_url` (the payload's) are what Slack always sends with a click on a message."""
        url = self.slack.new_response_url()
        payload = json.loads(
            parse_qs(button_click(action_id, value, url, user_id=user))["payload"][0]
        )
        for field in fields:
            (payload["actions"][0] if field == "value" else payload).pop(field)
        return self.post(urlencode({"payload": json.dumps(payload)})), url

    def replies(self, url: str, n: int = 1) -> list[dict[str, Any]]:
        if url not in self._posted_from:
            return self.slack.wait_for_responses(url, n=n, timeout=10)
        wait_for(lambda: len(self._answers(url)) >= n, timeout=10)
        return self._answers(url)

    def _answers(self, url: str) -> list[dict[str, Any]]:
        """A `config set`'s answers: at its response_url, then posted in its channel."""
        channel, since = self._posted_from[url]
        posted = [
            {**call.args, "response_type": "in_channel"}
            for call in self.slack.calls_to("chat.postMessage")[since:]
            if call.args.get("channel") == channel and not call.args.get("thread_ts")
        ]
        return [r.payload for r in self.slack.responses_for(url)] + posted

    def reply(self, url: str) -> dict[str, Any]:
        return self.replies(url, 1)[-1]


def patches(heroku: Any) -> list[Any]:
    """The formation changes (PATCHes) the fake Heroku received."""
    return [r for r in heroku.requests if r.method == "PATCH"]


def ack_text(response: Any) -> str:
    assert response.status_code == 200, response.data
    return json.loads(response.data)["text"] if response.data else ""


def button(message: dict[str, Any], action_id: str) -> dict[str, Any]:
    for block in message.get("blocks", []):
        for element in block.get("elements", []) if block["type"] == "actions" else []:
            if element["action_id"] == action_id:
                return element
    raise AssertionError(f"no {action_id} button in {message}")


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, poll: float = 0.1) -> float:
    """Seconds until `predicate()` held; AssertionError if it did not within `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(poll)
    raise AssertionError("timed out")


def settle(seconds: float = 0.3) -> None:
    """Give lazy listeners time to (wrongly) act before asserting that nothing happened."""
    time.sleep(seconds)


class EndlessBody(io.RawIOBase):
    """A request body that never ends (sent chunked), counting what the app read of it."""

    def __init__(self) -> None:
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def]
        n = len(buffer)
        buffer[:n] = b"x" * n
        self.read_bytes += n
        return n

    def seekable(self) -> bool:
        return True  # werkzeug's test client asks where it is; chunked, it never measures

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0


def post_chunked(client: FlaskClient, path: str, body: EndlessBody, **headers: str) -> Any:
    """POST `body` with no Content-Length, as gunicorn hands a chunked upload to the app."""
    return client.post(
        path,
        input_stream=body,
        headers={"Transfer-Encoding": "chunked", **headers},
        environ_overrides={"wsgi.input_terminated": True},
    )


@contextmanager
def served_app(config: Config, registry: str, tmp_path: Path, monkeypatch: Any) -> Iterator[Any]:
    """The web app on a real port (Heroku must reach it), knowing its own URL and reading
    `registry`; yields (flask app, config, base URL)."""
    from bot.web.app import close, create_app

    path = tmp_path / "deploybot.yml"
    path.write_text(registry)
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
    holder: dict[str, Any] = {}
    server = LocalServer(lambda environ, start: holder["app"](environ, start)).start()
    config = replace(config, public_url=server.url)
    holder["app"] = create_app(config)
    try:
        yield holder["app"], config, server.url
    finally:
        close(holder["app"])  # its jobs finish while the fakes still answer
        server.stop()
        holder["app"].extensions["deploybot"].db.dispose()
