"""The app registry: validation with file and line, resolution, suggestions, check-config."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from bot.registry import Registry, RegistryError, UnknownApp
from policies.detectors import DEFAULT_DETECTOR_RULES
from policies.names import suggest
from policies.sizes import check_size

ROOT = Path(__file__).resolve().parent.parent

GOOD = """\
heroku:
  allow_unlisted: false
apps:
  web-prod:
    platform: heroku
    app: acme-web-prod
    api_key_env: HEROKU_API_KEY_PROD
    channel: C012AB3CD
  web-staging:
    platform: heroku
    api_key_env: HEROKU_API_KEY_STAGING
  shop:
    platform: beanstalk
    environment: shop-prod
    region: eu-west-1
    aws_profile: prod
    max: 8
"""


def test_a_good_registry_resolves_each_alias():
    registry = Registry.parse(GOOD, "deploybot.yml")
    prod = registry.resolve("web-prod")
    assert (prod.platform, prod.name, prod.api_key_env, prod.channel) == (
        "heroku",
        "acme-web-prod",
        "HEROKU_API_KEY_PROD",
        "C012AB3CD",
    )
    assert registry.resolve("web-staging").name == "web-staging"
    shop = registry.resolve("shop")
    assert (shop.platform, shop.name, shop.region, shop.aws_profile, shop.max) == (
        "beanstalk",
        "shop-prod",
        "eu-west-1",
        "prod",
        8,
    )


def test_unknown_names_get_suggestions_and_unlisted_heroku_apps_are_refused():
    registry = Registry.parse(GOOD)
    with pytest.raises(UnknownApp, match=r"Did you mean `web-prod`"):
        registry.resolve("web-prd")
    with pytest.raises(UnknownApp, match="`/deploy apps` lists them"):
        registry.resolve("zzz")


def test_no_registry_reaches_every_heroku_app_by_name():
    target = Registry.empty().resolve("anything-at-all")
    assert (target.platform, target.name, target.api_key_env) == (
        "heroku",
        "anything-at-all",
        "HEROKU_API_KEY",
    )


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        ("apps:\n  shop:\n    platform: beanstalk\n    environment: shop-prod\n", 3, "region"),
        (
            "apps:\n  shop:\n    platform: beanstalk\n    environment: shop-prod\n"
            "    region: Europe\n",
            5,
            "region",
        ),
        ("apps:\n  a:\n    platform: gcp\n", 3, "platform"),
        ("apps:\n  web:\n    platform: heroku\n    api_key_env: lower-case\n", 4, "api_key_env"),
        ("apps:\n  web:\n    platform: heroku\n    channel: general\n", 4, "channel"),
        # Longer than a Slack ID, and than the 32 characters the alert outbox keeps.
        ("apps:\n  web:\n    platform: heroku\n    channel: C" + "A" * 40 + "\n", 4, "channel"),
        ("apps:\n  web:\n    platform: heroku\n    colour: blue\n", 4, "colour"),
        ("apps:\n  Web_App:\n    platform: heroku\n", 2, "alias"),
        ("apps: [1, 2\n", 2, "not valid YAML"),
        ("- just a list\n", 1, "mapping"),
        ("apps:\n  web:\n    platform: heroku\n    max: -1\n", 4, "max"),
        (
            "apps:\n  web:\n    platform: heroku\n    autoscale:\n      schedule:\n"
            "        - days: weekdays\n          from: '08:00'\n          to: '18:00'\n"
            "          min: 2\n",
            6,
            "days `weekdays`: use `mon`, `tue`",
        ),
        (
            "apps:\n  web:\n    platform: heroku\n    autoscale:\n      schedule:\n"
            "        - from: '08:00'\n          until: '18:00'\n",
            7,
            "`until` is not a setting of a `schedule` entry; its settings are `days`, `from`, `to`",
        ),
        (
            "apps:\n  web:\n    platform: heroku\n    autoscale:\n      down_stabilization: 2h\n",
            5,
            "`2h` is longer than an hour, the longest a scale-down may wait",
        ),
        (
            "apps:\n  web:\n    platform: heroku\n    autoscale:\n      down_stabilization: soon\n",
            5,
            "`soon` is not a duration",
        ),
        # Past timedelta's range it had raised OverflowError out of the loader.
        (
            "apps:\n  web:\n    platform: heroku\n    autoscale:\n"
            "      down_stabilization: 99999999999999999999m\n",
            5,
            "`99999999999999999999m` is far too long a duration",
        ),
        (
            "apps:\n  web:\n    platform: heroku\n    max: 4\n    autoscale:\n"
            "      schedule:\n        - from: '08:00'\n          to: '18:00'\n"
            "          min: 6\n",
            3,
            "asks for 6 web, above the app's max of 4",
        ),
        # YAML 1.1 reads an unquoted 18:00 as the base-60 number 1080 (08:00 stays text):
        # it had been "Input should be a valid string", about a time that looks right.
        (
            "apps:\n  web:\n    platform: heroku\n    autoscale:\n      schedule:\n"
            "        - from: 08:00\n          to: 18:00\n          min: 2\n",
            7,
            'schedule.0.to: write the time in quotes, like "18:00"; unquoted, YAML reads '
            "18:00 as the number 1080",
        ),
        # Past the `https://` the address went unread until the tick, which then said
        # "the connection dropped" of a port that cannot be.
        (
            "apps:\n  web:\n    platform: heroku\n    autoscale:\n"
            "      queue_url: https://web.example.com:99999\n",
            5,
            "autoscale.queue_url: that is no address the bot can call; write it as "
            "https://HOST or https://HOST:PORT",
        ),
        (
            "apps:\n  web:\n    platform: heroku\n    channel: CWEB\n    digest: 9:30\n",
            5,
            'digest: write the time in quotes, like "09:30"; unquoted, YAML reads 9:30 as '
            "the number 570",
        ),
    ],
)
def test_a_broken_registry_names_the_file_line_and_reason(text, line, says):
    with pytest.raises(RegistryError) as caught:
        Registry.parse(text, "deploybot.yml")
    message = str(caught.value)
    assert message.startswith(f"deploybot.yml:{line}:"), message
    assert says in message


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (
            "apps:\n  shop:\n    platform: beanstalk\n    environment: shop-prod\n"
            "    regoin: eu-west-1\n",
            "deploybot.yml:5: `regoin` is not a setting of an app; did you mean `region`?",
        ),
        (
            "apps:\n  web:\n    platform: heroku\n    guardrails:\n      mx:\n        web: 3\n",
            "deploybot.yml:5: `mx` is not a setting of `guardrails`; did you mean `max`?",
        ),
        (
            "heroku:\n  alow_unlisted: true\n",
            "deploybot.yml:2: `alow_unlisted` is not a setting "
            "of `heroku`; did you mean `allow_unlisted`?",
        ),
        (
            "aps: {}\n",
            "deploybot.yml:1: `aps` is not a setting of the registry; did you mean `apps`?",
        ),
    ],
)
def test_a_misspelled_setting_is_named_at_its_own_line_with_the_closest_one(text, says):
    # A typo'd `regoin:` was reported as "region: Field required" at the entry's line.
    with pytest.raises(RegistryError) as caught:
        Registry.parse(text, "deploybot.yml")
    assert str(caught.value) == says


def test_problems_name_missing_credentials():
    registry = Registry.parse(GOOD)
    problems = registry.problems({"HEROKU_API_KEY_PROD": "x"})
    assert problems == [
        "environment variable HEROKU_API_KEY_STAGING is not set (used by web-staging)"
    ]


SLACK_SETTINGS = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"}


def run_check_config(tmp_path, text: str, slack: bool = True, **env: str):
    path = tmp_path / "deploybot.yml"
    path.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "bot", "check-config", str(path)],
        env={
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(ROOT),
            **(SLACK_SETTINGS if slack else {}),
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def aws_files(tmp_path, profiles: str) -> dict[str, str]:
    """An AWS credentials file with `profiles`, and the variables that point boto3 at it."""
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(profiles)
    return {
        "AWS_SHARED_CREDENTIALS_FILE": str(credentials),
        "AWS_CONFIG_FILE": str(tmp_path / "aws-config-absent"),
    }


PROD_PROFILE = "[prod]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = x\n"


def test_check_config_accepts_a_good_file_and_rejects_a_broken_one(tmp_path):
    good = run_check_config(
        tmp_path,
        GOOD,
        HEROKU_API_KEY_PROD="x",
        HEROKU_API_KEY_STAGING="y",
        **aws_files(tmp_path, PROD_PROFILE),
    )
    assert good.returncode == 0, good.stderr
    assert "shop: beanstalk shop-prod (eu-west-1)" in good.stdout
    missing = run_check_config(
        tmp_path, GOOD, HEROKU_API_KEY_PROD="x", **aws_files(tmp_path, PROD_PROFILE)
    )
    assert missing.returncode == 1
    assert "HEROKU_API_KEY_STAGING is not set" in missing.stderr
    broken = run_check_config(tmp_path, GOOD.replace("eu-west-1", "mars"))
    assert broken.returncode == 2
    assert "deploybot.yml:15:" in broken.stderr and "Traceback" not in broken.stderr


@pytest.mark.parametrize("text", ["", "# apps to come\n", "apps: {}\n"])
def test_check_config_warns_that_a_file_listing_no_apps_reaches_none(tmp_path, text):
    # An empty file (the wrong DEPLOYBOT_CONFIG, say) had been answered "ok": the bot then
    # answered every command with an unknown app. It stays loadable (tests and a
    # bot being set up use one), so this is a warning, not a refusal.
    done = run_check_config(tmp_path, text)
    assert done.returncode == 0, done.stderr
    assert (
        f"warning: {tmp_path / 'deploybot.yml'} lists no apps, so the bot can reach none; add "
        "them under `apps:` (docs/registry.md), or write `heroku: {allow_unlisted: true}`"
    ) in done.stderr
    unlisted = run_check_config(tmp_path, "heroku:\n  allow_unlisted: true\n", HEROKU_API_KEY="k")
    assert unlisted.returncode == 0 and "warning" not in unlisted.stderr, unlisted.stderr


def test_autoscale_settings_on_a_beanstalk_environment_are_said_to_be_unread():
    # docs/registry.md's own example gave `shop` a schedule, which nothing ever applied:
    # `autoscale shop on` is refused, as the environment's Auto Scaling group scales it.
    text = (
        "apps:\n  shop:\n    platform: beanstalk\n    environment: shop-prod\n"
        "    region: eu-west-1\n    autoscale:\n      down_stabilization: 1m\n"
        "  web:\n    platform: heroku\n    autoscale:\n      down_stabilization: 1m\n"
    )
    assert Registry.parse(text, "deploybot.yml").warnings() == [
        "`shop` is an Elastic Beanstalk environment, which its Auto Scaling group scales "
        "(MinSize/MaxSize in Beanstalk), so the bot reads nothing under its `autoscale:`"
    ]
    plain = text.replace("    autoscale:\n      down_stabilization: 1m\n  web", "  web")
    assert Registry.parse(plain, "deploybot.yml").warnings() == []


def test_check_config_names_the_slack_settings_the_web_dyno_needs(tmp_path):
    keys = {"HEROKU_API_KEY_PROD": "x", "HEROKU_API_KEY_STAGING": "y"}
    # It had said ok, and `serve` then refused to start.
    done = run_check_config(
        tmp_path, GOOD, slack=False, **keys, **aws_files(tmp_path, PROD_PROFILE)
    )
    assert done.returncode == 1
    assert "SLACK_BOT_TOKEN is not set: the web dyno needs it" in done.stderr
    assert "SLACK_SIGNING_SECRET is not set: the web dyno needs it" in done.stderr


def test_check_config_names_beanstalk_apps_whose_aws_credentials_are_missing(tmp_path):
    keys = {"HEROKU_API_KEY_PROD": "x", "HEROKU_API_KEY_STAGING": "y"}
    no_profile = run_check_config(tmp_path, GOOD, **keys, **aws_files(tmp_path, "[other]\n"))
    assert no_profile.returncode == 1
    assert "shop: AWS profile `prod` is not in" in no_profile.stderr
    chain = GOOD.replace("    aws_profile: prod\n", "")
    nothing = run_check_config(tmp_path, chain, **keys, **aws_files(tmp_path, ""))
    assert nothing.returncode == 1
    assert "shop: no AWS credentials found through the default chain" in nothing.stderr
    from_env = run_check_config(
        tmp_path,
        chain,
        **keys,
        **aws_files(tmp_path, ""),
        AWS_ACCESS_KEY_ID="AKIAEXAMPLE",
        AWS_SECRET_ACCESS_KEY="x",
    )
    assert from_env.returncode == 0, from_env.stderr


def test_serve_refuses_to_start_before_migrating_when_the_environment_is_incomplete(tmp_path):
    path = tmp_path / "deploybot.yml"
    path.write_text(GOOD)
    database = tmp_path / "deploybot.sqlite3"
    done = subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        env={
            "PATH": os.environ["PATH"],
            "PYTHONPATH": str(ROOT),
            "DEPLOYBOT_CONFIG": str(path),
            "DATABASE_URL": f"sqlite:///{database}",
            "SLACK_BOT_TOKEN": "xoxb-1",
            "SLACK_SIGNING_SECRET": "s",
            "HEROKU_API_KEY_PROD": "x",
            **aws_files(tmp_path, PROD_PROFILE),
        },
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "HEROKU_API_KEY_STAGING is not set" in done.stderr
    # A Heroku slug has no `deploybot` script (pip installs requirements.txt, not the
    # project): the command named must be one a one-off dyno can run.
    assert "(`python -m bot check-config` lists them)" in done.stderr
    assert "Traceback" not in done.stderr
    assert not database.exists()


def test_suggestions_read_naturally():
    assert suggest("web-prd", ["web-prod", "web-staging"]) == "`web-prod`"
    assert suggest("x", ["web-prod"]) is None


@pytest.mark.parametrize(
    ("platform", "size", "ok"),
    [
        ("heroku", "standard-2x", True),
        ("heroku", "Performance-L", True),
        ("heroku", "t3.large", False),
        ("beanstalk", "t3.large", True),
        ("beanstalk", "m6i.12xlarge", True),
        ("beanstalk", "c7g.metal", True),
        ("beanstalk", "standard-2x", False),
        ("beanstalk", "t3.huge", False),
        ("beanstalk", "zz9.large", False),
    ],
)
def test_sizes_exist_on_their_own_platform_only(platform, size, ok):
    assert (check_size(platform, size) is None) is ok


def test_autoscale_schedule_windows_resolve_with_the_app():
    registry = Registry.parse(
        """\
apps:
  shop:
    platform: heroku
    autoscale:
      schedule:
        - days: mon-fri
          from: "08:00"
          to: "18:00"
          timezone: Europe/Paris
          min: 3
        - days: sat,sun
          from: "22:00"
          to: "06:00"
          max: 2
"""
    )
    office, night = registry.resolve("shop").schedule
    assert office.describe() == "Mon–Fri 08:00–18:00 Europe/Paris"
    assert (office.min, office.max) == (3, None)
    assert (night.timezone, night.min, night.max) == ("UTC", None, 2)
    assert Registry.empty().resolve("anything").schedule == ()


def test_alert_thresholds_map_onto_the_detector_rules():
    registry = Registry.parse(
        "apps:\n  shop:\n    platform: heroku\n    alerts:\n      slow_p95_ms: 800\n"
        "      slow_minutes: 2\n      error_rate_percent: 1\n      error_minutes: 5\n"
        "      router_burst: 50\n      pinned_minutes: 30\n      stale_minutes: 15\n"
    )
    rules = replace(DEFAULT_DETECTOR_RULES, **registry.resolve("shop").alert_rules)
    assert (rules.slow_p95_ms, rules.slow_minutes, rules.error_minutes) == (800.0, 2, 5)
    assert (rules.error_rate, rules.router_burst) == (0.01, 50)
    assert (rules.pinned_for, rules.stale_after) == (timedelta(minutes=30), timedelta(minutes=15))
    with pytest.raises(RegistryError, match="error_rate_percent"):
        Registry.parse(
            "apps:\n  a:\n    platform: heroku\n    alerts:\n      error_rate_percent: 0\n"
        )


def test_app_names_ignore_case_and_a_near_miss_in_any_case_is_suggested():
    registry = Registry.parse("apps:\n  shop:\n    platform: heroku\n    app: shop-prod\n")
    assert registry.canonical("SHOP") == "shop"
    assert registry.resolve("Shop").name == "shop-prod"
    with pytest.raises(UnknownApp, match="Did you mean `shop`"):
        registry.resolve("SHOPP")


def test_an_apps_platform_name_stands_for_its_alias_never_for_an_unlisted_app():
    # With unlisted apps allowed, `acme-web-prod` had resolved as an unlisted app: none of
    # web-prod's guardrails, locks or rules held, and the bot's own "Check `/deploy status
    # acme-web-prod`" advice led there.
    registry = Registry.parse(GOOD.replace("allow_unlisted: false", "allow_unlisted: true"))
    assert registry.canonical("acme-web-prod") == "web-prod"
    assert registry.canonical("ACME-WEB-PROD") == "web-prod"
    assert registry.canonical("shop-prod") == "shop"
    prod = registry.resolve("acme-web-prod")
    assert (prod.alias, prod.listed, prod.api_key_env) == (
        "web-prod",
        True,
        "HEROKU_API_KEY_PROD",
    )
    assert registry.resolve("someone-else").listed is False
    two = Registry.parse(
        "heroku:\n  allow_unlisted: true\napps:\n"
        "  api:\n    platform: heroku\n    app: acme-api\n"
        "  api-eu:\n    platform: heroku\n    app: acme-api\n    channel: C0EU\n"
    )
    assert two.canonical("acme-api") == "acme-api"
    with pytest.raises(UnknownApp, match=r"`acme-api` is the app behind `api`, `api-eu`: "):
        two.resolve("acme-api")


def test_a_key_given_twice_is_refused_with_its_line_not_silently_dropped():
    text = (
        "apps:\n  web:\n    platform: heroku\n    guardrails:\n      protected: true\n"
        "  web:\n    platform: heroku\n"
    )
    # YAML keeps the last: the first entry's protection was gone, and check-config said ok.
    with pytest.raises(RegistryError, match=r"^deploybot.yml:6: `web` is given twice"):
        Registry.parse(text, "deploybot.yml")


def test_an_alias_bomb_is_refused_before_it_is_checked():
    # 27 lines that stand for 10^8 values: every value is read as many times as it is named.
    lines = ["x: &a0 [" + ", ".join(["v"] * 100) + "]"]
    lines += [f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 8)]
    with pytest.raises(RegistryError, match="more than 200,000 values once its YAML aliases"):
        Registry.parse("\n".join(lines))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        # "apps.web: Unable to extract tag using discriminator 'platform'."
        (
            "apps:\n  web:\n    app: shop\n",
            "deploybot.yml:3: apps.web: an app needs `platform: heroku` or `platform: beanstalk`.",
        ),
        # "Input tag 'herkou' found using 'platform' does not match any of the expected tags"
        (
            "apps:\n  web:\n    platform: herkou\n",
            "deploybot.yml:3: apps.web: `herkou` is not a platform: write `platform: heroku` "
            "or `platform: beanstalk`.",
        ),
        # "apps.web: Input should be a valid dictionary or object to extract fields from."
        (
            "apps:\n  web:\n",
            "deploybot.yml:2: apps.web: an app needs its settings under it, `platform:` at least.",
        ),
        # "apps.web.heroku.max": the platform, which is no key of the file, in the path.
        (
            "apps:\n  web:\n    platform: heroku\n    max: lots\n",
            "deploybot.yml:4: apps.web.max: write a whole number here.",
        ),
    ],
)
def test_an_app_entry_s_platform_mistakes_are_said_in_the_registry_s_words(text, says):
    with pytest.raises(RegistryError) as caught:
        Registry.parse(text, "deploybot.yml")
    assert str(caught.value) == says


def test_a_number_too_long_to_read_is_one_sentence_with_its_line_not_a_traceback():
    # YAML's int() of a 5,000-digit `max:` raised Python's ValueError ("Exceeds the limit
    # (4300 digits) for integer string conversion"): check-config and the web dyno's start
    # ended in a traceback.
    text = "apps:\n  web:\n    platform: heroku\n    max: " + "9" * 5000 + "\n"
    with pytest.raises(RegistryError) as caught:
        Registry.parse(text, "deploybot.yml")
    message = str(caught.value)
    assert message.startswith("deploybot.yml:4: ") and "far too long" in message
    assert len(message) < 200


def test_a_registry_file_too_large_or_not_text_is_one_sentence(tmp_path):
    huge = tmp_path / "huge.yml"
    huge.write_text("apps: {}\n" + "# padding\n" * 120_000)
    with pytest.raises(RegistryError, match="larger than 1 MiB"):
        Registry.load(huge)
    binary = tmp_path / "binary.yml"
    binary.write_bytes(b"apps:\n  demo: \xff\xfe\n")
    with pytest.raises(RegistryError, match=r"is not UTF-8 text \(byte 14\)"):
        Registry.load(binary)


def test_check_config_names_the_aws_config_file_the_profile_is_missing_from(tmp_path):
    # The README commits an AWS config file and points AWS_CONFIG_FILE at it; the problem
    # said "~/.aws/config", a file a dyno does not have, so the admin looked in the wrong place.
    keys = {"HEROKU_API_KEY_PROD": "x", "HEROKU_API_KEY_STAGING": "y"}
    (tmp_path / "aws.ini").write_text("[profile staging]\nregion = eu-west-1\n")
    files = {**aws_files(tmp_path, ""), "AWS_CONFIG_FILE": "aws.ini"}
    listed = run_check_config(tmp_path, GOOD, **keys, **files)
    assert "shop: AWS profile `prod` is not in aws.ini (AWS_CONFIG_FILE) or " in listed.stderr
    assert "~/.aws/config" not in listed.stderr
    files["AWS_CONFIG_FILE"] = "aws-typo.ini"
    absent = run_check_config(tmp_path, GOOD, **keys, **files)
    assert "not in aws-typo.ini (AWS_CONFIG_FILE: no such file) or " in absent.stderr


def test_check_config_says_which_keys_a_role_profile_from_the_environment_lacks(tmp_path):
    # The README's profile takes its keys from the environment; with none set, check-config
    # passed on botocore's "Error when retrieving credentials from Environment: …".
    keys = {"HEROKU_API_KEY_PROD": "x", "HEROKU_API_KEY_STAGING": "y"}
    (tmp_path / "aws.ini").write_text(
        "[profile prod]\nrole_arn = arn:aws:iam::123456789012:role/deploybot\n"
        "credential_source = Environment\n"
    )
    files = {**aws_files(tmp_path, ""), "AWS_CONFIG_FILE": "aws.ini"}
    none = run_check_config(tmp_path, GOOD, **keys, **files)
    assert none.returncode == 1
    assert (
        "shop: AWS profile `prod` assumes its role with keys from the environment "
        "(credential_source = Environment), and AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
        "are not set; set them as config vars (README, 'Beanstalk and AWS')" in none.stderr
    )
    assert "Error when retrieving" not in none.stderr
    half = run_check_config(tmp_path, GOOD, **keys, **files, AWS_ACCESS_KEY_ID="AKIASECRETISH")
    assert "and AWS_SECRET_ACCESS_KEY is not set; set it as a config var" in half.stderr
    assert "AKIASECRETISH" not in half.stderr + half.stdout
    # A secret pasted as a bare newline is none: the bot reads the keys trimmed.
    blank = run_check_config(
        tmp_path,
        GOOD,
        **keys,
        **files,
        AWS_ACCESS_KEY_ID="AKIASECRETISH\n",
        AWS_SECRET_ACCESS_KEY=" \n",
    )
    assert "and AWS_SECRET_ACCESS_KEY is not set; set it as a config var" in blank.stderr


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("Ec2InstanceMetadata", "the EC2 instance metadata"),
        ("EcsContainer", "an ECS container's credentials endpoint"),
    ],
)
def test_check_config_says_in_words_that_a_role_profile_s_source_is_not_on_a_dyno(
    tmp_path, source, words
):
    # It passed on botocore's "Error when retrieving credentials from Ec2InstanceMetadata: No
    # credentials found in credential_source referenced in profile prod".
    keys = {"HEROKU_API_KEY_PROD": "x", "HEROKU_API_KEY_STAGING": "y"}
    (tmp_path / "aws.ini").write_text(
        "[profile prod]\nrole_arn = arn:aws:iam::123456789012:role/deploybot\n"
        f"credential_source = {source}\n"
    )
    files = {**aws_files(tmp_path, ""), "AWS_CONFIG_FILE": "aws.ini"}
    done = run_check_config(tmp_path, GOOD, **keys, **files)
    assert done.returncode == 1
    assert (
        f"problem: shop: AWS profile `prod` takes its keys from {words} (credential_source = "
        f"{source}), which a Heroku dyno does not have; set credential_source = Environment, "
        "and AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY as config vars (README, 'Beanstalk "
        "and AWS')\n"
    ) in done.stderr
    assert "Error when retrieving" not in done.stderr


CONTAINER_SAID = (
    "shop: AWS credentials from the default chain come from a container credentials endpoint "
    "(AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or AWS_CONTAINER_CREDENTIALS_FULL_URI), which a "
    "Heroku dyno does not have; unset it, and set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
    "as config vars (README, 'Beanstalk and AWS')"
)


def test_a_container_endpoint_botocore_will_not_ask_is_one_sentence_not_a_traceback(tmp_path):
    from bot import preflight

    chain = Registry.parse(GOOD.replace("    aws_profile: prod\n", ""))
    env = {
        **aws_files(tmp_path, ""),
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.2.example.com/creds",
    }
    # botocore raised ValueError ("Unsupported host …"): check-config ended in a traceback,
    # and serve and socket would not start with a sentence either.
    assert preflight.aws_problems(chain.targets(), env) == [CONTAINER_SAID]


def test_a_container_endpoint_that_gives_nothing_is_one_sentence(tmp_path, monkeypatch):
    import boto3
    import botocore.exceptions

    from bot import preflight

    def unreachable(self):
        # What botocore's ContainerProvider raises when its endpoint does not answer 200.
        raise botocore.exceptions.CredentialRetrievalError(
            provider="container-role",
            error_msg="Error retrieving metadata: Received non 200 response 403",
        )

    monkeypatch.setattr(boto3.Session, "get_credentials", unreachable)
    chain = Registry.parse(GOOD.replace("    aws_profile: prod\n", ""))
    env = {**aws_files(tmp_path, ""), "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/creds"}
    assert preflight.aws_problems(chain.targets(), env) == [CONTAINER_SAID]


@pytest.mark.parametrize(
    ("setting", "line"),
    [
        ("    max: true\n", "4: apps.shop.max"),
        ("    guardrails:\n      max: {web: yes}\n", "5: apps.shop.guardrails.max.web"),
        ("    guardrails:\n      max_step: true\n", "5: apps.shop.guardrails.max_step"),
        (
            "    guardrails:\n      confirm_above_usd: false\n",
            "5: apps.shop.guardrails.confirm_above_usd",
        ),
        ("    alerts:\n      slow_p95_ms: on\n", "5: apps.shop.alerts.slow_p95_ms"),
        (
            "    autoscale:\n      schedule:\n        - {from: '08:00', to: '18:00', min: true}\n",
            "6: apps.shop.autoscale.schedule.0.min",
        ),
    ],
)
def test_a_yes_or_no_where_a_number_goes_is_refused_not_read_as_1_or_0(setting, line):
    # A YAML true (or yes, on) is an int in Python: `max: true` had loaded as max 1, and
    # `confirm_above_usd: false` as 0, every change asking first, without a word.
    with pytest.raises(RegistryError) as caught:
        Registry.parse(f"apps:\n  shop:\n    platform: heroku\n{setting}", "deploybot.yml")
    assert str(caught.value) == (
        f"deploybot.yml:{line}: write a number here, not a yes or no (YAML reads true, false, "
        "yes, no, on and off as one)."
    )


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        (
            "    channel: general\n",
            "4: apps.shop.channel: `general` is not a Slack channel ID such as `C0123ABCD` "
            "(the channel's details in Slack show its ID).",
        ),
        (
            "    app: Shop_App\n",
            "4: apps.shop.app: `Shop_App` is not a Heroku app name: 2 to 30 lowercase letters, "
            "digits and dashes, starting with a letter.",
        ),
        (
            "    api_key_env: my-key\n",
            "4: apps.shop.api_key_env: this is not the name of an environment variable "
            "(capital letters, digits and underscores, not starting with a digit); put the "
            "secret in a config var and write that variable's name here (the value is not "
            "shown, in case it is the secret itself).",
        ),
        (
            "    guardrails:\n      max: {Web!: 3}\n",
            "5: apps.shop.guardrails.max.Web!.[key]: `Web!` is not a process type such as "
            "`web` or `worker`: lowercase letters, digits, `-` and `_`, starting with a letter.",
        ),
        (
            "    source: https://example.com/tree/main\n",
            "4: apps.shop.source: `https://example.com/tree/main` is not an http(s) address "
            "without spaces, with `{ref}` where the commit goes.",
        ),
    ],
)
def test_a_value_not_in_its_settings_form_is_said_in_words_not_as_a_regex(setting, says):
    # It had read "String should match pattern '^[CG][A-Z0-9]{2,31}$'".
    with pytest.raises(RegistryError) as caught:
        Registry.parse(f"apps:\n  shop:\n    platform: heroku\n{setting}", "deploybot.yml")
    assert str(caught.value) == f"deploybot.yml:{says}"


@pytest.mark.parametrize(
    "setting",
    [
        "    api_key_env: 01234567-89ab-cdef-0123-456789abcdef\n",
        "    source: https://api.github.com/repos/o/r/tarball/{ref}\n"
        "    source_token_env: ghp_0123456789abcdefABCDEF0123456789abcd\n",
        "    autoscale:\n      queue_url: https://shop.example.com\n"
        "      queue_token_env: 0123456789abcdef0123456789abcdef\n",
    ],
)
def test_a_secret_pasted_where_its_variable_s_name_goes_is_not_echoed(setting):
    # A `*_env` setting names the config var that holds a secret; the secret itself, pasted
    # there, had been quoted back by check-config and in the web dyno's log line.
    secret = setting.rsplit(": ", 1)[1].strip()
    with pytest.raises(RegistryError) as caught:
        Registry.parse(f"apps:\n  shop:\n    platform: heroku\n{setting}", "deploybot.yml")
    assert secret[:8] not in str(caught.value)
    assert "is not the name of an environment variable" in str(caught.value)


def test_every_pattern_the_registry_checks_has_words():
    import json
    import re

    from bot import registry

    schema = json.dumps(registry.RegistryFile.model_json_schema(by_alias=True))
    patterns = {json.loads(p) for p in re.findall(r'"pattern": ("(?:[^"\\]|\\.)*")', schema)}
    patterns.add(registry._PROCESS_TYPE)  # a dict's keys: not in the JSON schema
    assert patterns - set(registry.PATTERN_WORDS) == set()


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ('days: "mon<x>&"', "days `mon<x>&`: use `mon`"),
        ('platform: "he<r>&"', "`he<r>&` is not a platform"),
    ],
)
def test_a_registry_error_in_the_terminal_shows_the_text_as_written(tmp_path, setting, says):
    # The schedule's words are Slack text, escaped: check-config had printed
    # `mon&lt;x&gt;&amp;` to the terminal.
    if setting.startswith("platform"):
        app = f"{setting}\n"
    else:
        app = "platform: heroku\n    autoscale:\n      schedule:\n"
        app += f"        - {{{setting}, from: '09:00', to: '17:00', min: 1}}\n"
    done = run_check_config(tmp_path, f"apps:\n  demo:\n    {app}")
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert "&lt;" not in done.stderr and "&amp;" not in done.stderr


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("ftp://deploy:s3cr3tTOKEN@git.example.com/x/{ref}.tgz", "ftp://deploy:••••••@git"),
        ("https://git.example.com/a.tgz?access_token=s3cr3tTOKEN", "?access_token=••••••"),
        ("https://x:s3cr3tTOKEN@git.example.com/{ref} .tgz", "https://x:••••••@"),
    ],
)
def test_a_refused_source_url_is_quoted_without_its_credentials(tmp_path, url, shown):
    # A tarball URL may carry its token (userinfo or a query parameter): a refused one had
    # been quoted whole on check-config's stderr and the dyno's log.
    done = run_check_config(
        tmp_path, f'apps:\n  demo:\n    platform: heroku\n    source: "{url}"\n'
    )
    assert done.returncode == 2 and "apps.demo.source" in done.stderr, done.stderr
    assert "s3cr3tTOKEN" not in done.stderr and shown in done.stderr, done.stderr


def test_a_refused_queue_url_is_quoted_without_its_credentials():
    with pytest.raises(RegistryError) as caught:
        Registry.parse(
            "apps:\n  shop:\n    platform: heroku\n    autoscale:\n"
            "      queue_url: ftp://u:s3cr3tTOKEN@q.example.com\n"
        )
    assert "s3cr3tTOKEN" not in str(caught.value) and "u:••••••@" in str(caught.value)


@pytest.mark.parametrize(
    "nested",
    [
        "apps: " + "[" * 5000 + "]" * 5000,
        "apps:\n  web:\n    platform: heroku\n    guardrails: " + "{a: " * 3000 + "1" + "}" * 3000,
    ],
)
def test_a_registry_nested_thousands_deep_is_one_sentence_not_a_traceback(tmp_path, nested):
    # A few KB of brackets, well under the 1 MiB limit: PyYAML composes each level in a
    # Python call of its own, and check-config and the web dyno's start ended in a
    # RecursionError's traceback.
    done = run_check_config(tmp_path, nested + "\n")
    said = done.stderr.partition("deploybot.yml")[2]  # the test's own folder says "nested"
    assert done.returncode == 2 and "nest" in said, done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ("apps:\n", "1: apps: write a mapping here (`key: value` lines indented under it)."),
        (
            "apps:\n  web:\n    platform: heroku\n    guardrails: yes\n",
            "4: apps.web.guardrails: write a mapping here (`key: value` lines indented under it).",
        ),
        ("heroku: []\n", "1: heroku: write a mapping here (`key: value` lines indented under it)."),
        ("access: {}\n", "1: access: write a list here (`- item` lines, or `[a, b]`)."),
        (
            "apps:\n  web:\n    platform: heroku\n    channel: 123\n",
            "4: apps.web.channel: write text here, in quotes if YAML would read it as a number "
            "or a yes or no.",
        ),
        (
            "apps:\n  web:\n    platform: heroku\n    max: 1.5\n",
            "4: apps.web.max: write a whole number here.",
        ),
        (
            "apps:\n  web:\n    platform: heroku\n    alerts: {slow_p95_ms: fast}\n",
            "4: apps.web.alerts.slow_p95_ms: write a number here.",
        ),
        (
            "heroku: {allow_unlisted: maybe}\n",
            "1: heroku.allow_unlisted: write true or false here.",
        ),
        # pydantic's "String should have at most 500 characters" / "at least 1 character".
        (
            f"apps:\n  web:\n    platform: heroku\n    source: https://git.example/{'a' * 600}\n",
            "4: apps.web.source: write at most 500 characters here, not 620.",
        ),
        (
            'apps:\n  web:\n    platform: heroku\n    run: [""]\n',
            "4: apps.web.run.0: write something here: it is empty.",
        ),
        (
            "apps:\n  shop:\n    platform: beanstalk\n    environment: shop-prod\n"
            "    region: eu-west-1\n    bundle: {bucket: ab, key: 'shop/{ref}.zip'}\n",
            "6: apps.shop.bundle.bucket: write at least 3 characters here, not 2.",
        ),
        # A newline in the value had been printed as one, breaking the line in two.
        (
            'apps:\n  web:\n    platform: "heroku\\n"\n',
            "3: apps.web: `heroku\\n` is not a platform: write `platform: heroku` or "
            "`platform: beanstalk`.",
        ),
        (
            'apps:\n  web:\n    platform: heroku\n    guardrails: {min: {"web\\n": 1}}\n',
            "4: apps.web.guardrails.min.web\\n.[key]: `web\\n` is not a process type such as "
            "`web` or `worker`: lowercase letters, digits, `-` and `_`, starting with a letter.",
        ),
    ],
)
def test_a_value_of_the_wrong_kind_is_said_in_words_without_pydantic_s_class_names(setting, says):
    # pydantic's own words had reached the operator: "Input should be a valid dictionary or
    # instance of GuardrailsEntry", a class of this code's, for `guardrails: yes`.
    with pytest.raises(RegistryError) as caught:
        Registry.parse(setting, "deploybot.yml")
    assert str(caught.value) == f"deploybot.yml:{says}"


def test_a_registry_is_read_in_one_pass_by_libyaml(tmp_path, monkeypatch):
    # Every process reads the registry as it starts (the web dyno's master, the worker,
    # check-config): a 1 MiB file, which the limit lets through, had taken 12 s, its text
    # read twice by PyYAML's pure-Python scanner (compose, then safe_load).
    import bot.registry

    assert bot.registry._SafeLoader is yaml.CSafeLoader  # PyYAML's wheels carry libyaml
    made = []

    class Counted(yaml.CSafeLoader):
        def __init__(self, stream):
            made.append(stream)
            super().__init__(stream)

    monkeypatch.setattr(bot.registry, "_SafeLoader", Counted)
    monkeypatch.setattr(yaml, "compose", None)  # a second scan would call one of these
    monkeypatch.setattr(yaml, "safe_load", None)
    path = tmp_path / "deploybot.yml"
    path.write_text("apps:\n" + "".join(f"  a{i}:\n    platform: heroku\n" for i in range(50)))
    assert len(Registry.load(path).aliases()) == 50
    assert len(made) == 1


@pytest.mark.parametrize("pasted", ["{} ", " {}\n", '"{}"'])
def test_a_registry_path_pasted_with_spaces_or_quotes_is_read(tmp_path, pasted):
    # Every other setting is read without the spaces, newline or quotes it was pasted with;
    # DEPLOYBOT_CONFIG had been taken whole: "deploybot.yml : cannot read the registry".
    path = tmp_path / "deploybot.yml"
    path.write_text("apps:\n  shop:\n    platform: heroku\n")
    registry = Registry.from_env({"DEPLOYBOT_CONFIG": pasted.format(path)})
    assert registry.aliases() == ["shop"] and registry.source == str(path)


@pytest.mark.parametrize(
    ("alias", "says"),
    [
        ("a" * 41, "`" + "a" * 40 + "…` is too long for an app alias: 40 characters at most."),
        ("a" * 1000, "`" + "a" * 40 + "…` is too long for an app alias: 40 characters at most."),
        (
            "Shop",
            "`Shop` is not an app alias: lowercase letters, digits and dashes, starting with a "
            "letter or digit.",
        ),
        # A newline had been printed as one, breaking the one-line error in two.
        (
            "shop\\n<b>",
            "`shop\\n<b>` is not an app alias: lowercase letters, digits and dashes, "
            "starting with a letter or digit.",
        ),
        (
            "b\\t" * 30,
            "`" + "b\\t" * 20 + "…` is too long for an app alias: 40 characters at most.",
        ),
    ],
)
def test_an_app_alias_refused_says_why_in_one_short_line(alias, says):
    # A 41-letter alias had been told it "must be lowercase letters, digits and dashes",
    # which it was, and a 1,000-letter one was quoted whole in a 1,000-character line.
    with pytest.raises(RegistryError) as caught:
        Registry.parse(f'apps:\n  "{alias}":\n    platform: heroku\n', "deploybot.yml")
    assert str(caught.value) == f"deploybot.yml:2: apps: {says}"


@pytest.mark.parametrize("name", ["shop\\n", "shop-prod\\n"])
def test_a_name_with_a_trailing_newline_is_refused(name):
    # Python's `$` matches before a final newline: `"shop\n"` had been listed as an app
    # no one could type, and check-config had said ok.
    with pytest.raises(RegistryError, match="is not an app alias"):
        Registry.parse(f'apps:\n  "{name}":\n    platform: heroku\n', "deploybot.yml")
    unlisted = Registry.parse("heroku:\n  allow_unlisted: true\n")
    with pytest.raises(UnknownApp):
        unlisted.resolve(name.replace("\\n", "\n"))


def test_a_control_character_in_an_app_s_key_is_shown_as_its_escape():
    # `apps.shop` and `<b>: an app needs …` had been printed on two lines.
    with pytest.raises(RegistryError) as caught:
        Registry.parse('apps:\n  "shop\\n<b>":\n    heroku: shop\n', "deploybot.yml")
    assert str(caught.value).startswith("deploybot.yml:3: apps.shop\\n<b>: an app needs")


def test_an_instance_type_with_a_trailing_newline_is_refused():
    assert check_size("beanstalk", "t3.small\n") is not None


def test_a_run_list_longer_than_fifty_commands_is_refused():
    # 2,000 commands had loaded, and `/deploy run` then refused an unlisted one with a
    # reply quoting all 2,000, far more than one Slack message holds.
    runs = "".join(f"      - cmd{i}\n" for i in range(51))
    text = f"apps:\n  shop:\n    platform: heroku\n    run:\n{runs}"
    with pytest.raises(RegistryError) as caught:
        Registry.parse(text, "deploybot.yml")
    assert str(caught.value) == (
        "deploybot.yml:5: apps.shop.run: list at most 50 commands here, not 51."
    )
    fifty = Registry.parse(text.replace("      - cmd50\n", ""), "deploybot.yml")
    assert len(fifty.resolve("shop").run) == 50


def test_check_config_names_every_malformed_setting_at_once(tmp_path):
    # It had stopped at the first one: a bad DEPLOYBOT_ADMINS hid the registry's problems
    # and the bad PORT, each seen only once the one before was mended.
    bad = {"DEPLOYBOT_ADMINS": "alice", "PORT": "http", "DATABASE_URL": "mysql://h/db"}
    bad["DEPLOYBOT_URL"] = "mybot.herokuapp.com"  # no scheme: it had passed unsaid
    done = run_check_config(tmp_path, GOOD, **bad, **aws_files(tmp_path, PROD_PROFILE))
    assert done.returncode == 1, done.stderr
    for says in (
        "problem: DEPLOYBOT_ADMINS has alice, which is not a Slack user ID",
        "problem: PORT must be a TCP port number, not 'http'",
        "problem: DATABASE_URL must be a postgres:// (Heroku Postgres) or sqlite:/// URL",
        "problem: DEPLOYBOT_URL must be the bot's own web address, like https://mybot.",
        "problem: environment variable HEROKU_API_KEY_STAGING is not set",
    ):
        assert says in done.stderr, done.stderr
    assert "shop: beanstalk shop-prod (eu-west-1)" in done.stdout
    broken = run_check_config(tmp_path, GOOD.replace("eu-west-1", "mars"), PORT="http")
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
    assert "problem: PORT must be a TCP port number" in broken.stderr
    assert "deploybot.yml:15:" in broken.stderr
