"""The README is the user's guide, and it must not drift from the code: every command in its
table exists in the grammar (and every verb is in the table), every environment variable the
code reads is in its configuration reference and in app.json, the Heroku Button deploys this
app.json, and the IAM policy grants every AWS operation the code calls."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from policies.commands import VERBS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
APP_JSON = json.loads((ROOT / "app.json").read_text())
# Heroku sets these itself (Postgres add-on, the router, runtime-dyno-metadata): a Button
# must not ask for them.
# Set only by a benchmark: a Heroku Button form should not offer them.
BENCH_ONLY = {"DEPLOYBOT_BENCH_CLOCK"}
SET_BY_HEROKU = {
    "DATABASE_URL",
    "PORT",
    "HEROKU_APP_NAME",
    "HEROKU_RELEASE_VERSION",
    "HEROKU_SLUG_COMMIT",
    "DYNO",
}
_ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]{2,}$")


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def _runtime_sources() -> list[Path]:
    """The code that runs in production: everything but the sandbox and its fakes."""
    return [
        path
        for package in ("bot", "handlers", "policies")
        for path in (ROOT / package).rglob("*.py")
        if "sandbox" not in path.parts and "migrations" not in path.parts
    ]


def _env_reads(tree: ast.AST) -> set[str]:
    """Names read with env.get("X"), os.environ["X"], os.getenv("X"), seconds_setting("X", …) or _count("X", …),
    the name given literally or as a module constant (`POOL_SIZE_ENV = "X"`)."""
    constants = {
        target.id: node.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name) and isinstance(node.value.value, str)
    }
    found = set()
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner = func.value if isinstance(func, ast.Attribute) else None
            # `(os.environ if env is None else env).get(…)` names its mapping in a branch.
            owners = {
                getattr(part, "attr", None) or getattr(part, "id", None)
                for part in (ast.walk(owner) if owner is not None else ())
            }
            # A bare `environ` is a WSGI request's (CONTENT_LENGTH, PATH_INFO), not os's.
            mapping = {"environ", "os"} <= owners or owners & {"env", "_env"}
            if (called == "get" and mapping) or called in (
                "getenv",
                "seconds_setting",
                "_count",  # gunicorn_conf's worker and thread counts
            ):
                name = node.args[0]
        elif isinstance(node, ast.Subscript) and getattr(node.value, "attr", None) == "environ":
            name = node.slice
        if isinstance(name, ast.Name) and name.id in constants:
            name = ast.Constant(constants[name.id])
        if (
            isinstance(name, ast.Constant)
            and isinstance(name.value, str)
            and _ENV_NAME.match(name.value)
        ):
            found.add(name.value)
    return found


def env_vars_read() -> set[str]:
    names: set[str] = set()
    for path in _runtime_sources():
        names |= _env_reads(ast.parse(path.read_text(), str(path)))
    return names


def test_the_env_var_finder_sees_every_kind_of_read() -> None:
    source = 'env.get("A_B")\nos.environ["C_D"]\nos.getenv("E_F")\nseconds_setting("G_H", 5)\nx.get("no")'
    source += '\nNAME = "I_J"\n(os.environ if env is None else env).get(NAME)'
    source += '\nenviron.get("PATH_INFO")\nenviron["CONTENT_LENGTH"]'  # WSGI's, not os's
    assert _env_reads(ast.parse(source)) == {"A_B", "C_D", "E_F", "G_H", "I_J"}


def test_every_env_var_the_code_reads_is_documented_and_in_app_json() -> None:
    names = env_vars_read()
    assert {"SLACK_BOT_TOKEN", "DEPLOYBOT_AUTOSCALE_SECONDS", "WEB_CONCURRENCY"} <= names
    reference = _section("Configuration")
    missing_in_readme = sorted(n for n in names if f"`{n}`" not in reference)
    assert missing_in_readme == [], "add these to the README's configuration table"
    missing_in_app_json = sorted(names - SET_BY_HEROKU - BENCH_ONLY - set(APP_JSON["env"]))
    assert missing_in_app_json == [], "add these to app.json's env"
    assert not SET_BY_HEROKU & set(APP_JSON["env"]), "Heroku sets these itself"


def test_every_command_in_the_table_is_in_the_grammar_and_every_verb_in_the_table() -> None:
    first_cells = re.findall(r"^\| (`/deploy .*?) \| ", _section("Commands"), re.MULTILINE)
    assert first_cells, "the README has a command table"
    # A row may name a second verb in its first cell (`releases APP [N]`, `builds APP [N]`).
    words = [re.findall(r"`(?:/deploy )?(\w+)", cell) for cell in first_cells]
    assert sorted({each[0] for each in words} - set(VERBS)) == []
    assert sorted(set(VERBS) - {word for each in words for word in each}) == []


def test_the_heroku_button_deploys_this_app_json_with_a_worker() -> None:
    buttons = re.findall(r"\(https://www\.heroku\.com/deploy\?template=([^)\s]+)\)", README)
    assert buttons == [APP_JSON["repository"]]
    assert APP_JSON["formation"]["worker"]["quantity"] == 1
    assert APP_JSON["formation"]["web"]["quantity"] == 1


def test_the_iam_policy_grants_every_aws_operation_the_code_calls() -> None:
    block = re.search(r"```json\n(.*?)```", _section("Beanstalk and AWS"), re.DOTALL)
    assert block is not None
    policy = json.loads(block.group(1))
    granted = {action for s in policy["Statement"] for action in s["Action"]}
    calls: set[str] = set()
    for path in (ROOT / "bot" / "platforms").glob("*.py"):
        text = path.read_text()
        service = "cloudwatch" if "cloudwatch" in path.name else "elasticbeanstalk"
        # `_change` is `_call` for a change a follow-up reads the events of.
        for operation in re.findall(r'_(?:call|change)\(\s*"([a-z_]+)"', text):
            calls.add(f"{service}:{operation.title().replace('_', '')}")
        for operation in re.findall(r"cloudwatch\.([a-z_]+)\(", text):
            calls.add(f"cloudwatch:{operation.title().replace('_', '')}")
    assert "elasticbeanstalk:UpdateEnvironment" in calls
    # IAM matches action names case-insensitively: `swap_environment_cnames` is granted as
    # SwapEnvironmentCNAMEs, which .title() spells SwapEnvironmentCnames.
    assert sorted({c.lower() for c in calls} - {g.lower() for g in granted}) == []


def test_every_document_the_readme_links_to_exists() -> None:
    for link in re.findall(r"\]\(((?:docs/)?[\w./-]+\.(?:md|yml|json))\)", README):
        assert (ROOT / link).exists(), link


def test_the_readme_stays_a_guide() -> None:
    order = [
        "Try it",
        "Install in Slack",
        "Deploy on Heroku",
        "Beanstalk and AWS",
        "Configuration",
        "Commands",
    ]
    positions = [README.index(f"\n## {title}\n") for title in order]
    assert positions == sorted(positions)
    assert len(README.splitlines()) <= 270


def test_the_operations_table_states_the_decision_retention_the_worker_applies() -> None:
    # It said "autoscale decisions (2 days)" while the worker kept a thinned week past that.
    from bot.store.autoscale_settings import THIN_SECONDS
    from bot.worker.main import KEEP_DECISIONS, KEEP_THINNED_DECISIONS

    table = (ROOT / "docs" / "operations.md").read_text()
    kept = (
        f"autoscale decisions (whole for {KEEP_DECISIONS.days} days, then one in "
        f"{THIN_SECONDS // 15} and every scale action until {KEEP_THINNED_DECISIONS.days} days"
    )
    assert kept in table
