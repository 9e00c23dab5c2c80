"""Access rules as data: who may run which verb on which app, from which channel.

Rules come from the registry file and are evaluated by one function, `decide`, in the
manner of Errbot's ACCESS_CONTROLS: an explicit deny wins over any allow; read-only verbs
are open unless denied; changes need an allow rule, and the users in DEPLOYBOT_ADMINS act
as one implicit allow-everything rule. Pure: the caller resolves the user's groups.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from policies.names import suggest
from policies.slack_text import code

# The order `/deploy whoami` lists them in: changes first, since they are what people ask
# about. `config` covers both setting config vars and seeing their values unmasked: listing
# the names is open to everyone, as `status` is.
CHANGE_VERBS = (
    "scale",
    "restart",
    "kill",
    "autoscale",
    "pin",
    "drain",
    "watch",
    "approve",
    "rollback",
    "maintenance",
    "config",
    "lock",
    "unlock",
    "ship",
    "promote",
    "swap",
    "run",
)
READ_VERBS = (
    "status",
    "releases",
    "builds",
    "logs",
    "history",
    "metrics",
    "chart",
    "cost",
    "simulate",  # replays stored traffic through the simulator: it changes nothing
    "apps",
    "about",
    "whoami",
    "help",
)
VERB_ORDER = CHANGE_VERBS + READ_VERBS
MUTATING_VERBS = frozenset(CHANGE_VERBS)
READ_ONLY_VERBS = frozenset(READ_VERBS)
KNOWN_VERBS = READ_ONLY_VERBS | MUTATING_VERBS
# These verbs name no app, so `whoami` answers them once instead of per app.
APPLESS_VERBS = frozenset({"apps", "whoami", "help", "about"})
NAMES_SHOWN = 10  # apps a `whoami` line names for one rule; the rest are counted
# `approve` is a right to click a button, not a command anyone types: `whoami` names it as
# the button, after the verbs that change something.
_CLICKED = {"approve": "the Approve button on someone else's protected change"}
_WHOAMI_ORDER = (
    tuple(verb for verb in CHANGE_VERBS if verb not in _CLICKED) + tuple(_CLICKED) + READ_VERBS
)

_USER_ID_RE = re.compile(r"^[UW][A-Z0-9]{2,}\Z")
_GROUP_ID_RE = re.compile(r"^S[A-Z0-9]{2,}\Z")
_CHANNEL_ID_RE = re.compile(r"^[CGD][A-Z0-9]{2,}\Z")
# App aliases are lowercase letters, digits and dashes; a pattern may add fnmatch's * ? [ ] !.
_APP_PATTERN_RE = re.compile(r"^[a-z0-9*?\[\]!-]+\Z")


def validate_verb(verb: str) -> str:
    """`verb` lowercased, or ValueError naming the verbs that exist; `*` means every verb."""
    word = verb.strip().lower()
    if word == "*" or word in KNOWN_VERBS:
        return word
    hint = suggest(word, sorted(KNOWN_VERBS))
    tip = f" Did you mean {hint}?" if hint else ""
    raise ValueError(
        f"`{verb}` is not a verb I know.{tip} Use one of {', '.join(VERB_ORDER)}, or `*` for all."
    )


def validate_user_id(user_id: str) -> str:
    """`user_id` if it looks like a Slack user ID (U012AB3CD, or W… on Enterprise Grid)."""
    if not _USER_ID_RE.match(user_id):
        raise ValueError(
            f"`{user_id}` is not a Slack user ID: they look like U012AB3CD. "
            "Copy it from the person's profile (⋮ → Copy member ID)."
        )
    return user_id


def validate_group_id(group_id: str) -> str:
    """`group_id` if it looks like a Slack user group ID (S0123ABCD)."""
    if not _GROUP_ID_RE.match(group_id):
        raise ValueError(
            f"`{group_id}` is not a Slack user group ID: they look like S0123ABCD, "
            "not a @handle or a name."
        )
    return group_id


def validate_channel_id(channel_id: str) -> str:
    """`channel_id` if it looks like a Slack channel ID (C…, G… private, D… direct message)."""
    if not _CHANNEL_ID_RE.match(channel_id):
        raise ValueError(
            f"`{channel_id}` is not a Slack channel ID: they look like C012AB3CD, not #name. "
            "The ID is at the bottom of the channel's details."
        )
    return channel_id


def validate_app_pattern(pattern: str) -> str:
    """An app alias or glob (`shop`, `shop-*`, `*`), lowercased."""
    word = pattern.strip().lower()
    if not _APP_PATTERN_RE.match(word):
        raise ValueError(
            f"`{pattern}` is not an app name or pattern: use letters, digits and dashes, "
            "with `*` as a wildcard (`shop-*`, or `*` for every app)."
        )
    return word


@dataclass(frozen=True)
class Rule:
    """One allow or deny rule. Empty users, groups and channels together mean anyone."""

    effect: str  # "allow" or "deny"
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    verbs: frozenset[str] = frozenset()  # required: an empty set is refused below
    apps: tuple[str, ...] = ("*",)
    source: str = "the registry"  # where the rule is written, e.g. "deploybot.yml:12"

    def __post_init__(self) -> None:
        # Checked here too, so a rule built in code cannot silently match nothing.
        if self.effect not in ("allow", "deny"):
            raise ValueError(f"A rule's effect is `allow` or `deny`, not `{self.effect}`.")
        if not self.verbs:
            raise ValueError("A rule must name at least one verb, or `*` for all.")
        if not self.apps:
            raise ValueError("A rule must name at least one app or pattern, or `*` for all.")
        for verb in self.verbs:
            if validate_verb(verb) != verb:
                raise ValueError(f"Write the verb `{verb}` in lowercase.")
        for pattern in self.apps:
            if validate_app_pattern(pattern) != pattern:
                raise ValueError(f"Write the app pattern `{pattern}` in lowercase.")
        for user_id in self.users:
            validate_user_id(user_id)
        for group_id in self.groups:
            validate_group_id(group_id)
        for channel_id in self.channels:
            validate_channel_id(channel_id)

    def describe(self) -> str:
        """`kill on shop-*`: what the rule covers, for messages."""
        verbs = "every verb" if "*" in self.verbs else ", ".join(_ordered(self.verbs))
        apps = "every app" if "*" in self.apps else ", ".join(self.apps)
        return f"{verbs} on {apps}"

    def covers(self, verb: str, app: str | None, also: tuple[str, ...] = ()) -> bool:
        """True when the rule speaks about `verb` on `app` (None: a verb that names no app),
        or on one of its other names `also` (the Heroku app or Beanstalk environment behind
        a registry name: a rule written with the name the dashboard shows still holds)."""
        if "*" not in self.verbs and verb not in self.verbs:
            return False
        if app is None:
            return "*" in self.apps
        names = {name.lower() for name in (app, *also)}
        return any(fnmatch.fnmatchcase(name, p) for name in names for p in self.apps)

    def applies_to(self, user_id: str, groups: frozenset[str], channel_id: str | None) -> bool:
        """True when the caller, in this channel, is someone the rule is about."""
        named = user_id in self.users or bool(self.groups & groups)
        # A rule naming only channels is about anyone in those channels.
        if (self.users or self.groups) and not named:
            return False
        return not self.channels or channel_id in self.channels


@dataclass(frozen=True)
class Request:
    user_id: str
    groups: frozenset[str]
    channel_id: str | None
    verb: str
    app: str | None
    also: tuple[str, ...] = ()  # the app's other names (its platform name), for `covers`


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str  # one or two sentences, fit to show the user
    rule: Rule | None = None  # the rule that decided, if one did


def is_read_only(verb: str) -> bool:
    """Read-only verbs are open by default; every other verb, known or not, is a change."""
    return verb in READ_ONLY_VERBS


OUTSIDER = (
    "You are a member of another Slack organisation: only members of this workspace may "
    "change apps."
)


def is_outsider(
    team_id: str | None,
    enterprise_id: str | None,
    home_team: str | None,
    home_enterprise: str | None,
) -> bool:
    """Is a caller whose home team is `team_id` (and org `enterprise_id`) from outside the
    workspace the bot is installed in (`home_team`, in org `home_enterprise`)?

    In a Slack Connect channel a partner organisation's members see the bot's messages and
    press their buttons; Slack names their own team (`user.team_id`), which on Enterprise
    Grid is their organisation's ID (E…). Unknown on either side: not an outsider."""
    if team_id is None or home_team is None:
        return False
    if team_id == home_team:
        return False
    if home_enterprise is not None:
        # Another workspace of the same Enterprise Grid organisation is not another org.
        return home_enterprise not in (team_id, enterprise_id)
    return True


def decide(rules: Sequence[Rule], request: Request, admins: frozenset[str]) -> Decision:
    """Decide whether `request` may go ahead: deny wins, then allow, then the verb's default."""
    verb, app = request.verb.lower(), request.app

    def matching(effect: str) -> list[Rule]:
        return [
            rule
            for rule in rules
            if rule.effect == effect
            and rule.covers(verb, app, request.also)
            and rule.applies_to(request.user_id, request.groups, request.channel_id)
        ]

    denies = matching("deny")
    if denies:
        rule = denies[0]
        return Decision(False, f"Denied by the rule at {rule.source} ({rule.describe()}).", rule)
    if is_read_only(verb):
        return Decision(True, f"`{verb}` is read-only and open to everyone.")
    allows = matching("allow")
    if allows:
        rule = allows[0]
        return Decision(True, f"Allowed by the rule at {rule.source} ({rule.describe()}).", rule)
    if request.user_id in admins:
        return Decision(True, "You are listed in DEPLOYBOT_ADMINS.")
    return Decision(False, _refusal(rules, request, verb, admins))


# What a verb does to an app, where its name does not say it: `rollback` is a noun, and
# "You may not maintenance `shop`" said nothing. One table for the access rules' "You may
# not …" and the deploy lock's "only they may …", so both say a verb in the same words.
_DOING = {
    "rollback": "roll {} back",
    "maintenance": "switch {}'s maintenance mode",
    "config": "change {}'s config",
    "run": "run commands on {}",
    "drain": "add a log drain to {}",
    "approve": "approve changes to {}",
    # A rule (and a lock) on an app holds back a promotion into it as well as out of it.
    "promote": "promote to or from {}",
}


def doing(verb: str, app: str) -> str:
    """What `verb` does to `app` in words: `doing("rollback", "it")` is "roll it back",
    `doing("config", "it")` "change its config"."""
    words = _DOING.get(verb, f"{verb} {{}}")
    return words.replace("{}'s", "its" if app == "it" else f"{app}'s").replace("{}", app)


def _refusal(rules: Sequence[Rule], request: Request, verb: str, admins: frozenset[str]) -> str:
    what = doing(verb, code(request.app)) if request.app else code(verb)
    if not rules:
        # No access rules at all: DEPLOYBOT_ADMINS is the only way in, so name it.
        if not admins:
            return (
                f"Nobody may {what} yet: this bot has no admins. "
                "Ask whoever runs deploybot to set DEPLOYBOT_ADMINS."
            )
        return (
            f"You may not {what}: only the admins in DEPLOYBOT_ADMINS may change apps. "
            "Ask one of them, or ask for your Slack user ID to be added."
        )
    # An allow rule that fits everything but the channel is the likeliest fix: say where.
    elsewhere = [
        rule
        for rule in rules
        if rule.effect == "allow"
        and rule.channels
        and rule.covers(verb, request.app, request.also)
        and rule.applies_to(request.user_id, request.groups, next(iter(rule.channels)))
    ]
    if elsewhere:
        rule = elsewhere[0]
        places = ", ".join(f"<#{channel}>" for channel in sorted(rule.channels))
        return (
            f"You may not {what} in this channel. "
            f"The rule at {rule.source} allows it only in {places}."
        )
    return (
        f"You may not {what}: no rule allows it. "
        "Ask an admin to add you to an allow rule in the registry."
    )


# Said before `/deploy help` to someone who may change nothing where they ask: the list of
# verbs had read as an offer, and each change they tried was refused one by one.
_READ_ONLY_HERE = (
    "You may not change any app in this channel: only read-only verbs (`status`, `logs`, "
    "`history`, …) are open to you. "
)


def read_only_note(
    rules: Sequence[Rule], user_id: str, channel_id: str | None, admins: frozenset[str]
) -> str | None:
    """The line `/deploy help` starts with for someone no rule lets change anything here,
    or None. Their user groups are not known (help is answered at once, without asking
    Slack): a rule naming a group counts as one they may be in, so nobody is told wrongly."""
    if user_id in admins:
        return None
    maybe = frozenset(group for rule in rules for group in rule.groups)
    if any(
        rule.effect == "allow"
        and ("*" in rule.verbs or rule.verbs & MUTATING_VERBS)
        and rule.applies_to(user_id, maybe, channel_id)
        for rule in rules
    ):
        return None
    if not rules:
        return (
            f"{_READ_ONLY_HERE}Only the admins in DEPLOYBOT_ADMINS may change apps: ask one "
            "of them to add your Slack user ID."
        )
    return (
        f"{_READ_ONLY_HERE}`/deploy whoami` says which rules apply to you; an admin can add "
        "you to an allow rule in the registry."
    )


def summarize(
    rules: Sequence[Rule],
    user_id: str,
    groups: frozenset[str],
    channel_id: str | None,
    admins: frozenset[str],
    apps: Iterable[str],
    also: Callable[[str], tuple[str, ...]] = lambda app: (),
    outsider: bool = False,
) -> list[str]:
    """Plain lines for `/deploy whoami`: per verb, the apps allowed here and which rule says
    so; `also` gives an app's other names, which rules match as `decide` does. An
    `outsider` (a member of another Slack organisation) is told so, and shown reads only."""
    app_names = sorted(set(apps))
    where = f"<#{channel_id}>" if channel_id else "this conversation"
    group_text = ", ".join(sorted(groups)) if groups else "none"
    lines = [f"You are <@{user_id}> (user groups: {group_text}), asking in {where}."]
    if outsider:
        lines.append(OUTSIDER)
    elif user_id in admins:
        lines.append("You are in DEPLOYBOT_ADMINS: you may change any app no deny rule protects.")
    # Verbs with the same answer share a line (an admin's 30 lines become 6); the Approve
    # button, a click and not a command, keeps a line of its own.
    rows: list[tuple[list[str], str]] = []
    row_of: dict[str, int] = {}
    for verb in _WHOAMI_ORDER:
        if outsider and not is_read_only(verb):
            continue
        targets: list[str | None] = [None] if verb in APPLESS_VERBS else list(app_names)
        allowed: dict[str, list[str]] = {}
        denied: dict[str, list[str]] = {}
        for app in targets:
            names = also(app) if app is not None else ()
            request = Request(user_id, groups, channel_id, verb, app, names)
            decision = decide(rules, request, admins)
            why = _why(decision, verb)
            bucket = allowed if decision.allowed else denied
            bucket.setdefault(why, []).append(app or "")
        text = _summary_text(allowed, denied, verb in APPLESS_VERBS)
        label = _CLICKED.get(verb, f"`{verb}`")
        if text in row_of and verb not in _CLICKED:
            rows[row_of[text]][0].append(label)
            continue
        if verb not in _CLICKED:
            row_of[text] = len(rows)
        rows.append(([label], text))
    for labels, text in rows:
        said = ", ".join(labels)
        lines.append(f"{said[0].upper()}{said[1:]}: {text}.")
    return lines


def _why(decision: Decision, verb: str) -> str:
    if decision.rule is not None:
        return f"rule at {decision.rule.source}"
    if decision.allowed:
        return "read-only" if is_read_only(verb) else "DEPLOYBOT_ADMINS"
    return "no rule allows it"


def _summary_text(
    allowed: dict[str, list[str]], denied: dict[str, list[str]], appless: bool
) -> str:
    """One verb's answer, without the verb: the apps it may change here, and why."""
    if appless:
        (why,) = (allowed or denied).keys()
        return f"{'yes' if allowed else 'no'} ({why})"
    if not allowed and not denied:
        return "no apps are registered"
    total = sum(len(names) for names in allowed.values()) + sum(
        len(names) for names in denied.values()
    )
    parts = [
        f"{'every app' if len(names) == total else _some(names)} ({why})"
        for why, names in allowed.items()
    ]
    text = "; ".join(parts) if parts else "no apps"
    refused = [f"{_some(names)} ({why})" for why, names in denied.items() if why.startswith("rule")]
    if refused:
        text += "; denied on " + "; ".join(refused)
    return text


def _some(names: list[str]) -> str:
    """The first NAMES_SHOWN of `names` and how many more: a rule's glob can match hundreds
    of a fleet's apps, and a line naming them all was cut mid-name, its rule cut off."""
    shown = ", ".join(names[:NAMES_SHOWN])
    more = len(names) - NAMES_SHOWN
    return f"{shown} and {more:,} more" if more > 0 else shown


def _ordered(verbs: Iterable[str]) -> list[str]:
    rank = {verb: i for i, verb in enumerate(VERB_ORDER)}
    return sorted(verbs, key=lambda verb: (rank.get(verb, len(rank)), verb))
