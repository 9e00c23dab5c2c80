"""Wires config into the long-lived objects every process shares: database, platforms, actions."""

from __future__ import annotations

from bot.actions import Actions
from bot.audit import AuditLog
from bot.config import Config
from bot.confirmations import Confirmations
from bot.db import Database
from bot.platforms.base import Platform, PlatformError
from bot.platforms.heroku import HerokuPlatform


class Services:
    def __init__(self, config: Config, *, source: str = "slack") -> None:
        self.config = config
        self.source = source
        self.db = Database(config.database_url)
        self.audit = AuditLog(self.db)
        self.confirmations = Confirmations(self.db)
        # Built without any network call: start-up never talks to Heroku.
        self._heroku = (
            HerokuPlatform(config.heroku_api_key, config.heroku_api_url)
            if config.heroku_api_key
            else None
        )
        self.actions = Actions(self.platform_for, self.audit, self.confirmations, config.admins)

    def platform_for(self, app: str) -> Platform:
        if self._heroku is None:
            raise PlatformError(
                "The bot has no Heroku API key. An admin should set HEROKU_API_KEY."
            )
        return self._heroku

    def migrate_if_empty_sqlite(self) -> None:
        """The embedded default needs no release phase: create the tables on first start."""
        if self.db.is_sqlite and self.db.needs_migration():
            self.db.migrate()
