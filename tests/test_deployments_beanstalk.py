"""Deployments on Elastic Beanstalk end to end: the web app, boto3 and the fake Beanstalk
(botocore parses every answer). Application versions with the deployed one marked, a
rollback by VersionLabel followed up in a thread, environment properties as config, and
maintenance mode refused plainly since Beanstalk has none."""

from __future__ import annotations

import json
import re
from contextlib import contextmanager

import pytest

from bot.web.app import close, create_app
from handlers.render import CONFIRM_ACTION
from tests.conftest import ADMIN
from tests.test_beanstalk import CHANNEL, EU_KEY, PROD_KEY, aws, driver  # noqa: F401  (fixtures)
from tests.webclient import SlackDriver, button, settle


def versions(aws):  # noqa: F811
    aws.add_version(
        "shop", "shop-0.9", "First cut", region="us-east-1", access_key=PROD_KEY, age_hours=48
    )
    aws.add_version(
        "shop",
        "shop-1.0",
        "Basket <b>fix</b>",
        region="us-east-1",
        access_key=PROD_KEY,
        age_hours=2,
    )


def updates(aws):  # noqa: F811
    return aws.calls("UpdateEnvironment")


def say(driver, text):  # noqa: F811
    _, url = driver.command(text, ADMIN)
    return driver.reply(url)


def test_releases_lists_application_versions_with_the_deployed_one_marked(driver, aws):  # noqa: F811
    versions(aws)
    lines = say(driver, "releases shop")["text"].splitlines()
    assert lines[0] == "*Application versions of `shop`*, newest first"
    assert lines[1].startswith("• `shop-1.0` · Basket &lt;b&gt;fix&lt;/b&gt;")
    assert lines[2].startswith("• `v1`") and "← current" in lines[2]
    assert lines[3].startswith("• `shop-0.9` · First cut")
    assert aws.violations == []


def test_builds_of_a_beanstalk_environment_point_at_its_application_versions(driver, aws):  # noqa: F811
    text = say(driver, "builds shop")["text"]
    assert text == (
        "`shop` is a Beanstalk environment, and Beanstalk has no builds: "
        "`/deploy releases shop` lists its application versions."
    )
    assert aws.calls("DescribeApplicationVersions") == []


def test_rollback_deploys_the_label_and_follows_up_in_the_thread(driver, aws, slack):  # noqa: F811
    versions(aws)
    prompt = say(driver, "rollback shop")
    assert "asks to roll `shop` back: `v1` → `shop-0.9` (First cut)." in prompt["text"]
    settle()
    assert updates(aws) == []
    for _ in range(3):  # a double click and Slack's retry: one update
        driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    [anchor] = slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
    assert anchor.args["channel"] == CHANNEL
    assert "rolled `shop` back: `v1` → `shop-0.9`" in anchor.args["text"]
    assert "Updating" in anchor.args["text"]
    [update] = updates(aws)
    assert update.params["VersionLabel"] == "shop-0.9"
    aws.advance(600)
    follow_up = slack.wait_for_calls("chat.postMessage", n=2, timeout=10)[1].args
    assert follow_up["thread_ts"] == anchor.response["ts"] and "Done:" in follow_up["text"]
    env = aws.environment("shop-prod", region="us-east-1", access_key=PROD_KEY)
    assert env["version_label"] == "shop-0.9"
    assert aws.violations == []


def test_rollback_to_an_unknown_label_sends_nothing(driver, aws):  # noqa: F811
    versions(aws)
    # Said in Beanstalk's word, as `releases shop` lists them: "no release `nope`" had sent
    # people looking for a Heroku release.
    assert say(driver, "rollback shop nope")["text"] == (
        "`shop` has no application version `nope`. See `/deploy releases shop`."
    )
    assert say(driver, "rollback shop v1")["text"] == (
        "`v1` is already the current application version of `shop`; nothing to roll back."
    )
    assert updates(aws) == []


def test_a_rollback_with_nothing_to_go_back_to_names_application_versions(driver, aws):  # noqa: F811
    # `shop` runs v1, its application's only version; it had said "no earlier good release".
    assert say(driver, "rollback shop")["text"] == (
        "`shop` has no earlier good application version to roll back to."
    )
    assert updates(aws) == []


def test_a_rollback_to_a_version_deleted_since_it_was_asked_is_refused_plainly(
    driver,  # noqa: F811
    aws,  # noqa: F811
):
    versions(aws)
    prompt = say(driver, "rollback shop shop-0.9")
    aws.remove_version("shop", "shop-0.9", region="us-east-1", access_key=PROD_KEY)
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    # It had sent the update, quoted AWS's "No Application Version named 'shop-0.9' found."
    # and kept the prompt open, whose every click would be refused the same way.
    assert driver.reply(url)["text"].splitlines()[0] == (
        "Nothing was changed: `shop-0.9` is no longer among `shop`'s application versions "
        "(deleted since the rollback was asked for). Pick another from "
        "`/deploy releases shop`."
    )
    assert updates(aws) == []


def test_maintenance_is_not_a_beanstalk_feature(driver, aws):  # noqa: F811
    reply = say(driver, "maintenance shop on")
    assert "maintenance mode is not a Beanstalk feature" in reply["text"]
    assert aws.requests == []


def test_config_is_environment_properties(driver, aws, slack):  # noqa: F811
    # Said in Beanstalk's words: it had been "`shop` has no config vars", Heroku's.
    assert say(driver, "config shop")["text"] == "`shop` has no environment properties."
    aws.set_properties("shop-prod", {"LOG_LEVEL": "info"})
    listed = say(driver, "config shop")["text"]
    assert listed.startswith("*Environment properties of `shop`*\n")
    assert "`LOG_LEVEL` `info`" in listed
    prompt = say(driver, "config set FEATURE_X=on shop")
    driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    # The prompt was the bot's first post (tests/test_typed_secrets.py), "Updating" its next.
    slack.wait_for_calls("chat.postMessage", n=2, timeout=10)
    [update] = updates(aws)
    assert update.params["OptionSettings"] == [
        {
            "Namespace": "aws:elasticbeanstalk:application:environment",
            "OptionName": "FEATURE_X",
            "Value": "on",
        }
    ]
    aws.advance(600)
    slack.wait_for_calls("chat.postMessage", n=3, timeout=10)
    assert "`FEATURE_X` `on`" in say(driver, "config shop")["text"]
    assert aws.violations == []


def test_config_takes_the_names_and_values_beanstalk_takes(driver, aws, slack):  # noqa: F811
    # A dotted name had been refused by Heroku's rule: "`spring.profiles.active` is not a
    # valid config var name: use letters, digits and underscores".
    prompt = say(driver, "config set spring.profiles.active=prod 9LIVES=1 shop")
    assert "asks to set `spring.profiles.active`, `9LIVES` on `shop`" in prompt["text"]
    driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    slack.wait_for_calls("chat.postMessage", n=2, timeout=10)  # the prompt, then "Updating"
    aws.advance(600)
    slack.wait_for_calls("chat.postMessage", n=3, timeout=10)  # the follow-up, done
    [update] = updates(aws)
    assert [o["OptionName"] for o in update.params["OptionSettings"]] == [
        "spring.profiles.active",
        "9LIVES",
    ]
    # What Beanstalk does not take is answered before asking, the value never quoted.
    reply = say(driver, "config set TOKEN='hunter2;' shop")["text"]
    assert reply == (
        "The value of `TOKEN` has a character Beanstalk does not take: use letters, digits, "
        "spaces and `_ . : / = + \\ - @ ' \"`."
    )
    assert "longer than the 256" in say(driver, f"config set TOKEN={'x' * 257} shop")["text"]
    assert len(updates(aws)) == 1
    assert aws.violations == []


BLUE_GREEN = """\
heroku:
  allow_unlisted: false
apps:
  shop:
    platform: beanstalk
    environment: shop-prod
    region: us-east-1
    aws_profile: prod
    bundle: {bucket: acme-bundles, key: "shop/{ref}.zip"}
  shop-green:
    platform: beanstalk
    environment: shop-green
    region: us-east-1
    aws_profile: prod
  shop-eu:
    platform: beanstalk
    environment: shop-eu
    region: eu-west-1
    aws_profile: eu
"""


@contextmanager
def served(config, aws, slack, tmp_path, monkeypatch, registry=BLUE_GREEN):  # noqa: F811
    """The web app over `registry`, with `shop-green` beside `shop-prod` at AWS."""
    aws.add_environment(
        "shop-green", region="us-east-1", access_key=PROD_KEY, application="shop", min_size=1
    )
    path = tmp_path / "blue-green.yml"
    path.write_text(registry)
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
    web = create_app(config)
    try:
        yield SlackDriver(web.test_client(), slack)
    finally:
        close(web)  # the job in hand finishes while the fakes still answer
        web.extensions["deploybot"].db.dispose()


@pytest.fixture
def blue_green(config, aws, slack, tmp_path, monkeypatch):  # noqa: F811
    with served(config, aws, slack, tmp_path, monkeypatch) as slack_driver:
        yield slack_driver


def test_swap_exchanges_the_cnames_once(blue_green, aws):  # noqa: F811
    blue, green = aws.cname("shop-prod"), aws.cname("shop-green")
    reply = say(blue_green, "swap shop shop-green")
    assert "swapped the CNAMEs of `shop` and `shop-green`" in reply["text"]
    assert (aws.cname("shop-prod"), aws.cname("shop-green")) == (green, blue)
    [swap] = aws.calls("SwapEnvironmentCNAMEs")
    assert swap.params == {
        "SourceEnvironmentName": "shop-prod",
        "DestinationEnvironmentName": "shop-green",
    }
    refused = say(blue_green, "swap shop shop-eu")
    assert "is not a Beanstalk environment in us-east-1" in refused["text"]
    assert len(aws.calls("SwapEnvironmentCNAMEs")) == 1
    assert aws.violations == []


def test_a_swap_is_in_the_history_of_both_environments(blue_green, aws):  # noqa: F811
    say(blue_green, "swap shop shop-green")
    for env in ("shop", "shop-green"):
        assert "`swap shop shop-green`" in say(blue_green, f"history {env}")["text"], env


def test_a_mistyped_environment_to_swap_with_gets_a_did_you_mean(
    config,
    aws,  # noqa: F811
    slack,
    tmp_path,
    monkeypatch,
):
    # With Heroku apps outside the registry allowed, a name the registry does not hold had
    # been only "is not a Beanstalk environment", where another verb's mistyped app is offered
    # the names near it; here those it could swap with (same region, not itself).
    unlisted = BLUE_GREEN.replace("allow_unlisted: false", "allow_unlisted: true")
    with served(config, aws, slack, tmp_path, monkeypatch, unlisted) as unlisted_driver:
        assert say(unlisted_driver, "swap shop shop-gren")["text"] == (
            "`shop-gren` is not a Beanstalk environment in us-east-1, so it cannot swap CNAMEs "
            "with `shop`. Did you mean `shop-green`?"
        )
        # Near its environment's name (`shop-prod`), offered by its alias.
        assert say(unlisted_driver, "swap shop-green shop-prd")["text"].endswith(
            "Did you mean `shop`?"
        )
        # An app of the registry, typed right, is not second-guessed.
        assert "Did you mean" not in say(unlisted_driver, "swap shop shop-eu")["text"]
        assert aws.calls("SwapEnvironmentCNAMEs") == []


def test_swap_of_one_environment_by_two_names_is_refused(blue_green, aws, config):  # noqa: F811
    from bot.store.audit import AuditLog
    from bot.store.db import Database

    # Each had reached AWS ("Source and destination environments must differ") and left a
    # failed row in history.
    assert say(blue_green, "swap shop SHOP")["text"] == (
        "`SHOP` is `shop` again (both are `shop-prod`): name two different environments to swap."
    )
    assert say(blue_green, "swap shop shop-prod")["text"] == (
        "`shop-prod` is `shop` again (both are `shop-prod`): name two different environments "
        "to swap."
    )
    assert aws.calls("SwapEnvironmentCNAMEs") == []
    db = Database(config.database_url)
    try:
        assert AuditLog(db).recent() == []
    finally:
        db.dispose()


def test_a_swap_with_another_accounts_environment_says_why_it_cannot_be(
    config,
    aws,  # noqa: F811
    slack,
    tmp_path,
    monkeypatch,
):
    # `shop-other` is in us-east-1 too, but reached with profile `eu`, another account's
    # key. Read with `shop`'s credentials it had been "There is no Beanstalk environment
    # `shop-other`…: check the registry's environment and region", both of them right.
    aws.add_environment("shop-other", region="us-east-1", access_key=EU_KEY, application="shop")
    registry = BLUE_GREEN + (
        "  other-account:\n    platform: beanstalk\n    environment: shop-other\n"
        "    region: us-east-1\n    aws_profile: eu\n"
    )
    with served(config, aws, slack, tmp_path, monkeypatch, registry) as slack_driver:
        assert say(slack_driver, "swap shop other-account")["text"] == (
            "`other-account` is reached with another AWS profile than `shop`, whose "
            "credentials cannot see it. Beanstalk swaps CNAMEs only between environments of "
            "one AWS account, so these two cannot swap."
        )
        assert "Status of `other-account`" in say(slack_driver, "status other-account")["text"]
    assert aws.calls("SwapEnvironmentCNAMEs") == []


def test_a_swap_forced_through_the_other_environments_freeze_breaks_glass_there(
    config,
    aws,  # noqa: F811
    slack,
    tmp_path,
    monkeypatch,
):
    # Only the environment named first was judged for the notice: forced through the
    # other's freeze, the swap told nobody in its channel.
    frozen = BLUE_GREEN.replace(
        "    environment: shop-green\n",
        "    environment: shop-green\n    channel: CGREEN\n    guardrails:\n"
        "      freezes:\n        - {cron: '* * * * *', duration: 2h, reason: launch week}\n",
    )
    with served(config, aws, slack, tmp_path, monkeypatch, frozen) as frozen_driver:
        assert "is frozen" in say(frozen_driver, "swap shop shop-green")["text"]
        reply = say(frozen_driver, 'swap shop shop-green --force "hotfix"')
        assert "swapped the CNAMEs of `shop` and `shop-green`" in reply["text"]
        [notice] = [
            call.args
            for call in slack.calls_to("chat.postMessage")
            if "Break-glass" in call.args.get("text", "")
        ]
        assert notice["channel"] == "CGREEN" and "launch week" in notice["text"]


def test_a_swap_whose_answer_was_lost_is_read_back_not_sent_again(blue_green, aws, config):  # noqa: F811
    from bot.sandbox.fakes.beanstalk import _AwsError

    blue, green = aws.cname("shop-prod"), aws.cname("shop-green")
    made = aws._swap_environment_cnames

    def applied_then_500(call):
        made(call)
        raise _AwsError(500, "InternalFailure", "We encountered an internal error.")

    aws._swap_environment_cnames = applied_then_500
    try:
        text = say(blue_green, "swap shop shop-green")["text"]
    finally:
        aws._swap_environment_cnames = made
    # It had said only "may have been made, check status", whose answer showed no CNAME;
    # the swap asked again put both back. The read-back names `shop` as typed (it had said
    # `shop-prod`, the environment's name).
    assert "swapped the CNAMEs of `shop` and `shop-green`" in text
    assert f"I read it back: `shop` answers at {green}, so it was made." in text
    assert f"answers at {green}" in str(say(blue_green, "status shop")["blocks"])
    # Answered 500 before anything was done: said as not yet seen, to check first.
    aws.fail_next(500, actions=["SwapEnvironmentCNAMEs"])
    text = say(blue_green, "swap shop shop-green")["text"]
    assert f"I read it back: `shop` answers at {green}, not what was asked, yet" in text
    assert (aws.cname("shop-prod"), aws.cname("shop-green")) == (green, blue)
    assert len(aws.calls("SwapEnvironmentCNAMEs")) == 2 and aws.violations == []
    # The worker's pass gives both rows their final word from the CNAMEs (it had been
    # "unknown: nothing to read back").
    from datetime import UTC, datetime, timedelta

    from bot.store.audit import AuditLog
    from bot.worker.main import Worker

    worker = Worker(config)
    try:
        assert worker.reconcile(datetime.now(UTC) + timedelta(minutes=5)) == 1
        rows = [e for e in AuditLog(worker.db).recent() if e.verb == "swap"]
        assert [e.outcome for e in rows] == ["not-applied", "ok"]
    finally:
        worker.services().db.dispose()
        worker.db.dispose()


def test_ship_deploys_an_application_version_by_label(driver, aws, slack):  # noqa: F811
    versions(aws)
    assert "has no application version `nope`" in say(driver, "ship shop nope")["text"]
    assert "Say which application version" in say(driver, "ship shop")["text"]
    assert updates(aws) == []
    driver.command("ship shop shop-1.0", ADMIN)
    [anchor] = slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
    assert (
        "is deploying `shop-1.0` (Basket &lt;b&gt;fix&lt;/b&gt;) to `shop`" in anchor.args["text"]
    )
    [update] = updates(aws)
    assert update.params["VersionLabel"] == "shop-1.0"
    aws.advance(600)
    assert "Done:" in slack.wait_for_calls("chat.postMessage", n=2, timeout=10)[1].args["text"]
    # In code, as every other label: it had been bare ("shop-1.0 is already deployed"), and
    # a label's underscores read as italics.
    assert say(driver, "ship shop shop-1.0")["text"] == (
        "`shop-1.0` is already deployed to `shop`; nothing to ship."
    )


def release_age(driver) -> str:  # noqa: F811
    _, url = driver.command("status shop", ADMIN)
    return re.search(r"Version: (\S+ for \w+)", json.dumps(driver.reply(url)["blocks"]))[1]


def test_status_dates_the_version_by_its_deployment_not_the_last_update(driver, aws, slack):  # noqa: F811
    versions(aws)
    assert release_age(driver) == "v1 for 23h"  # launched with it a day ago
    driver.command("scale web=3 shop", ADMIN)
    slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
    aws.advance(600)
    slack.wait_for_calls("chat.postMessage", n=2, timeout=10)
    # The scale had moved DateUpdated, and with it the age: "v1 for 0s".
    assert release_age(driver) == "v1 for 23h"
    driver.command("ship shop shop-1.0", ADMIN)
    slack.wait_for_calls("chat.postMessage", n=3, timeout=10)
    aws.advance(600)
    slack.wait_for_calls("chat.postMessage", n=4, timeout=10)
    assert release_age(driver) == "shop-1.0 for 0s"  # dated by its deployment, just now
    assert aws.violations == []


def test_status_reads_only_the_newest_events_to_date_the_version(driver, aws):  # noqa: F811
    # Each read had asked for up to 1,000 events, however near the deployment was.
    assert release_age(driver) == "v1 for 23h"
    [read] = aws.calls("DescribeEvents")
    assert read.params["MaxRecords"] <= 50


def test_status_reads_back_only_as_far_as_the_deployment(driver, aws):  # noqa: F811
    for n in range(120):
        aws.set_health("shop-prod", color="Yellow" if n % 2 == 0 else "Green")
    assert release_age(driver) == "v1 for 23h"
    assert len(aws.calls("DescribeEvents")) == 3  # pages of 50: the launch is the 121st


def test_status_says_when_the_version_is_older_than_the_events_it_reads(driver, aws):  # noqa: F811
    # 300 health changes since the launch: the deployment is past the cap, so the age is
    # said to be unknown, not guessed, after a bounded number of small reads.
    for n in range(300):
        aws.set_health("shop-prod", color="Yellow" if n % 2 == 0 else "Green")
    _, url = driver.command("status shop", ADMIN)
    context = json.dumps(driver.reply(url)["blocks"])
    # "Version", Beanstalk's word, as `releases` lists them: it had said "Release: v1".
    assert 'Version: v1"' in context and "Release" not in context  # no age after it
    assert (
        "the age of v1 is unknown: its deployment is not among the environment's newest "
        "200 events" in context
    )
    reads = aws.calls("DescribeEvents")
    assert len(reads) == 4 and all(r.params["MaxRecords"] == 50 for r in reads)
    assert aws.violations == []


def test_a_ship_answered_500_is_sent_once_and_read_back_from_the_version(driver, aws):  # noqa: F811
    versions(aws)
    aws.fail_next(500, actions=["UpdateEnvironment"])  # answered before anything was done
    text = say(driver, "ship shop shop-1.0")["text"]
    assert len(updates(aws)) == 1
    # It had said only that it may have been made, and to check.
    assert "after the change to `shop` was sent" in text
    assert "I read it back: it runs v1" in text and "not what was asked, yet" in text
    assert text.count("Check ") == 1 and "`/deploy releases shop`" in text
    assert aws.violations == []


def test_logs_tail_the_environment_with_secrets_masked(driver, aws):  # noqa: F811
    aws.log("shop-prod", "[INFO] STRIPE_KEY=sk_live_x connected")
    aws.log("shop-prod", "[INFO] GET /basket 200")
    reply = say(driver, "logs shop 10")
    assert "STRIPE_KEY=••••••" in reply["text"] and "sk_live_x" not in reply["text"]
    assert "GET /basket 200" in reply["text"]
    assert [r.action for r in aws.requests if "EnvironmentInfo" in r.action] == [
        "RequestEnvironmentInfo",
        "RetrieveEnvironmentInfo",
    ]
    assert aws.violations == []


def test_logs_longer_than_a_message_say_where_to_read_them_all(driver, aws):  # noqa: F811
    for n in range(100):
        aws.log("shop-prod", f"[INFO] GET /basket/{n:03} 200 " + "x" * 60)
    title, _, *body = say(driver, "logs shop")["text"].split("\n")
    assert body[0].startswith("[INFO] GET /basket/") and body[-2].startswith(
        "[INFO] GET /basket/099"
    )
    assert title.startswith(f"*Last {len(body) - 1} log lines of `i-")
    assert (
        title.endswith("instance's.")
        and (
            "(secrets masked): 100 were asked for, more than one Slack message holds. The "
            "environment's Logs page in the AWS console has them all. `/deploy logs shop i-"
        )
        in title
    )


def test_logs_with_no_instance_named_say_whose_they_are_and_how_to_see_another(
    blue_green,
    aws,  # noqa: F811
):
    ids = aws.environment("shop-prod", region="us-east-1", access_key=PROD_KEY)["instance_ids"]
    aws.log("shop-prod", "[INFO] GET /basket 200")
    aws.log("shop-green", "[INFO] GET /basket 200")
    # Each had said "Last 1 log lines of `shop`": one instance's tail, as the environment's.
    for words in ("logs shop", "logs shop web"):
        assert say(blue_green, words)["text"].split("\n")[0] == (
            f"*Last 1 log line of `{ids[0]}`, the first of `shop`'s instances to answer* "
            f"(secrets masked). `/deploy logs shop {min(set(ids) - {ids[0]})}` shows another "
            "instance's."
        )
    [green] = aws.environment("shop-green", region="us-east-1", access_key=PROD_KEY)["instance_ids"]
    assert say(blue_green, "logs shop-green")["text"].split("\n")[0] == (
        f"*Last 1 log line of `{green}`, the only one of `shop-green`'s instances to answer* "
        "(secrets masked)"
    )
    # Named, it is that instance's, as before.
    assert say(blue_green, f"logs shop {ids[1]}")["text"].startswith(
        f"*Last 1 log line of `{ids[1]}` of `shop`* (secrets masked)\n"
    )
    assert aws.violations == []


def test_logs_of_one_instance_are_its_own_and_other_names_are_refused(driver, aws):  # noqa: F811
    first, second = aws.environment("shop-prod", region="us-east-1", access_key=PROD_KEY)[
        "instance_ids"
    ][:2]
    aws.log("shop-prod", "[INFO] GET /basket 200")
    aws.log("shop-prod", "[WARN] worker timeout", instance=second)
    # The instance ID had been dropped: every `logs shop i-…` showed the first instance's.
    reply = say(driver, f"logs shop {second} 10")["text"]
    assert f"`{second}` of `shop`" in reply and "worker timeout" in reply
    assert "worker timeout" not in say(driver, f"logs shop {first}")["text"]
    assert "worker timeout" not in say(driver, "logs shop web")["text"]  # web: the first
    asked = len([r for r in aws.requests if "EnvironmentInfo" in r.action])
    assert say(driver, "logs shop i-0abc")["text"] == (
        f"`i-0abc` is not one of `shop`'s instances (`{min(first, second)}`, "
        f"`{max(first, second)}`): name one of those, or none for the newest tail of any."
    )
    assert say(driver, "logs shop web.1")["text"] == (
        "On Beanstalk, logs take an instance ID such as `i-0abc…`, not `web.1`: "
        "`/deploy status shop` lists the instances."
    )
    assert len([r for r in aws.requests if "EnvironmentInfo" in r.action]) == asked
    assert aws.violations == []


def test_run_and_promote_are_not_beanstalk_features(driver, aws):  # noqa: F811
    assert "`run` is not supported there" in say(driver, "run shop ls")["text"]
    assert "Beanstalk has no pipelines" in say(driver, "promote shop")["text"]
    assert updates(aws) == []


def test_a_version_made_but_not_deployed_says_so_and_how_to_deploy_it(blue_green, aws, slack):  # noqa: F811
    from bot.sandbox.fakes.beanstalk import _Fault

    made = aws._create_application_version

    def then_refused(call):
        aws._create_application_version = made
        aws._faults.append(
            _Fault(403, "AccessDenied", "Not authorized", 1, frozenset({"DescribeEnvironments"}))
        )
        return made(call)

    aws._create_application_version = then_refused
    text = say(blue_green, "ship shop v3.0")["text"]
    # It had said only "try again", of a version that now exists.
    assert text.startswith("I made application version `v3.0` but could not deploy it:")
    assert text.endswith("`/deploy ship shop v3.0` deploys it.")
    assert updates(aws) == []
    blue_green.command("ship shop v3.0", ADMIN)  # deploys the version made, in the channel
    slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
    [update] = updates(aws)
    assert update.params["VersionLabel"] == "v3.0"
    assert len(aws.calls("CreateApplicationVersion")) == 1


def test_ship_makes_a_version_from_the_registry_bundle_then_deploys_it(blue_green, aws, slack):  # noqa: F811
    aws.missing_bundles.add(("acme-bundles", "shop/v9.zip"))
    refused = say(blue_green, "ship shop v9")
    assert "Unable to download from S3 location" in refused["text"]
    assert updates(aws) == []
    blue_green.command("ship shop v2.0", ADMIN)
    [anchor] = slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
    assert (
        "is deploying `v2.0` (from s3://acme-bundles/shop/v2.0.zip) to `shop`"
        in (anchor.args["text"])
    )
    created = [
        c for c in aws.calls("CreateApplicationVersion") if c.params["VersionLabel"] == "v2.0"
    ]
    assert created[0].params["SourceBundle"] == {
        "S3Bucket": "acme-bundles",
        "S3Key": "shop/v2.0.zip",
    }
    [update] = updates(aws)
    assert update.params["VersionLabel"] == "v2.0"
    aws.advance(600)
    slack.wait_for_calls("chat.postMessage", n=2, timeout=10)
    assert (
        aws.environment("shop-prod", region="us-east-1", access_key=PROD_KEY)["version_label"]
        == "v2.0"
    )
    assert aws.violations == []


def test_with_no_instance_named_the_newest_tail_is_shown_not_the_first_listed(monkeypatch):
    """Tails stay listed for a while: the first one listed can be an older request's."""
    from datetime import UTC, datetime

    from bot.platforms import beanstalk

    listed_tails = [
        {
            "Ec2InstanceId": "i-old",
            "SampleTimestamp": datetime(2026, 12, 2, 9, tzinfo=UTC),
            "Message": "https://s3.example/old",
        },
        {
            "Ec2InstanceId": "i-new",
            "SampleTimestamp": datetime(2026, 12, 2, 10, tzinfo=UTC),
            "Message": "https://s3.example/new",
        },
        {"Ec2InstanceId": "i-undated", "Message": "https://s3.example/undated"},
    ]
    platform = beanstalk.BeanstalkPlatform("us-east-1")
    monkeypatch.setattr(platform, "_call", lambda op, app, **kw: {"EnvironmentInfo": listed_tails})
    monkeypatch.setattr(beanstalk, "fetch_tail", lambda get, url, timeout: [f"from {url}"])
    tail = platform.log_tail("shop-prod", None, 10)
    assert (tail.instance, tail.lines) == ("i-new", ["from https://s3.example/new"])


@pytest.mark.parametrize(
    ("before", "asked", "read_back"),
    [
        ({}, "config set FEATURE_X=on shop", "`FEATURE_X` is not set"),
        ({"FEATURE_X": "off"}, "config set FEATURE_X=on shop", "`FEATURE_X` has another value"),
        ({"FEATURE_X": "off"}, "config unset FEATURE_X shop", "`FEATURE_X` is still set"),
        (
            {"FEATURE_X": "on", "B": "off"},
            "config set FEATURE_X=on A=on B=on shop",
            "`FEATURE_X` holds the value asked but `A` is not set and `B` has another value",
        ),
    ],
)
def test_a_config_change_answered_500_is_read_back_in_plain_words(
    driver,  # noqa: F811
    aws,  # noqa: F811
    before,
    asked,
    read_back,
):
    # It had said "I read it back: `FEATURE_X` otherwise, not what was asked, yet…".
    aws.set_properties("shop-prod", before)
    prompt = say(driver, asked)
    aws.fail_next(500, actions=["UpdateEnvironment"])  # answered before anything was done
    _, url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    text = driver.reply(url)["text"]
    assert f"I read it back: {read_back}, not what was asked, yet: it may still" in text
    assert "otherwise" not in text and "`off`" not in text and "`on`" not in text
    assert len(updates(aws)) == 1
    assert aws.violations == []


def test_a_lock_names_only_what_a_beanstalk_environment_can_have_done(driver, aws):  # noqa: F811
    # It had listed "promote to or from it" and "run commands on it", which Beanstalk has not.
    assert (
        "locked `shop`: migrating. Only they may roll it back, ship it, swap it, or change its "
        "config, until `/deploy unlock shop`.\n"
    ) in say(driver, "lock shop migrating")["text"]


def test_a_version_deployed_before_the_newest_fifty_is_still_what_runs(driver, aws):  # noqa: F811
    # Another environment of the application (staging, CI) made 55 versions since `shop`'s
    # v1 went out. Unmarked among the newest 50, the newest had been taken as what runs:
    # `rollback shop` offered "`build-55` → `build-54`", a version never deployed here, and
    # confirming it sent `build-54` to production.
    for n in range(1, 56):
        aws.add_version(
            "shop", f"build-{n}", region="us-east-1", access_key=PROD_KEY, age_hours=20 - n / 10
        )
    releases = say(driver, "releases shop")["text"].splitlines()
    assert releases[-2].startswith("• `v1`") and "← current" in releases[-2]
    assert say(driver, "rollback shop")["text"] == (
        "`shop` has no earlier good application version to roll back to."
    )
    prompt = say(driver, "rollback shop build-54")["text"]
    assert "asks to roll `shop` back: `v1` → `build-54`." in prompt
    assert updates(aws) == []
    assert aws.violations == []


def newer_versions(aws, n=55):  # noqa: F811
    """`n` versions of `shop`, all newer than `versions`' two: they push those out of the
    newest 50."""
    for i in range(n):
        aws.add_version(
            "shop",
            f"shop-2.{i}",
            "",
            region="us-east-1",
            access_key=PROD_KEY,
            age_hours=1 - i / 100,
        )


def test_ship_finds_a_version_older_than_the_newest_fifty(driver, aws, slack):  # noqa: F811
    # It looked only among the newest 50 and said "`shop` has no application version
    # `shop-0.9`", of one that exists.
    versions(aws)
    newer_versions(aws)
    driver.command("ship shop shop-0.9", ADMIN)
    [anchor] = slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
    assert "is deploying `shop-0.9` (First cut) to `shop`" in anchor.args["text"]
    [update] = updates(aws)
    assert update.params["VersionLabel"] == "shop-0.9"
    assert "has no application version `nope`" in say(driver, "ship shop nope")["text"]
    assert aws.violations == []


def test_ship_with_a_bundle_deploys_an_older_version_without_making_it_again(
    blue_green,
    aws,  # noqa: F811
    slack,
):
    # With a `bundle:` it tried to make the version and quoted AWS's "already exists".
    versions(aws)
    newer_versions(aws)
    blue_green.command("ship shop shop-0.9", ADMIN)
    [anchor] = slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
    assert "is deploying `shop-0.9` (First cut) to `shop`" in anchor.args["text"]
    assert aws.calls("CreateApplicationVersion") == []
    [update] = updates(aws)
    assert update.params["VersionLabel"] == "shop-0.9"
    assert aws.violations == []


def _naming_no_version(aws) -> str:  # noqa: F811
    """`shop`'s versions, and `shop-new` of the same application launched with AWS's sample
    application (it names no VersionLabel): the registry that lists it too."""
    versions(aws)
    aws.add_environment(
        "shop-new", region="us-east-1", access_key=PROD_KEY, application="shop", version_label=None
    )
    return BLUE_GREEN + (
        "  shop-new:\n    platform: beanstalk\n    environment: shop-new\n"
        "    region: us-east-1\n    aws_profile: prod\n"
    )


def test_an_environment_naming_no_version_is_not_said_to_run_the_newest(
    config,
    aws,  # noqa: F811
    slack,
    tmp_path,
    monkeypatch,
):
    # Launched with AWS's sample application, `shop-new` names no VersionLabel. The newest
    # good version had been taken for what runs: `rollback shop-new` offered
    # "`shop-1.0` → `shop-0.9`", and a confirmed one said so.
    registry = _naming_no_version(aws)
    with served(config, aws, slack, tmp_path, monkeypatch, registry) as new:
        assert say(new, "rollback shop-new")["text"] == (
            "I cannot tell which application version `shop-new` runs: its environment names "
            "none. Name the one to deploy: `/deploy rollback shop-new VERSION` "
            "(`/deploy releases shop-new` lists them)."
        )
        prompt = say(new, "rollback shop-new shop-1.0")
        assert prompt["text"].startswith(
            f"<@{ADMIN}> asks to roll `shop-new` back to `shop-1.0` (Basket &lt;b&gt;fix&lt;/b&gt;). "
            "I cannot tell which application version `shop-new` runs: its environment names none."
        )
        new.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
        [anchor] = slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
        assert "rolled `shop-new` back to `shop-1.0`" in anchor.args["text"]
        [update] = updates(aws)
        assert update.params == {"EnvironmentName": "shop-new", "VersionLabel": "shop-1.0"}
    assert aws.violations == []


def test_rollback_matches_beanstalk_labels_exactly(driver, aws):  # noqa: F811
    # Labels had been matched ignoring case, and `41` as `v41`, Heroku's habits: `Build-7`
    # and `build-7` are two versions on Beanstalk, and `41` is not `v41`.
    versions(aws)
    for label, age in (("v41", 30), ("build-7", 20), ("Build-7", 10)):
        aws.add_version("shop", label, "", region="us-east-1", access_key=PROD_KEY, age_hours=age)
    assert say(driver, "rollback shop 41")["text"] == (
        "`shop` has no application version `41`. See `/deploy releases shop`."
    )
    assert (
        "asks to roll `shop` back: `v1` → `build-7`."
        in say(driver, "rollback shop build-7")["text"]
    )
    assert say(driver, "rollback shop SHOP-0.9")["text"] == (
        "`shop` has no application version `SHOP-0.9` (labels differ by case). "
        "Did you mean `shop-0.9`?"
    )
    assert "→ `shop-0.9` (First cut)." in say(driver, "rollback shop shop-0.9")["text"]
    assert updates(aws) == []


def test_rollback_reaches_a_version_older_than_the_newest_fifty(driver, aws, slack):  # noqa: F811
    # It looked only among the newest 50 and said "`shop` has no application version
    # `shop-0.9` among its last 50", of one that exists (ship finds it by its label).
    versions(aws)
    newer_versions(aws)
    prompt = say(driver, "rollback shop shop-0.9")
    assert "asks to roll `shop` back: `v1` → `shop-0.9` (First cut)." in prompt["text"]
    driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    [anchor] = slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
    assert "rolled `shop` back: `v1` → `shop-0.9`" in anchor.args["text"]
    [update] = updates(aws)
    assert update.params["VersionLabel"] == "shop-0.9"
    # Looked up by its label, a version that is not there is not "among its last 50".
    assert say(driver, "rollback shop nope")["text"] == (
        "`shop` has no application version `nope`. See `/deploy releases shop`."
    )
    assert aws.violations == []


def test_a_label_differing_only_by_case_gets_a_did_you_mean_and_makes_nothing(
    blue_green,
    aws,  # noqa: F811
):
    # It said "`shop` has no application version `SHOP-0.9`" (rollback says "did you
    # mean"), and with a `bundle:` made `SHOP-0.9` from shop/SHOP-0.9.zip beside `shop-0.9`.
    versions(aws)
    newer_versions(aws)  # `shop-0.9` is older than the newest 50
    assert say(blue_green, "ship shop SHOP-0.9")["text"] == (
        "`shop` has no application version `SHOP-0.9` (labels differ by case). "
        "Did you mean `shop-0.9`?"
    )
    # Rollback answers alike, however old the version (it looked among the newest 50).
    assert say(blue_green, "rollback shop SHOP-0.9")["text"] == (
        "`shop` has no application version `SHOP-0.9` (labels differ by case). "
        "Did you mean `shop-0.9`?"
    )
    assert say(blue_green, "ship shop-green SHOP-2.3")["text"] == (
        "`shop-green` has no application version `SHOP-2.3` (labels differ by case). "
        "Did you mean `shop-2.3`?"
    )
    aws.add_version("shop", "Shop-0.9", "", region="us-east-1", access_key=PROD_KEY)
    assert say(blue_green, "ship shop SHOP-0.9")["text"] == (
        "`shop` has no application version `SHOP-0.9` (labels differ by case): "
        "`Shop-0.9`, `shop-0.9`. Say which, as its label is written."
    )
    assert aws.calls("CreateApplicationVersion") == []
    assert updates(aws) == []
    assert aws.violations == []


def test_a_lost_answer_from_an_environment_naming_no_version_is_read_back(
    config,
    aws,  # noqa: F811
    slack,
    tmp_path,
    monkeypatch,
):
    # What ran was kept as None and read back as the label "None": the environment still
    # naming no version was "could not read its version back", never "not applied".
    from datetime import UTC, datetime, timedelta

    from bot.store.audit import AuditLog
    from bot.worker.main import Worker

    registry = _naming_no_version(aws)
    with served(config, aws, slack, tmp_path, monkeypatch, registry) as new:
        aws.fail_next(500, actions=["UpdateEnvironment"])  # answered before anything was done
        text = say(new, "ship shop-new shop-1.0")["text"]
        assert "I read it back: its environment names no version, not what was asked, yet" in text
        assert len(updates(aws)) == 1
    worker = Worker(config)
    try:
        assert worker.reconcile(datetime.now(UTC) + timedelta(minutes=5)) == 1
        [row] = [e for e in AuditLog(worker.db).recent() if e.verb == "ship"]
        assert row.outcome == "not-applied"
    finally:
        worker.services().db.dispose()
        worker.db.dispose()
    assert aws.violations == []


def test_a_rollback_after_a_rollback_goes_back_to_what_ran_before_it(driver, aws, slack):  # noqa: F811
    # `shop` ran v1 and was rolled back to shop-0.9, its oldest version. A plain `rollback
    # shop` then picked by the versions' dates and said "`shop` has no earlier good
    # application version to roll back to.", though v1 had run just before.
    versions(aws)
    prompt = say(driver, "rollback shop shop-0.9")
    driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
    aws.advance(600)
    slack.wait_for_calls("chat.postMessage", n=2, timeout=10)
    again = say(driver, "rollback shop")
    assert "asks to roll `shop` back: `shop-0.9` (First cut) → `v1`." in again["text"]
    driver.click(CONFIRM_ACTION, button(again, CONFIRM_ACTION)["value"], ADMIN)
    slack.wait_for_calls("chat.postMessage", n=3, timeout=10)
    assert [u.params["VersionLabel"] for u in updates(aws)] == ["shop-0.9", "v1"]
    assert aws.violations == []


def test_the_record_of_what_ran_before_counts_only_while_it_names_what_runs():
    from datetime import UTC, datetime

    from bot.actions.deployments import _replaced
    from bot.store.audit import Entry

    def entry(verb, before, after, outcome="ok"):
        at = datetime(2026, 12, 5, tzinfo=UTC)
        return Entry(
            1,
            at,
            at,
            "slack",
            None,
            "U1",
            None,
            verb,
            "shop",
            verb,
            before,
            None,
            after,
            outcome,
            None,
        )

    rolled = entry("rollback", {"version": "v1"}, {"version": "shop-0.9"})
    scaled = entry("scale", {"web": 1}, {"web": 2})
    assert _replaced([scaled, rolled], "shop-0.9") == "v1"
    # Deployed outside the bot since: the record says nothing of what runs now.
    assert _replaced([rolled], "shop-1.0") is None
    shipped = entry("ship", {"version": "shop-0.9"}, {"version": "shop-1.0"})
    assert _replaced([shipped, rolled], "shop-1.0") == "shop-0.9"
    failed = entry("ship", {"version": "shop-0.9"}, None, outcome="failed")
    assert _replaced([failed, rolled], "shop-0.9") == "v1"
    assert _replaced([], "shop-0.9") is None
