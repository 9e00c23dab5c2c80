"""Access rules: a table of allow and deny cases, validation, and `/deploy whoami` lines."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from policies.rules import (
    KNOWN_VERBS,
    MUTATING_VERBS,
    READ_ONLY_VERBS,
    Request,
    Rule,
    decide,
    is_outsider,
    read_only_note,
    summarize,
    validate_app_pattern,
    validate_channel_id,
    validate_group_id,
    validate_user_id,
    validate_verb,
)

ALICE, BOB, ADMIN = "U0ALICE", "U0BOB", "U0ADMIN"
OPS, DEVS = "S0OPS", "S0DEVS"
OPS_ROOM, RANDOM = "C0OPS", "C0RANDOM"
ADMINS = frozenset({ADMIN})

RULES = (
    Rule(
        "allow",
        users=frozenset({ALICE}),
        verbs=frozenset({"scale", "restart"}),
        apps=("shop-*",),
        source="deploybot.yml:10",
    ),
    Rule(
        "allow",
        groups=frozenset({OPS}),
        verbs=frozenset({"*"}),
        apps=("*",),
        source="deploybot.yml:12",
    ),
    Rule(
        "deny",
        groups=frozenset({OPS}),
        verbs=frozenset({"kill"}),
        apps=("shop-*",),
        source="deploybot.yml:14",
    ),
    Rule(
        "allow",
        users=frozenset({BOB}),
        channels=frozenset({OPS_ROOM}),
        verbs=frozenset({"restart"}),
        apps=("web",),
        source="deploybot.yml:16",
    ),
    Rule(
        "deny",
        users=frozenset({BOB}),
        verbs=frozenset({"status"}),
        apps=("secret",),
        source="deploybot.yml:18",
    ),
    Rule(
        "allow",
        channels=frozenset({OPS_ROOM}),
        verbs=frozenset({"drain"}),
        apps=("web",),
        source="deploybot.yml:20",
    ),
    Rule(
        "deny",
        users=frozenset({ADMIN}),
        verbs=frozenset({"kill"}),
        apps=("billing",),
        source="deploybot.yml:22",
    ),
)


def ask(
    user: str,
    verb: str,
    app: str | None,
    groups: frozenset[str] = frozenset(),
    channel: str | None = RANDOM,
) -> Request:
    return Request(user, groups, channel, verb, app)


@pytest.mark.parametrize(
    ("request_", "allowed", "source"),
    [
        # Allow by user, limited to a glob.
        (ask(ALICE, "scale", "shop-api"), True, "deploybot.yml:10"),
        (ask(ALICE, "scale", "SHOP-API"), True, "deploybot.yml:10"),
        (ask(ALICE, "scale", "shop"), False, None),  # `shop-*` needs the dash
        (ask(ALICE, "kill", "shop-api"), False, None),
        # Allow by group; the deny for kill on shop-* wins over the group's `*`.
        (ask(BOB, "kill", "web", groups=frozenset({OPS})), True, "deploybot.yml:12"),
        (ask(BOB, "kill", "shop-web", groups=frozenset({OPS})), False, "deploybot.yml:14"),
        (ask(BOB, "kill", "shop-web", groups=frozenset({DEVS})), False, None),
        # Deny wins over an allow that names the user directly.
        (ask(ALICE, "scale", "shop-api", groups=frozenset({OPS})), True, "deploybot.yml:10"),
        (ask(ALICE, "kill", "shop-api", groups=frozenset({OPS})), False, "deploybot.yml:14"),
        # A channel-limited allow works in that channel only.
        (ask(BOB, "restart", "web", channel=OPS_ROOM), True, "deploybot.yml:16"),
        (ask(BOB, "restart", "web", channel=RANDOM), False, None),
        (ask(BOB, "restart", "web", channel=None), False, None),
        # A rule naming only channels is about anyone there.
        (ask(ALICE, "drain", "web", channel=OPS_ROOM), True, "deploybot.yml:20"),
        (ask(ALICE, "drain", "web", channel=RANDOM), False, None),
        # Read-only verbs are open unless a deny matches.
        (ask(ALICE, "status", "secret"), True, None),
        (ask(BOB, "status", "secret"), False, "deploybot.yml:18"),
        (ask(BOB, "status", "other"), True, None),
        (ask(BOB, "metrics", "secret"), True, None),
        (ask(BOB, "help", None), True, None),
        # Admins are an implicit allow, but an explicit deny still wins.
        (ask(ADMIN, "kill", "anything"), True, None),
        (ask(ADMIN, "approve", None), True, None),
        (ask(ADMIN, "kill", "billing"), False, "deploybot.yml:22"),
        (ask(ADMIN, "scale", "billing"), True, None),
        # Verbs outside the read-only set are changes, even ones this code has never heard of.
        (ask(ALICE, "teleport", "shop-api"), False, None),
        (ask(BOB, "teleport", "web", groups=frozenset({OPS})), True, "deploybot.yml:12"),
        # A rule about some apps says nothing about a verb that names no app.
        (ask(ALICE, "scale", None), False, None),
        (ask(BOB, "watch", None, groups=frozenset({OPS})), True, "deploybot.yml:12"),
    ],
)
def test_decide(request_: Request, allowed: bool, source: str | None) -> None:
    decision = decide(RULES, request_, ADMINS)
    assert decision.allowed is allowed
    assert (decision.rule.source if decision.rule else None) == source
    if source:
        assert source in decision.reason
    assert decision.reason.endswith(".")


def test_deny_names_the_rule_and_what_it_covers() -> None:
    decision = decide(RULES, ask(BOB, "kill", "shop-web", groups=frozenset({OPS})), ADMINS)
    assert decision.reason == "Denied by the rule at deploybot.yml:14 (kill on shop-*)."


def test_refusal_says_what_to_ask_for() -> None:
    decision = decide(RULES, ask(ALICE, "scale", "shop"), ADMINS)
    assert decision.reason == (
        "You may not scale `shop`: no rule allows it. "
        "Ask an admin to add you to an allow rule in the registry."
    )


def test_a_refusal_shows_the_app_as_typed_escaped() -> None:
    # The gate names the app in a code span: a name with a backtick or markup, however it
    # got there, must not close the span or ping the channel.
    reason = decide(RULES, ask(ALICE, "scale", "a`b<!channel>"), ADMINS).reason
    assert reason.startswith("You may not scale `aˋb&lt;!channel&gt;`:"), reason


@pytest.mark.parametrize(
    ("verb", "says"),
    [
        # The verb's name had stood for the action: "You may not rollback `shop`", "You may
        # not maintenance `shop`", "You may not config `shop`", "You may not run `shop`".
        ("rollback", "You may not roll `shop` back: no rule allows it."),
        # The same rule covers a promotion into `shop` (the next stage) and out of it.
        ("promote", "You may not promote to or from `shop`: no rule allows it."),
        ("maintenance", "You may not switch `shop`'s maintenance mode: no rule allows it."),
        ("config", "You may not change `shop`'s config: no rule allows it."),
        ("run", "You may not run commands on `shop`: no rule allows it."),
        ("drain", "You may not add a log drain to `shop`: no rule allows it."),
        ("approve", "You may not approve changes to `shop`: no rule allows it."),
        ("ship", "You may not ship `shop`: no rule allows it."),
    ],
)
def test_a_refusal_says_what_was_refused_in_words(verb: str, says: str) -> None:
    assert decide(RULES, ask(ALICE, verb, "shop"), ADMINS).reason.startswith(says)


def test_refusal_points_at_the_channel_where_it_is_allowed() -> None:
    decision = decide(RULES, ask(BOB, "restart", "web", channel=RANDOM), ADMINS)
    assert not decision.allowed
    assert "<#C0OPS>" in decision.reason
    assert "deploybot.yml:16" in decision.reason


def test_help_s_read_only_note_goes_to_whom_no_rule_lets_change_anything_here() -> None:
    channel_rule = Rule(
        "allow",
        users=frozenset({BOB}),
        channels=frozenset({OPS_ROOM}),
        verbs=frozenset({"restart"}),
        source="a.yml:1",
    )
    group_rule = Rule(
        "allow", groups=frozenset({OPS}), verbs=frozenset({"scale"}), source="a.yml:2"
    )
    reads = Rule("allow", users=frozenset({ALICE}), verbs=frozenset({"status"}), source="a.yml:3")
    assert read_only_note([channel_rule], BOB, OPS_ROOM, ADMINS) is None
    assert read_only_note([channel_rule], BOB, RANDOM, ADMINS) is not None
    assert read_only_note([channel_rule, reads], ALICE, OPS_ROOM, ADMINS) is not None
    assert read_only_note([channel_rule], ADMIN, RANDOM, ADMINS) is None
    # Help does not ask Slack who is in a group: someone who may be is never told no.
    assert read_only_note([group_rule], ALICE, RANDOM, ADMINS) is None
    assert "DEPLOYBOT_ADMINS" in (read_only_note([], ALICE, RANDOM, ADMINS) or "")


def test_no_rules_no_admins_allows_reads_only() -> None:
    for verb in READ_ONLY_VERBS:
        assert decide([], ask(ALICE, verb, "shop"), frozenset()).allowed
    for verb in MUTATING_VERBS:
        assert not decide([], ask(ALICE, verb, "shop"), frozenset()).allowed


def test_a_replay_of_stored_traffic_is_a_read() -> None:
    # `simulate APP 7d` changes nothing: it had needed an admin, and no rule could name it.
    assert "simulate" in READ_ONLY_VERBS
    assert decide([], ask(ALICE, "simulate", "shop"), frozenset()).allowed


def test_the_first_matching_rule_is_reported() -> None:
    rules = [
        Rule("deny", users=frozenset({ALICE}), verbs=frozenset({"*"}), source="a.yml:1"),
        Rule("deny", verbs=frozenset({"scale"}), source="a.yml:2"),
    ]
    assert decide(rules, ask(ALICE, "scale", "x"), ADMINS).rule == rules[0]
    assert decide(rules, ask(BOB, "scale", "x"), ADMINS).rule == rules[1]


_users = st.sampled_from([ALICE, BOB, ADMIN])
_groups = st.frozensets(st.sampled_from([OPS, DEVS]))
_verbs = st.sampled_from(sorted(KNOWN_VERBS))
_apps = st.sampled_from(["shop", "shop-api", "web", "billing", "secret"])
_channels = st.sampled_from([OPS_ROOM, RANDOM, None])


@given(_users, _groups, _channels, _verbs, _apps)
def test_a_matching_deny_always_wins(
    user: str, groups: frozenset[str], channel: str | None, verb: str, app: str
) -> None:
    request = Request(user, groups, channel, verb, app)
    blanket = Rule("deny", users=frozenset({user}), verbs=frozenset({verb}), source="z.yml:1")
    # Whatever else allows it (admins, the group's `*`), the deny decides.
    decision = decide([*RULES, blanket], request, ADMINS | {user})
    assert not decision.allowed
    assert decision.rule is not None and decision.rule.effect == "deny"


@given(_users, _groups, _channels, _verbs, _apps)
def test_changes_need_an_allow_rule_or_an_admin(
    user: str, groups: frozenset[str], channel: str | None, verb: str, app: str
) -> None:
    decision = decide(RULES, Request(user, groups, channel, verb, app), ADMINS)
    if decision.allowed and verb in MUTATING_VERBS:
        assert user in ADMINS or (decision.rule is not None and decision.rule.effect == "allow")


@pytest.mark.parametrize(
    ("check", "value", "message"),
    [
        (validate_verb, "deploy", "`deploy` is not a verb I know"),
        (validate_verb, "scael", "Did you mean `scale`?"),
        (validate_user_id, "alice", "`alice` is not a Slack user ID"),
        (validate_user_id, "U0", "not a Slack user ID"),
        (validate_user_id, "u012ab3cd", "not a Slack user ID"),
        (validate_user_id, "S012AB3CD", "not a Slack user ID"),
        (validate_group_id, "@ops", "`@ops` is not a Slack user group ID"),
        (validate_group_id, "U012AB3CD", "not a Slack user group ID"),
        (validate_channel_id, "#ops", "`#ops` is not a Slack channel ID"),
        (validate_channel_id, "c012ab3cd", "not a Slack channel ID"),
        # Python's `$` matches before a final newline; these had passed.
        (validate_user_id, "U012AB3CD\n", "not a Slack user ID"),
        (validate_group_id, "S012AB3CD\n", "not a Slack user group ID"),
        (validate_channel_id, "C012AB3CD\n", "not a Slack channel ID"),
        (validate_app_pattern, "shop prod", "not an app name or pattern"),
        (validate_app_pattern, "", "not an app name or pattern"),
    ],
)
def test_validation_rejects_with_a_precise_message(check, value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("?", r"\?")):
        check(value)


@pytest.mark.parametrize(
    ("check", "value", "expected"),
    [
        (validate_verb, "Scale", "scale"),
        (validate_verb, "*", "*"),
        (validate_verb, "metrics", "metrics"),
        (validate_user_id, "U012AB3CD", "U012AB3CD"),
        (validate_user_id, "W012AB3CD", "W012AB3CD"),
        (validate_group_id, "S0123ABCD", "S0123ABCD"),
        (validate_channel_id, "C012AB3CD", "C012AB3CD"),
        (validate_channel_id, "G012AB3CD", "G012AB3CD"),
        (validate_channel_id, "D012AB3CD", "D012AB3CD"),
        (validate_app_pattern, "Shop-*", "shop-*"),
    ],
)
def test_validation_accepts_and_normalizes(check, value: str, expected: str) -> None:
    assert check(value) == expected


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"effect": "permit", "verbs": frozenset({"scale"})}, "`allow` or `deny`"),
        ({"effect": "allow"}, "at least one verb"),
        ({"effect": "allow", "verbs": frozenset({"deploy"})}, "`deploy` is not a verb"),
        ({"effect": "allow", "verbs": frozenset({"*"}), "apps": ()}, "at least one app"),
        ({"effect": "allow", "verbs": frozenset({"*"}), "users": frozenset({"bob"})}, "`bob`"),
        ({"effect": "deny", "verbs": frozenset({"*"}), "groups": frozenset({"ops"})}, "`ops`"),
        ({"effect": "deny", "verbs": frozenset({"*"}), "channels": frozenset({"#x"})}, "`#x`"),
    ],
)
def test_a_malformed_rule_is_refused(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Rule(**fields)


def _by_verb(lines: list[str]) -> dict[str, str]:
    """Each verb's answer in `whoami`'s lines, where verbs that say the same share a line."""
    found = {}
    for line in lines:
        label, _, answer = line.partition(": ")
        for verb in label.split(", "):
            found[verb] = answer
    return found


def test_summary_lists_apps_and_the_rule_behind_each() -> None:
    lines = summarize(RULES, ALICE, frozenset(), OPS_ROOM, ADMINS, ["shop-api", "shop-web", "web"])
    by_verb = _by_verb(lines[1:])
    assert lines[0].startswith("You are <@U0ALICE>")
    assert by_verb["`scale`"] == "shop-api, shop-web (rule at deploybot.yml:10)."
    assert by_verb["`drain`"] == "web (rule at deploybot.yml:20)."
    assert by_verb["`kill`"] == "no apps."
    assert by_verb["`status`"] == "every app (read-only)."
    assert by_verb["`help`"] == "yes (read-only)."
    clicked = "The Approve button on someone else's protected change"
    assert by_verb[clicked] == "no apps."
    assert f"{clicked}: no apps." in lines  # a click, not a command: a line of its own


def test_summary_shows_denies_and_admin_rights() -> None:
    lines = summarize(RULES, ADMIN, frozenset(), RANDOM, ADMINS, ["billing", "shop"])
    assert any("DEPLOYBOT_ADMINS" in line for line in lines[:2])
    by_verb = _by_verb(lines[2:])
    assert (
        by_verb["`kill`"]
        == "shop (DEPLOYBOT_ADMINS); denied on billing (rule at deploybot.yml:22)."
    )
    assert by_verb["`scale`"] == "every app (DEPLOYBOT_ADMINS)."


def test_verbs_that_say_the_same_share_one_line() -> None:
    # An admin's whoami had been 30 lines, 16 of them "every app (DEPLOYBOT_ADMINS)".
    lines = summarize((), ADMIN, frozenset(), RANDOM, ADMINS, ["billing", "shop"])
    assert lines[2].startswith("`scale`, `restart`, `kill`, ") and lines[2].endswith(
        ": every app (DEPLOYBOT_ADMINS)."
    )
    assert lines[3] == (
        "The Approve button on someone else's protected change: every app (DEPLOYBOT_ADMINS)."
    )
    assert lines[4].startswith("`status`, `releases`, ") and lines[4].endswith(
        ": every app (read-only)."
    )
    assert lines[5] == "`apps`, `about`, `whoami`, `help`: yes (read-only)."
    assert len(lines) == 6


@pytest.mark.parametrize(
    ("team", "enterprise", "home", "home_enterprise", "outsider"),
    [
        ("T0HOME", None, "T0HOME", None, False),
        ("T0PARTNER", None, "T0HOME", None, True),
        # Enterprise Grid: a click names the org (E…), a command the workspace and the org.
        ("E0GRID", None, "T0HOME", "E0GRID", False),
        ("T0OTHERWS", "E0GRID", "T0HOME", "E0GRID", False),
        ("E0PARTNER", None, "T0HOME", "E0GRID", True),
        ("T0PARTNER", "E0PARTNER", "T0HOME", "E0GRID", True),
        (None, None, "T0HOME", None, False),  # the console, the worker: no team named
        ("T0PARTNER", None, None, None, False),  # the bot's workspace unknown
    ],
)
def test_is_outsider(team, enterprise, home, home_enterprise, outsider) -> None:
    assert is_outsider(team, enterprise, home, home_enterprise) is outsider
