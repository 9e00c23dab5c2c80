"""The value a button click carries. Slack sends back the value a button was made with, so
a click whose value our buttons never hold (none, or not the kind of word that button
carries) was not made by deploybot: a forged click, or a button of some other app's
message. It gets one sentence back and one log line, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

NOT_MINE = (
    "That button's value is not one I made; use a button on one of my messages, "
    "or type the `/deploy` command instead."
)
_PAGE_DIGITS = 6  # App Home pages of 15 apps: a million pages is far beyond any registry


def button_value(body: dict[str, Any]) -> str | None:
    """The clicked button's value; None when it has none (every button we make has one)."""
    actions = body.get("actions") or [{}]
    value = actions[0].get("value")
    return value if isinstance(value, str) and value else None


def page_number(value: str | None) -> int | None:
    """A pager button's value as a page number; None if it is not a few ASCII digits
    (`int()` takes '²' and raises on 5,000 digits)."""
    if value and value.isascii() and value.isdigit() and len(value) <= _PAGE_DIGITS:
        return int(value)
    return None


def refuse(respond: Callable[..., Any], body: dict[str, Any]) -> None:
    """Tell the clicker the value is not ours; log which button, not the value."""
    action_id = (body.get("actions") or [{}])[0].get("action_id")
    log.warning("click refused", extra={"action_id": action_id, "reason": "value not ours"})
    respond(text=NOT_MINE, replace_original=False, response_type="ephemeral")
