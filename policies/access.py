"""Who may run which verb: the first cut, admins by Slack user ID.

Read-only verbs are open to everyone; changes need the caller to be in DEPLOYBOT_ADMINS.
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.commands import MUTATING_VERBS


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def authorize(user_id: str, verb: str, admins: frozenset[str]) -> Decision:
    """Decide whether `user_id` may run `verb`; `reason` is fit to show the user."""
    if verb not in MUTATING_VERBS:
        return Decision(True, f"`{verb}` is read-only and open to everyone.")
    if not admins:
        return Decision(
            False,
            f"Nobody may `{verb}` yet: this bot has no admins. "
            "Ask whoever runs deploybot to set DEPLOYBOT_ADMINS.",
        )
    if user_id in admins:
        return Decision(True, "you are listed in DEPLOYBOT_ADMINS.")
    return Decision(
        False,
        f"You are not allowed to `{verb}`: only the admins in DEPLOYBOT_ADMINS may change apps. "
        "Ask one of them, or ask for your Slack user ID to be added.",
    )
