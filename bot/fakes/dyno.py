"""The environment contract of a web dyno whose vendors are this package's fakes.

The gunicorn tests and the ack-latency benchmark start the Procfile's web line with it, so
the process sees exactly what Heroku would give it and nothing of the parent's.
"""

from __future__ import annotations

from bot.fakes.heroku import FakeHeroku
from bot.fakes.slack import FakeSlack


def web_dyno_env(
    *,
    database_url: str,
    heroku: FakeHeroku,
    heroku_key: str,
    slack: FakeSlack,
    signing_secret: str,
    admin: str,
) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": signing_secret,
        "SLACK_API_URL": slack.api_url,
        "HEROKU_API_KEY": heroku_key,
        "HEROKU_API_URL": heroku.url,
        "DEPLOYBOT_ADMINS": admin,
    }
