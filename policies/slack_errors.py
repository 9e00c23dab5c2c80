"""What Slack's Web API error codes mean for the bot: which refuse the bot's token itself
(every call would meet the same answer), as against one channel or one message."""

from __future__ import annotations

# Slack refuses the token (rotated, revoked, the app uninstalled): no message can go until
# an admin sets the current one, so none is the message's own fault.
AUTH_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired"}
)
