"""The log drains the bot added: one per app, each with a secret token in its URL."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from bot.store.db import Database
from bot.store.models import Drain


def new_token() -> str:
    return secrets.token_urlsafe(24)


# What `new_token` makes (URL-safe base64), within the column's 64 characters.
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def is_token(word: str) -> bool:
    """Whether `word` could be a drain's token: anyone may post to `/drain/<word>`, and a
    NUL in it is an error from PostgreSQL rather than no drain."""
    return _TOKEN.fullmatch(word) is not None


@dataclass(frozen=True)
class DrainInfo:
    app: str
    token: str
    url: str
    drain_id: str | None

    @property
    def shown_url(self) -> str:
        """The URL with its secret cut, fit for a Slack message or a log line."""
        return self.redact(self.url)

    def redact(self, text: str) -> str:
        """`text` with this drain's secret token cut to its last four characters."""
        return text.replace(self.token, f"…{self.token[-4:]}")


class Drains:
    def __init__(self, db: Database) -> None:
        self._db = db

    def get_or_create(self, app: str, base_url: str, user_id: str, now: datetime) -> DrainInfo:
        """The app's drain, made (with a fresh token) the first time it is asked for."""
        found = self.get(app)
        if found is not None:
            return found
        token = new_token()
        self._db.insert_new(  # False: another dyno made it first, and theirs is used
            Drain,
            app=app,
            token=token,
            url=f"{base_url.rstrip('/')}/drain/{token}",
            created_by=user_id,
            created_at=now,
        )
        found = self.get(app)
        assert found is not None
        return found

    def set_drain_id(self, app: str, drain_id: str) -> None:
        with self._db.session() as session, session.begin():
            row = session.get(Drain, app)
            if row is not None:
                row.drain_id = drain_id

    def forget(self, app: str, token: str) -> None:
        """Delete the app's drain if it is still the one with `token` and Heroku never took
        it (no drain id): kept, it would read as a real drain waiting for traffic."""
        with self._db.session() as session, session.begin():
            row = session.get(Drain, app)
            if row is not None and row.token == token and row.drain_id is None:
                session.delete(row)

    def get(self, app: str) -> DrainInfo | None:
        with self._db.session() as session:
            row = session.scalar(select(Drain).where(Drain.app == app))
            return DrainInfo(row.app, row.token, row.url, row.drain_id) if row else None

    def apps(self) -> list[str]:
        """Every app the bot added a drain to, by name."""
        with self._db.session() as session:
            return sorted(session.scalars(select(Drain.app)))
