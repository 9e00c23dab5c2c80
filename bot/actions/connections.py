"""`/deploy drain` and `/deploy watch`: connect a Heroku app's router logs (a log drain) and
its events (an app webhook) to this bot's web dyno, audited like every change."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from bot.actions.results import Reply, Resolved, Result
from bot.platforms.base import PlatformError
from bot.store.audit import Actor, AuditLog
from bot.store.drains import Drains
from bot.store.webhook_secrets import WebhookSecrets
from policies.commands import Command
from policies.heroku_webhooks import WEBHOOK_PATH
from policies.slack_text import channel, code

# Hosts are `APP-<12 random characters>.herokuapp.com` for apps made since 2023: an example
# host would be copied as is, so say where the real one is shown.
SET_PUBLIC_URL = "An admin should set DEPLOYBOT_URL to the bot's Web URL (`heroku apps:info`)."


class Connections:
    def __init__(
        self,
        audit: AuditLog,
        now: Callable[[], datetime],
        public_url: str | None,
        drains: Drains | None,
        webhook_secrets: WebhookSecrets | None,
    ) -> None:
        self._audit = audit
        self._now = now
        self._public_url = public_url  # DEPLOYBOT_URL: where Heroku sends logs and events
        self._drains = drains
        self._webhook_secrets = webhook_secrets

    def drain(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        app = command.app or ""
        if resolved.target.platform != "heroku" or not hasattr(resolved.platform, "add_log_drain"):
            return Reply(
                f"`{app}` is not a Heroku app: log drains are a Heroku feature. "
                "Beanstalk traffic comes from its health reports and CloudWatch."
            )
        if self._drains is None or not self._public_url:
            return Reply(
                "I do not know my own public URL, so Heroku could not reach a drain. "
                + SET_PUBLIC_URL
            )
        kept = self._drains.get(app)
        drain = kept or self._drains.get_or_create(
            app, self._public_url, actor.user_id, self._now()
        )
        entry = self._audit.start(
            actor, "drain", app, command.text(), None, {"url": drain.shown_url}
        )
        try:
            drain_id = resolved.platform.add_log_drain(resolved.target.name, drain.url)
        except PlatformError as error:
            # Heroku's refusal may quote the URL ("Url … is not a valid drain URL"): its
            # token must reach neither the audit row, nor `/deploy history`, nor the reply.
            error.args = (drain.redact(str(error)),)
            if kept is None and error.changed is False:
                # Heroku surely added nothing: the row made for it goes too. One that may
                # have landed stays, so the drain's deliveries are still taken.
                self._drains.forget(app, drain.token)
            self._audit.finish(entry, error.outcome, error=str(error))
            error.audited = True
            raise
        self._drains.set_drain_id(app, drain_id)
        self._audit.finish(entry, "ok", after={"drain_id": drain_id})
        # Heroku finds a drain already there rather than adding a second one; a second
        # `drain` had been told "now drains" as if something had changed.
        already = kept is not None and kept.drain_id == drain_id
        return Reply(
            f"`{app}` {'already drains' if already else 'now drains'} its logs to me "
            f"({drain.shown_url}, Heroku drain {code(drain_id)}). "
            + (
                f"`/deploy metrics {app}` shows its traffic."
                if already
                else f"Traffic shows in `/deploy metrics {app}` within a minute."
            ),
            made=not already,
        )

    def watch(self, actor: Actor, resolved: Resolved, command: Command) -> Result:
        app = command.app or ""
        if resolved.target.platform != "heroku" or not hasattr(resolved.platform, "add_webhook"):
            return Reply(
                f"`{app}` is not a Heroku app: app webhooks are a Heroku feature. "
                "I watch Beanstalk environments through their health reports already."
            )
        if self._webhook_secrets is None or not self._public_url:
            return Reply(
                "I do not know my own public URL, so Heroku could not reach me. " + SET_PUBLIC_URL
            )
        name = resolved.target.name
        url = f"{self._public_url.rstrip('/')}{WEBHOOK_PATH}"
        secret = self._webhook_secrets.new_secret()
        entry = self._audit.start(actor, "watch", app, command.text(), None, {"url": url})
        with self._webhook_secrets.rotating(name):
            held = self._webhook_secrets.held(name)
            try:
                # Saved first: Heroku may deliver before it answers, and a delivery signed
                # with a secret we do not know yet would be refused. The old one is taken
                # too until Heroku answers: it signs with that until it has switched.
                previous = held["secret"] if held else None
                self._webhook_secrets.save(
                    name, secret, url, actor.user_id, self._now(), previous=previous
                )
                webhook_id = resolved.platform.add_webhook(name, url, secret)
            except PlatformError as error:
                if error.changed is False:
                    # Heroku kept the secret it had: so must we, or every delivery of a
                    # watch that worked is refused from now on, and nobody is told.
                    self._webhook_secrets.put_back(name, held)
                # Otherwise it may have taken either (a 503, no answer): both stay taken,
                # or every delivery had been refused while Heroku signed with the old one.
                self._audit.finish(entry, error.outcome, error=str(error))
                error.audited = True
                raise
            self._webhook_secrets.save(name, secret, url, actor.user_id, self._now(), webhook_id)
        self._audit.finish(entry, "ok", after={"webhook_id": webhook_id})
        where = (
            f"and alerts go to {channel(resolved.target.channel)}"
            if resolved.target.channel
            else f"but {code(app)} has no channel in the registry, so nobody is told: add `channel:`"
        )
        # Heroku keeps one webhook per URL: a second `watch` had been told "now reach me",
        # as if nothing had been watched before. It renews the secret, and says so.
        if held is not None and held["webhook_id"] == webhook_id:
            watching = (
                f"I am watching `{app}` already (Heroku webhook {code(webhook_id)}); its signing "
                f"secret is renewed, {where}."
            )
        else:
            watching = (
                f"I am watching `{app}`: dyno crashes, releases and formation changes now reach "
                f"me (Heroku webhook {code(webhook_id)}), {where}."
            )
        return Reply(f"{watching} `/deploy alerts {app}` lists what is open.")
