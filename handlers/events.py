"""Events: the App Home tab shows what the bot can do."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from policies.commands import help_text

if TYPE_CHECKING:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.services import Services


def register(app: App, services: Services) -> None:
    def publish_home(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab") != "home":
            return
        client.views_publish(user_id=event["user"], view=home_view())

    # Lazy: Slack gets its 200 before views.publish is called, which may be slow.
    app.event("app_home_opened")(ack=lambda ack: ack(), lazy=[publish_home])


def home_view() -> dict[str, Any]:
    return {
        "type": "home",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "deploybot"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": help_text()}},
        ],
    }
