"""The secret of each app's Heroku webhook subscription (`/deploy watch` saves it; the
web dyno's webhook intake looks it up to verify a delivery)."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select

from bot.store.db import Database
from bot.store.models import WebhookSubscription


class WebhookSecrets:
    """The secret of each app's subscription, for `heroku_webhooks(secrets.lookup, …)`."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @staticmethod
    def new_secret() -> str:
        return secrets.token_hex(32)

    def save(
        self,
        app: str,
        secret: str,
        url: str,
        created_by: str,
        now: datetime,
        webhook_id: str | None = None,
    ) -> None:
        """Remember (or replace) the app's subscription, after Heroku accepted it."""
        with self._db.session() as session, session.begin():
            session.merge(
                WebhookSubscription(
                    app=app,
                    webhook_id=webhook_id,
                    secret=secret,
                    url=url,
                    created_by=created_by,
                    created_at=now,
                )
            )

    def lookup(self, app: str) -> str | None:
        with self._db.session() as session:
            return session.scalar(
                select(WebhookSubscription.secret).where(WebhookSubscription.app == app)
            )
