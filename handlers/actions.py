"""Button clicks on confirmation messages: Confirm acts once, Cancel changes nothing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.actions import Reply
from bot.audit import Actor
from handlers.render import CANCEL_ACTION, CONFIRM_ACTION, message, safely

if TYPE_CHECKING:
    from slack_bolt import Ack, App, Respond

    from bot.services import Services


def register(app: App, services: Services) -> None:
    def ack_click(ack: Ack) -> None:
        ack()

    def confirm(body: dict[str, Any], respond: Respond) -> None:
        actor, confirmation_id = _click(body, services.source)
        _answer(respond, safely(lambda: services.actions.confirm(actor, confirmation_id)))

    def cancel(body: dict[str, Any], respond: Respond) -> None:
        actor, confirmation_id = _click(body, services.source)
        _answer(respond, safely(lambda: services.actions.cancel(actor, confirmation_id)))

    app.action(CONFIRM_ACTION)(ack=ack_click, lazy=[confirm])
    app.action(CANCEL_ACTION)(ack=ack_click, lazy=[cancel])


def _click(body: dict[str, Any], source: str) -> tuple[Actor, str]:
    actor = Actor(
        user_id=body["user"]["id"],
        team_id=(body.get("team") or {}).get("id"),
        channel_id=(body.get("channel") or {}).get("id"),
        source=source,
    )
    return actor, body["actions"][0]["value"]


def _answer(respond: Respond, result: Any) -> None:
    # A private reply (not yours, already decided) must leave the buttons for their owner.
    if isinstance(result, Reply) and not result.public:
        respond(**message(result), replace_original=False)
    else:
        respond(**message(result), replace_original=True)
