"""Slack user-group membership for access rules, cached for a few minutes.

Rules may name user groups (`S…` IDs); deciding needs the caller's groups. Membership
changes rarely and `usergroups.users.list` is rate-limited (Tier 2), so each group's
members are cached for `TTL`. If Slack cannot answer, a stale answer is used; with none,
`GroupLookupFailed` is raised: a group may carry a deny rule, so guessing "not a member"
could let through someone a rule keeps out. A group Slack says does not exist has no
members.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

TTL = 300.0
# Slack's answer for a group that does not exist (deleted, or an ID from another workspace).
_GONE = frozenset({"no_such_subteam"})


class GroupLookupFailed(Exception):
    """Slack could not say who is in a group; `str()` is fit to show the user."""


class UserGroups:
    def __init__(
        self,
        client: WebClient,
        ttl: float = TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl
        self._clock = clock
        self._members: dict[str, tuple[float, frozenset[str]]] = {}
        self._lock = threading.Lock()

    def groups_of(self, user_id: str, groups: Iterable[str]) -> frozenset[str]:
        """Which of `groups` have `user_id` as a member."""
        return frozenset(g for g in groups if user_id in self.members(g))

    def members(self, group_id: str) -> frozenset[str]:
        now = self._clock()
        with self._lock:
            cached = self._members.get(group_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        try:
            users = self._client.usergroups_users_list(usergroup=group_id)["users"]
        except SlackApiError as error:
            code = error.response.get("error")
            log.warning("user group lookup failed", extra={"group": group_id, "error": code})
            if code in _GONE:
                # A group deleted from Slack has no members, for deny rules too; "try again"
                # would fail forever, and every verb whose rules name it with it.
                users = []
            elif cached is not None:
                return cached[1]
            else:
                raise GroupLookupFailed(
                    f"I could not check the members of Slack user group {group_id}, which the "
                    "access rules name. Try again in a minute."
                ) from None
        members = frozenset(users)
        with self._lock:
            self._members[group_id] = (now, members)
        return members
