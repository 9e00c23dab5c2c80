"""The deployment files agree with the code: Procfile, app.json, slack-manifest.yml."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = {
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "HEROKU_API_KEY",
    "DEPLOYBOT_ADMINS",
    "SLACK_API_URL",
    "HEROKU_API_URL",
}
OPTIONAL = {"DEPLOYBOT_URL"}  # only `/deploy drain` needs it
# Operators' knobs, read where they act and explained in docs/operations.md.
TUNING = {"DEPLOYBOT_DB_POOL_SIZE": ROOT / "bot" / "store" / "db.py"}


def test_procfile_has_release_web_and_worker():
    kinds = [line.split(":")[0] for line in (ROOT / "Procfile").read_text().splitlines() if line]
    assert kinds == ["release", "web", "worker"]


def test_app_json_describes_every_variable_and_adds_postgres():
    app = json.loads((ROOT / "app.json").read_text())
    assert set(app["env"]) >= CONTRACT | OPTIONAL  # tests/test_docs.py checks the rest
    assert all(spec["description"] for spec in app["env"].values())
    assert any(addon["plan"].startswith("heroku-postgresql") for addon in app["addons"])
    assert app["formation"]["web"]["quantity"] == 1
    assert app["formation"]["worker"]["quantity"] == 1


def test_every_variable_is_read_by_the_config_and_documented():
    source = (ROOT / "bot" / "config.py").read_text()
    readme = (ROOT / "README.md").read_text()
    for name in [*CONTRACT, *OPTIONAL, "DATABASE_URL", "PORT", "SLACK_APP_TOKEN"]:
        assert f'"{name}"' in source, name
        assert f"`{name}`" in readme, name


def test_every_tuning_variable_is_read_and_documented():
    operations = (ROOT / "docs" / "operations.md").read_text()
    for name, reader in TUNING.items():
        assert f'"{name}"' in reader.read_text(), name
        assert f"`{name}`" in operations, name


def test_slack_manifest_points_every_url_at_the_one_endpoint():
    manifest = yaml.safe_load((ROOT / "slack-manifest.yml").read_text())
    settings = manifest["settings"]
    urls = [
        manifest["features"]["slash_commands"][0]["url"],
        settings["event_subscriptions"]["request_url"],
        settings["interactivity"]["request_url"],
    ]
    assert all(re.match(r"^https://[^/]+/slack/events$", url) for url in urls)
    assert manifest["features"]["slash_commands"][0]["command"] == "/deploy"
    assert {"commands", "chat:write", "usergroups:read", "files:write"} <= set(
        manifest["oauth_config"]["scopes"]["bot"]
    )
    assert settings["event_subscriptions"]["bot_events"] == ["app_home_opened"]


def test_requirements_are_pinned_exactly():
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith(("#", "-r")):
                assert re.match(r"^[A-Za-z0-9_.\[\]-]+==[0-9][\w.]*$", line), line
