"""Builds the HTTP requests Slack sends (slash commands, button clicks), correctly signed.

The console, the tests and the benchmarks all speak to the bot exactly as Slack does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any
from urllib.parse import urlencode


def escape_typed(text: str) -> str:
    """What Slack's clients send for `text` typed in the message box: `&`, `<` and `>` as
    entities (and nothing else; the bot reads them back with `policies.slack_text.unescape`)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def sign(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    """Slack's v0 request signature headers for `body`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    base = f"v0:{timestamp}:{body}".encode()
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def slash_command(
    text: str,
    response_url: str,
    *,
    user_id: str = "U0CONSOLE",
    channel_id: str = "C0CONSOLE",
    team_id: str = "T0CONSOLE",
    command: str = "/deploy",
) -> str:
    """The form-encoded body of a slash command invocation, its text escaped as Slack
    escapes what people type (`&`, `<`, `>`)."""
    return urlencode(
        {
            "token": "unused-verification-token",
            "team_id": team_id,
            "team_domain": "console",
            "channel_id": channel_id,
            "channel_name": "console",
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": command,
            "text": escape_typed(text),
            "api_app_id": "A0DEPLOYBOT",
            "response_url": response_url,
            # Unique per invocation, as Slack's are: deliveries of one command share it.
            "trigger_id": f"{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}",
        }
    )


def button_click(
    action_id: str,
    value: str,
    response_url: str,
    *,
    user_id: str = "U0CONSOLE",
    channel_id: str = "C0CONSOLE",
    team_id: str = "T0CONSOLE",
    block_id: str = "deploybot_confirmation",
    message_ts: str | None = None,
    view_id: str | None = None,
    user_team_id: str | None = None,
) -> str:
    """The form-encoded body of a `block_actions` interaction payload; `message_ts` names
    the (non-ephemeral) message whose button was pressed; `view_id`, the Home tab's view a
    button was pressed on instead, whose clicks carry no channel and no `response_url`;
    `user_team_id`, the clicker's own team when it is not `team_id` (Slack Connect)."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": team_id, "domain": "console"},
        "user": {"id": user_id, "username": user_id.lower(), "team_id": user_team_id or team_id},
        "api_app_id": "A0DEPLOYBOT",
        "token": "unused-verification-token",
        "container": {"type": "message", "channel_id": channel_id, "is_ephemeral": False},
        "trigger_id": f"{int(time.time() * 1000)}.trigger",
        "channel": {"id": channel_id, "name": "console"},
        "response_url": response_url,
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": block_id,
                "value": value,
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    if message_ts is not None:
        payload["container"]["message_ts"] = message_ts
        payload["message"] = {"type": "message", "ts": message_ts}
    if view_id is not None:
        payload["container"] = {"type": "view", "view_id": view_id}
        del payload["channel"], payload["response_url"]
    return urlencode({"payload": json.dumps(payload)})


def home_opened(user_id: str = "U0CONSOLE", team_id: str = "T0CONSOLE") -> str:
    """The JSON body of an `app_home_opened` event: `user_id` opened the bot's Home tab."""
    event = {"type": "app_home_opened", "user": user_id, "channel": "D0CONSOLE", "tab": "home"}
    return json.dumps(
        {
            "type": "event_callback",
            "team_id": team_id,
            "api_app_id": "A0DEPLOYBOT",
            "event": event,
            "event_id": f"Ev{secrets.token_hex(8).upper()}",
            "event_time": int(time.time()),
        }
    )
