"""Slack user-group membership for access rules, cached for a few minutes.

Rules may name user groups (`S…` IDs); deciding needs the caller's groups. Membership
changes rarely and `usergroups.users.list` is rate-limited (Tier 2), so each group's
members are cached for `TTL`. If Slack cannot answer, a stale answer is used; with none,
`GroupLookupFailed` is raised: a group may carry a deny rule, so guessing "not a member"
could let through someone a rule keeps out. A group Slack says does not exist has no
members. Slack's 429 holds every group's lookup until its Retry-After.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack_api import rate_limited_for

log = logging.getLogger(__name__)

TTL = 300.0
# After a failed lookup, the same failure is given without asking for this long: App Home
# judges each of a page's apps in turn, and had asked a failing Slack once an app.
RETRY_AFTER_FAILURE = 30.0
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
        self._failed: dict[str, float] = {}  # group: when its last lookup failed
        # Slack's 429 is about the method, for the whole workspace: no group is asked
        # before its Retry-After has passed (the clock's time it ends).
        self._held_until = 0.0
        self._lock = threading.Lock()

    def groups_of(self, user_id: str, groups: Iterable[str]) -> frozenset[str]:
        """Which of `groups` have `user_id` as a member."""
        return frozenset(g for g in groups if user_id in self.members(g))

    def members(self, group_id: str) -> frozenset[str]:
        now = self._clock()
        with self._lock:
            cached = self._members.get(group_id)
            failed = self._failed.get(group_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        if (failed is not None and now - failed < RETRY_AFTER_FAILURE) or now < self._held_until:
            return self._unknown(group_id, cached)
        try:
            users = self._client.usergroups_users_list(usergroup=group_id)["users"]
        except (SlackApiError, OSError) as error:
            # OSError: Slack unreachable (refused, timed out), which had escaped as a crash.
            code = error.response.get("error") if isinstance(error, SlackApiError) else None
            log.warning(
                "user group lookup failed",
                extra={"group": group_id, "error": code or type(error).__name__},
            )
            if code not in _GONE:
                wait = rate_limited_for(error, timedelta(seconds=RETRY_AFTER_FAILURE))
                with self._lock:
                    self._failed[group_id] = now
                    if wait is not None:
                        self._held_until = max(self._held_until, now + wait.total_seconds())
                return self._unknown(group_id, cached)
            # A group deleted from Slack has no members, for deny rules too; "try again"
            # would fail forever, and every verb whose rules name it with it.
            users = []
        members = frozenset(users)
        with self._lock:
            self._members[group_id] = (now, members)
            self._failed.pop(group_id, None)
        return members

    @staticmethod
    def _unknown(group_id: str, cached: tuple[float, frozenset[str]] | None) -> frozenset[str]:
        """A stale answer while Slack cannot say; with none, the caller is told."""
        if cached is not None:
            return cached[1]
        raise GroupLookupFailed(
            f"I could not check the members of Slack user group {group_id}, which the "
            "access rules name. Try again in a minute."
        )
