"""Access decisions for real callers: the registry's rules plus their Slack user groups.

`policies.rules` decides on plain data; this shell fetches the one thing it cannot know,
which of the groups the rules name the caller belongs to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from bot.store.audit import Actor
from policies import rules

AUTOSCALER = "autoscaler"  # the source of the worker's own scale commands


class Gate:
    def __init__(
        self,
        rules_: Sequence[rules.Rule] = (),
        admins: frozenset[str] = frozenset(),
        groups_of: Callable[[str, Iterable[str]], frozenset[str]] | None = None,
        also: Callable[[str], tuple[str, ...]] = lambda app: (),
        workspace: Callable[[], tuple[str | None, str | None]] | None = None,
    ) -> None:
        self.rules = tuple(rules_)
        self.admins = admins
        self._groups_of = groups_of
        self._also = also  # an app's other names (its platform name), matched by rules too
        # The team (and Enterprise Grid org) the bot is installed in: asked of Slack once,
        # on the first change someone names a team for. None: nobody is told apart.
        self._workspace = workspace
        self._home: tuple[str | None, str | None] | None = None
        # Only groups some rule names matter; with none, Slack is never asked.
        self._named_groups = sorted({group for rule in self.rules for group in rule.groups})

    def is_admin(self, user_id: str) -> bool:
        return user_id in self.admins

    def decide(self, actor: Actor, verb: str, app: str | None) -> rules.Decision:
        """May `actor` run `verb` on `app` here? Raises GroupLookupFailed if Slack can't say."""
        if actor.source == AUTOSCALER and verb == "scale":
            # Someone allowed to `autoscale` this app turned it on; guardrails still apply.
            return rules.Decision(True, "The autoscaler scales apps it was turned on for.")
        if not rules.is_read_only(verb.lower()) and self._outsider(actor):
            # Before any rule: `channels: [...]` is about anyone there, a partner's people too.
            return rules.Decision(False, rules.OUTSIDER)
        also = self._also(app) if app is not None else ()
        # Only the groups of rules about this verb and app: one group Slack cannot answer
        # for must not stop every other verb on every other app.
        named = {
            g for rule in self.rules if rule.covers(verb.lower(), app, also) for g in rule.groups
        }
        request = rules.Request(
            actor.user_id, self._groups(actor, sorted(named)), actor.channel_id, verb, app, also
        )
        return rules.decide(self.rules, request, self.admins)

    def read_only_note(self, user_id: str, channel_id: str | None) -> str | None:
        """What help says first to someone who may change nothing here (`rules`), decided
        without asking Slack anything: help is answered in the ack."""
        return rules.read_only_note(self.rules, user_id, channel_id, self.admins)

    def _outsider(self, actor: Actor) -> bool:
        if actor.team_id is None or self._workspace is None:
            return False
        if self._home is None:
            self._home = self._workspace()
        return rules.is_outsider(actor.team_id, actor.enterprise_id, *self._home)

    def summary(self, actor: Actor, apps: Iterable[str]) -> list[str]:
        return rules.summarize(
            self.rules,
            actor.user_id,
            self._groups(actor),
            actor.channel_id,
            self.admins,
            apps,
            self._also,
            outsider=self._outsider(actor),
        )

    def _groups(self, actor: Actor, named: list[str] | None = None) -> frozenset[str]:
        """Which of the `named` groups (default: every group a rule names) `actor` is in."""
        named = self._named_groups if named is None else named
        if not named or self._groups_of is None:
            return frozenset()
        return self._groups_of(actor.user_id, named)
