"""App Home's view: the bot's health in the header, then one block per app the user may
see (formation and platform, autoscaler, open incidents, the last three changes, monthly
cost), with buttons for Status, Chart, Restart and Scale ±; pages keep a view inside
Slack's 100-block limit. The listeners are in `handlers/events.py`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bot.actions.results import AppCard, Home, Reply, Result
from handlers.charts import chart_button
from handlers.render import OUTCOME_MARK, about_lines, who
from policies import costs
from policies.slack_text import clip, code, cut, escape, moment

STATUS_ACTION = "deploybot_home_status"
RESTART_ACTION = "deploybot_home_restart"
SCALE_UP_ACTION = "deploybot_home_scale_up"
SCALE_DOWN_ACTION = "deploybot_home_scale_down"
PAGE_ACTION = "deploybot_home_page"
PER_PAGE = 15  # 4 blocks an app and 6 around them: 66 of Slack's 100
MAX_BLOCKS = 100
DEBOUNCE_SECONDS = 2.0
INCIDENTS_SHOWN = 3  # on a card; the rest are counted

# What each button runs, as the words of a typed command.
COMMANDS = {
    STATUS_ACTION: "status {app}",
    RESTART_ACTION: "restart {app}",
    SCALE_UP_ACTION: "scale web+1 {app}",
    SCALE_DOWN_ACTION: "scale web-1 {app}",
}


def home_view(home: Home | Result, now: datetime | None = None) -> dict[str, Any]:
    """The Home tab for `services.actions.home(...)`'s result, its times as of `now`."""
    now = now or datetime.now(UTC)
    if not isinstance(home, Home):
        text = home.text if isinstance(home, Reply) else "App Home is not available."
        return {"type": "home", "blocks": [_section(text)]}
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": "deploybot"}},
        _context("\n".join(about_lines(home.about))),
        {"type": "divider"},
    ]
    unsure = 0
    if home.unsure:
        # Not the rules' doing: "the access rules let you see no app" sent them to an admin.
        why, unsure = home.unsure
        left_out = "1 app" if unsure == 1 else f"{unsure:,} apps"
        blocks.append(
            _section(f":warning: {why} Until then I leave out the {left_out} its rules decide.")
        )
    if not home.total and home.hidden > unsure:
        blocks.append(
            _section(
                f"The access rules let you see no app I manage ({home.hidden} in all; a rule "
                "allowing `status` shows one). `/deploy whoami` says what you may do; ask an "
                "admin if that is wrong."
            )
        )
    elif not home.total and not home.hidden:
        # Unlisted apps work by name only where the registry allows them (no file at all).
        by_name = (
            "; any Heroku app the bot's key can reach also works by its own name, as in "
            "`/deploy status myapp`"
            if home.unlisted_heroku
            else ""
        )
        blocks.append(
            _section(
                "You can see no apps yet. An admin adds them to the registry file "
                f"(`DEPLOYBOT_CONFIG`, see docs/registry.md){by_name}."
            )
        )
    for card in home.cards:
        blocks.extend(_card(card, now, home.may.get(card.alias)))
    if home.pages > 1:
        blocks.append(_pager(home))
    return {"type": "home", "blocks": blocks[:MAX_BLOCKS]}


def _card(card: AppCard, now: datetime, may: frozenset[str] | None = None) -> list[dict[str, Any]]:
    """One app's blocks; `may`: the verbs whose buttons it offers (None: all)."""
    where = "Heroku" if card.platform == "heroku" else "Elastic Beanstalk"
    if card.formation is None:
        formation = card.problem or "unknown"  # a PlatformError's text: Slack text already
    else:
        formation = (
            ", ".join(
                f"{escape(ptype)} {qty} × {escape(size)}"
                for ptype, (qty, size) in sorted(card.formation.items())
            )
            or "no process types"
        )
    cost = ""
    if card.monthly is not None:
        label = " (estimate)" if card.monthly.estimate else ""
        cost = f" · {costs.usd(card.monthly.usd)}/month{label}"
    lines = [f"*{code(card.alias)}* · {where}{cost}", formation]
    lines += card.autoscale  # Slack text: numbers, and decision reasons stored as Slack text
    lines += card.incidents[:INCIDENTS_SHOWN]
    if len(card.incidents) > INCIDENTS_SHOWN:
        more = len(card.incidents) - INCIDENTS_SHOWN
        lines.append(
            f"…and {more} more open: {code('/deploy alerts ' + card.alias)} lists them all."
        )
    changes = [
        f"{OUTCOME_MARK.get(e.outcome, '?')} {moment(e.started_at, now)} {who(e.user_id)} "
        f"{code(clip(e.command, 80))}"
        for e in card.changes
    ]
    buttons = [
        _button("Status", STATUS_ACTION, card.alias),
        chart_button(card.alias, "24h", where="home"),
    ]
    # A button the rules would refuse is left out: each had answered "You may not".
    if may is None or "restart" in may:
        buttons.append(_button("Restart", RESTART_ACTION, card.alias))
    # Nor one its formation would refuse: a worker-only app has no `web`, and web 0 no -1.
    # An unread formation leaves both: the click then says what is wrong.
    web = None if card.formation is None else card.formation.get("web", (-1, ""))[0]
    if (may is None or "scale" in may) and web != -1:
        buttons.append(_button("Scale web +1", SCALE_UP_ACTION, card.alias))
        if web != 0:
            buttons.append(_button("Scale web −1", SCALE_DOWN_ACTION, card.alias))
    return [
        _section(cut("\n".join(lines), 3000)),
        _context("Last changes: " + ("  ·  ".join(changes) if changes else "none recorded")),
        {"type": "actions", "elements": buttons},
        {"type": "divider"},
    ]


def _pager(home: Home) -> dict[str, Any]:
    elements = []
    if home.page > 0:
        elements.append(_button("◀ Previous", PAGE_ACTION, str(home.page - 1), "prev"))
    if home.page + 1 < home.pages:
        elements.append(_button("Next ▶", PAGE_ACTION, str(home.page + 1), "next"))
    note = f"Page {home.page + 1} of {home.pages} ({home.total} apps)"
    return {
        "type": "actions",
        "elements": [*elements, _button(note, PAGE_ACTION, str(home.page), "here")],
    }


def _button(label: str, action_id: str, value: str, suffix: str = "") -> dict[str, Any]:
    # One action_id may appear once per block: the pager's buttons differ by suffix.
    return {
        "type": "button",
        "action_id": f"{action_id}{':' + suffix if suffix else ''}",
        "text": {"type": "plain_text", "text": label[:75]},
        "value": value,
    }


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": cut(text, 3000)}]}


class Refresher:
    """Republish a user's Home tab after something changed, at most once per
    `DEBOUNCE_SECONDS` however many changes come in a burst."""

    def __init__(self, publish: Callable[[str], None], delay: float = DEBOUNCE_SECONDS) -> None:
        self._publish = publish
        self._delay = delay
        self._lock = threading.Lock()
        self._timers: dict[str, threading.Timer] = {}
        self._closed = False

    def soon(self, user_id: str) -> None:
        with self._lock:
            if self._closed or user_id in self._timers:
                return  # one is already due: it will show this change too
            timer = threading.Timer(self._delay, self._fire, args=(user_id,))
            timer.daemon = True
            self._timers[user_id] = timer
            timer.start()

    def _fire(self, user_id: str) -> None:
        with self._lock:
            self._timers.pop(user_id, None)
        self._publish(user_id)

    def close(self) -> None:
        """Drop the refreshes still due: once the app is closed, a timer's publish read a
        database and called a Slack that may be gone (a test's, torn down)."""
        with self._lock:
            self._closed = True
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()
