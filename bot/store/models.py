"""Database tables: the audit trail, pending confirmations, claimed request keys, drain
batch claims, traffic metric windows and log drains."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ARRAY,
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class AuditEntry(Base):
    """One mutating command: written before the platform call, completed after it.

    A row left with outcome `pending` means the process died mid-call: never silence.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    source: Mapped[str] = mapped_column(String(20))  # slack, console, autoscaler
    team_id: Mapped[str | None] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(64))
    channel_id: Mapped[str | None] = mapped_column(String(32))
    verb: Mapped[str] = mapped_column(String(20))
    app: Mapped[str] = mapped_column(String(64), index=True)
    command: Mapped[str] = mapped_column(Text)
    before: Mapped[dict | None] = mapped_column(JSON)
    requested: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)
    # pending, ok, error, unknown, not-applied, refused, cancelled, expired
    outcome: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)
    # Who clicked Confirm (the asker) or Approve (a second person), for a prompted change.
    confirmed_by: Mapped[str | None] = mapped_column(String(64))
    # When the reconciliation pass read the formation back for a pending or unknown row.
    reconciled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        # The reconcile job's question every minute, over a log that is never pruned.
        Index(
            "ix_audit_log_unsettled",
            "id",
            postgresql_where=text("outcome IN ('pending', 'unknown') AND reconciled_at IS NULL"),
            sqlite_where=text("outcome IN ('pending', 'unknown') AND reconciled_at IS NULL"),
        ),
    )


class AuditApp(Base):
    """Another app an audit row's change reached beyond its own: a promotion's next stage,
    a swap's other environment. `/deploy history` of that app shows the row too."""

    __tablename__ = "audit_apps"

    audit_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("audit_log.id", ondelete="CASCADE"), primary_key=True
    )
    app: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class Confirmation(Base):
    """A change waiting for its requester's click. `state` moves once, from `pending`."""

    __tablename__ = "confirmations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    team_id: Mapped[str | None] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(64))
    channel_id: Mapped[str | None] = mapped_column(String(32))
    app: Mapped[str] = mapped_column(String(64))
    command: Mapped[str] = mapped_column(Text)
    before: Mapped[dict] = mapped_column(JSON)
    targets: Mapped[dict] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(20))  # pending, confirmed, cancelled, expired
    decided_by: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # A protected app's kill needs a second person: the requester confirms, another approves.
    approval_required: Mapped[bool] = mapped_column(Boolean, server_default=false())
    approved_by: Mapped[str | None] = mapped_column(String(64))
    response_url: Mapped[str | None] = mapped_column(Text)  # to mark the prompt expired
    force_reason: Mapped[str | None] = mapped_column(Text)  # break-glass past a freeze
    # Cancel clicked while a Confirm was under way: if that Confirm changes nothing, the
    # row is cancelled rather than opened again.
    cancel_asked_by: Mapped[str | None] = mapped_column(String(64))


class RequestKey(Base):
    """A Slack delivery already handled: the primary key makes the claim atomic across
    dynos, where process memory could not."""

    __tablename__ = "request_keys"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class DrainClaim(Base):
    """One claim group: the Logplex batch ids (every app's, each as a 64-bit hash of
    `app:frame id`) one web process's drain claimer counted in one commit
    (`bot.store.drain_claims`). A row per group, not per id or per app, so the rows drains
    write per minute follow the claimer's pace, not the line rate or the number of apps."""

    __tablename__ = "drain_claims"
    __table_args__ = (
        Index("ix_drain_claims_claimed_at", "claimed_at"),  # retention deletes by age
        # Which standing groups hold any of a new group's ids: one GIN probe per claim.
        # The migration makes it on PostgreSQL only; SQLite keeps the ids as a JSON array.
        Index("ix_drain_claims_batch_ids", "batch_ids", postgresql_using="gin"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    batch_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger).with_variant(JSON, "sqlite"))


class MetricWindow(Base):
    """One stored piece of an app's traffic in [start, start + resolution) seconds.

    Several rows may share (app, resolution, start): each web dyno flushes its own part, and
    readers merge them (exactly); compaction folds them into one row later and marks it
    `folded`, so the next compaction takes only parts written since.
    """

    __tablename__ = "metric_windows"
    __table_args__ = (
        Index("ix_metric_windows_app_resolution_start", "app", "resolution", "start"),
        # Compaction's lookups (parts not folded yet; folded fine windows past 48 hours)
        # are range scans on this, as small as what they find however much history stands.
        Index("ix_metric_windows_resolution_folded_start", "resolution", "folded", "start"),
    )

    # 64-bit: a large fleet inserts tens of millions of parts a day (SQLite's rowid is 64-bit).
    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    app: Mapped[str] = mapped_column(String(64))
    resolution: Mapped[int] = mapped_column(Integer)  # 10 or 60 seconds
    start: Mapped[int] = mapped_column(BigInteger)  # epoch seconds
    data: Mapped[dict] = mapped_column(JSON)  # Window.to_dict()
    folded: Mapped[bool] = mapped_column(Boolean, server_default=false(), default=False)


class MetricMinute(Base):
    """Requests an app served in one minute, as a plain number: written when compaction folds
    that minute's windows, read by the seasonal forecast without decoding any sketch."""

    __tablename__ = "metric_minutes"
    __table_args__ = (Index("ix_metric_minutes_minute", "minute"),)  # retention, by age

    app: Mapped[str] = mapped_column(String(64), primary_key=True)
    minute: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # epoch seconds // 60
    requests: Mapped[int] = mapped_column(BigInteger)


class Drain(Base):
    """A Heroku log drain the bot added to an app: its secret URL token names the app."""

    __tablename__ = "drains"

    app: Mapped[str] = mapped_column(String(64), primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(Text)
    drain_id: Mapped[str | None] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AutoscaleSetting(Base):
    """How one app's web dynos are autoscaled; `mode` shadow decides and logs but never acts."""

    __tablename__ = "autoscale_settings"

    app: Mapped[str] = mapped_column(String(64), primary_key=True)
    mode: Mapped[str] = mapped_column(String(10))
    min: Mapped[int] = mapped_column(Integer)
    max: Mapped[int] = mapped_column(Integer)
    target_kind: Mapped[str] = mapped_column(String(20))
    target_value: Mapped[float] = mapped_column(Float)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AutoscaleOverride(Base):
    """One autoscaler setting changed from chat (`/deploy autoscale APP set|schedule`)."""

    __tablename__ = "autoscale_overrides"

    app: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AutoscaleWorkerSetting(Base):
    """How one app's worker process type is autoscaled from its job queue."""

    __tablename__ = "autoscale_worker_settings"

    app: Mapped[str] = mapped_column(String(64), primary_key=True)
    process_type: Mapped[str] = mapped_column(String(30), primary_key=True)
    mode: Mapped[str] = mapped_column(String(10))
    min: Mapped[int] = mapped_column(Integer)
    max: Mapped[int] = mapped_column(Integer)
    target_kind: Mapped[str] = mapped_column(String(20))  # latency, jobs
    target_value: Mapped[float] = mapped_column(Float)
    updated_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AutoscalePin(Base):
    """`/deploy pin APP web=5 for 2h`: the autoscaler holds this count until `until`."""

    __tablename__ = "autoscale_pins"

    app: Mapped[str] = mapped_column(String(64), primary_key=True)
    quantity: Mapped[int] = mapped_column(Integer)
    until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    pinned_by: Mapped[str] = mapped_column(String(64))


class AutoscaleDecision(Base):
    """One tick's verdict for one app, acted on or not: the autoscaler's own trail."""

    __tablename__ = "autoscale_decisions"
    __table_args__ = (
        Index("ix_autoscale_decisions_app_at", "app", "at"),
        Index("ix_autoscale_decisions_at", "at"),  # retention deletes by age alone
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    app: Mapped[str] = mapped_column(String(64))
    # web, or a worker type autoscaled from its job queue (`bot.worker.autoscale_workers`)
    process_type: Mapped[str] = mapped_column(String(30), server_default="web")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actual: Mapped[int] = mapped_column(Integer)
    desired: Mapped[int] = mapped_column(Integer)
    recommendation: Mapped[int] = mapped_column(Integer)  # before steps and stabilization
    acted: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(Text)


class AlertOutboxEntry(Base):
    """One Slack message an alert owes a channel: written in the transaction that decided
    it, sent later by the worker, so a Slack outage delays alerts and loses none.

    `kind` says how it lands: `post` a new message, `update` that incident's message in
    place, `reply` into its thread. `state` moves pending → sending → sent (or failed);
    a `sending` row whose `claimed_until` passed belongs to a sender that died.
    """

    __tablename__ = "alert_outbox"
    __table_args__ = (
        Index("ix_alert_outbox_state_next", "state", "next_attempt_at"),
        Index("ix_alert_outbox_incident_id", "incident_key", "id"),
        Index("ix_alert_outbox_sent_at", "sent_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    incident_key: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(10))  # post, update, reply
    payload: Mapped[dict] = mapped_column(JSON)  # {"text": ..., "blocks": [...] or None}
    state: Mapped[str] = mapped_column(String(10))  # pending, sending, sent, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    ts: Mapped[str | None] = mapped_column(String(32))  # Slack's ts once posted
    # Queued at; an update that replaced queued ones keeps the oldest's, for the sender's
    # give-up age.
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class IncidentRow(Base):
    """One thing going wrong with an app ("crash:myapp:web"), however many events said so:
    the key is unique, so a crash loop is one row with a count, and one Slack message."""

    __tablename__ = "incidents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    app: Mapped[str] = mapped_column(String(64), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(10))  # info, warning, critical
    state: Mapped[str] = mapped_column(String(10))  # open, resolved
    detail: Mapped[str] = mapped_column(Text)
    channel: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))  # for chat.update
    folded: Mapped[bool] = mapped_column(Boolean, server_default=false())
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    count: Mapped[int] = mapped_column(Integer)
    silenced_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))


class IncidentOpening(Base):
    """Each time an incident opened, until it resolved: its `incidents` row holds only the
    latest (a reopened one starts over), and a past day's digest and chart need each one."""

    __tablename__ = "incident_openings"
    __table_args__ = (Index("ix_incident_openings_app_opened", "app", "opened_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), index=True)
    app: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(10))
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    resolved: Mapped[bool] = mapped_column(Boolean, server_default=false())


class WebhookSubscription(Base):
    """A Heroku app webhook the bot subscribed (`/deploy watch APP`): its secret checks the
    `Heroku-Webhook-Hmac-SHA256` of every delivery for the app."""

    __tablename__ = "webhook_subscriptions"

    app: Mapped[str] = mapped_column(String(64), primary_key=True)
    webhook_id: Mapped[str | None] = mapped_column(String(64))
    secret: Mapped[str] = mapped_column(String(128))
    # The secret it replaced, while Heroku may still sign with it: a `watch` whose answer
    # failed may or may not have changed it there. A watch Heroku answers clears it.
    previous_secret: Mapped[str | None] = mapped_column(String(128))
    url: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PlatformObservation(Base):
    """The newest thing Heroku reported about an app, per kind and subject: `formation` per
    process type (value: quantity) and `release` (subject "current", value: version)."""

    __tablename__ = "platform_observations"

    app: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    subject: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(Text, server_default="")
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ApiThrottle(Base):
    """A Heroku account's last word on its API budget, for every dyno: `throttled_until`
    after a 429, `remaining` from RateLimit-Remaining. The worker's Slack 429 pauses are the
    rows `slack:outbox`, `slack:digest` and `slack:admin` (`throttled_until` only)."""

    __tablename__ = "api_throttles"

    account: Mapped[str] = mapped_column(String(64), primary_key=True)
    throttled_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    remaining: Mapped[int | None] = mapped_column(Integer)
    observed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DeployLock(Base):
    """`/deploy lock APP REASON`: while the row stands, only `user_id` may roll the app back.
    The primary key makes taking a lock atomic across web dynos."""

    __tablename__ = "deploy_locks"

    app: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    locked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WorkerHeartbeat(Base):
    """One worker process's latest tick: the web dyno reads it to tell whether the worker
    (and so autoscaling, alerts and expiry) is running, and who leads."""

    __tablename__ = "worker_heartbeats"

    worker: Mapped[str] = mapped_column(String(128), primary_key=True)  # DYNO, or host:pid
    leader: Mapped[bool] = mapped_column(Boolean)
    release: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ticked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    # Jobs failing run after run or hung in a call (`bot.worker.jobs`); None when all is well.
    trouble: Mapped[str | None] = mapped_column(String(500))
