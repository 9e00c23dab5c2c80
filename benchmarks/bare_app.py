"""The baseline for `ack_latency.py`: a Flask + slack_bolt app whose `/deploy` only acks.

Served exactly like deploybot (`gunicorn --config bot/gunicorn_conf.py
'benchmarks.bare_app:create_app()'`), with the same signing secret, so the difference in
ack latency between the two is what deploybot's own code adds.
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, Response, jsonify, request
from slack_bolt import Ack, App
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_sdk import WebClient


def create_app() -> Flask:
    client = WebClient(
        token=os.environ["SLACK_BOT_TOKEN"],
        base_url=os.environ.get("SLACK_API_URL") or "https://slack.com/api/",
    )
    bolt = App(
        client=client,
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        token_verification_enabled=False,  # as deploybot: no Slack call at start-up
        # As deploybot: ack on the request's own thread. Bolt's default (False) polls for
        # the ack with 10 ms sleeps, which slowed this baseline and flattered deploybot.
        process_before_response=True,
    )

    @bolt.command("/deploy")
    def ack_only(ack: Ack) -> None:
        ack("ok")

    slack_handler = SlackRequestHandler(bolt)
    web = Flask("bare")

    @web.post("/slack/events")
    def slack_events() -> Any:
        return slack_handler.handle(request)

    @web.get("/healthz")
    def healthz() -> Response:
        return jsonify(ok=True)

    return web
