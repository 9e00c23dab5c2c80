"""The environment contract of a web dyno whose vendors are this package's fakes.

The gunicorn tests and the ack-latency benchmark start the Procfile's web line with it, so
the process sees exactly what Heroku would give it and nothing of the parent's.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.sandbox.fakes.heroku import FakeHeroku
from bot.sandbox.fakes.slack import FakeSlack


@dataclass(frozen=True)
class FakeEndpoints:
    """Where the fakes listen: all a dyno needs, and picklable for another process."""

    heroku_url: str
    slack_api_url: str
    slack_bot_token: str

    @classmethod
    def of(cls, heroku: FakeHeroku, slack: FakeSlack) -> FakeEndpoints:
        return cls(heroku.url, slack.api_url, slack.bot_token)


def web_dyno_env(
    *,
    database_url: str,
    fakes: FakeEndpoints,
    heroku_key: str,
    signing_secret: str,
    admin: str,
) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": fakes.slack_bot_token,
        "SLACK_SIGNING_SECRET": signing_secret,
        "SLACK_API_URL": fakes.slack_api_url,
        "HEROKU_API_KEY": heroku_key,
        "HEROKU_API_URL": fakes.heroku_url,
        "DEPLOYBOT_ADMINS": admin,
    }
