"""A platform client as one app in the registry sees it: what it raises names the app by
its alias, the name the user typed, not by the platform's own name for it (a Beanstalk
environment's, a Heroku app's behind an alias).

`bot.services` hands every caller one of these (`Resolved.platform`), so the replies, the
audit trail the team reads, follow-ups and App Home's cards say what was typed, however
many places catch a platform's error and pass its words on (`AboutApp.name_as`).
"""

from __future__ import annotations

from typing import Any

from bot.platforms.base import AboutApp


class Registered:
    """`platform`'s attributes and calls, its errors about `name` said as about `alias`."""

    def __init__(self, platform: Any, name: str, alias: str) -> None:
        self._platform = platform
        self._name = name
        self._alias = alias

    def __getattr__(self, attribute: str) -> Any:
        found = getattr(self._platform, attribute)
        if not callable(found):
            return found

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return found(*args, **kwargs)
            except AboutApp as error:
                error.name_as(self._name, self._alias)
                raise

        return call
