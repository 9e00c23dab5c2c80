"""The secret of each app's Heroku webhook subscription (`/deploy watch` saves it; the
web dyno's webhook intake looks it up to verify a delivery)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from bot.store.db import Database
from bot.store.models import WebhookSubscription

_COLUMNS = tuple(column.key for column in WebhookSubscription.__table__.columns)


class WebhookSecrets:
    """The secret of each app's subscription, for `heroku_webhooks(secrets.accepted, …)`."""

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
        previous: str | None = None,
    ) -> None:
        """Remember (or replace) the app's subscription; `previous`, a secret Heroku may
        still sign with, is taken too until a save without it."""
        with self._db.session() as session, session.begin():
            session.merge(
                WebhookSubscription(
                    app=app,
                    webhook_id=webhook_id,
                    secret=secret,
                    previous_secret=previous,
                    url=url,
                    created_by=created_by,
                    created_at=now,
                )
            )

    @contextmanager
    def rotating(self, app: str) -> Iterator[None]:
        """One rotation of `app`'s secret at a time, across processes: two `/deploy watch`
        at once had left the bot storing one secret and Heroku signing with the other."""
        with self._db.session() as session, session.begin():
            self._db.hold(session, f"watch:{app}")
            yield

    def held(self, app: str) -> dict[str, Any] | None:
        """The app's subscription as saved, for `put_back` (None: there is none)."""
        with self._db.session() as session:
            row = session.get(WebhookSubscription, app)
            if row is None:
                return None
            return {column: getattr(row, column) for column in _COLUMNS}

    def put_back(self, app: str, held: dict[str, Any] | None) -> None:
        """Restore what `held` read: the secret Heroku still signs with when a new one it
        never accepted had replaced it, or no row when there was none."""
        with self._db.session() as session, session.begin():
            if held is None:
                session.execute(delete(WebhookSubscription).where(WebhookSubscription.app == app))
            else:
                session.merge(WebhookSubscription(**held))

    def accepted(self, app: str) -> tuple[str, ...]:
        """The secrets a delivery for `app` may be signed with, for `heroku_webhooks`: the
        current one, and the one it replaced while Heroku may still sign with that."""
        with self._db.session() as session:
            row = session.execute(
                select(WebhookSubscription.secret, WebhookSubscription.previous_secret).where(
                    WebhookSubscription.app == app
                )
            ).first()
        return () if row is None else tuple(s for s in row if s)
