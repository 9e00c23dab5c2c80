"""Clients of the platforms the bot manages, behind one `Platform` interface."""

from bot.platforms.base import (
    AppStatus,
    Dyno,
    Formation,
    Platform,
    PlatformError,
    Release,
    Targets,
)

__all__ = ["AppStatus", "Dyno", "Formation", "Platform", "PlatformError", "Release", "Targets"]
