"""User-group membership through the fake Slack: cached, refreshed, and never guessed."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient

from bot.actions.usergroups import RETRY_AFTER_FAILURE, GroupLookupFailed, UserGroups


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def groups(slack):
    slack.set_usergroup("SOPS", ["UONE", "UTWO"])
    slack.set_usergroup("SDEVS", ["UTHREE"])
    clock = Clock()
    client = WebClient(token=slack.bot_token, base_url=slack.api_url)
    return UserGroups(client, ttl=300, clock=clock), clock


def lookups(slack):
    return [c.args["usergroup"] for c in slack.calls if c.method == "usergroups.users.list"]


def test_membership_is_cached_for_the_ttl(slack, groups):
    usergroups, clock = groups
    assert usergroups.groups_of("UONE", ["SOPS", "SDEVS"]) == {"SOPS"}
    assert usergroups.groups_of("UTHREE", ["SOPS", "SDEVS"]) == {"SDEVS"}
    assert lookups(slack) == ["SOPS", "SDEVS"]

    slack.set_usergroup("SOPS", ["UTWO"])
    clock.now = 299
    assert usergroups.groups_of("UONE", ["SOPS"]) == {"SOPS"}  # still cached
    clock.now = 301
    assert usergroups.groups_of("UONE", ["SOPS"]) == frozenset()  # refreshed
    assert lookups(slack) == ["SOPS", "SDEVS", "SOPS"]
    assert slack.violations == []


def test_a_deleted_group_has_no_members_and_a_slack_outage_is_not_guessed(slack, groups):
    usergroups, clock = groups
    # Slack says the group does not exist (no_such_subteam): no members, kept for the TTL.
    # It had raised, so every command whose rules named it said "try again", forever.
    asked = len(slack.calls_to("usergroups.users.list"))
    assert usergroups.members("SNOPE") == frozenset()
    assert usergroups.members("SNOPE") == frozenset()
    assert len(slack.calls_to("usergroups.users.list")) == asked + 1

    assert usergroups.members("SOPS") == {"UONE", "UTWO"}
    clock.now = 1000
    slack.fail_next("usergroups.users.list", status=500, count=5)
    # A stale answer beats none while Slack is down...
    assert usergroups.members("SOPS") == {"UONE", "UTWO"}
    # ...but with nothing cached the caller is told, not treated as a non-member.
    with pytest.raises(GroupLookupFailed, match="Try again in a minute"):
        usergroups.members("SDEVS")


def test_a_failed_lookup_is_not_asked_again_at_once(slack, groups):
    usergroups, clock = groups
    slack.fail_next("usergroups.users.list", status=500, count=50)
    # App Home judges each app on its own: a page of 40 apps had asked Slack 40 times in a
    # row while it failed (each up to a 30 s timeout when Slack is unreachable).
    for _ in range(40):
        with pytest.raises(GroupLookupFailed):
            usergroups.members("SOPS")
    assert refused(slack) == 1
    clock.now = RETRY_AFTER_FAILURE + 1
    with pytest.raises(GroupLookupFailed):
        usergroups.members("SOPS")
    assert refused(slack) == 2


def refused(slack) -> int:
    """The lookups the fake Slack answered with a fault (they are not in `slack.calls`)."""
    return sum(1 for method, _ in slack.faults_served if method == "usergroups.users.list")


def test_slack_unreachable_is_a_lookup_failure_not_a_crash():
    # A refused connection had escaped as URLError: App Home said "Something went wrong".
    client = WebClient(token="xoxb-x", base_url="http://127.0.0.1:9/", timeout=5)
    with pytest.raises(GroupLookupFailed, match="SOPS"):
        UserGroups(client).members("SOPS")


def test_slacks_429_holds_every_groups_lookup_until_its_retry_after(slack, groups):
    # A 429 had paused only the group asked, for a fixed 30 s: the other groups were asked
    # at once (the limit is the method's, for the whole workspace), and a Retry-After of
    # two minutes was asked again after 30 s.
    usergroups, clock = groups
    slack.fail_next("usergroups.users.list", status=429, retry_after=120)
    with pytest.raises(GroupLookupFailed):
        usergroups.members("SOPS")
    clock.now = 60
    with pytest.raises(GroupLookupFailed):
        usergroups.members("SDEVS")  # not asked: Slack asked to wait
    assert refused(slack) == 1 and lookups(slack) == []
    clock.now = 121
    assert usergroups.members("SDEVS") == {"UTHREE"}
    assert usergroups.members("SOPS") == {"UONE", "UTWO"}
