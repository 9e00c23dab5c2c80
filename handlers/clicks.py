"""The value a button click carries. Slack sends back the value a button was made with, so
a click whose value our buttons never hold (none, or not the kind of word that button
carries) was not made by deploybot: a forged click, or a button of some other app's
message. It gets one sentence back and one log line, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from policies.numbers import whole_number

log = logging.getLogger(__name__)

NOT_MINE = (
    "That button's value is not one I made; use a button on one of my messages, "
    "or type the `/deploy` command instead."
)
_PAGE_DIGITS = 6  # App Home pages of 15 apps: a million pages is far beyond any registry
_COUNT_DIGITS = 15  # events in one incident: a storm's lifetime stays far below that


def button_value(body: dict[str, Any]) -> str | None:
    """The clicked button's value; None when it has none (every button we make has one) or
    holds what none of ours does: a control character or a lone surrogate, which the
    database's drivers refuse (PostgreSQL any NUL) when the value is looked up."""
    actions = body.get("actions") or [{}]
    value = actions[0].get("value")
    return value if isinstance(value, str) and value and value.isprintable() else None


def home_team(body: dict[str, Any]) -> str | None:
    """The clicker's own team: `user.team_id` (their org's ID on Enterprise Grid). In a
    Slack Connect channel a partner's member can press our buttons, and `team` then need
    not be theirs; a payload without `user.team_id` falls back to `team.id`."""
    team = (body.get("user") or {}).get("team_id") or (body.get("team") or {}).get("id")
    return team if isinstance(team, str) else None


def page_number(value: str | None) -> int | None:
    """A pager button's value as a page number; None if it is not a few ASCII digits
    (`int()` takes '²' and raises on 5,000 digits)."""
    return whole_number(value, _PAGE_DIGITS)


def alert_count(value: str | None) -> int | None:
    """An alert button's incident count, only as we write it (`str(count)`): the count is
    part of the button's duplicate claim, so "", "01" or "1 " for our "1" would be a second
    claim on the same click."""
    number = whole_number(value, _COUNT_DIGITS)
    return number if str(number) == value else None


def refuse(respond: Callable[..., Any], body: dict[str, Any]) -> None:
    """Tell the clicker the value is not ours; log which button, not the value."""
    action_id = (body.get("actions") or [{}])[0].get("action_id")
    log.warning("click refused", extra={"action_id": action_id, "reason": "value not ours"})
    respond(text=NOT_MINE, replace_original=False, response_type="ephemeral")
