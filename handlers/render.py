"""Results of the actions path as Slack messages (Block Kit plus a plain-text fallback)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bot.actions.results import (
    AppList,
    BreakGlass,
    Changed,
    History,
    Metrics,
    NeedsConfirmation,
    PlatformMetrics,
    Reply,
    Restarted,
    Result,
    Status,
)
from bot.metrics.aggregate import sparkline
from bot.platforms.base import Formation, Settled

log = logging.getLogger(__name__)

CONFIRM_ACTION = "deploybot_confirm"
CANCEL_ACTION = "deploybot_cancel"

Message = dict[str, Any]


def message(result: Result, now: datetime | None = None) -> Message:
    """A `respond()`/`chat.postMessage` payload for any result."""
    now = now or datetime.now(UTC)
    if isinstance(result, Reply):
        return _text(result.text, public=result.public)
    if isinstance(result, Changed):
        return _changed(result)
    if isinstance(result, Restarted):
        return _text(f"<@{result.user_id}> restarted {_restart_target(result)}.", public=True)
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
    return _confirmation(result)


def break_glass_message(notice: BreakGlass) -> Message:
    """Said in the app's channel when an admin forces a change through a freeze."""
    text = (
        f":rotating_light: Break-glass: <@{notice.user_id}> forced `{notice.command}` during a "
        f"freeze ({notice.freeze_reason}). Their reason: {notice.reason}"
    )
    return {"text": text, "blocks": [_section(text)]}


def settled_message(settled: Settled) -> Message:
    """The follow-up of a slow change: Ready, or the events that explain the failure."""
    if settled.ok:
        text = f"Done: {settled.summary}"
    else:
        events = "\n".join(f"• {event}" for event in settled.events[:10])
        text = f"Failed: {settled.summary}" + (f"\n{events}" if events else "")
    return {"text": text, "blocks": [_section(text)]}


def _app_list(result: AppList) -> Message:
    lines = []
    for target in result.apps:
        where = (
            f"Heroku app `{target.name}`"
            if target.platform == "heroku"
            else f"Beanstalk environment `{target.name}` in {target.region}"
        )
        channel = f", alerts in <#{target.channel}>" if target.channel else ""
        lines.append(f"• `{target.alias}`: {where}{channel}")
    if result.unlisted_heroku:
        lines.append("• any other Heroku app the bot's key can see, by its own name")
    rights = (
        "You may scale, restart and kill them."
        if result.may_change
        else "You may see their status; changes need an admin."
    )
    text = "\n".join(["*Apps I manage*", *lines, rights]) if lines else "I manage no apps yet."
    return _text(text, public=False)


def _metrics(result: Metrics) -> Message:
    summary, app = result.summary, result.app
    span = f"{result.minutes // 60} h" if result.minutes % 60 == 0 else f"{result.minutes} min"
    if not summary.requests:
        hint = (
            "Heroku may not have sent any yet: give it a minute."
            if result.drained
            else f"Add a log drain with `/deploy drain {app}` first."
        )
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
        errors += " · " + ", ".join(f"{code} ×{n}" for code, n in summary.codes.items())
    lines.append(errors)
    if summary.dynos:
        lines.append(
            "Per dyno: "
            + ", ".join(f"{dyno} {rate:,.1f}/min" for dyno, rate in summary.dynos.items())
        )
    return _text("\n".join(lines), public=True)


def _platform_metrics(result: PlatformMetrics) -> Message:
    traffic, minutes = result.traffic, result.minutes
    span = f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"
    total = sum(traffic.per_minute)
    lines = [f"*`{result.app}` over the last {span}* (CloudWatch, load balancer)"]
    if traffic.per_minute_problem:
        lines.append(f"Requests per minute are not available: {traffic.per_minute_problem}")
    else:
        lines.append(
            f"Requests: {total:,} ({total / minutes:,.1f}/min)  "
            f"`{sparkline(list(_buckets(traffic.per_minute)))}`"
        )
    if traffic.latest_requests:
        latency = " / ".join(
            f"{traffic.latency_ms[k]:,.0f}"
            for k in ("p50", "p95", "p99")
            if k in traffic.latency_ms
        )
        statuses = ", ".join(f"{k} {n}" for k, n in sorted(traffic.latest_statuses.items()) if n)
        lines.append(
            f"Last {traffic.latest_seconds} s (Beanstalk health): {traffic.latest_requests:,} requests, "
            f"latency p50 / p95 / p99: {latency} ms; {statuses}"
        )
    else:
        lines.append(f"No requests in the last {traffic.latest_seconds} s (Beanstalk health).")
    return _text("\n".join(lines), public=True)


def _buckets(per_minute: tuple[int, ...], points: int = 60) -> list[float]:
    width = max(1, -(-len(per_minute) // points))
    return [sum(per_minute[i : i + width]) / width for i in range(0, len(per_minute), width)]


OUTCOME_MARK = {"ok": "✓", "error": "✗", "refused": "✗", "unknown": "?", "pending": "…"}


def _history(result: History) -> Message:
    scope = f"`{result.app}`" if result.app else "every app"
    if not result.entries:
        return _text(f"No changes recorded for {scope} yet.", public=False)
    lines = [f"*Recent changes to {scope}*, newest first"]
    for entry in result.entries:
        when = int(entry.started_at.timestamp())
        fallback = entry.started_at.strftime("%Y-%m-%d %H:%M UTC")
        mark = OUTCOME_MARK.get(entry.outcome, entry.outcome)
        line = (
            f"{mark} <!date^{when}^{{date_short}} {{time}}|{fallback}> <@{entry.user_id}> "
            f"`{entry.command}`"
        )
        if entry.source != "slack":
            line += f" ({entry.source})"
        if entry.error:
            line += f": {entry.error[:150]}"
        lines.append(line)
    return _text("\n".join(lines), public=False)


def _text(text: str, public: bool) -> Message:
    return {
        "response_type": "in_channel" if public else "ephemeral",
        "text": text,
        "blocks": [_section(text)],
    }


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
    blocks = [_section(text)]
    if result.confirmed_by:
        how = "Confirmed" if result.confirmed_by == result.user_id else "Approved"
        blocks.append(_context(f"{how} by <@{result.confirmed_by}>."))
    return {"response_type": "in_channel", "text": text, "blocks": blocks}


def _formation_change(old: Formation | None, new: Formation) -> str:
    if old is None:
        return f"{new.type} → {new.quantity} × {new.size}"
    size = f" ({old.size} → {new.size})" if old.size != new.size else ""
    return f"{new.type} {old.quantity} → {new.quantity}{size}"


def _restart_target(result: Restarted) -> str:
    if result.target is None:
        # Beanstalk restarts the app server on each instance, not the instances themselves.
        servers = "the app server on " if result.unit == "instance" else ""
        return f"{servers}every {result.unit} of `{result.app}`"
    if "." in result.target:
        return f"dyno `{result.target}` of `{result.app}`"
    return f"the `{result.target}` dynos of `{result.app}`"


def _status(result: Status, now: datetime) -> Message:
    status = result.status
    formation = (
        "\n".join(f"`{f.type}` {f.quantity} × {f.size}" for f in status.formation)
        or "no process types"
    )
    dynos = (
        "\n".join(
            f"`{d.name}` {d.state}{_age(d.since, now)}" for d in status.dynos[:MAX_DYNOS_SHOWN]
        )
        or f"no {status.unit}s running"
    )
    if len(status.dynos) > MAX_DYNOS_SHOWN:
        dynos += f"\n… and {len(status.dynos) - MAX_DYNOS_SHOWN} more"
    release = "no releases yet"
    if status.release is not None:
        rel = status.release
        release = f"{rel.version} {rel.description}".strip() + _age(rel.created_at, now)
        if rel.user:
            release += f" by {rel.user}"
    text = f"Status of `{status.app}`: " + ", ".join(
        f"{f.type}={f.quantity}" for f in status.formation
    )
    state = " ".join(part for part in (status.state, status.health) if part)
    prefix = f"{state} · " if state else ""
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{status.app}"[:150]}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Formation*\n{formation}"},
                {"type": "mrkdwn", "text": f"*{status.unit.capitalize()}s*\n{dynos}"},
            ],
        },
        _context(f"{prefix}Release: {release}", *status.notes[:MAX_NOTES]),
    ]
    return {"response_type": "in_channel", "text": text, "blocks": blocks}


MAX_DYNOS_SHOWN = 20
MAX_NOTES = 9  # a context block holds at most ten elements


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
    changes = ", ".join(
        f"{ptype} {result.before[ptype][0]} → {qty}" for ptype, (qty, _) in result.targets.items()
    )
    stops = any(qty == 0 for qty, _ in result.targets.values())
    warning = f" {result.unit.capitalize()}s scaled to 0 stop serving at once." if stops else ""
    text = f"<@{result.user_id}> asks to {result.verb} `{result.app}`: {changes}.{warning}"
    if result.approval:
        label, who = "Approve", f"Anyone but <@{result.user_id}> who may approve can approve"
        text += f"\n{result.approval}"
    else:
        label = f"Kill {result.app}" if result.verb == "kill" else "Confirm"
        who = f"Only <@{result.user_id}> can confirm"
    if result.cost:
        text += f"\nMonthly cost: {result.cost}"
    expires = int(result.expires_at.timestamp())
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
                        "value": result.id,
                    },
                    {
                        "type": "button",
                        "action_id": CANCEL_ACTION,
                        "text": {"type": "plain_text", "text": "Cancel"},
                        "value": result.id,
                    },
                ],
            },
            _context(f"{who}. Expires <!date^{expires}^{{time}}|{result.expires_at:%H:%M} UTC>."),
        ],
    }


def safely(work: Callable[[], Result]) -> Result:
    """Run `work`; a bug becomes a short reply with an id to find in the logs, never a trace."""
    try:
        return work()
    except Exception:
        error_id = secrets.token_hex(4)
        log.exception("unhandled error", extra={"error_id": error_id})
        return Reply(
            f"Something went wrong inside deploybot (error `{error_id}` in its logs). "
            "Check the app's status before trying again."
        )
