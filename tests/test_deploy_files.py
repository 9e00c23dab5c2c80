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


def test_app_json_pins_the_web_concurrency_the_connection_budget_counts():
    # Unset, Heroku's Python buildpack sets WEB_CONCURRENCY at each boot from the dyno's
    # size (2 on Basic, 4 on Standard-2X, 17 on Performance-L): resizing the web dyno
    # quietly multiplied its database connections past Essential-0's 20.
    app = json.loads((ROOT / "app.json").read_text())
    operations = (ROOT / "docs" / "operations.md").read_text()
    assert app["env"]["WEB_CONCURRENCY"].get("value") == "2"
    assert "`WEB_CONCURRENCY=2`" in operations and "buildpack" in operations


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


def _pins(name: str) -> set[str]:
    """The distributions a requirements file pins, by normalized name."""
    pins = set()
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-r"):
            pins.add(re.sub(r"[-_.]+", "-", line.split("==")[0].split("[")[0]).lower())
    return pins


def _imported_distributions(*folders: str) -> dict[str, str]:
    """Third-party distribution → a file that imports it, over every module in `folders`."""
    import ast
    import sys
    from importlib.metadata import packages_distributions

    owners = packages_distributions()
    found: dict[str, str] = {}
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top in sys.stdlib_module_names or top not in owners:
                        continue
                    for dist in owners[top]:
                        key = re.sub(r"[-_.]+", "-", dist).lower()
                        found.setdefault(key, str(path.relative_to(ROOT)))
    return found


def test_every_package_the_code_imports_is_pinned_and_explained():
    # The fake Heroku imported `referencing` (jsonschema's $ref resolver) directly while
    # only jsonschema was pinned: a jsonschema release that dropped or moved it would have
    # broken the sandbox and the tests with nothing in the requirements to say why.
    pinned = _pins("requirements.txt") | _pins("requirements-dev.txt")
    imported = _imported_distributions("bot", "handlers", "policies", "tests", "benchmarks")
    imported.pop("deploybot", None)  # the project itself, installed with `pip install -e .`
    unpinned = {dist: path for dist, path in imported.items() if dist not in pinned}
    assert unpinned == {}, "pin these in requirements.txt or requirements-dev.txt"
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("\n## Why each dependency is here\n") :].lower()
    unexplained = sorted(dist for dist in pinned if dist not in table)
    assert unexplained == [], "say in the README's dependency table why each is here"
