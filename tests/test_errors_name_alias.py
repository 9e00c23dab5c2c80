"""A platform's failures name the app by the name the user typed (its alias in the registry),
not by the platform's own name for it (a Beanstalk environment's, a Heroku app's behind an
alias), through the web app, the platform clients and the fakes over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import pytest
from botocore.stub import Stubber

from bot.actions import path
from bot.platforms.beanstalk import BeanstalkPlatform
from bot.web.app import close, create_app
from tests import test_beanstalk
from tests.conftest import ADMIN
from tests.test_beanstalk import PROD_KEY, REGISTRY
from tests.webclient import SlackDriver

aws, driver = test_beanstalk.aws, test_beanstalk.driver  # its fixtures: two credential sets
INVALID_STATE = (
    "Environment named shop-prod is in an invalid state for this operation. Must be Ready."
)


def said(web: SlackDriver, command: str) -> str:
    _, url = web.command(command, ADMIN)
    return web.reply(url)["text"]


@pytest.mark.parametrize(
    ("fault", "command", "says"),
    [
        (
            (400, "InvalidParameterValue", INVALID_STATE, "UpdateEnvironment"),
            "scale web=3 shop",
            "`shop` is busy with another update; try again when it is Ready.",
        ),
        (
            (403, "AccessDenied", None, "DescribeEnvironments"),
            "status shop",
            "AWS does not let the bot call elasticbeanstalk:DescribeEnvironments for `shop` "
            "(AccessDenied).",
        ),
        (
            (400, "InvalidParameterValue", "Invalid option value: 'x'.", "UpdateEnvironment"),
            "scale web=3 shop",
            "Elastic Beanstalk refused the change to `shop`: Invalid option value: 'x'.",
        ),
        (
            (500, "InternalFailure", None, "RestartAppServer"),
            "restart shop",
            "Elastic Beanstalk failed (InternalFailure) after the change to `shop` was sent",
        ),
        (None, "logs shop i-0nope", "`i-0nope` is not one of `shop`'s instances"),
    ],
    ids=["invalid-state", "credentials", "refused", "lost-answer", "no-such-instance"],
)
def test_a_beanstalk_failure_names_the_app_as_typed(driver, aws, fault, command, says):
    # Users typed `shop`; the replies named `shop-prod`, a name they may never have seen.
    if fault is not None:
        status, code, message, action = fault
        aws.fail_next(status, code=code, message=message, actions=[action])
    text = said(driver, command)
    assert says in text, text
    assert "shop-prod" not in text, text
    # The trail the whole team reads keeps the same words.
    history = said(driver, "history shop")
    assert "shop-prod" not in history, history


def test_a_busy_environment_is_named_as_typed(driver, aws, slack):
    driver.command("scale web=3 shop", ADMIN)
    slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
    for command in ("restart shop", "scale web=4 shop"):
        text = said(driver, command)
        assert "`shop` is busy (Updating since" in text and "shop-prod" not in text, text
    aws.advance(600)
    slack.wait_for_calls("chat.postMessage", n=2, timeout=10)


@contextmanager
def driver_with(config, slack, monkeypatch, tmp_path, extra: str) -> Iterator[SlackDriver]:
    """The web app over the test registry and the apps in `extra`."""
    registry = tmp_path / "deploybot.yml"
    registry.write_text(REGISTRY + extra)
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(registry))
    web = create_app(config)
    try:
        yield SlackDriver(web.test_client(), slack)
    finally:
        close(web)


def test_a_missing_environment_names_it_and_the_app_it_is_for(
    config, aws, slack, heroku, tmp_path, monkeypatch
):
    # The environment's name is what an operator fixes in the registry; the alias says which.
    gone = "  gone:\n    platform: beanstalk\n    environment: gone-env\n    region: us-east-1\n"
    with driver_with(config, slack, monkeypatch, tmp_path, gone + "    aws_profile: prod\n") as web:
        text = said(web, "status gone")
    assert text.startswith(
        "There is no Beanstalk environment `gone-env` (the registry's name for `gone`) in "
        "us-east-1 that the bot's AWS credentials can see."
    ), text


def test_a_swap_names_both_environments_as_typed(config, aws, slack, heroku, tmp_path, monkeypatch):
    aws.add_environment(
        "shop-blue-env", region="us-east-1", access_key=PROD_KEY, application="shop"
    )
    blue = "  blue:\n    platform: beanstalk\n    environment: shop-blue-env\n"
    extra = blue + "    region: us-east-1\n    aws_profile: prod\n"
    with driver_with(config, slack, monkeypatch, tmp_path, extra) as web:
        web.command("restart blue", ADMIN)
        slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
        text = said(web, "swap shop blue")
        assert "`blue` is busy (Updating since" in text and "shop-blue-env" not in text, text
        aws.advance(600)
        slack.wait_for_calls("chat.postMessage", n=2, timeout=10)


def test_a_follow_up_that_cannot_read_the_environment_names_the_app_as_typed(
    driver, aws, slack, monkeypatch
):
    monkeypatch.setattr(path, "FOLLOW_UP_PAUSE_S", 0.05)
    driver.command("scale web=3 shop", ADMIN)
    slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
    aws.fail_next(403, code="AccessDenied", count=100, actions=["DescribeEnvironments"])
    ending = slack.wait_for_calls("chat.postMessage", n=2, timeout=10)[1].args["text"]
    aws._faults.clear()
    said = "I could not follow it to the end: AWS does not let the bot call"
    assert said in ending, ending
    assert "shop-prod" not in ending


def test_a_heroku_app_behind_an_alias_is_named_as_typed(driver, heroku):
    # `other` is Heroku's `other-app`: the same words as Beanstalk's, for the same reason.
    heroku.fail_next(
        422, methods=["PATCH"], body={"id": "invalid_params", "message": "Not allowed."}
    )
    text = said(driver, "scale web=3 other")
    assert "Heroku refused the change to `other`: Not allowed" in text, text
    heroku.fail_next(
        404, body={"id": "not_found", "resource": "app", "message": "Couldn't find that app."}
    )
    text = said(driver, "status other")
    # Heroku's own name is the one it lacks: said, with the alias it is the registry's for.
    assert text.startswith(
        "Heroku has no app called `other-app` (the registry's name for `other`), or the bot's "
        "key cannot see it."
    ), text
    assert "Did you mean" not in text


def test_metrics_say_why_cloudwatch_failed_of_the_app_as_typed(driver, aws, monkeypatch):
    # CloudWatch's failure is kept beside the health report, not raised: named as typed too.
    cloudwatch = boto3.client(
        "cloudwatch",
        region_name="us-east-1",
        aws_access_key_id=PROD_KEY,
        aws_secret_access_key="s1",
    )
    stubber = Stubber(cloudwatch)
    stubber.add_client_error("get_metric_data", "AccessDenied", "Not authorized.", 403)
    stubber.activate()
    monkeypatch.setattr(BeanstalkPlatform, "_cloudwatch", lambda self, app: cloudwatch)
    text = said(driver, "metrics shop 5m")
    assert (
        "Requests per minute are not available: AWS does not let the bot read CloudWatch "
        "metrics for `shop`." in text
    ), text
    assert "shop-prod" not in text
