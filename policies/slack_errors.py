"""What Slack's Web API error codes mean for the bot: which refuse the bot's token itself
(every call would meet the same answer), as against one channel or one message."""

from __future__ import annotations

import math
from datetime import timedelta

from policies.digest import duration

# Slack refuses the token (rotated, revoked, the app uninstalled): no message can go until
# an admin sets the current one, so none is the message's own fault.
AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)

# Slack's rate limit: `ratelimited` is the 429's answer; `rate_limited` ("posted too many
# messages") the `ok: false` answer its spec lists for chat.postMessage and chat.update. Both
# pass by themselves, so neither fails the message that met it.
RATE_LIMIT_ERRORS = frozenset({"ratelimited", "rate_limited"})

# What to do when Slack refuses a channel (the bot removed from it, archived, or private and
# never invited): said where an alert, a digest, an approval request or a chart could not go.
UNDELIVERED_ADVICE = {
    "not_in_channel": "the bot is not in that channel: `/invite @deploybot` there.",
    "is_archived": "that channel is archived: unarchive it, or give the app another "
    "`channel:` in the registry.",
    "channel_not_found": "Slack finds no such channel: it was deleted, or it is private and "
    "the bot is not in it (invite the bot there, or fix `channel:` in the registry).",
}


def wait_words(wait: timedelta) -> str:
    """Slack's Retry-After as said to the user: `3 s`, `2 min`; rounded up, as a sooner try
    is refused again."""
    seconds = math.ceil(wait.total_seconds())
    return duration(seconds if seconds < 60 else math.ceil(seconds / 60) * 60)
