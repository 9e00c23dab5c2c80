"""The one path every change takes: authorize ▸ guardrails ▸ confirm or approve ▸ record
intent ▸ call the platform ▸ record the outcome; the result says what to notify.

Slash commands, buttons and the console all call `Actions`; it returns plain result
objects that `handlers/render.py` turns into Block Kit. Nothing here knows about Slack.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime, timedelta
from threading import Event
from typing import Any

from bot.actions.autoscaling import AutoscaleCommands
from bot.actions.connections import Connections
from bot.actions.dashboards import Dashboards
from bot.actions.deployments import CONFIRMED_VERBS, Deployments
from bot.actions.deployments import VERBS as DEPLOYMENT_VERBS
from bot.actions.gate import AUTOSCALER, Gate
from bot.actions.reconcile import Reconciler, formation_json, lost_note, record_lost, unsure
from bot.actions.results import (
    CHANGED_NOTHING,
    About,
    AppList,
    BreakGlass,
    Changed,
    Deployed,
    DeployPrompt,
    Duplicate,
    History,
    Home,
    Metrics,
    NeedsConfirmation,
    PlatformMetrics,
    Reply,
    Resolved,
    Restarted,
    Result,
    Status,
    asked_again,
    expired_text,
)
from bot.actions.usergroups import GroupLookupFailed
from bot.metrics.aggregate import summarize
from bot.metrics.report import series
from bot.metrics.store import MetricsStore
from bot.platforms.base import (
    RESTART_WHOLE,
    Formation,
    NoSuchApp,
    NotSupported,
    PlatformError,
    ReadFailed,
    Settled,
    check_first,
    formation_map,
)
from bot.registry import Target, UnknownApp
from bot.store.audit import Actor, AuditLog, utcnow
from bot.store.autoscale_settings import AutoscaleStore
from bot.store.confirmations import Confirmations, Pending, audited_targets
from bot.store.db import unreachable
from bot.store.drains import Drains
from bot.store.incidents import Alerts
from bot.store.locks import Locks
from bot.store.request_keys import RequestKeys
from bot.store.webhook_secrets import WebhookSecrets
from policies import costs, guardrails, names
from policies.commands import (
    HEROKU_ONLY_VERBS,
    Command,
    CommandError,
    app_typed_last,
    changing,
    help_text,
    parse,
    plan_kill,
    plan_scale,
    stops_dynos,
    with_usage_if_a_number,
)
from policies.sizes import check_size, past_heroku_limit
from policies.slack_text import code, escape, moment

log = logging.getLogger(__name__)

# Beanstalk updates usually take 2–10 minutes; past this the follow-up says to look in AWS.
# Verbs that keep something in the bot's own tables (a lock, a pin, a prompt, a drain's
# token) before any platform call; unlock and `pin off` only remove, so what an app deleted
# since left can go.
_BOOKKEEPING = frozenset({"lock", "pin", "config", "drain"})
# Verbs whose answer for a name no app goes by would read as an app with nothing to show
# (no alerts, no traffic, no source): the name is checked first, as `history` checks it.
_CHECKED = frozenset({"alerts", "metrics", "chart", "cost", "ship", "run"})
FOLLOW_UP_TIMEOUT = 30 * 60.0
# How long a Confirm may take to record its change at most: the platform reads before it
# (Beanstalk's: 4 tries of a 3 s connect and a 15 s read) take well under this.
CUT_OFF_AFTER = timedelta(minutes=5)
HOME_CHANGES = ("restart", "scale")  # the verbs of App Home's change buttons
FOLLOW_UP_TRIES, FOLLOW_UP_PAUSE_S = 3, 5.0  # a follow-up's waits, after a failed poll


def _autoscale_setting(command: Command) -> bool:
    """`autoscale APP set …` and `schedule add …`: kept in the bot's tables, as a lock is
    (`schedule remove` only removes, as `unlock` does)."""
    return (
        command.verb == "autoscale"
        and not command.target
        and (command.mode == "set" or (command.mode == "schedule" and command.topic == "add"))
    )


class Actions:
    def __init__(
        self,
        resolve: Callable[[str], Resolved],
        audit: AuditLog,
        confirmations: Confirmations,
        gate: Gate,
        now: Callable[[], datetime] = utcnow,
        targets: Callable[[], list[Target]] = list,
        unlisted_heroku: bool = True,
        request_keys: RequestKeys | None = None,
        own_app: str | None = None,
        metrics: MetricsStore | None = None,
        drains: Drains | None = None,
        public_url: str | None = None,
        autoscale: AutoscaleStore | None = None,
        webhook_secrets: WebhookSecrets | None = None,
        simulate: Callable[[Actor, Command], Result] | None = None,
        alerts: Alerts | None = None,
        canonical: Callable[[str], str] = str,
        worker_runs: bool = True,
        locks: Locks | None = None,
        secret: Callable[[str], str | None] = lambda name: None,
        dashboards: Dashboards | None = None,
        own_secrets: Callable[[], frozenset[str]] = frozenset,
    ) -> None:
        self._resolve = resolve
        # The registry's spelling of an app name (`DEMO` → `demo`), so rules, audit rows and
        # settings all see one name whatever case was typed.
        self._canonical = canonical
        self._audit = audit
        self._confirmations = confirmations
        self._gate = gate
        self._own_app = own_app  # HEROKU_APP_NAME: the app this bot runs on
        self._metrics = metrics
        self._drains = drains
        self._connections = Connections(audit, now, public_url, drains, webhook_secrets)
        self._autoscaling = (
            AutoscaleCommands(autoscale, audit, now, worker_runs, self._costly, metrics)
            if autoscale
            else None
        )
        # The sandbox's traffic player; None outside the sandbox console.
        self._simulate = simulate
        self._alerts = alerts
        self.dashboards = dashboards  # chart, cost and about; None: not offered
        self._now = now
        self._targets = targets
        self._unlisted_heroku = unlisted_heroku
        self._request_keys = request_keys
        self._locks = locks
        self.reconciler = Reconciler(resolve, audit)
        self._deployments = (
            Deployments(
                resolve,
                audit,
                confirmations,
                locks,
                gate,
                lambda target, verb, force, user: self._judge(target, verb, {}, {}, force, user),
                now,
                secret,
                self._targets,
                own_secrets,
            )
            if locks is not None
            else None
        )

    def run(self, actor: Actor, command: Command, from_home: bool = False) -> Result:
        """Carry out a parsed command for `actor`. `from_home`: asked from App Home, whose
        answers go to the asker's DM, and an approval request to the app's channel."""
        result = self._run(actor, command, from_home)
        # `pin`, `autoscale` and `drain` say what they changed in a plain reply, which had
        # taken `--force` without a word; their refusals say enough.
        plain = (
            isinstance(result, Reply)
            and (result.public or result.made)
            and command.verb in _PLAIN_FORCEABLE
        )
        if command.force and (isinstance(result, _Forceable) or plain):
            return self._with_force_note(actor, command, result)
        return result

    def _with_force_note(
        self, actor: Actor, command: Command, result: _Forceable | Reply
    ) -> Result:
        """`result`, saying so when its `--force` passed no freeze: said here once for every
        verb that takes it, from the guardrails' own verdict, rather than by each verb."""
        try:
            target = self._resolve(self._canonical(command.app or "")).target
        except (UnknownApp, PlatformError):
            return result  # its reply says what is wrong with the app already
        verdict = self._judge(target, command.verb, {}, {}, command.force, actor.user_id)
        note = guardrails.unneeded_force(verdict, command.force)
        if note is None:
            return result
        if isinstance(result, Reply):
            return replace(result, text=f"{result.text} {note}")
        return replace(result, note=f"{result.note} {note}" if result.note else note)

    def _run(self, actor: Actor, command: Command, from_home: bool) -> Result:
        typed = command  # `config unset demo K` is answered with `K` as typed (`_app_typed_last`)
        if command.app is not None:
            command = replace(command, app=self._canonical(command.app))
        if command.verb == "help":
            # Said as the ack says it (handlers/commands.py): the read-only line first.
            note = self._gate.read_only_note(actor.user_id, actor.channel_id)
            text = help_text(command.topic)
            return Reply(f"{note}\n{text}" if note else text)
        # `autoscale APP status` only reads: it needs what `status` needs; `alerts` lists
        # like `history`, across apps or for one.
        verb = "status" if command.verb == "autoscale" and not command.mutating else command.verb
        verb = "history" if verb == "alerts" else verb
        # `config APP` lists names for anyone who may see status; values need `config`.
        verb = "status" if command.verb == "config" and not command.mutating else verb
        try:
            decision = self._gate.decide(actor, verb, command.app)
            if not decision.allowed:
                self._refused(actor, command, decision.reason)
                return Reply(decision.reason)
            if command.verb == "whoami":
                aliases = [target.alias for target in self._targets()]
                return Reply("\n".join(self._gate.summary(actor, aliases)))
            if command.verb == "apps":
                return self._apps(actor, command.target)
            if command.verb == "simulate" and command.mode == "replay":
                return self._replay(command)
            if command.verb in ("about", "cost", "chart") and self.dashboards is None:
                return Reply(f"This bot does not offer `{command.verb}`.")
            if command.verb == "about":
                assert self.dashboards is not None
                return self._about(actor)
            if command.verb == "cost" and command.app is None:
                assert self.dashboards is not None
                every = self.dashboards.targets(self._targets())
                if not every and self._unlisted_heroku:
                    # No fleet to sweep, but every Heroku app is one by its own name.
                    return Reply(
                        "The registry lists no apps, so there is no fleet to price. "
                        "`/deploy cost APP` prices any Heroku app the bot's key can see, "
                        "by its own name."
                    )
                hidden = self._hidden(actor, "cost", lambda: [target.alias for target in every])
                if every and len(hidden) == len(every):
                    return Reply(
                        f"The access rules let you see the cost of no app I manage ({len(every)} "
                        "in all). `/deploy whoami` says what you may do."
                    )
                return self.dashboards.cost([t for t in every if t.alias not in hidden])
            if command.verb == "simulate":
                if self._simulate is None:
                    return Reply(
                        "`/deploy simulate` plays fake traffic, so it runs only in the sandbox "
                        "console: `make demo`."
                    )
                return self._simulate(actor, command)
        except GroupLookupFailed as error:
            return Reply(str(error))
        if command.verb == "history":
            outcomes = HISTORY_FILTERS.get(command.mode or "")
            unsure: list[str] = []
            hidden = (
                self._hidden(actor, "history", self._audit.apps, unsure)
                if command.app is None
                else frozenset()
            )
            entries = self._audit.recent(command.app, command.limit, outcomes, hidden)
            missing = self._no_such_app(command.app) if command.app and not entries else None
            if missing:
                return Reply(missing)
            return History(
                command.app,
                tuple(entries),
                command.mode,
                len(hidden),
                (unsure[0], len(unsure)) if unsure else None,
            )
        if command.verb == "alerts":
            if self._alerts is None:
                return Reply("This bot keeps no alerts.")
            missing = self._no_such_app(command.app) if command.app else None
            if missing:
                return Reply(missing)
            hidden = (
                self._hidden(actor, "history", self._alerts.open_apps)
                if command.app is None
                else frozenset()
            )
            now = self._now()
            return Reply(self._alerts.open_text(command.app, now, lambda a: a not in hidden))
        if command.mutating:
            try:
                claimed = self._claim(actor)
            except Exception as error:
                if not unreachable(error):
                    raise
                # The request key is the first thing a change writes: nothing is done yet.
                log.warning("database unreachable", extra={"error": type(error).__name__})
                return Reply(CHANGED_NOTHING)
            if not claimed:
                log.info("duplicate delivery ignored", extra={"key": actor.request_key})
                return Duplicate(actor.request_key or "")
        assert command.app is not None  # the grammar guarantees an app for every other verb
        try:
            resolved = self._resolve(command.app)
            if (
                not resolved.target.listed
                and (command.verb in _BOOKKEEPING or _autoscale_setting(command))
                and command.mutating
                and command.mode != "off"  # a pin on an app deleted since can still go
            ):
                # These touch no platform before they are kept: for a name outside the
                # registry, one read first, so a typo is not locked, pinned or prompted for.
                resolved.platform.formation(resolved.target.name)
            # `autoscale APP status` and `schedule list` too: they had shown the defaults for a
            # name no app goes by, as if it were one.
            checked = command.verb in _CHECKED or (
                command.verb == "autoscale" and not command.mutating
            )
            missing = self._missing(command.app) if checked else None
            if missing is not None:
                # Answered below as any verb's mistyped app is (`ship main demo` with the
                # order to type), and `ship dmeo`, a change, kept as an `error` row, as a
                # `scale web=2 dmeo` whose formation read found no app is.
                raise missing
            if command.verb == "status":
                return Status(
                    replace(resolved.platform.status(resolved.target.name), app=command.app),
                    lock=self._locks.get(resolved.target.alias)
                    if self._locks is not None
                    else None,
                )
            if command.verb == "restart":
                return self._restart(actor, resolved, command)
            if command.verb == "chart" and self.dashboards is not None:
                return self.dashboards.chart(command.app, command.limit or 24 * 60)
            if command.verb == "cost" and self.dashboards is not None:
                return self.dashboards.cost([resolved.target])
            if command.verb == "metrics" and hasattr(resolved.platform, "traffic"):
                minutes = command.limit or 60
                traffic = resolved.platform.traffic(
                    resolved.target.name, minutes, self._now(), resolved.target.alias
                )
                return PlatformMetrics(command.app, minutes, traffic)
            if command.verb == "metrics":
                return self._metrics_of(command.app, command.limit or 60)
            if command.verb == "drain":
                return self._connections.drain(actor, resolved, command)
            if command.verb == "watch":
                return self._connections.watch(actor, resolved, command)
            if command.verb in DEPLOYMENT_VERBS:
                if self._deployments is None:
                    return Reply("This bot keeps no deploy locks, so it does no deployments.")
                return self._deployments.run(actor, resolved, command)
            if command.verb in ("autoscale", "pin"):
                if self._autoscaling is None:
                    return Reply("This bot has no autoscaler.")
                return self._autoscaling.run(actor, resolved, command)
            return self._scale_or_kill(actor, resolved, command, from_home)
        except PlatformError as error:
            if isinstance(error, NoSuchApp) and (hint := self._app_typed_last(typed)):
                return Reply(hint)
            if isinstance(error, NoSuchApp) and self._value_taken_for_app(command):
                return self._set_on_no_app(actor, command)
            before = command.mutating and not error.audited
            if before:
                # Failed before any change was asked of the platform (reading the formation).
                self._record(actor, command, "error", str(error))
            if error.changed is None:
                return Reply(check_first(error.fact, command.app))
            said = self._said(error, command.verb)
            if before and isinstance(error, ReadFailed):
                # A failed read says what it could not read; a change also says it was not made.
                return Reply(f"Nothing was changed: {said}")
            return Reply(said)
        except (CommandError, UnknownApp, NotSupported) as error:
            if isinstance(error, UnknownApp) and self._value_taken_for_app(command):
                return self._set_on_no_app(actor, command)
            if isinstance(error, UnknownApp):
                return Reply(
                    self._app_typed_last(typed) or with_usage_if_a_number(command, str(error))
                )
            return Reply(str(error))

    def _set_on_no_app(self, actor: Actor, command: Command) -> Reply:
        """`config set K=two words` names no app: the word taken for one may be the rest of
        a value typed without quotes, so neither the answer nor the trail (`history`, which
        the whole team reads) repeats it."""
        names = " ".join(f"{key}=…" for key, _ in command.options)
        reason = (
            f"No app goes by the word after `{names}`. Name an app `/deploy apps` lists, after "
            'the variables; a value with spaces goes in quotes: `config set KEY="…" APP`.'
        )
        self._record(actor, replace(command, app="…"), "error", reason)
        return Reply(reason)

    def _app_typed_last(self, command: Command) -> str | None:
        """`logs web demo` once no app is called `web`: the order to type, when the word
        after it names an app; otherwise None, and the first word is the one blamed."""
        return self._order_to_type(app_typed_last(command))

    def _order_to_type(self, found: tuple[str, str] | None) -> str | None:
        """`app_typed_last`'s answer, when the word it found names an app."""
        if found is None or self._no_such_app(found[0]) is not None:
            return None
        return found[1]

    def _no_such_app(self, app: str) -> str | None:
        """Why `app` names no app, in words, or None (`_missing`)."""
        error = self._missing(app)
        if isinstance(error, NoSuchApp):
            return self._said(error)
        return None if error is None else str(error)

    def _missing(self, app: str) -> NoSuchApp | UnknownApp | None:
        """Why `app` names no app, or None: it is listed, the bot stored something of it (an
        app deleted or taken out of the registry since keeps what was kept readable), it
        exists, or the platform cannot say now. Only a name outside the registry that
        nothing stored knows costs a read."""
        try:
            resolved = self._resolve(app)
            if not resolved.target.listed and not self._stored(app):
                resolved.platform.formation(resolved.target.name)
        except UnknownApp as error:
            return None if self._stored(app) else error  # taken out of the registry
        except NoSuchApp as error:
            return error
        except PlatformError:
            return None  # unreachable, throttled, no key: the trail is still worth showing
        return None

    def _hidden(
        self,
        actor: Actor,
        verb: str | tuple[str, ...],
        apps: Callable[[], Iterable[str]],
        unsure: list[str] | None = None,
    ) -> frozenset[str]:
        """Which of `apps()` a rule keeps `verb` (read-only: open unless a rule denies it;
        several verbs: any of them) from showing `actor`: a listing across apps leaves them
        out, as naming one of them is refused. Without a rule denying one of the verbs, no app
        is hidden and none is read. `unsure` gets why, for each app hidden only because
        Slack could not say who is in a group."""
        verbs = (verb,) if isinstance(verb, str) else verb
        denied = [
            v
            for v in verbs
            if any(r.effect == "deny" and ({v, "*"} & r.verbs) for r in self._gate.rules)
        ]
        if not denied:
            return frozenset()
        hidden = set()
        for app in set(apps()):
            try:
                if not all(self._gate.decide(actor, v, app).allowed for v in denied):
                    hidden.add(app)
            except GroupLookupFailed as error:
                hidden.add(app)  # Slack cannot say which groups they are in: show less
                if unsure is not None:
                    unsure.append(str(error))
        return frozenset(hidden)

    def _about(self, actor: Actor) -> About:
        """The bot's health, naming no drain of an app the rules keep from `actor` (only how
        many). One rule for `/deploy about` and App Home's header, which show the same
        drains: a rule denying `about` or `status` for the app hides its drain in both."""
        assert self.dashboards is not None
        about = self.dashboards.health.about()
        drained = [app for app, _ in about.drains]
        hidden = self._hidden(actor, ("about", "status"), lambda: drained)
        if not hidden:
            return about
        shown = tuple(drain for drain in about.drains if drain[0] not in hidden)
        return replace(about, drains=shown, hidden=len(hidden))

    def _stored(self, app: str) -> bool:
        """Whether the bot's own tables show `app` was there: a change made to it, its log
        drain, its traffic or its alerts (a failed or refused request proves nothing)."""
        return bool(
            self._audit.recent(app, 1, HISTORY_FILTERS["done"])
            or (self._drains is not None and self._drains.get(app))
            or (self._metrics is not None and self._metrics.has(app))
            or (self._alerts is not None and self._alerts.any_of(app))
        )

    def _said(self, error: PlatformError, verb: str | None = None) -> str:
        """The error in words; a name typed outside the registry that the platform does not
        know gets the known apps' names closest to it (the registry's, and those the Heroku
        key can see: one more read, only now), those `verb` works on first."""
        if not isinstance(error, NoSuchApp):
            return str(error)
        hint = self._closest(error.app, verb)
        return f"{error.fact} Did you mean {hint}?" if hint else str(error)

    def _closest(self, app: str, verb: str | None = None) -> str | None:
        """The known apps' names closest to `app`, typed outside the registry, in words; None
        when none is close, or when `app` is the registry's (its entry is what is wrong).
        For a Heroku-only `verb`, the Heroku apps close to it, if any is."""
        seen: tuple[str, ...] = ()
        try:
            resolved = self._resolve(app)
            if resolved.target.listed:
                return None
            # Only Heroku takes names outside the registry, so only it lists them.
            seen = getattr(resolved.platform, "app_names", tuple)()
        except (PlatformError, UnknownApp):
            pass  # the registry's names still help
        known = {name: self._canonical(name) for name in seen}
        heroku = set(known.values())
        for target in self._targets():
            known[target.alias] = known[target.name] = target.alias
            if target.platform == "heroku":
                heroku.add(target.alias)
        preferred = heroku if verb in HEROKU_ONLY_VERBS else None
        return names.suggest_app(app, known, preferred=preferred)

    def _value_taken_for_app(self, command: Command) -> bool:
        """Whether a `config set` whose app names nothing may have taken the rest of a value
        typed without quotes for its app: no registered app, and none close to it."""
        if command.verb != "config" or command.mode != "set" or command.app is None:
            return False
        registered = {target.alias for target in self._targets()}
        return command.app not in registered and self._closest(command.app) is None

    def _record(self, actor: Actor, command: Command, outcome: str, reason: str) -> None:
        # The autoscaler's own refusals are in its decisions, every tick: not audit rows.
        if actor.source == AUTOSCALER or command.app is None:
            return
        self._audit.record(actor, command.verb, command.app, command.text(), outcome, reason)

    def _refused(self, actor: Actor, command: Command, reason: str) -> None:
        if command.mutating:
            self._record(actor, command, "refused", reason)

    def home(self, actor: Actor, page: int = 0, per_page: int = 15) -> Home | Reply:
        """App Home: the bot's health and page `page` of the apps `actor` may see."""
        if self.dashboards is None:
            return Reply("This bot does not offer App Home.")
        targets = self.dashboards.targets(self._targets())
        unsure: list[str] = []
        hidden = self._hidden(actor, "status", lambda: [target.alias for target in targets], unsure)
        visible = [target for target in targets if target.alias not in hidden]
        pages = max(1, -(-len(visible) // per_page))
        page = min(max(0, page), pages - 1)
        shown = visible[page * per_page : (page + 1) * per_page]
        return Home(
            about=self._about(actor),
            cards=self.dashboards.cards(shown),
            page=page,
            pages=pages,
            total=len(visible),
            hidden=len(targets) - len(visible),
            unsure=(unsure[0], len(unsure)) if unsure else None,
            may={target.alias: self._may(actor, HOME_CHANGES, target.alias) for target in shown},
            unlisted_heroku=self._unlisted_heroku,
        )

    def _may(self, actor: Actor, verbs: tuple[str, ...], app: str | None) -> frozenset[str]:
        """Which of `verbs` the rules let `actor` run on `app`: App Home offers only those
        buttons. When Slack cannot say who is in a group, the button stays, and its click
        says so."""
        allowed = set()
        for verb in verbs:
            try:
                if self._gate.decide(actor, verb, app).allowed:
                    allowed.add(verb)
            except GroupLookupFailed:
                allowed.add(verb)
        return frozenset(allowed)

    def _claim(self, actor: Actor) -> bool:
        if self._request_keys is None or actor.request_key is None:
            return True
        return self._request_keys.claim(actor.request_key, self._now())

    def follow_up(self, result: Changed | Restarted | Deployed, stopping: Event) -> Settled:
        """Wait for a slow change to settle and complete its audit row with how it ended."""
        resolved = self._resolve(result.app)
        platform: Any = resolved.platform
        name = resolved.target.name

        def wait() -> Settled:
            if isinstance(result, Deployed) and result.build_id:
                return platform.wait_for_build(
                    name, result.build_id, FOLLOW_UP_TIMEOUT, stopping, result.app
                )
            if isinstance(result, Deployed) and result.release_id:
                return platform.wait_for_release(
                    name, result.release_id, FOLLOW_UP_TIMEOUT, stopping, result.app
                )
            if isinstance(result, Deployed) and result.promotion_id:
                return platform.wait_for_promotion(
                    name, result.promotion_id, FOLLOW_UP_TIMEOUT, stopping, result.app
                )
            if isinstance(result, Deployed) and result.verb == "run":
                return platform.wait_for_run(
                    name, result.mode or "", FOLLOW_UP_TIMEOUT, stopping, result.app
                )
            return platform.wait_until_settled(name, FOLLOW_UP_TIMEOUT, stopping, result.app)

        # A poll that fails (a 5xx, a 429) says nothing of the change itself: the wait starts
        # again from where things stand, and only when every try fails is the end unknown.
        for attempt in range(1, FOLLOW_UP_TRIES + 1):
            try:
                settled = wait()
                break
            except PlatformError as error:
                settled = Settled(
                    ok=False,
                    summary=f"I could not follow it to the end: {error} Check "
                    f"`/deploy status {result.app}` to see how it went.",
                    unknown=True,
                )
                if attempt == FOLLOW_UP_TRIES or stopping.wait(FOLLOW_UP_PAUSE_S):
                    break
        if stopping.is_set() and not settled.ok:
            settled = Settled(
                ok=False,
                summary=f"{settled.summary} The bot is restarting, so this thread ends here: "
                f"check `/deploy status {result.app}` in a few minutes.",
                # Still under way when the watching stopped, not failed: left `unknown` for
                # the worker's reconcile pass to read back, where `error` was final.
                unknown=True,
            )
        promoted = result.promotions if isinstance(result, Deployed) else ()
        if result.audit_id is not None and promoted and settled.ok:
            # A promotion left unknown while pending ended: each next stage took it.
            self._audit.finish(result.audit_id, "ok", after={p.app: "succeeded" for p in promoted})
        if result.audit_id is not None and not settled.ok:
            # Output lines (a build's, a run's) may hold anything: the audit keeps the summary.
            events = () if settled.output else settled.events
            detail = "; ".join((settled.summary, *events))
            outcome = "unknown" if settled.unknown else "error"
            self._audit.finish(result.audit_id, outcome, error=detail)
        return settled

    def _apps(self, actor: Actor, word: str | None) -> AppList:
        every = tuple(self._targets())
        targets = every
        if word is not None:
            # A thousand apps do not fit one message: a word picks the few wanted.
            targets = tuple(t for t in every if word in t.alias.lower() or word in t.name.lower())
        return AppList(
            apps=targets,
            # Said as App Home offers its buttons: Slack failing to say who is in a group
            # keeps nothing from a listing that only reads.
            may_change=any(
                self._may(actor, ("scale",), app) for app in [t.alias for t in targets] or [None]
            ),
            unlisted_heroku=self._unlisted_heroku and word is None,
            matching=word,
            of=len(every),
        )

    def confirm(self, actor: Actor, confirmation_id: str) -> Result:
        """Confirm (the requester) or approve (someone else): act once, however many
        clicks arrive, after judging the change again as it stands now."""
        pending = self._confirmations.get(confirmation_id)
        if pending is None:
            return Reply("I have no record of that request. Run the command again.")
        verb = pending.command.split()[0]
        refusal = self._may_decide(actor, pending, verb)
        if refusal:
            # In the trail like every refusal: who clicked, on what.
            self._audit.record(actor, verb, pending.app, pending.command, "refused", refusal)
            return Reply(refusal)
        now = self._now()
        if not self._confirmations.decide(confirmation_id, actor.user_id, "confirmed", now):
            return self._already_decided(confirmation_id, now)
        requester = replace(actor, user_id=pending.user_id, request_key=None)
        if verb in ("pin", "autoscale") and self._autoscaling is not None:
            # The prompt showed the cost of a count the autoscaler will hold (a pin, a min),
            # not a change made now: the command is carried out as asked, from here.
            try:
                resolved = self._resolve(pending.app)
                return self._autoscaling.run(
                    requester, resolved, parse(pending.command), confirmer=actor
                )
            except (PlatformError, UnknownApp) as error:
                return self._reopened(confirmation_id, actor, error)
        if verb in CONFIRMED_VERBS and self._deployments is not None:
            try:
                return self._deployments.confirmed(requester, actor, pending)
            except PlatformError as error:
                # Refused outright, nothing changed: the next click may try again (config's
                # values were wiped when the click was decided: the command must come again).
                # One that may have landed is not offered again: it could be done twice.
                if error.changed is False and verb == "config":
                    return Reply(f"{error} Nothing was changed; send the command again to retry.")
                if error.changed is False:
                    return self._reopened(confirmation_id, actor, error)
                return Reply(str(error))
            except (UnknownApp, NotSupported) as error:
                return Reply(str(error))
        targets = {ptype: (qty, size) for ptype, (qty, size) in pending.targets.items()}
        try:
            resolved = self._resolve(pending.app)
            before = resolved.platform.formation(resolved.target.name)
        except (PlatformError, UnknownApp) as error:
            # Nothing was asked of the platform yet: give the prompt back, so the next click
            # acts instead of saying "already confirmed" about a change nobody made.
            return self._reopened(confirmation_id, actor, error)
        # The prompt showed current → target and its cost: if what runs moved since (the
        # autoscaler, someone else), a Confirm would act on what nobody was shown (stop 3
        # workers where 1 was asked about). Said, as a rollback does when its release moved.
        moved = _moved(pending.before, formation_map(before), targets)
        if moved:
            reason = (
                f"`{pending.app}`'s {moved} since it was asked. Run "
                f"`/deploy {pending.command}` again to see what it would do now."
            )
            self._audit.record(requester, verb, pending.app, pending.command, "refused", reason)
            return Reply(f"Nothing was changed: {reason}", public=True)
        # A freeze may have begun since the prompt was shown.
        verdict = self._judge(
            resolved.target,
            verb,
            formation_map(before),
            targets,
            pending.force_reason,
            pending.user_id,
        )
        if verdict.needs_approval and not pending.approval_required:
            # The formation moved since the prompt (a worker type scaled up meanwhile): the
            # change is now a protected one, which a Confirm by the asker alone may not make.
            verdict = replace(
                verdict,
                outcome="refused",
                reason=f"{verdict.reason} Ask again: `/deploy {pending.command}` opens an "
                "approval request.",
            )
        if verdict.refused:
            self._audit.record(
                requester, verb, pending.app, pending.command, "refused", verdict.reason
            )
            return Reply(f"Nothing was changed: {verdict.reason}", public=True)
        try:
            return self._apply(
                requester,
                resolved,
                pending.app,
                verb,
                pending.command,
                before,
                targets,
                verdict,
                confirmer=actor,
            )
        except PlatformError as error:
            # Refused outright (throttled, 4xx): nothing changed, so the prompt stays usable.
            return self._reopened(confirmation_id, actor, error)

    def _reopened(
        self, confirmation_id: str, actor: Actor, error: PlatformError | UnknownApp
    ) -> Reply:
        if self._confirmations.reopen(confirmation_id, actor.user_id, self._now()) == "cancelled":
            pending = self._confirmations.get(confirmation_id)
            assert pending is not None and pending.decided_by is not None
            self._record_cancel(actor, pending, pending.decided_by)
            return Reply(
                f"{error} Nothing was changed, and <@{pending.decided_by}> cancelled "
                f"{code(pending.command)} meanwhile, so it stays cancelled.",
                public=True,
            )
        return Reply(f"{error} Nothing was changed; the request stays open until it expires.")

    def _may_decide(self, actor: Actor, pending: Pending, verb: str) -> str | None:
        """Why `actor` may not click Confirm/Approve on `pending`, or None if they may."""
        try:
            if pending.approval_required:
                if actor.user_id == pending.user_id:
                    return (
                        f"An approval must come from someone other than <@{pending.user_id}>, "
                        f"who asked. Ask another person who may approve changes to `{pending.app}`."
                    )
                decision = self._gate.decide(actor, "approve", pending.app)
                if not decision.allowed and decision.reason.startswith("You may not"):
                    return decision.reason  # it names the approval and the app already
                if not decision.allowed:
                    return f"You may not approve changes to `{pending.app}`. {decision.reason}"
                # The asker's own right, judged again: it may have been taken away (a rule,
                # a user group) since they asked, and the change is made in their name, in
                # the channel they asked in. Not their organisation: the command judged it
                # with the Enterprise Grid org it named, which the prompt does not keep, and
                # without it a colleague from another of the org's workspaces read as a
                # partner's member.
                requester = replace(
                    actor,
                    user_id=pending.user_id,
                    team_id=None,
                    enterprise_id=None,
                    channel_id=pending.channel_id or actor.channel_id,
                    request_key=None,
                )
                asked = self._gate.decide(requester, verb, pending.app)
                if not asked.allowed:
                    return (
                        f"<@{pending.user_id}>, who asked, may no longer {verb} `{pending.app}`, "
                        f"so it cannot be approved. {asked.reason}"
                    )
                return None
            if pending.user_id != actor.user_id:
                return f"Only <@{pending.user_id}>, who asked, can confirm this."
            decision = self._gate.decide(actor, verb, pending.app)
            return None if decision.allowed else decision.reason
        except GroupLookupFailed as error:
            return str(error)

    def cancel(self, actor: Actor, confirmation_id: str) -> Result:
        pending = self._confirmations.get(confirmation_id)
        if pending is None:
            return Reply("I have no record of that request.")
        if pending.user_id != actor.user_id:
            # Someone who may approve it may decline it too, whatever the asker's own right.
            try:
                may = (
                    pending.approval_required
                    and self._gate.decide(actor, "approve", pending.app).allowed
                )
            except GroupLookupFailed as error:
                return Reply(str(error))
            if not may:
                return Reply(f"Only <@{pending.user_id}>, who asked, can cancel this.")
        now = self._now()
        if not self._confirmations.decide(confirmation_id, actor.user_id, "cancelled", now):
            if self._confirmations.ask_cancel(confirmation_id, actor.user_id):
                # Its Confirm may still be under way: if the platform refuses it, the
                # cancel stands (`_reopened` says so in the channel) instead of the prompt
                # opening again. Said as before here: the change may well be made already.
                return self._already_decided(confirmation_id, now)
            # Opened again meanwhile by a refused Confirm: cancel it now.
            if not self._confirmations.decide(confirmation_id, actor.user_id, "cancelled", now):
                return self._already_decided(confirmation_id, now)
        self._record_cancel(actor, pending, actor.user_id)
        return Reply(
            f"<@{actor.user_id}> cancelled {code(pending.command)}. Nothing was changed.",
            public=True,
        )

    def _record_cancel(self, actor: Actor, pending: Pending, by: str) -> None:
        """The cancelled request in the trail, in its asker's name; `actor` clicked."""
        self._audit.record(
            replace(actor, user_id=pending.user_id),
            verb=pending.command.split()[0],
            app=pending.app,
            command=pending.command,
            outcome="cancelled",
            reason=f"Cancelled by <@{by}>.",
            requested=audited_targets(pending),
        )

    def _already_decided(self, confirmation_id: str, now: datetime) -> Reply:
        # Read by the expiry itself: it wipes a config prompt's values, key names included.
        if (expired := self._confirmations.expire_one(confirmation_id, now)) is not None:
            record_expiry(self._audit, expired[0])
        pending = self._confirmations.get(confirmation_id)
        assert pending is not None
        if pending.state == "confirmed":
            # Confirm is the asker's word, approve another person's.
            confirmed = "approved" if pending.approval_required else "confirmed"
            decided = pending.decided_at
            if (
                decided is not None
                and now - decided >= CUT_OFF_AFTER
                and not self._audit.recorded_since(pending.app, decided)
            ):
                # Killed between the click and the change's first row (a restart): nothing
                # was done, and "already confirmed" alone had read as if it had been.
                return Reply(
                    f"{code(pending.command)} was {confirmed} by <@{pending.decided_by}> at "
                    f"{moment(decided, now)}, but nothing was recorded after it: the bot may "
                    f"have restarted mid-way. {code('/deploy status ' + pending.app)} shows "
                    "what runs; send the command again if it is still needed."
                )
            return Reply(
                f"{code(pending.command)} was already {confirmed} by <@{pending.decided_by}>."
            )
        if pending.state == "cancelled":
            return Reply(f"{code(pending.command)} was cancelled; nothing was changed.")
        # Public: the expired prompt is replaced, so nobody else tries its buttons.
        return Reply(expired_text(pending), public=True)

    def _judge(
        self,
        target: Target,
        verb: str,
        before: dict[str, tuple[int, str]],
        targets: dict[str, tuple[int, str | None]],
        force: str | None,
        user_id: str,
    ) -> guardrails.Verdict:
        return guardrails.check(
            target.guardrails,
            verb,
            before,
            targets,
            self._now(),
            force_reason=force,
            is_admin=self._gate.is_admin(user_id),
            self_app=target.platform == "heroku" and target.name == self._own_app,
            app=target.alias,
        )

    def _replay(self, command: Command) -> Result:
        """`/deploy simulate APP 7d`: the app's stored traffic through the simulator."""
        if self._metrics is None or self._autoscaling is None:
            return Reply("This bot keeps no traffic metrics.")
        app = command.app or ""
        # Checked as `_CHECKED`'s verbs are: a typo would read as an app with no traffic.
        missing = self._no_such_app(app)
        if missing:
            return Reply(missing)
        target = self._resolve(app).target
        since = timedelta(minutes=command.limit or 7 * 24 * 60)
        drained = self._drains is not None and self._drains.get(app) is not None
        return self._autoscaling.replay(app, target, self._metrics, since, drained)

    def _metrics_of(self, app: str, minutes: int) -> Result:
        if self._metrics is None or self._drains is None:
            return Reply("This bot keeps no traffic metrics.")
        now = self._now().timestamp()
        windows = self._metrics.windows(app, int(now) - minutes * 60 - 60, int(now))
        summary = summarize(windows, now, minutes)
        rates, p95s = series(windows, summary)
        drained = self._drains.get(app) is not None
        return Metrics(app, minutes, summary, drained, tuple(rates), tuple(p95s))

    def _restart(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        app = command.app or ""
        if resolved.target.platform == "beanstalk" and command.target not in (None, "web"):
            # Said here, by the alias typed: the platform knows only the environment's name.
            return Reply(RESTART_WHOLE.format(app=app, target=command.target))
        # `restart worker demo`: asked before the audit row is opened, as `rollback v2 demo`
        # is (its releases read first), since a command only typed in the wrong order is no
        # change that failed. The shape is checked first: only it costs `_missing` a read.
        found = app_typed_last(command)
        if found and self._missing(app) is not None and (hint := self._order_to_type(found)):
            return Reply(hint)
        verdict = self._judge(resolved.target, "restart", {}, {}, command.force, actor.user_id)
        if verdict.refused:
            self._refused(actor, command, verdict.reason)
            return Reply(verdict.reason)
        entry = self._audit.start(
            actor, "restart", app, command.text(), None, {"target": command.target or "all"}
        )
        platform = resolved.platform
        try:
            platform.restart(resolved.target.name, command.target)
        except PlatformError as error:
            self._audit.finish(entry, error.outcome, error=str(error))
            if error.changed is None:
                # Nothing in the formation shows a restart: say so rather than guess.
                return Reply(
                    f"{error.fact} Restarting twice does no harm, but check "
                    f"`/deploy status {app}` (its {platform.unit}s and their state) before "
                    "asking again.",
                    public=True,
                )
            return Reply(self._said(error))
        except Exception as error:
            self._audit.finish(entry, "error", error=type(error).__name__)
            raise
        self._audit.finish(entry, "ok")
        return Restarted(
            app,
            command.target,
            actor.user_id,
            entry,
            platform.settles_slowly(),
            platform.unit,
            _break_glass(verdict, actor.user_id, command.text(), command.force, resolved.target),
        )

    def _scale_or_kill(
        self, actor: Actor, resolved: Resolved, command: Command, from_home: bool = False
    ) -> Result:
        app = command.app or ""
        problem = _check_sizes(resolved.target, command)
        if problem:
            return Reply(problem)
        before = resolved.platform.formation(resolved.target.name)
        current = formation_map(before)
        beanstalk = app if resolved.target.platform == "beanstalk" else None
        if command.verb == "kill":
            targets = plan_kill(current, command.target, beanstalk, app)
        else:
            targets = plan_scale(command.changes, current, beanstalk, app)
        if not changing(current, targets):
            return Reply(f"`{app}` already runs that formation; nothing to change.")
        verdict = self._judge(
            resolved.target, command.verb, current, targets, command.force, actor.user_id
        )
        if verdict.refused:
            self._refused(actor, command, verdict.reason)
            return Reply(verdict.reason)
        cost = costs.monthly_change(resolved.target.platform, current, _after(current, targets))
        # Taking a type to zero is a kill and is asked first, unless the autoscaler does it:
        # a person allowed that with `min=0` in an audited `/deploy autoscale`.
        stops = stops_dynos(current, targets) and actor.source != AUTOSCALER
        if (
            command.verb == "kill"
            or stops
            or verdict.needs_approval
            or (actor.source != AUTOSCALER and self._why_ask(resolved, cost) is not None)
        ):
            if actor.source == AUTOSCALER:
                # Only a person can ask for that approval: a prompt opened every tick would
                # expire unanswered into the history, four a minute.
                return Reply(
                    f"{verdict.reason} To ask for it, scale by hand: `/deploy {command.text()}`."
                )
            if verdict.needs_approval and from_home and resolved.target.channel is None:
                # App Home asks in the app's channel; without one the request went to the
                # asker's DM, where nobody who could approve it saw it, and expired there.
                refusal = (
                    f"{verdict.reason} From App Home it is asked in the app's channel, and "
                    f"{code(app)} has none: type `/deploy {command.text()}` in a channel where "
                    f"someone who may approve will see it, or add `channel:` to {code(app)} in "
                    "the registry (docs/registry.md)."
                )
                self._refused(actor, command, refusal)
                return Reply(refusal)
            # A change the platform can never make (a single-instance environment's kill)
            # is said now, not after a Confirm that could only be refused.
            resolved.platform.refuse_scale(resolved.target.name, targets)
            return self._ask_first(actor, resolved, command, current, targets, verdict, cost)
        return self._apply(
            actor, resolved, app, command.verb, command.text(), before, targets, verdict
        )

    def _costly(
        self,
        actor: Actor,
        resolved: Resolved,
        command: Command,
        targets: dict[str, tuple[int, str | None]],
    ) -> Result | None:
        """The prompt for a change the autoscaler makes for a person (a pin), when it
        raises the monthly cost past the app's threshold, as `scale` to it would; else None."""
        current = formation_map(resolved.platform.formation(resolved.target.name))
        cost = costs.monthly_change(resolved.target.platform, current, _after(current, targets))
        if self._why_ask(resolved, cost) is None:
            return None
        allowed = guardrails.Verdict("allowed")
        return self._ask_first(actor, resolved, command, current, targets, allowed, cost)

    def _ask_first(
        self,
        actor: Actor,
        resolved: Resolved,
        command: Command,
        current: dict[str, tuple[int, str]],
        targets: dict[str, tuple[int, str | None]],
        verdict: guardrails.Verdict,
        cost: costs.CostChange,
    ) -> NeedsConfirmation | Reply:
        app = command.app or ""
        if verdict.needs_approval:
            waiting = self._awaiting_approval(actor, app, command.text())
            if waiting is not None:
                return waiting
        else:
            again = asked_again(
                self._confirmations, actor.user_id, app, command.text(), self._now()
            )
            if again is not None:
                return again
        pending = self._confirmations.create(
            actor,
            app,
            command.text(),
            current,
            dict(targets),
            self._now(),
            approval_required=verdict.needs_approval,
            force_reason=command.force if verdict.forced else None,
        )
        return NeedsConfirmation(
            id=pending.id,
            app=app,
            verb=command.verb,
            user_id=actor.user_id,
            before=current,
            targets=dict(targets),
            expires_at=pending.expires_at,
            unit=resolved.platform.unit,
            approval=verdict.reason if verdict.needs_approval else None,
            cost=costs.describe(cost),
            costly=self._why_ask(resolved, cost),
            note=_past_limits(resolved, command, current, targets),
        )

    def _awaiting_approval(self, actor: Actor, app: str, text: str) -> Reply | None:
        """Said instead of a second approval request for a change one already waits for:
        approvers had two prompts to answer, and the one left over expired into the trail."""
        now = self._now()
        asked = self._confirmations.awaiting_approval(app, text, now)
        if asked is None:
            return None
        when = moment(asked.created_at or now, now)
        until = moment(asked.expires_at, now)
        if asked.user_id == actor.user_id:
            return Reply(
                f"You already asked for {code(text)} at {when}, and it is waiting for a second "
                f"person's approval until {until}: ask someone who may approve it to press "
                "Approve on that request, or Cancel it."
            )
        return Reply(
            f"<@{asked.user_id}> already asked for {code(text)} at {when}, and it is waiting "
            f"for a second person's approval until {until}. Approve or Cancel that request "
            "instead of asking again."
        )

    @staticmethod
    def _why_ask(resolved: Resolved, cost: costs.CostChange) -> str | None:
        return costs.why_ask(cost, resolved.target.confirm_above_usd)

    def _apply(
        self,
        actor: Actor,
        resolved: Resolved,
        app: str,
        verb: str,
        text: str,
        before: tuple[Formation, ...],
        targets: dict[str, tuple[int, str | None]],
        verdict: guardrails.Verdict,
        confirmer: Actor | None = None,
    ) -> Result:
        entry = self._audit.start(
            actor,
            verb,
            app,
            text,
            formation_json(before),
            {t: list(v) for t, v in targets.items()},
            confirmed_by=confirmer.user_id if confirmer else None,
        )
        platform = resolved.platform
        note = None
        try:
            after = platform.scale(resolved.target.name, targets)
        except PlatformError as error:
            if error.changed is not None:
                self._audit.finish(entry, error.outcome, error=str(error))
                error.audited = True
                raise
            # The request went out and no answer came back: read the formation back and say
            # what runs now, never "not changed, try again" (`web+1` would apply twice).
            requested = {t: list(v) for t, v in targets.items()}
            found = self.reconciler.read_back(
                resolved, formation_json(before), requested, final=False
            )
            seen = found if found.formation is not None else None
            made, note = lost_note(error, seen, "the formation", f"`/deploy status {app}`")
            now = formation_json(seen.formation) if seen is not None else None
            record_lost(self._audit, entry, note, now, made=made)
            if not made or found.formation is None:
                return unsure(actor.user_id, text, note)
            after = found.formation
        except Exception as error:
            self._audit.finish(entry, "error", error=type(error).__name__)
            raise
        else:
            self._audit.finish(entry, "ok", after=formation_json(after))
        log.info("formation changed", extra={"app": app, "verb": verb, "user": actor.user_id})
        if verb == "scale" and actor.source != AUTOSCALER and self._autoscaling is not None:
            # The autoscaler's next tick would move it again, unsaid until its notice.
            moves = self._autoscaling.moves_again(app, {t: q for t, (q, _) in targets.items()})
            note = f"{note} {moves}" if note and moves else note or moves
        return Changed(
            app=app,
            verb=verb,
            user_id=actor.user_id,
            before=before,
            after=after,
            confirmed_by=confirmer.user_id if confirmer else None,
            audit_id=entry,
            slow=platform.settles_slowly(),
            break_glass=_break_glass(
                verdict, actor.user_id, text, _force_of(text), resolved.target
            ),
            note=note,
        )


# What a command that takes `--force` answers when it acted or asked first.
_Forceable = Changed | Restarted | Deployed | NeedsConfirmation | DeployPrompt
_PLAIN_FORCEABLE = frozenset({"pin", "autoscale", "drain"})


def _moved(
    shown: dict[str, Any], now: dict[str, tuple[int, str]], targets: dict[str, Any]
) -> str | None:
    """`worker went from 1 to 3`: how the asked-about types moved since the prompt showed
    them (`shown`, its `before`), or None when they run as shown."""
    changes = []
    for ptype in targets:
        was = int(shown[ptype][0]) if ptype in shown else 0
        is_now = now[ptype][0] if ptype in now else 0
        if was != is_now:
            changes.append(f"{escape(ptype)} went from {was} to {is_now}")
    return ", ".join(changes) or None


# `policies.commands.HISTORY_FILTERS` words → the audit outcomes they show.
HISTORY_FILTERS: dict[str, frozenset[str]] = {
    "refused": frozenset({"refused"}),
    "cancelled": frozenset({"cancelled"}),
    "expired": frozenset({"expired"}),
    "failed": frozenset({"error", "not-applied"}),
    "unknown": frozenset({"unknown", "pending"}),
    "done": frozenset({"ok"}),
}


def record_expiry(audit: AuditLog, pending: Pending) -> None:
    """An expired prompt is an audit row too: asked for, never decided."""
    audit.record(
        Actor(pending.user_id, pending.team_id, pending.channel_id),
        pending.command.split()[0],
        pending.app,
        pending.command,
        "expired",
        f"Nobody answered the prompt by {pending.expires_at:%H:%M} UTC.",
        audited_targets(pending),
    )


def _after(
    current: dict[str, tuple[int, str]], targets: dict[str, tuple[int, str | None]]
) -> dict[str, tuple[int, str]]:
    return {
        **current,
        **{t: (qty, size or current.get(t, (0, ""))[1]) for t, (qty, size) in targets.items()},
    }


def _break_glass(
    verdict: guardrails.Verdict, user_id: str, command: str, force: str | None, target: Target
) -> BreakGlass | None:
    if not verdict.forced:
        return None
    return BreakGlass(user_id, command, verdict.freeze_reason or "", force or "", target.channel)


def _force_of(command_text: str) -> str | None:
    # The canonical text keeps `--force "reason"`; parsing it again recovers the reason.
    try:
        return parse(command_text).force
    except CommandError:
        return None


def _check_sizes(target: Target, command: Command) -> str | None:
    for change in command.changes:
        if change.size:
            problem = check_size(target.platform, change.size)
            if problem:
                return problem
    return None


def _past_limits(
    resolved: Resolved,
    command: Command,
    current: dict[str, tuple[int, str]],
    targets: dict[str, tuple[int, str | None]],
) -> str | None:
    """What the prompt says of a count past Heroku's default limit at its size: the
    confirmer should know Heroku may refuse what they are about to pay for."""
    if resolved.target.platform != "heroku":
        return None
    stepwise = command.verb != "scale"  # a pin or min is reached by the autoscaler's steps
    said = []
    for ptype, (count, size) in sorted(targets.items()):
        running = size or current.get(ptype, (0, ""))[1]
        asked = f"{ptype}={count}"
        past = past_heroku_limit(command.app or "", ptype, running, count, asked, stepwise)
        if past is not None:
            said.append(past.text)
    return " ".join(said) or None
