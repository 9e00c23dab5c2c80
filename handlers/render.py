"""Results of the actions path as Slack messages (Block Kit plus a plain-text fallback)."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bot.actions.gate import AUTOSCALER
from bot.actions.results import (
    CANNOT_ANSWER,
    About,
    AppList,
    BreakGlass,
    Builds,
    Changed,
    ConfigVars,
    CostReport,
    Deployed,
    DeployPrompt,
    Digest,
    History,
    Logs,
    Metrics,
    NeedsConfirmation,
    PlatformMetrics,
    Releases,
    Reply,
    Restarted,
    Result,
    Status,
    no_traffic_hint,
)
from bot.metrics.aggregate import sparkline
from bot.platforms.base import Build, Formation, Promotion, Release, Settled
from bot.store.db import unreachable
from bot.store.heartbeats import Undelivered
from handlers.charts import chart_button, window_for
from policies import costs
from policies.commands import changing, is_dyno_name, stops_dynos
from policies.digest import day_words, duration, hour_label
from policies.guardrails import lock_holds_back
from policies.redact import mask
from policies.sizes import unit_of
from policies.slack_errors import AUTH_ERRORS, UNDELIVERED_ADVICE
from policies.slack_text import channel as channel_link
from policies.slack_text import (
    clip,
    code,
    cut,
    day_and_clock,
    escape,
    listed,
    more_note,
    one_line,
    uncoloured,
)
from policies.slack_text import shown as clipped  # `shown` names a local below

log = logging.getLogger(__name__)

CONFIRM_ACTION = "deploybot_confirm"
CANCEL_ACTION = "deploybot_cancel"
# A prompt's buttons: one of the first three (or "Kill APP"), and Cancel. The console
# knows a label typed with no prompt open by these.
CONFIRM, APPROVE, ROLL_BACK, CANCEL = "Confirm", "Approve", "Roll back", "Cancel"
MAINTENANCE_ON = "Turn maintenance on"
PROMPT_LABELS = (CONFIRM, APPROVE, ROLL_BACK, MAINTENANCE_ON, CANCEL)

Message = dict[str, Any]


def message(result: Result, now: datetime | None = None) -> Message:
    """A `respond()`/`chat.postMessage` payload for any result."""
    now = now or datetime.now(UTC)
    if isinstance(result, Reply):
        return _text(result.text, public=result.public, more=result.more)
    if isinstance(result, Changed):
        return _changed(result)
    if isinstance(result, Restarted):
        text = f"<@{result.user_id}> restarted {_restart_target(result)}."
        return _text(f"{text} {result.note}" if result.note else text, public=True)
    if isinstance(result, Status):
        return _status(result, now)
    if isinstance(result, AppList):
        return _app_list(result)
    if isinstance(result, History):
        return _history(result)
    if isinstance(result, Metrics):
        return _metrics(result)
    if isinstance(result, PlatformMetrics):
        return _platform_metrics(result)
    if isinstance(result, Releases):
        return _releases(result, now)
    if isinstance(result, Builds):
        return _builds(result, now)
    if isinstance(result, DeployPrompt):
        return _deploy_prompt(result)
    if isinstance(result, Deployed):
        return _deployed(result)
    if isinstance(result, ConfigVars):
        return _config_vars(result)
    if isinstance(result, Logs):
        return _logs(result)
    if isinstance(result, CostReport):
        more = _MORE_FLEET if len(result.apps) > 1 else None
        return _text(cost_text(result), public=False, more=more)
    if isinstance(result, About):
        return _text("\n".join(about_lines(result)), public=False)
    return _confirmation(result)


def _logs(result: Logs) -> Message:
    scope = f"{code(result.dyno)} of `{result.app}`" if result.dyno else f"`{result.app}`"
    if result.picked:
        # Beanstalk with no instance named: one instance's tail, which the title had
        # passed off as the whole environment's.
        which = "first" if result.others else "only one"
        scope = f"{code(result.dyno)}, the {which} of `{result.app}`'s instances to answer"
    if not result.lines:
        return _text(f"No log lines from {scope} yet.", public=False)
    lines = [escape(uncoloured(line)) for line in result.lines]
    another = (
        f" {code(f'/deploy logs {result.app} {result.others[0]}')} shows another instance's."
        if result.picked and result.others
        else ""
    )

    def title(shown: int) -> str:
        head = f"*Last {shown} log line{'' if shown == 1 else 's'} of {scope}* (secrets masked)"
        if shown < len(lines):
            head += (
                f": {result.asked:,} were asked for, more than one Slack message holds. "
                f"{_all_logs(result)}"
            )
        elif another:
            head += "."
        return head + another

    # A section holds SECTION_CHARS: the newest whole lines that fit beside the title.
    room = SECTION_CHARS - len(title(0)) - len("\n```\n\n```") - len(str(len(lines)))
    body = _newest_lines(lines, room)
    text = f"{title(len(body))}\n```\n" + "\n".join(body) + "\n```"
    return _text(text, public=False)


def _all_logs(result: Logs) -> str:
    """Where all the lines asked for can be read, beyond what a message holds."""
    if result.platform == "beanstalk":
        return "The environment's Logs page in the AWS console has them all."
    dyno = f" -d {escape(result.dyno)}" if result.dyno else ""
    return f"`heroku logs -n {result.asked}{dyno} -a {escape(result.name)}` shows them all."


def _newest_lines(lines: list[str], room: int) -> list[str]:
    """The newest of `lines` that fit in `room` characters, whole; a newest line longer than
    that alone, its start."""
    kept: list[str] = []
    size = 0
    for line in reversed(lines):
        size += len(line) + 1
        if size > room + 1:
            break
        kept.append(line)
    return kept[::-1] or [lines[-1][: room - 1] + "…"]


def _release_line(release: Release, now: datetime) -> str:
    """One release; its description and author come from outside, so they are escaped."""
    parts = [code(release.version)]
    if release.description:
        parts.append(escape(one_line(release.description, DESCRIPTION_SHOWN)))
    if release.user:
        parts.append(f"by {escape(release.user)}")
    if release.created_at is not None:
        parts.append(_age(release.created_at, now).replace(" for ", "", 1) + " ago")
    line = " · ".join(parts)
    if not release.good:
        line += f" · *{escape(release.status.lower())}*"
    if release.current:
        line += "  ← current"
    return line


def _releases(result: Releases, now: datetime) -> Message:
    what = "releases" if result.platform == "heroku" else "application versions"
    if not result.releases:
        return _text(f"`{result.app}` has no {what} yet.", public=False)
    lines = [f"*{what.capitalize()} of `{result.app}`*, newest first"]
    lines += [f"• {_release_line(release, now)}" for release in result.releases]
    lines.append(f"Roll back with `/deploy rollback {result.app} VERSION`.")
    return _text("\n".join(lines), public=False)


def _build_line(build: Build, now: datetime) -> str:
    """One build; its version, description and author come from outside, so are escaped."""
    parts = [code(clip(build.version, 60) or "?")]
    if build.description:
        parts.append(escape(one_line(build.description, DESCRIPTION_SHOWN)))
    if build.user:
        parts.append(f"by {escape(clip(build.user, 80))}")
    if build.created_at is not None:
        parts.append(_age(build.created_at, now).replace(" for ", "", 1) + " ago")
    if build.status != "succeeded":
        parts.append(f"*{escape(build.status.lower())}*")
    return " · ".join(parts)


def _builds(result: Builds, now: datetime) -> Message:
    app = result.app
    if not result.builds:
        return _text(
            f"`{app}` has no builds yet. They come from `git push heroku` or "
            f"`/deploy ship {app} REF`.",
            public=False,
        )
    lines = [f"*Builds of `{app}`*, newest first"]
    lines += [f"• {_build_line(build, now)}" for build in result.builds]
    failure = None
    if result.failed_output:
        failure = "The newest build failed; its output ends:" + _output(result.failed_output)
    return _text("\n".join(lines), public=False, last=failure)


def _release_words(release: Release | None) -> str:
    if release is None:
        return "?"
    described = one_line(release.description or "", DESCRIPTION_SHOWN)
    described = f" ({escape(described)})" if described else ""
    return f"{code(release.version)}{described}"


def _from_to(result: DeployPrompt | Deployed) -> str:
    """`: v42 → v41` of a rollback; ` to v41` when what ran could not be told (a Beanstalk
    environment that names no version)."""
    if result.before is None:
        return f" to {_release_words(result.after)}"
    return f": {_release_words(result.before)} → {_release_words(result.after)}"


def _deploy_prompt(result: DeployPrompt) -> Message:
    if result.verb == "rollback":
        text = f"<@{result.user_id}> asks to roll `{result.app}` back{_from_to(result)}."
        if result.undoes and result.after:
            # The default is the release before the current one: after a rollback, the one
            # just rolled away from, perhaps for a reason.
            text += (
                f" {code(result.after.version)} is the release {code(result.undoes)} rolled "
                "back from: this undoes that rollback."
            )
        label = ROLL_BACK
    elif result.verb == "maintenance":
        text = (
            f"<@{result.user_id}> asks to turn maintenance mode on for `{result.app}`: its users "
            "get Heroku's maintenance page instead of the app until it is turned off."
        )
        label = MAINTENANCE_ON
    else:
        names = listed(result.keys)
        what = "unset" if result.unset else "set"
        empty = _emptied(result.keys, result.emptied, "values hidden")
        text = f"<@{result.user_id}> asks to {what} {names} on `{result.app}`{empty}."
        label = CONFIRM
    if result.note:
        text += f" {result.note}"
    who = f"Only <@{result.user_id}> can confirm"
    return _prompt(text, label, who, result.id, result.expires_at)


def _deployed(result: Deployed) -> Message:
    who, app = f"<@{result.user_id}>", f"`{result.app}`"
    if result.verb == "rollback":
        text = f"{who} rolled {app} back{_from_to(result)}" + (
            f", as the new release {code(result.mode)}." if result.mode else "."
        )
    elif result.verb == "maintenance":
        text = f"{who} turned maintenance mode {result.mode} for {app}."
    elif result.verb == "config":
        names = listed(result.keys)
        text = f"{who} {result.mode} {names} on {app}{_emptied(result.keys, result.emptied)}."
    elif result.verb == "lock":
        was = (
            f" (it replaces the earlier reason: {escape(result.replaced)})"
            if result.replaced
            else ""
        )
        text = (
            f"{who} locked {app}: {escape(result.mode or '')}{was}. Only they may "
            f"{lock_holds_back(result.platform)}, until `/deploy unlock {result.app}`."
        )
    elif result.verb == "ship" and result.build_id:
        text = f"{who} is shipping {code(result.mode or '')} to {app}."
    elif result.verb == "ship":
        text = f"{who} is deploying {_release_words(result.after)} to {app}."
    elif result.verb == "promote" and result.promotion_id:
        # Pending: the thread says how it ended.
        what = f"{app}'s {_release_words(result.after)}" if result.after else app
        targets = ", ".join(code(p.app) for p in result.promotions)
        text = f"{who} is promoting {what} to {targets}."
    elif result.verb == "promote":
        what = f"{app}'s {_release_words(result.after)}" if result.after else app
        text = f"{who} promoted {what} to {_promotion_targets(result.promotions)}."
    elif result.verb == "swap":
        text = f"{who} swapped the CNAMEs of {app} and `{result.mode}`."
    elif result.verb == "run":
        what = code(result.keys[0]) if result.keys else "a command"
        text = f"{who} started {what} on {app} as {code(result.mode or '')}."
    else:
        text = f"{who} unlocked {app} (it was locked by <@{result.mode}>)."
    if result.note:
        text += f" {result.note}"
    blocks = [_section(text)]
    if result.confirmed_by and result.confirmed_by != result.user_id:
        blocks.append(_context(f"Approved by <@{result.confirmed_by}>."))
    return {"response_type": "in_channel", "text": text, "blocks": blocks}


def _emptied(keys: tuple[str, ...], emptied: tuple[str, ...], hidden: str = "") -> str:
    """What follows `… on APP` of a config change: that vars are set to an empty value
    (Heroku takes one: said, so a `K=` typo is not confirmed unseen), and `hidden` (the
    other values hidden) in brackets."""
    if emptied and len(emptied) == len(keys):
        return " to an empty value" if len(keys) == 1 else " to empty values"
    said = [hidden] if hidden else []
    if emptied:
        said.append(f"{listed(emptied)} to an empty value")
    return f" ({'; '.join(said)})" if said else ""


MASK = "••••••"


def _config_vars(result: ConfigVars) -> Message:
    # Beanstalk's own word for them, as its console and docs say.
    what = "config vars" if result.platform == "heroku" else "environment properties"
    if not result.values:
        return _text(f"`{result.app}` has no {what}.", public=False)
    lines = [f"*{what.capitalize()} of `{result.app}`*"]
    if result.masked:
        # Before the list, so every line a cut leaves out is a variable.
        lines.append("Values are hidden: seeing them needs the `config` permission.")
    elif result.own:
        lines.append("The bot's own credentials are hidden from everyone.")
    for key, value in result.values:
        # An empty value had shown as two backticks.
        hidden = result.masked or key in result.own
        shown = MASK if hidden else clipped(value, 200) if value else "(empty)"
        lines.append(f"• {code(key)} {shown}")
    where = (
        f"`heroku config -a {escape(result.name or result.app)}` lists them all."
        if result.platform == "heroku"
        else "The environment's Configuration page in the AWS console lists them all."
    )
    more = more_note("variables", where)
    return _text("\n".join(lines), public=False, more=more)


# Web hours come from the autoscaler's record, and it never runs a Beanstalk environment.
_NOT_COUNTED = "not counted: its Auto Scaling group scales it, not the autoscaler"


def cost_text(report: CostReport) -> str:
    """`/deploy cost`: monthly cost per app at list prices, the total, and the last week's
    actual web dyno-hours from the autoscaler's record."""
    if not report.apps:
        return "I manage no apps yet, so there is nothing to price."
    lines: list[str] = []
    total, estimate, unpriced = 0.0, False, 0
    for app in report.apps:
        if app.monthly is None:
            lines.append(f"• {code(app.app)}: unknown ({app.problem or 'no formation'})")
            unpriced += 1
            continue
        total += app.monthly.usd
        estimate = estimate or app.monthly.estimate
        running = ", ".join(
            f"{escape(t)} {q} × {escape(size)}" for t, (q, size) in sorted(app.formation.items())
        )
        label = " (estimate: EC2 on-demand, us-east-1)" if app.platform == "beanstalk" else ""
        if app.platform == "heroku" and app.monthly.estimate:
            label = " (estimate)"
        line = f"• {code(app.app)}: {costs.usd(app.monthly.usd)}/month{label}: {running or 'nothing running'}"
        if app.monthly.unknown_sizes:
            line += f"; no price for {escape(', '.join(app.monthly.unknown_sizes))}"
        lines.append(line)
        unit = unit_of(app.platform)
        if app.web_hours is not None:
            cost = f" ≈ {costs.usd(app.web_usd)}" if app.web_usd is not None else ""
            lines.append(
                f"    last {report.days} days: {app.web_hours:,.1f} web {unit}-hours{cost} "
                f"(the autoscaler's record covers {app.covered_hours:,.1f} of {report.days * 24} h)"
            )
        elif app.platform == "beanstalk":
            lines.append(f"    last {report.days} days: instance-hours {_NOT_COUNTED}")
        else:
            lines.append(f"    last {report.days} days: no autoscaler record of web {unit}s")
    if len(report.apps) == 1:
        return "\n".join(["*Monthly cost at list prices*", *lines])
    # First, so a fleet's answer cut to one Slack message still has it.
    head = f"*Monthly cost at list prices: {costs.usd(total)}/month in all*" + (
        " (estimate)" if estimate else ""
    )
    if unpriced:
        head += f"; {unpriced:,} of {len(report.apps):,} apps could not be priced and are left out"
    if report.reserve_kept:
        head += (
            " (most to keep the Heroku API calls that changes and the autoscaler need this hour;"
            " `/deploy cost APP` prices one app)"
        )
    return "\n".join([head, *lines])


# Hours of the day a record may miss and still be called the whole day: the first tick
# comes some seconds after midnight.
UNCOVERED_IGNORED = 0.05


def digest_text(day: Digest) -> str:
    """The daily digest: yesterday's dyno-hours and cost, the static-at-peak comparison,
    scale actions and incidents with their durations, the busiest hour."""
    n, zone = day.numbers, day.timezone
    label = " (estimate)" if day.estimate else ""
    lines = [f"*Daily digest for {code(day.app)}: {day_words(day.day)}* ({escape(zone)})"]
    if day.unreadable:
        # A PlatformError's words, written by the bot to be shown in Slack as they are.
        lines.append(f"Web size unknown, so no prices: {day.unreadable}")
    if n.dyno_hours is None and day.unit == "instance":
        lines.append(f"Web instance-hours: {_NOT_COUNTED}.")
    elif n.dyno_hours is None:
        lines.append(f"Web {day.unit}s: no autoscaler record for the day, so no {day.unit}-hours.")
    else:
        cost = f", {costs.usd(n.cost_usd)}{label}" if n.cost_usd is not None else ""
        lines.append(f"Web {day.unit}-hours: {n.dyno_hours:,.1f}{cost}")
        if n.static_usd is not None and n.saving_usd is not None:
            covered = n.covered_hours if n.covered_hours is not None else n.day_hours
            # A record that speaks for part of the day compares that part alone.
            part = ""
            if covered < n.day_hours - UNCOVERED_IGNORED:
                part = f" over the {covered:,.1f} h the record covers"
            lines.append(
                f"A static formation at the day's peak ({n.peak} web) would have cost "
                f"{costs.usd(n.static_usd)}{part}: autoscaling saved "
                f"{costs.usd(max(0.0, n.saving_usd))}."
            )
    lines += _listed(
        "Scale actions",
        [f"{_local(a.start, zone)} {a.label}, held {duration(a.seconds)}" for a in day.actions],
        20,
    )
    lines += _listed(
        "Incidents",
        [
            f"{i.label} from {_local(i.start, zone)} for {duration(i.seconds)}"  # Slack text
            for i in day.incidents
        ],
        10,
    )
    if n.busiest_start is not None:
        lines.append(
            f"Busiest hour: {hour_label(n.busiest_start, zone)} with "
            f"{n.busiest_requests:,} requests."
        )
    else:
        lines.append("No requests recorded.")
    return "\n".join(lines)


def _listed(title: str, items: list[str], shown: int) -> list[str]:
    """A digest's list: its count, the first `shown` items and how many more, or none."""
    if not items:
        return [f"{title}: none."]
    more = [f"• …and {len(items) - shown} more"] if len(items) > shown else []
    return [f"{title} ({len(items)}):", *(f"• {item}" for item in items[:shown]), *more]


def _local(epoch: float, zone: str) -> str:
    return datetime.fromtimestamp(epoch, ZoneInfo(zone)).strftime("%H:%M")


def undelivered_line(undelivered: Undelivered) -> str:
    """`/deploy about`'s line for a channel whose alerts or daily digests Slack refuses:
    which, since when, why and what to do. Nothing else told anyone: those alerts are marked
    failed and logged, and the digest given up for the day with a line in the worker's log."""
    channel = undelivered.channel
    where = channel_link(channel)
    alerts, digests = undelivered.count, undelivered.digests
    if not digests:
        what, counted, logged = "Alerts", str(alerts), "alert not sent"
    elif not alerts:
        what, counted, logged = "The daily digest", str(digests), "digest not posted today"
    else:
        what = "Alerts and the daily digest"
        counted = f"{alerts} alert{'s' * (alerts > 1)}, {digests} digest{'s' * (digests > 1)}"
        logged = "alert not sent"
    advice = UNDELIVERED_ADVICE.get(undelivered.error, f"the worker's log says more (`{logged}`).")
    return (
        f":warning: {what} to {where} not delivered ({counted} since "
        f"{day_and_clock(undelivered.since)}): Slack said {code(clip(undelivered.error, 80))}: "
        f"{advice}"
    )


def about_lines(about: About) -> list[str]:
    """`/deploy about` and the App Home header: the release, the worker, the backlog, drains."""
    # No release is also a Heroku dyno without runtime-dyno-metadata, which sets it.
    if about.release:
        release = f" {code(about.release)}"
    elif not about.worker_runs:
        release = ": none, the sandbox console runs from your checkout"
    else:
        release = " unknown (on Heroku, `heroku labs:enable runtime-dyno-metadata` shows it)"
    lines = [f"*deploybot* release{release}"]
    if about.beat is None and not about.worker_runs:
        lines.append(
            "No worker runs in the sandbox console: nothing autoscales or alerts between your "
            "lines (`simulate spike demo` plays the autoscaler)."
        )
    elif about.beat is None:
        lines.append(":warning: The worker has never ticked: autoscaling and alerts are paused.")
    else:
        ago = _age(about.beat.ticked_at, about.now).removeprefix(" for ")
        state = ":warning: stopped? " if about.worker_down else ""
        lines.append(
            f"{state}Worker: last tick {ago} ago, leader {code(about.beat.worker)}"
            + (f", release {code(about.beat.release)}" if about.beat.release else "")
        )
        if about.beat.trouble:
            # The heartbeat beats on while another job fails or hangs: said here, or the
            # worker looked healthy while autoscaling or alerts did nothing.
            lines.append(f":warning: Jobs in trouble: {escape(about.beat.trouble)}")
    waiting = f"Alert outbox: {about.outbox_backlog} message(s) waiting"
    if about.outbox_backlog and about.outbox_stalled:
        why = about.outbox_stalled
        advice = (
            ": Slack refuses the bot's token; set `SLACK_BOT_TOKEN` to the app's current "
            "Bot User OAuth Token, and they go out"
            if why in AUTH_ERRORS
            else ", held back by Slack's answer"
        )
        waiting = f":warning: {waiting}{advice} ({code(clip(why, 80))})"
    lines.append(waiting)
    lines += [undelivered_line(u) for u in about.undelivered]

    def seen(newest: datetime | None) -> str:
        if newest is None:
            return "no traffic yet"
        return f"last traffic {_age(newest, about.now).removeprefix(' for ')} ago"

    kept = f"the access rules keep {about.hidden:,} more from you"
    if not about.drains and about.hidden:
        lines.append(f"Drains: none you may see (the access rules keep {about.hidden:,} from you)")
    elif not about.drains:
        lines.append("Drains: none yet (`/deploy drain APP` adds one)")
    elif len(about.drains) <= DRAINS_LISTED:
        lines += [f"Drain {code(app)}: {seen(newest)}" for app, newest in about.drains]
        lines += [f"Drains: {kept}"] if about.hidden else []
    else:
        # A line per drain filled App Home's header, cut mid-line, at a fleet's size: the
        # count, and the quiet ones, which are the ones to look at.
        quiet = [
            (app, newest)
            for app, newest in about.drains
            if newest is None or about.now - newest > DRAIN_QUIET
        ]
        line = (
            f"Drains: {len(about.drains):,} apps, {len(about.drains) - len(quiet):,} with "
            f"traffic in the last {DRAIN_QUIET.seconds // 60} minutes"
        )
        if quiet:
            named = ", ".join(f"{code(app)} ({seen(new)})" for app, new in quiet[:DRAINS_LISTED])
            more = f" and {len(quiet) - DRAINS_LISTED:,} more" if len(quiet) > DRAINS_LISTED else ""
            line += f"; quiet: {named}{more}"
        lines.append(line + (f"; {kept}" if about.hidden else ""))
    return lines


def break_glass_message(notice: BreakGlass) -> Message:
    """Said in the app's channel when an admin forces a change through a freeze."""
    text = (
        f":rotating_light: Break-glass: <@{notice.user_id}> forced {code(notice.command)} "
        f"during a freeze ({escape(notice.freeze_reason)}). Their reason: {escape(notice.reason)}"
    )
    return {"text": text, "blocks": [_section(text)]}


def settled_message(settled: Settled) -> Message:
    """The follow-up of a slow change: Ready, or the events that explain the failure; a
    build's or a run's output tail either way. Events and output come from the platform,
    so they are masked (an instance's event can quote a command line) and escaped."""
    if settled.output:
        detail = _output(settled.events)
    elif settled.ok:
        detail = ""
    else:
        events = settled.events[:FAILURE_EVENTS]
        detail = "".join(f"\n• {escape(one_line(mask(event), EVENT_SHOWN))}" for event in events)
    head = "Done: " if settled.ok else "" if settled.unknown else "Failed: "
    text = head + settled.summary + detail
    return {"text": text, "blocks": [_section(text)]}


def _output(output: tuple[str, ...]) -> str:
    """A build's or a run's output tail as a code block on lines of its own: masked and
    escaped (it is the app's own text), the newest whole lines that fit."""
    lines = [escape(mask(line).replace("```", "ˋˋˋ")) for line in output]
    # A cut by characters had begun mid-line.
    body = "\n".join(_newest_lines(lines, OUTPUT_CHARS)) if lines else ""
    shown = body.count("\n") + 1 if body else 0
    more = f"\n(the last {shown} of {len(lines):,} lines)" if shown < len(lines) else ""
    return f"\n```\n{body}\n```{more}" if body else ""


def _app_list(result: AppList) -> Message:
    lines = []
    for target in result.apps:
        where = (
            f"Heroku app `{target.name}`"
            if target.platform == "heroku"
            else f"Beanstalk environment `{target.name}` in {target.region}"
        )
        channel = f", alerts in {channel_link(target.channel)}" if target.channel else ""
        lines.append(f"• `{target.alias}`: {where}{channel}")
    if result.unlisted_heroku:
        lines.append("• any other Heroku app the bot's key can see, by its own name")
    rights = (
        "You may make changes: `/deploy whoami` says which, on which apps."
        if result.may_change
        else "You may see their status; changes need an admin."
    )
    if result.matching is not None:
        word = code(result.matching)
        if not lines:
            return _text(
                f"None of the {result.of:,} apps I manage has {word} in its name. "
                "`/deploy apps` lists them all.",
                public=False,
            )
        title = f"*Apps I manage with {word} in their name* ({len(lines):,} of {result.of:,})"
    else:
        title = "*Apps I manage*"
    text = "\n".join([title, *lines, rights]) if lines else "I manage no apps yet."
    return _text(text, public=False, more=_MORE_APPS)


def _metrics(result: Metrics) -> Message:
    summary, app = result.summary, result.app
    span = f"{result.minutes // 60} h" if result.minutes % 60 == 0 else f"{result.minutes} min"
    if not summary.requests:
        hint = no_traffic_hint(app, result.drained)
        return _text(f"No requests recorded for `{app}` in the last {span}. {hint}", public=False)
    lines = [
        f"*`{app}` over the last {span}*",
        f"Requests: {summary.requests:,} ({summary.requests_per_minute:,.1f}/min)  "
        f"`{sparkline(list(result.rates))}`",
    ]
    for label, pct in (
        ("Service", summary.service),
        ("Queue", summary.queue),
        ("Connect", summary.connect),
    ):
        if pct is not None:
            lines.append(
                f"{label} time p50 / p95 / p99: {pct.p50:,.0f} / {pct.p95:,.0f} / {pct.p99:,.0f} ms"
            )
    if any(p is not None for p in result.p95s):
        lines.append(f"p95 service time: `{sparkline(list(result.p95s))}`")
    errors = f"5xx: {summary.error_rate:.1%}" if summary.error_rate is not None else "5xx: none"
    if summary.codes:
        # Codes and dyno names come from drained log lines: shown as typed.
        errors += " · " + ", ".join(f"{escape(c)} ×{n}" for c, n in summary.codes.items())
    lines.append(errors)
    if summary.dynos:
        lines.append(
            "Per dyno: "
            + ", ".join(f"{escape(d)} {rate:,.1f}/min" for d, rate in summary.dynos.items())
        )
    message = _text("\n".join(lines), public=True)
    button = chart_button(app, window_for(result.minutes))
    message["blocks"].append({"type": "actions", "elements": [button]})
    return message


def _platform_metrics(result: PlatformMetrics) -> Message:
    traffic, minutes = result.traffic, result.minutes
    span = f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"
    total = sum(traffic.per_minute)
    lines = [f"*`{result.app}` over the last {span}* (CloudWatch, load balancer)"]
    if traffic.per_minute_problem:
        lines.append(f"Requests per minute are not available: {traffic.per_minute_problem}")
    else:
        # The newest minutes with no datapoint are left out of the rate, and said. They may
        # be late or have had no requests (CloudWatch cannot tell): said as what is known,
        # not as "not in CloudWatch yet", which a quiet app read as data on its way.
        late = traffic.unreported_minutes
        reported = len(traffic.per_minute)
        left_out = (
            f" (the newest {'minute is' if late == 1 else f'{late} minutes are'} left out: "
            f"CloudWatch has no requests for {'it' if late == 1 else 'them'} yet, and it "
            "reports a minute or two late)"
        )
        lines.append(
            f"Requests: {total:,} ({total / max(reported, 1):,.1f}/min)  "
            + (f"`{sparkline(list(_buckets(traffic.per_minute)))}`" if reported else "")
            + (left_out if late else "")
        )
    if traffic.latest_problem:
        lines.append(
            f"No figures for the last {traffic.latest_seconds} s: {traffic.latest_problem}"
        )
    elif traffic.latest_requests:
        # Every percentile is optional in AWS's model: only those reported are named.
        shown = [k for k in ("p50", "p95", "p99") if k in traffic.latency_ms]
        latency = " / ".join(f"{traffic.latency_ms[k]:,.0f}" for k in shown)
        statuses = ", ".join(f"{k} {n}" for k, n in sorted(traffic.latest_statuses.items()) if n)
        parts = [f"latency {' / '.join(shown)}: {latency} ms"] if shown else []
        parts += [statuses] if statuses else []
        lines.append(
            f"Last {traffic.latest_seconds} s (Beanstalk health): {traffic.latest_requests:,} requests"
            + (f", {'; '.join(parts)}" if parts else ".")
        )
    else:
        lines.append(f"No requests in the last {traffic.latest_seconds} s (Beanstalk health).")
    return _text("\n".join(lines), public=True)


def _buckets(per_minute: tuple[int, ...], points: int = 60) -> list[float]:
    width = max(1, -(-len(per_minute) // points))
    return [sum(per_minute[i : i + width]) / width for i in range(0, len(per_minute), width)]


OUTCOME_MARK = {
    "ok": "✓",
    "error": "✗ failed",  # the word `history APP failed` filters by
    "refused": "✗ refused",
    "unknown": "? may have changed",
    "pending": "…",
    "not-applied": "✗ not applied",
    "cancelled": "– cancelled",
    "expired": "– expired",
}


_MENTION_OR_BRACKET = re.compile(r"<@[UW][A-Z0-9]{2,20}>|[<>]")


def _keep_mentions(found: re.Match[str]) -> str:
    text = found.group(0)
    return text if len(text) > 1 else ("&lt;" if text == "<" else "&gt;")


def who(user_id: str) -> str:
    """Who made a change, as Slack text: a mention, or the autoscaler, which is no Slack user
    (`<@autoscaler>` showed as written)."""
    return "the autoscaler" if user_id == AUTOSCALER else f"<@{user_id}>"


def _history(result: History) -> Message:
    scope = f"`{result.app}`" if result.app else "every app"
    scope = "the apps you may see" if result.hidden else scope
    # Across apps, what the rules leave out is counted, so "every app" is not claimed.
    kept, warning = "", []
    why, unsure = result.unsure or ("", 0)
    if unsure:
        # Not the rules' doing, said as App Home says it.
        left_out = "1 app" if unsure == 1 else f"{unsure:,} apps"
        warning = [f":warning: {why} Until then I leave out the {left_out} its rules decide."]
    if result.hidden > unsure:
        ruled = result.hidden - unsure
        apps = "1 app" if ruled == 1 else f"{ruled:,} apps"
        kept = f" (the access rules keep {apps} from you)"
    if not result.entries:
        what = f"{result.only} requests" if result.only else "changes"
        anywhere = f"`{result.app}`" if result.app else "any app"
        anywhere = "any app you may see" if result.hidden else anywhere
        text = "\n".join([f"No {what} recorded for {anywhere} yet{kept}.", *warning])
        return _text(text, public=False)
    title = f"requests for {scope} ({result.only})" if result.only else f"changes to {scope}"
    lines = [f"*Recent {title}*, newest first{kept}", *warning]
    for entry in result.entries:
        when = int(entry.started_at.timestamp())
        fallback = entry.started_at.strftime("%Y-%m-%d %H:%M UTC")
        mark = OUTCOME_MARK.get(entry.outcome, entry.outcome)
        line = (
            f"{mark} <!date^{when}^{{date_short}} {{time}}|{fallback}> {who(entry.user_id)} "
            f"{code(entry.command)}"
        )
        if entry.source not in ("slack", AUTOSCALER):
            line += f" ({entry.source})"
        if entry.confirmed_by and entry.confirmed_by != entry.user_id:
            line += f", approved by <@{entry.confirmed_by}>"
        if entry.error:
            # Stored as Slack-ready sentences; every other angle bracket goes in any case, so
            # an older row with a raw platform message can make no link, no channel ping.
            # A user mention stays one: the listing is for the asker's eyes only. A cut is
            # marked: a refusal cut bare at 150 ended mid-word, like a typo of the bot's.
            line += ": " + _MENTION_OR_BRACKET.sub(_keep_mentions, clip(entry.error, 150))
        lines.append(line)
    return _text("\n".join(lines), public=False, more=None if result.app else _MORE_FLEET)


def _text(text: str, public: bool, more: str | None = None, last: str | None = None) -> Message:
    """A reply of any length as Slack takes it: sections of whole lines within a section's
    limit, and no more of them than a message holds, with a note of what was left out
    (`more`, with `{n}` for how many lines, where the verb has a better way to ask).
    `last`, a section of its own that must stay whole (a code block), ends the message
    however much of `text` it leaves room for."""
    budget = MESSAGE_CHARS - (len(last) + 1 if last else 0)
    sections = [*fit_sections(text, more, budget), *([last] if last else [])]
    return {
        "response_type": "in_channel" if public else "ephemeral",
        "text": "\n".join(sections),
        "blocks": [_section(part) for part in sections],
    }


def fit_sections(text: str, more: str | None = None, budget: int | None = None) -> list[str]:
    """`text` in sections of at most SECTION_CHARS, split between lines, holding at most
    `budget` characters in all. A fleet's `apps` or `cost` had gone out as one section of
    60,000-120,000 characters, which Slack refuses: the user heard nothing. `more` (`{n}`:
    how many lines) ends a cut reply; by default it counts them."""
    note = more or _MORE
    budget = MESSAGE_CHARS if budget is None else budget
    lines = text.split("\n")
    sections: list[str] = []
    current: list[str] = []
    size = total = 0
    for index, line in enumerate(lines):
        line = cut(line, SECTION_CHARS)
        if total + len(line) + 1 > budget - len(note):
            if current:
                sections.append("\n".join(current))
            sections.append(note.format(n=len(lines) - index))
            return sections
        if current and size + len(line) + 1 > SECTION_CHARS:
            sections.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
        total += len(line) + 1
    sections.append("\n".join(current))
    return sections


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(*texts: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": t} for t in texts]}


def _changed(result: Changed) -> Message:
    before = {f.type: f for f in result.before}
    changes = []
    for after in result.after:
        old = before.get(after.type)
        if old is None or (old.quantity, old.size) != (after.quantity, after.size):
            changes.append(_formation_change(old, after))
    summary = ", ".join(changes) or "no change"
    verb = "killed" if result.verb == "kill" else "scaled"
    text = f"<@{result.user_id}> {verb} `{result.app}`: {summary}."
    if result.note:
        text += f" {result.note}"
    blocks = [_section(text)]
    if result.confirmed_by:
        how = "Confirmed" if result.confirmed_by == result.user_id else "Approved"
        blocks.append(_context(f"{how} by <@{result.confirmed_by}>."))
    return {"response_type": "in_channel", "text": text, "blocks": blocks}


def _formation_change(old: Formation | None, new: Formation) -> str:
    if old is None:
        return f"{escape(new.type)} → {new.quantity} × {escape(new.size)}"
    size = f" ({escape(old.size)} → {escape(new.size)})" if old.size != new.size else ""
    return f"{escape(new.type)} {old.quantity} → {new.quantity}{size}"


def _promotion_targets(promotions: tuple[Promotion, ...]) -> str:
    """`other-app`, or `other-app` (failed: why) where a target did not simply succeed."""

    def target(promotion: Promotion) -> str:
        if promotion.status == "succeeded":
            return code(promotion.app)
        why = f": {escape(promotion.error)}" if promotion.error else ""
        return f"{code(promotion.app)} ({escape(promotion.status)}{why})"

    return ", ".join(target(p) for p in promotions)


def _restart_target(result: Restarted) -> str:
    if result.unit == unit_of("beanstalk"):
        # It restarts the app server on each instance, not the instances themselves; and
        # all of them, `web` named or not (its one process type).
        return f"the app server on every instance of `{result.app}`"
    if result.target is None:
        return f"every dyno of `{result.app}`"
    if is_dyno_name(result.target):
        return f"dyno `{result.target}` of `{result.app}`"
    return f"the `{result.target}` dynos of `{result.app}`"


def _status(result: Status, now: datetime) -> Message:
    status = result.status
    formation = (
        "\n".join(f"{code(f.type)} {f.quantity} × {escape(f.size)}" for f in status.formation)
        or "no process types"
    )
    dynos = (
        "\n".join(
            f"{code(d.name)} {escape(d.state)}{_age(d.since, now)}"
            for d in status.dynos[:MAX_DYNOS_SHOWN]
        )
        or f"no {status.unit}s running"
    )
    if len(status.dynos) > MAX_DYNOS_SHOWN:
        dynos += f"\n… and {len(status.dynos) - MAX_DYNOS_SHOWN} more"
    # Beanstalk deploys application versions, as `releases` lists them; Heroku, releases.
    beanstalk = status.unit == unit_of("beanstalk")
    label = "Version" if beanstalk else "Release"
    release = "no application version" if beanstalk else "no releases yet"
    if status.release is not None:
        rel = status.release
        # An app owner writes the description: a long one would make the block, and so the
        # whole status, one Slack refuses.
        described = one_line(rel.description, DESCRIPTION_SHOWN)
        release = f"{escape(rel.version)} {escape(described)}".strip()
        release += _age(rel.created_at, now)
        if rel.user:
            release += f" by {escape(rel.user)}"
    shipping = ""
    if status.pending is not None:
        rel = status.pending
        described = one_line(rel.description, DESCRIPTION_SHOWN)
        shipping = f"{escape(rel.version)} {escape(described)}".strip()
        shipping += " is still in its release phase, not live yet"
        if rel.created_at is not None:
            shipping += f" (started {_age(rel.created_at, now).removeprefix(' for ')} ago)"
        release += f"\n{shipping}."
    text = f"Status of `{status.app}`: " + ", ".join(
        f"{escape(f.type)}={f.quantity}" for f in status.formation
    )
    text += f". {shipping}" if shipping else ""
    state = " ".join(escape(part) for part in (status.state, status.health) if part)
    prefix = f"{state} · " if state else ""
    held = _holds(result, now)
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{status.app}"[:150]}},
        *([_section(held)] if held else []),
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Formation*\n{formation}"},
                {"type": "mrkdwn", "text": f"*{status.unit.capitalize()}s*\n{dynos}"},
            ],
        },
        _context(
            f"{prefix}{label}: {release}",
            *(escape(clip(note, NOTE_SHOWN)) for note in status.notes[:MAX_NOTES]),
        ),
    ]
    text += f". {held}" if held else ""
    return {"response_type": "in_channel", "text": text, "blocks": blocks}


def _holds(result: Status, now: datetime) -> str:
    """What holds the app back, if anything: maintenance mode, a deploy lock."""
    app, lock = result.status.app, result.lock
    lines = []
    if result.status.maintenance:
        lines.append(f"*Maintenance mode is on* (`/deploy maintenance {app} off` ends it).")
    if lock is not None:
        lines.append(
            f"*Locked* by <@{lock.user_id}> since {day_and_clock(lock.locked_at)}: {escape(lock.reason)}"
        )
    return "\n".join(lines)


def _clock(at: datetime) -> str:
    """A time of day each reader sees in their own time zone (UTC where dates are not shown)."""
    return f"<!date^{int(at.timestamp())}^{{time}}|{at:%H:%M} UTC>"


# A failure's events, each clipped, so that they fit one section: an event can quote what the
# app wrote, and a section past SECTION_CHARS made Slack refuse the whole follow-up.
FAILURE_EVENTS, EVENT_SHOWN = 10, 250
OUTPUT_CHARS = 2800  # a build's or a run's output tail in a follow-up, with room for its head
MAX_DYNOS_SHOWN = 20
DRAINS_LISTED = 5  # more drains than this are counted, and only the quiet ones named
DRAIN_QUIET = timedelta(minutes=10)
SECTION_CHARS = 3000  # Slack refuses a section's text beyond this (invalid_blocks)
# And a message whose blocks hold much more than about 13,000 characters in all
# (msg_blocks_too_long, below the 40,000 its plain text may hold).
MESSAGE_CHARS = 12_000
_MORE = more_note("lines")
# Of a reply about every app; about one app, "ask about one app" made no sense.
_MORE_FLEET = _MORE + " Ask about one app to see it."
_MORE_APPS = more_note("lines", "`/deploy apps WORD` lists only the apps whose name holds WORD.")
MAX_NOTES = 9  # a context block holds at most ten elements
DESCRIPTION_SHOWN = 120  # characters of the release's description in a status
NOTE_SHOWN = 300  # characters of a note (a health cause can quote the app) in a status


def _age(since: datetime | None, now: datetime) -> str:
    if since is None:
        return ""
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    seconds = max(0, int((now - since).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f" for {seconds // size}{unit}"
    return f" for {seconds}s"


def _confirmation(result: NeedsConfirmation) -> Message:
    # Only what changes: a kill had listed "worker 0 → 0" beside "web 1 → 0".
    changes = ", ".join(
        _asked_change(ptype, result.before.get(ptype, (0, "")), qty, size)
        for ptype, (qty, size) in changing(result.before, result.targets).items()
    )
    stops = stops_dynos(result.before, result.targets)
    warning = f" {result.unit.capitalize()}s scaled to 0 stop serving at once." if stops else ""
    text = f"<@{result.user_id}> asks to {result.verb} `{result.app}`: {changes}.{warning}"
    if result.approval:
        label, who = APPROVE, f"Anyone but <@{result.user_id}> who may approve can approve"
        text += f"\n{result.approval}"
    else:
        label = f"Kill {result.app}" if result.verb == "kill" else CONFIRM
        who = f"Only <@{result.user_id}> can confirm"
    if result.cost:
        text += f"\nMonthly cost: {result.cost}"
    if result.costly:
        text += f"\n{result.costly}"
    if result.note:
        text += f"\n{result.note}"
    return _prompt(text, label, who, result.id, result.expires_at)


def _asked_change(ptype: str, before: tuple[int, str], quantity: int, size: str | None) -> str:
    # A new size is often what moves the cost the prompt shows: it is said, as after.
    old_quantity, old_size = before
    resized = size is not None and size.lower() != old_size.lower()
    # Lowercase both: Heroku answers Standard-1X for what people type as standard-1x.
    sizes = f" ({escape(old_size.lower())} → {escape((size or '').lower())})" if resized else ""
    return f"{escape(ptype)} {old_quantity} → {quantity}{sizes}"


def _prompt(text: str, label: str, who: str, confirmation_id: str, expires_at: datetime) -> Message:
    """A question with Confirm (or Approve, Kill, Roll back) and Cancel buttons."""
    return {
        "response_type": "in_channel",
        "text": text,
        "blocks": [
            _section(text),
            {
                "type": "actions",
                "block_id": "deploybot_confirmation",
                "elements": [
                    {
                        "type": "button",
                        "action_id": CONFIRM_ACTION,
                        "text": {"type": "plain_text", "text": label[:75]},
                        "style": "danger",
                        "value": confirmation_id,
                    },
                    {
                        "type": "button",
                        "action_id": CANCEL_ACTION,
                        "text": {"type": "plain_text", "text": CANCEL},
                        "value": confirmation_id,
                    },
                ],
            },
            _context(f"{who}. Expires {_clock(expires_at)}."),
        ],
    }


def safely(work: Callable[[], Result]) -> Result:
    """Run `work`; a bug becomes a short reply with an id to find in the logs, never a trace."""
    try:
        return work()
    except Exception as error:
        if unreachable(error):
            # Not a bug, and its trace says nothing new: one line, and a plain answer.
            log.warning("database unreachable", extra={"error": type(error).__name__})
            return Reply(CANNOT_ANSWER)
        error_id = secrets.token_hex(4)
        log.exception("unhandled error", extra={"error_id": error_id})
        return Reply(
            f"Something went wrong inside deploybot (error `{error_id}` in its logs). "
            "Check the app's status before trying again."
        )
