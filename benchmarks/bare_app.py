"""The baselines for `ack_latency.py`: Flask + slack_bolt apps served exactly like deploybot
(`gunicorn --config bot/web/gunicorn_conf.py 'benchmarks.bare_app:create_app()'`), with the
same signing secret.

- `create_app()`: `/deploy` only acks, so the difference in ack latency between it and
  deploybot is what deploybot's own code adds, its work after the ack included.
- `create_working_app()`: `/deploy` acks and then does the command's work as bolt's own
  documentation says to, in a lazy listener: the Heroku calls deploybot makes for `status`
  (four reads) or `scale` (one PATCH), through one kept-alive `requests` session, then the
  answer to `response_url`. It is the plain bolt app a team would write for the same job,
  measured so that the cost of doing the work at all is not charged to deploybot's code.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import requests
from flask import Flask, Response, jsonify, request
from slack_bolt import Ack, App, Respond
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_sdk import WebClient


def create_app() -> Flask:
    bolt = _bolt()

    @bolt.command("/deploy")
    def ack_only(ack: Ack) -> None:
        ack("ok")

    return _served(bolt)


def create_working_app() -> Flask:
    bolt = _bolt()
    sessions = threading.local()  # a kept-alive session per lazy thread: one isn't thread-safe

    def heroku() -> requests.Session:
        if not hasattr(sessions, "heroku"):
            sessions.heroku = requests.Session()
            sessions.heroku.headers.update(
                {
                    "Accept": "application/vnd.heroku+json; version=3",
                    "Authorization": f"Bearer {os.environ['HEROKU_API_KEY']}",
                }
            )
        return sessions.heroku

    api = (os.environ.get("HEROKU_API_URL") or "https://api.heroku.com").rstrip("/")

    def ack_now(ack: Ack) -> None:
        ack("ok")

    def work(body: dict[str, Any], respond: Respond) -> None:
        verb, *rest = body["text"].split()
        app = rest[-1]
        if verb == "scale":
            process_type, quantity = rest[0].split("=")
            update = {"type": process_type, "quantity": int(quantity)}
            answer = heroku().patch(f"{api}/apps/{app}/formation", json={"updates": [update]})
            respond(f"scaled: HTTP {answer.status_code}")
            return
        reads = [
            heroku().get(f"{api}/apps/{app}/formation"),
            heroku().get(f"{api}/apps/{app}/dynos"),
            heroku().get(
                f"{api}/apps/{app}/releases",
                headers={"Range": "version ..; order=desc, max=1;"},
            ),
            heroku().get(f"{api}/apps/{app}"),
        ]
        respond(f"status: {sum(len(r.json()) for r in reads)} items")

    bolt.command("/deploy")(ack=ack_now, lazy=[work])
    return _served(bolt)


def _bolt() -> App:
    client = WebClient(
        token=os.environ["SLACK_BOT_TOKEN"],
        base_url=os.environ.get("SLACK_API_URL") or "https://slack.com/api/",
    )
    return App(
        client=client,
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        token_verification_enabled=False,  # as deploybot: no Slack call at start-up
        # As deploybot: ack on the request's own thread. Bolt's default (False) polls for
        # the ack with 10 ms sleeps, which slowed this baseline and flattered deploybot.
        process_before_response=True,
    )


def _served(bolt: App) -> Flask:
    slack_handler = SlackRequestHandler(bolt)
    web = Flask("bare")

    @web.post("/slack/events")
    def slack_events() -> Any:
        return slack_handler.handle(request)

    @web.get("/healthz")
    def healthz() -> Response:
        return jsonify(ok=True)

    return web
