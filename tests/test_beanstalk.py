"""The same /deploy words on Elastic Beanstalk, through the web app, the Beanstalk client
(boto3) and the fake Beanstalk over HTTP; two AWS credential sets in two regions and two
Heroku keys, each app reaching only its own."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
import requests
from botocore.config import Config as BotoConfig

from bot.actions.results import PlatformMetrics
from bot.platforms import beanstalk as beanstalk_module
from bot.platforms.base import PlatformError, Traffic
from bot.platforms.cloudwatch import load_balancer_dimension as dimension
from bot.sandbox.fakes.beanstalk import FakeBeanstalk
from bot.store.autoscale_settings import AutoscaleStore, Settings
from bot.store.db import Database
from bot.web.app import close, create_app
from handlers.render import CONFIRM_ACTION, message
from tests.conftest import ADMIN, HEROKU_KEY
from tests.test_status_reads import in_turn
from tests.webclient import SlackDriver, button, settle

PROD_KEY, EU_KEY = "AKIDPRODEXAMPLE01", "AKIDEUEXAMPLE0002"
SECOND_HEROKU_KEY = "second-heroku-key"
CHANNEL = "C0CONSOLE"  # the channel slash_command() sends from

REGISTRY = """\
heroku:
  allow_unlisted: false
apps:
  myapp:
    platform: heroku
  other:
    platform: heroku
    app: other-app
    api_key_env: HEROKU_API_KEY_SECOND
  shop:
    platform: beanstalk
    environment: shop-prod
    region: us-east-1
    aws_profile: prod
    max: 6
  shop-eu:
    platform: beanstalk
    environment: shop-eu
    region: eu-west-1
    aws_profile: eu
  ghost:
    platform: heroku
    api_key_env: HEROKU_API_KEY_NOT_SET
  lost:
    platform: beanstalk
    environment: lost-env
    region: us-east-1
    aws_profile: nowhere
"""
# With `solo`, a single-instance environment (the test adds it to the fake).
SOLO_REGISTRY = f"""{REGISTRY}\
  solo:
    platform: beanstalk
    environment: shop-solo
    region: us-east-1
    aws_profile: prod
"""


@pytest.fixture
def aws(tmp_path, monkeypatch) -> Iterator[FakeBeanstalk]:
    credentials = tmp_path / "credentials"
    credentials.write_text(
        f"[prod]\naws_access_key_id = {PROD_KEY}\naws_secret_access_key = s1\n"
        f"[eu]\naws_access_key_id = {EU_KEY}\naws_secret_access_key = s2\n"
    )
    (tmp_path / "config").write_text("")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(beanstalk_module, "POLL_SECONDS", 0.05)
    fake = FakeBeanstalk()
    fake.add_environment(
        "shop-prod",
        region="us-east-1",
        access_key=PROD_KEY,
        application="shop",
        min_size=2,
        max_size=2,
        instance_type="t3.small",
    )
    fake.add_environment(
        "shop-eu",
        region="eu-west-1",
        access_key=EU_KEY,
        application="shop",
        min_size=1,
        max_size=3,
        instance_type="t3.micro",
    )
    with fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL_ELASTIC_BEANSTALK", fake.url)
        yield fake


@pytest.fixture
def driver(config, aws, slack, heroku, tmp_path, monkeypatch, request):
    path = tmp_path / "deploybot.yml"
    path.write_text(getattr(request, "param", REGISTRY))  # another registry: indirect
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
    monkeypatch.setenv("HEROKU_API_KEY_SECOND", SECOND_HEROKU_KEY)
    heroku.api_keys = (*heroku.api_keys, SECOND_HEROKU_KEY)
    web = create_app(config)
    yield SlackDriver(web.test_client(), slack)
    close(web)  # the job in hand finishes while the fakes still answer


def thread_replies(slack, n):
    return [c for c in slack.wait_for_calls("chat.postMessage", n=n, timeout=10)]


def test_status_reads_health_resources_and_settings(driver, aws):
    _, url = driver.command("status shop", ADMIN)
    reply = driver.reply(url)
    rendered = json.dumps(reply["blocks"], ensure_ascii=False)
    assert reply["response_type"] == "in_channel"
    assert "`web` 2 × t3.small" in rendered
    assert "Ready Green" in rendered
    assert "instances 2–2" in rendered
    actions = [r.action for r in aws.requests]
    assert {
        "DescribeEnvironments",
        "DescribeEnvironmentHealth",
        "DescribeEnvironmentResources",
        "DescribeConfigurationSettings",
    } <= set(actions)
    assert aws.violations == []


def test_scale_updates_the_asg_and_follows_up_in_thread_when_ready(driver, aws, slack):
    _, url = driver.command("scale web=3:t3.medium shop", ADMIN)
    [anchor] = slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
    assert anchor.args["channel"] == CHANNEL
    assert "scaled `shop`: web 2 → 3" in anchor.args["text"] and "Updating" in anchor.args["text"]
    [update] = aws.calls("UpdateEnvironment")
    options = {(o["Namespace"], o["OptionName"]): o["Value"] for o in _options(update.params)}
    assert options[("aws:autoscaling:asg", "MinSize")] == "3"
    assert options[("aws:autoscaling:asg", "MaxSize")] == "3"
    assert options[("aws:ec2:instances", "InstanceTypes")] == "t3.medium"

    # A second command while it updates is told it is busy, not shown an AWS error.
    _, busy_url = driver.command("restart shop", ADMIN)
    assert "is busy (Updating since" in driver.reply(busy_url)["text"]

    aws.advance(600)
    calls = slack.wait_for_calls("chat.postMessage", n=2, timeout=10)
    follow_up = calls[1].args
    assert follow_up["thread_ts"] == anchor.response["ts"]
    assert "Done:" in follow_up["text"] and "Ready" in follow_up["text"]
    assert aws.environment("shop-prod", region="us-east-1", access_key=PROD_KEY)["max_size"] == 3
    assert url  # the slash command's response_url was not needed


def test_a_follow_up_slack_rate_limits_for_a_moment_is_posted_again(driver, aws, slack):
    # The thread's "Done:" answered 429 "Retry-After: 1" was lost: the thread said
    # "I will follow up" and never did.
    driver.command("scale web=3 shop", ADMIN)
    [anchor] = slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
    slack.fail_next("chat.postMessage", status=429, retry_after=1)
    aws.advance(600)
    follow_up = slack.wait_for_calls("chat.postMessage", n=2, timeout=10)[1].args
    assert follow_up["thread_ts"] == anchor.response["ts"] and "Done:" in follow_up["text"]
    assert slack.faults_served == [("chat.postMessage", 429)]


def test_a_failed_update_is_explained_with_its_events(driver, aws, slack):
    aws.fail_update("shop-prod", "Failed to deploy configuration.")
    driver.command("scale web=4 shop", ADMIN)
    slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
    aws.advance(600)
    follow_up = slack.wait_for_calls("chat.postMessage", n=2, timeout=10)[1].args
    assert "Failed:" in follow_up["text"]
    assert "Failed to deploy configuration." in follow_up["text"]


def test_a_failed_updates_long_event_is_clipped_and_shown_as_typed(driver, aws, slack):
    # An event's message can quote what the app wrote: it may not ping, nor make the
    # follow-up one Slack refuses (then nobody would hear the update failed).
    aws.fail_update("shop-prod", "<!channel> " + "y" * 5000)
    driver.command("scale web=4 shop", ADMIN)
    slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
    aws.advance(600)
    follow_up = slack.wait_for_calls("chat.postMessage", n=2, timeout=10)[1].args
    assert "Failed:" in follow_up["text"] and "&lt;!channel&gt; yyy" in follow_up["text"]
    assert "<!channel>" not in follow_up["text"] and "y…" in follow_up["text"]


def test_follow_ups_name_the_app_as_registered_not_its_environment(driver, aws, slack):
    # The command and its answer said `shop`, and the thread under them `shop-prod`.
    driver.command("restart shop", ADMIN)
    slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
    aws.advance(600)
    done = slack.wait_for_calls("chat.postMessage", n=2, timeout=10)[1].args["text"]
    assert done == "Done: `shop` is Ready (Green).", done
    aws.fail_update("shop-prod", "Failed to deploy configuration.")
    driver.command("scale web=4 shop", ADMIN)
    slack.wait_for_calls("chat.postMessage", n=3, timeout=10)
    aws.advance(600)
    failed = slack.wait_for_calls("chat.postMessage", n=4, timeout=10)[3].args["text"]
    assert failed.startswith("Failed: `shop` update failed."), failed


def test_replies_about_an_environment_say_instances_never_dynos(driver, aws, slack):
    # Beanstalk runs instances: "restarted the `web` dynos of `shop`" had named what it has not.
    driver.command("restart shop web", ADMIN)
    [anchor] = slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
    assert "restarted the app server on every instance of `shop`." in anchor.args["text"]
    aws.advance(600)
    slack.wait_for_calls("chat.postMessage", n=2, timeout=10)
    aws.fail_next(500, actions=["RestartAppServer"])
    _, lost = driver.command("restart shop", ADMIN)
    _, cost = driver.command("cost shop", ADMIN)
    _, kill = driver.command("kill shop", ADMIN)
    said = [driver.reply(url)["text"] for url in (lost, cost, kill)]
    assert "Check `/deploy status shop`" in said[0] or "check `/deploy status shop`" in said[0]
    assert "instances" in said[0]
    # The autoscaler never runs on Beanstalk: "no autoscaler record of web instances" read as
    # though it might have.
    assert "last 7 days: instance-hours not counted: its Auto Scaling group scales it" in said[1]
    assert "autoscaler record" not in said[1]
    assert "Instances scaled to 0 stop serving" in said[2]
    assert not [text for text in said if "dyno" in text.lower()], said


@pytest.mark.parametrize("then", ["scale web=3 shop", "restart shop"])
def test_a_change_after_a_failed_one_is_followed_by_its_own_events(driver, aws, slack, then):
    # A scale read every event the environment kept, and a restart those since the last
    # change's `DateUpdated`: the earlier failure's events made a change that went well fail.
    aws.fail_update("shop-prod", "Failed to deploy configuration.")
    driver.command("scale web=4 shop", ADMIN)
    slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
    aws.advance(600)
    assert (
        slack.wait_for_calls("chat.postMessage", n=2, timeout=10)[1]
        .args["text"]
        .startswith("Failed:")
    )
    aws.advance(60)
    driver.command(then, ADMIN)
    slack.wait_for_calls("chat.postMessage", n=3, timeout=10)
    aws.advance(600)
    text = slack.wait_for_calls("chat.postMessage", n=4, timeout=10)[3].args["text"]
    assert text.startswith("Done: `shop` is Ready"), text


def test_a_chart_of_an_environment_counts_its_instances(driver, slack, database_url):
    from tests.test_charts import store_traffic

    # "Web dynos: 2 throughout", and the alt text "… and web dynos of shop".
    store_traffic(database_url, "shop", 90, datetime.now(UTC))
    driver.command("chart shop 6h", ADMIN)
    [upload] = slack.wait_for_uploads(1, timeout=20)
    assert "Web instances: 2 throughout" in upload.initial_comment
    [asked] = slack.calls_to("files.getUploadURLExternal")
    assert asked.args["alt_txt"] == "Requests, p95 times and web instances of shop"
    assert "dyno" not in upload.initial_comment.lower()


def test_kill_on_beanstalk_confirms_then_sets_zero(driver, aws, slack):
    _, url = driver.command("kill shop-eu", ADMIN)
    prompt = driver.reply(url)
    assert "asks to kill `shop-eu`" in prompt["text"]
    assert aws.calls("UpdateEnvironment") == []
    _, click_url = driver.click(CONFIRM_ACTION, button(prompt, CONFIRM_ACTION)["value"], ADMIN)
    # The prompt goes; the kill is announced in the channel, where its follow-up will thread.
    assert driver.reply(click_url)["delete_original"] is True
    [anchor] = slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
    assert "killed `shop-eu`: web 1 → 0" in anchor.args["text"]
    [update] = aws.calls("UpdateEnvironment")
    assert {o["Value"] for o in _options(update.params)} == {"0"}
    assert update.region == "eu-west-1" and update.access_key == EU_KEY


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("scale web=2:standard-2x shop", "not an EC2 instance type"),
        ("scale web=3:t3.large myapp", "not a Heroku dyno size"),
        ("scale web=9 shop", "at most 6"),
        ("scale worker=1 shop", "it scales as `web` (its instances); `worker` has no meaning"),
        # It had named the environment (`shop-prod`), not the app typed.
        (
            "restart shop web.1",
            "`shop` is a Beanstalk environment: restart all of it, without `web.1`.",
        ),
        ("status shopp", "Did you mean `shop`"),
        # Close to the environment's name only (`shop-prod`): the alias to type is offered.
        (
            "status shop-production",
            "`shop-production` is not an app I manage. Did you mean `shop`?",
        ),
        ("status unlisted-app", "not an app I manage"),
        (
            "scale web=2 ghost",
            "no Heroku API key for `ghost`. An admin should set HEROKU_API_KEY_NOT_SET",
        ),
        ("status lost", "The AWS profile `nowhere` is not configured on the bot"),
    ],
)
def test_bad_input_never_reaches_the_platform(driver, aws, heroku, text, says):
    _, url = driver.command(text, ADMIN)
    assert says in driver.reply(url)["text"]
    settle(0.1)
    assert aws.calls("UpdateEnvironment") == [] and aws.calls("RestartAppServer") == []
    assert [r for r in heroku.requests if r.method != "GET"] == []


def test_each_app_uses_only_its_own_credentials(driver, aws, heroku):
    for text in ("status shop", "status shop-eu", "status myapp", "status other"):
        _, url = driver.command(text, ADMIN)
        assert "Status of" in driver.reply(url)["text"]
    by_env = {
        (
            r.params.get("EnvironmentName") or (r.params.get("EnvironmentNames") or [None])[0],
            r.access_key,
            r.region,
        )
        for r in aws.requests
    }
    assert {(env, key, region) for env, key, region in by_env if env} == {
        ("shop-prod", PROD_KEY, "us-east-1"),
        ("shop-eu", EU_KEY, "eu-west-1"),
    }
    keys = {r.path.split("/")[2]: _basic_key(r.headers) for r in heroku.requests}
    assert keys == {"myapp": HEROKU_KEY, "other-app": SECOND_HEROKU_KEY}


def test_apps_lists_both_platforms(driver):
    _, url = driver.command("apps", ADMIN)
    text = driver.reply(url)["text"]
    assert "`shop`: Beanstalk environment `shop-prod` in us-east-1" in text
    assert "`other`: Heroku app `other-app`" in text
    assert "any other Heroku app" not in text


def _options(params: dict) -> list[dict]:
    return params["OptionSettings"]


def _basic_key(headers: dict) -> str:
    token = headers["Authorization"].split(" ", 1)[1]
    return base64.b64decode(token).decode().split(":", 1)[1]


def test_a_restarting_bot_ends_the_thread_instead_of_going_quiet(config, aws, slack, driver):
    driver.command("scale web=3 shop", ADMIN)
    [anchor] = slack.wait_for_calls("chat.postMessage", n=1, timeout=10)
    # What gunicorn's worker_exit hook does when the dyno restarts mid-update.
    driver.client.application.extensions["deploybot"].followups.close()
    ending = slack.wait_for_calls("chat.postMessage", n=2, timeout=10)[1].args
    assert ending["thread_ts"] == anchor.response["ts"]
    assert "`shop` was still Updating when I stopped watching it" in ending["text"]
    assert not ending["text"].startswith("Failed")  # it had not failed: it was under way
    # Still under way, not failed: the trail had said `error` of an update that went on to
    # finish, and the worker's reconcile pass, which reads back only rows left unknown or
    # pending, never gave it its final word.
    from bot.store.audit import AuditLog

    database = Database(config.database_url)
    [entry] = [e for e in AuditLog(database).recent("shop", limit=None) if e.verb == "scale"]
    database.dispose()
    assert entry.outcome == "unknown", entry
    assert "check `/deploy status shop` in a few minutes" in ending["text"]


@pytest.fixture
def cloudwatch(monkeypatch):
    """moto's CloudWatch over real HTTP: boto3 reaches it as it would reach AWS."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    # moto keeps its state per process, not per server: start every test from empty.
    requests.post(f"http://{host}:{port}/moto-api/reset", timeout=5).raise_for_status()
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", f"http://{host}:{port}")
    yield boto3.client(
        "cloudwatch",
        region_name="us-east-1",
        endpoint_url=f"http://{host}:{port}",
        aws_access_key_id=PROD_KEY,
        aws_secret_access_key="s1",
    )
    server.stop()


def test_metrics_come_from_cloudwatch_and_the_health_report(driver, aws, cloudwatch):
    balancer = aws.environment("shop-prod", region="us-east-1", access_key=PROD_KEY)[
        "load_balancer"
    ]
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    # Minute 2 had no traffic. Nothing 5 minutes back: should the minute turn before the
    # command runs, its window starts a minute later and still holds all three; and the
    # minute under way reports none, so it is no minute CloudWatch has yet to report then.
    for minutes_ago, count in ((4, 120), (3, 240), (1, 60), (0, 0)):
        cloudwatch.put_metric_data(
            Namespace="AWS/ApplicationELB",
            MetricData=[
                {
                    "MetricName": "RequestCount",
                    "Dimensions": [{"Name": "LoadBalancer", "Value": dimension(balancer)}],
                    "Timestamp": now - timedelta(minutes=minutes_ago),
                    "Value": count,
                    "Unit": "Count",
                }
            ],
        )
    _, url = driver.command("metrics shop 5m", ADMIN)
    text = driver.reply(url)["text"]
    assert "*`shop` over the last 5 min* (CloudWatch, load balancer)" in text
    assert "Requests: 420 (84.0/min)" in text
    assert "Last 10 s (Beanstalk health): 120 requests" in text
    assert aws.violations == []


def test_metrics_read_a_classic_load_balancers_requests_and_say_an_nlb_counts_none(aws, cloudwatch):
    # A classic ELB publishes RequestCount in AWS/ELB by LoadBalancerName; the bot asked
    # AWS/ApplicationELB by LoadBalancer and read "Requests: 0" for a busy environment. A
    # Network Load Balancer counts connections, not requests: it read 0 too.
    aws.add_environment(
        "shop-clb", region="us-east-1", access_key=PROD_KEY, load_balancer_type="classic"
    )
    aws.add_environment(
        "shop-nlb", region="us-east-1", access_key=PROD_KEY, load_balancer_type="network"
    )
    balancer = aws.environment("shop-clb", region="us-east-1", access_key=PROD_KEY)["load_balancer"]
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    cloudwatch.put_metric_data(
        Namespace="AWS/ELB",
        MetricData=[
            {
                "MetricName": "RequestCount",
                "Dimensions": [{"Name": "LoadBalancerName", "Value": balancer}],
                "Timestamp": now - timedelta(minutes=3),
                "Value": 75,
                "Unit": "Count",
            }
        ],
    )
    platform = beanstalk_module.BeanstalkPlatform("us-east-1", profile="prod")
    traffic = platform.traffic("shop-clb", 5, datetime.now(UTC), alias="clb")
    assert "Requests: 75" in message(PlatformMetrics("clb", 5, traffic))["text"]
    traffic = platform.traffic("shop-nlb", 5, datetime.now(UTC), alias="nlb")
    text = message(PlatformMetrics("nlb", 5, traffic))["text"]
    assert "Requests: 0" not in text, text
    assert (
        "Requests per minute are not available: `nlb` is behind a Network Load Balancer, "
        "which counts connections, not requests."
    ) in text, text
    assert aws.violations == []


def test_metrics_of_a_single_instance_environment_say_it_has_no_load_balancer(aws):
    # No load balancer, so no RequestCount in CloudWatch: its hour read "Requests: 0" beside
    # health's 120 requests in the last 10 s, a busy app shown as an idle one.
    aws.add_environment(
        "shop-solo", region="us-east-1", access_key=PROD_KEY, max_size=1, load_balanced=False
    )
    platform = beanstalk_module.BeanstalkPlatform("us-east-1", profile="prod")
    traffic = platform.traffic("shop-solo", 5, datetime.now(UTC), alias="solo")
    text = message(PlatformMetrics("solo", 5, traffic))["text"]
    assert "Requests: 0" not in text, text
    assert (
        "Requests per minute are not available: `solo` is a single-instance environment, "
        "with no load balancer to count them."
    ) in text, text
    assert "Last 10 s (Beanstalk health): 60 requests" in text
    assert aws.violations == []


def test_metrics_of_an_environment_with_basic_health_show_cloudwatch_and_say_why_no_more(
    aws, cloudwatch
):
    # Enhanced health off: DescribeEnvironmentHealth is refused, and the whole of
    # `metrics ENV 5m` failed with "Elastic Beanstalk answered InvalidRequestException: …",
    # though CloudWatch had the load balancer's minutes (status was fixed for this already).
    aws.add_environment(
        "shop-basic", region="us-east-1", access_key=PROD_KEY, min_size=2, enhanced_health=False
    )
    balancer = aws.environment("shop-basic", region="us-east-1", access_key=PROD_KEY)[
        "load_balancer"
    ]
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    cloudwatch.put_metric_data(
        Namespace="AWS/ApplicationELB",
        MetricData=[
            {
                "MetricName": "RequestCount",
                "Dimensions": [{"Name": "LoadBalancer", "Value": dimension(balancer)}],
                "Timestamp": now - timedelta(minutes=3),
                "Value": 90,
                "Unit": "Count",
            }
        ],
    )
    platform = beanstalk_module.BeanstalkPlatform("us-east-1", profile="prod")
    traffic = platform.traffic("shop-basic", 5, datetime.now(UTC), alias="basic")
    text = message(PlatformMetrics("basic", 5, traffic))["text"]
    assert "Requests: 90" in text, text
    assert "No requests in the last" not in text, text  # unknown, not none
    assert (
        "No figures for the last 10 s: enhanced health reporting is off for `basic`."
    ) in text, text
    assert aws.violations == []


@pytest.mark.parametrize("quantity", [3, 0], ids=["scale", "kill"])
def test_scaling_a_single_instance_environment_is_refused_with_how_to_change_it(aws, quantity):
    # Beanstalk holds a single-instance environment's Auto Scaling group at one instance
    # whatever MinSize and MaxSize say: `scale web=3` was sent, "scaled 1 → 3" was said,
    # and the environment went on running one instance.
    aws.add_environment(
        "shop-solo", region="us-east-1", access_key=PROD_KEY, max_size=1, load_balanced=False
    )
    platform = beanstalk_module.BeanstalkPlatform("us-east-1", profile="prod")
    with pytest.raises(PlatformError) as caught:
        platform.scale("shop-solo", {"web": (quantity, None)})
    wanted = "stop it" if quantity == 0 else f"run {quantity}"  # `kill`: "to run 0" read oddly
    assert str(caught.value) == (
        "`shop-solo` is a single-instance environment, which always runs one instance; to "
        f"{wanted}, an admin should make it load balanced (Environment type, under "
        "Capacity in its configuration)."
    )
    assert not aws.calls("UpdateEnvironment")
    # Its instance type can still change, one instance at a time.
    platform.scale("shop-solo", {"web": (1, "t3.small")})
    assert len(aws.calls("UpdateEnvironment")) == 1


@pytest.mark.parametrize("driver", [SOLO_REGISTRY], indirect=True)
@pytest.mark.parametrize(
    ("text", "wanted"), [("kill solo", "stop it"), ("scale web=5 solo", "run 5")]
)
def test_a_single_instance_environment_is_refused_before_any_prompt(driver, aws, text, wanted):
    # The prompt offered Confirm; only the click was refused, and the prompt came back to be
    # clicked again, refused again.
    aws.add_environment(
        "shop-solo", region="us-east-1", access_key=PROD_KEY, max_size=1, load_balanced=False
    )
    _, url = driver.command(text, ADMIN)
    reply = driver.reply(url)
    assert reply["text"] == (
        "`solo` is a single-instance environment, which always runs one instance; to "
        f"{wanted}, an admin should make it load balanced (Environment type, under "
        "Capacity in its configuration)."
    ), reply["text"]
    assert CONFIRM_ACTION not in json.dumps(reply.get("blocks", []))
    assert not aws.calls("UpdateEnvironment")


@pytest.mark.parametrize("pasted", ["{}\n", " {} ", '"{}"'], ids=["newline", "spaces", "quotes"])
def test_aws_keys_pasted_with_a_newline_or_spaces_are_read_trimmed(aws, monkeypatch, pasted):
    # boto3 reads the keys from the environment itself, past `pasted`: a newline had said
    # "the connection dropped, try again", a space "MissingAuthenticationToken".
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", pasted.format(PROD_KEY))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", pasted.format("s1"))
    platform = beanstalk_module.BeanstalkPlatform("us-east-1")
    assert platform.formation("shop-prod")[0].quantity == 2
    assert aws.violations == []


def test_a_change_to_a_terminating_environment_is_not_told_to_wait_for_ready(aws):
    # A terminating environment is never Ready again: "try again when it is Ready" sent
    # whoever asked back to wait for nothing.
    aws.add_environment("shop-old", region="us-east-1", access_key=PROD_KEY, status="Terminating")
    platform = beanstalk_module.BeanstalkPlatform("us-east-1", profile="prod")
    for change in (
        lambda: platform.scale("shop-old", {"web": (3, None)}),
        lambda: platform.restart("shop-old", None),
        lambda: platform.set_config("shop-old", {"A": "1"}),
    ):
        with pytest.raises(PlatformError) as caught:
            change()
        said = str(caught.value)
        assert "try again when it is Ready" not in said, said
        assert said.startswith("`shop-old` is being terminated (since "), said
        assert said.endswith("UTC), so it cannot be changed."), said
    assert not aws.calls("UpdateEnvironment") and not aws.calls("RestartAppServer")


def test_status_of_an_environment_with_basic_health_shows_what_it_can(aws):
    # Enhanced health off: DescribeEnvironmentHealth is refused, and the whole status failed
    # with "Elastic Beanstalk answered InvalidRequestException: …", though the environment,
    # its settings and its instances all read.
    aws.add_environment(
        "shop-basic", region="us-east-1", access_key=PROD_KEY, min_size=2, enhanced_health=False
    )
    platform = beanstalk_module.BeanstalkPlatform("us-east-1", profile="prod")
    status = platform.status("shop-basic")
    assert status.state == "Ready" and status.health == "Green"
    assert len(status.dynos) == 2
    assert (
        "enhanced health reporting is off, so there are no causes or request figures"
        in status.notes
    ), status.notes
    assert aws.violations == []


def test_autoscale_of_a_beanstalk_environment_is_refused_clearly(driver, aws, config):
    # The autoscaler reads Heroku router logs and formations; it cannot scale an ASG.
    _, url = driver.command("autoscale shop on max=4", ADMIN)
    text = driver.reply(url)["text"]
    assert "`shop` is an Elastic Beanstalk environment" in text
    assert "MinSize/MaxSize" in text
    # Status says who scales it: it had listed Heroku's scale-down hold and step per tick.
    _, url = driver.command("autoscale shop status", ADMIN)
    text = driver.reply(url)["text"]
    assert "its Auto Scaling group scales it" in text and "Step per tick" not in text
    # Off with nothing kept says so; it had read the environment and stored web settings.
    _, url = driver.command("autoscale shop off", ADMIN)
    assert "Autoscaling of `shop` is off. `shop` is an Elastic" in driver.reply(url)["text"]
    # Turning it off stays possible, for settings saved before the refusal existed.
    db = Database(config.database_url)
    store = AutoscaleStore(db)
    store.save(Settings("shop", "on", 1, 4, "queue_p95", 300.0, ADMIN, datetime.now(UTC)))
    _, url = driver.command("autoscale shop status", ADMIN)
    assert "Settings kept from before (on, web 1–4" in driver.reply(url)["text"]
    _, url = driver.command("autoscale shop off", ADMIN)
    assert "set autoscaling of `shop`: off" in driver.reply(url)["text"]
    assert store.settings("shop").mode == "off"
    db.dispose()
    # A pin would wait for an autoscaler that never comes; a schedule window likewise.
    for command in ("pin shop web=3 for 1h", "autoscale shop schedule add daily 08:00-18:00 min=2"):
        _, url = driver.command(command, ADMIN)
        assert "`shop` is an Elastic Beanstalk environment" in driver.reply(url)["text"]
    _, url = driver.command("pin shop off", ADMIN)
    assert "was not pinned" in driver.reply(url)["text"]


def test_metrics_without_cloudwatch_still_show_health_and_say_why(driver, aws, monkeypatch):
    # Nothing listens on port 9: botocore raises EndpointConnectionError, as with no network.
    monkeypatch.setenv("AWS_ENDPOINT_URL_CLOUDWATCH", "http://127.0.0.1:9")
    monkeypatch.setattr(
        beanstalk_module, "_BOTO_CONFIG", beanstalk_module._BOTO_CONFIG.merge(ONE_ATTEMPT)
    )
    aws.set_health("shop-prod", region="us-east-1", request_count=120)
    _, url = driver.command("metrics shop 5m", ADMIN)
    text = driver.reply(url)["text"]
    assert "Requests per minute are not available: CloudWatch could not be reached." in text
    assert "Last 10 s (Beanstalk health): 120 requests" in text
    assert "Traceback" not in text and "127.0.0.1" not in text


@pytest.mark.parametrize(
    ("latency", "statuses", "said"),
    [
        ({"p99": 812.0}, {"2xx": 12}, "12 requests, latency p99: 812 ms; 2xx 12"),
        ({"p50": 40.0, "p99": 812.0}, {"2xx": 12}, "12 requests, latency p50 / p99: 40 / 812 ms"),
        ({}, {"2xx": 0}, "Last 10 s (Beanstalk health): 12 requests."),
    ],
    ids=["p99 only", "no p95", "no latency, no status"],
)
def test_the_health_line_names_only_the_percentiles_beanstalk_reported(latency, statuses, said):
    # Every percentile of enhanced health is optional in AWS's model: a missing one had
    # left "latency p50 / p95 / p99: 812 ms" (p99 read as p50), or "p99:  ms; " with none.
    traffic = Traffic(
        per_minute=(5, 7),
        latest_seconds=10,
        latest_requests=12,
        latest_statuses=statuses,
        latency_ms=latency,
    )
    text = message(PlatformMetrics("shop", 2, traffic))["text"]
    assert said in text
    assert " ms; " in text if statuses.get("2xx") else text.endswith(said)


ONE_ATTEMPT = BotoConfig(retries={"mode": "standard", "max_attempts": 1})


def test_a_beanstalk_chart_or_replay_with_no_data_names_no_heroku_drain(driver, aws):
    _, url = driver.command("chart shop", ADMIN)
    text = driver.reply(url)["text"]
    assert "No requests recorded for `shop`" in text and "`/deploy metrics shop`" in text
    assert "Heroku" not in text and "drain" not in text
    _, url = driver.command("simulate shop 7d", ADMIN)
    text = driver.reply(url)["text"]
    assert "the autoscaler, whose settings this replays, scales Heroku dynos only" in text


def test_a_change_answered_500_is_sent_once_and_may_have_been_made(driver, aws):
    # botocore resent it, met "invalid state", and the user read "busy, try again".
    aws.fail_next(500, actions=["UpdateEnvironment"])
    _, url = driver.command("scale web=3 shop", ADMIN)
    text = driver.reply(url)["text"]
    assert len(aws.calls("UpdateEnvironment")) == 1
    assert "failed (InternalFailure) after the change to `shop` was sent" in text
    assert "so it may have been made" in text and "I read it back: web is now 2" in text
    # One piece of advice: the read-back's, not the error's too.
    assert text.count("Check `/deploy status") == 1, text
    # A read answered 500 is retried, as before.
    aws.fail_next(500, actions=["DescribeEnvironments"])
    _, url = driver.command("status shop", ADMIN)
    assert driver.reply(url)["text"].startswith("Status of `shop`: web=2")


def test_a_scale_reads_what_it_needs_before_it_writes(driver, aws, config):
    # The instance type had been read after UpdateEnvironment: that read failing said
    # "nothing was done, try again" of a change made, and `scale web+1` would add two.
    from bot.platforms.base import PlatformError
    from bot.services import Services

    services = Services(config)
    try:
        platform = services.resolve("shop").platform
        aws.fail_next(400, code="AccessDenied", actions=["DescribeConfigurationSettings"])
        with pytest.raises(PlatformError) as failed:
            platform.scale("shop-prod", {"web": (3, None)})
        assert failed.value.changed is False and aws.calls("UpdateEnvironment") == []
        assert platform.scale("shop-prod", {"web": (3, None)})[0].quantity == 3
        assert len(aws.calls("UpdateEnvironment")) == 1
    finally:
        services.db.dispose()


def test_status_reads_what_needs_only_the_environment_at_once(driver, aws):
    # The environment first (the rest need its application and version), then four reads
    # together: read in turn, the first of them would wait here until the timeout.
    gathered = aws.gather(4, timeout=3, after=1)
    _, url = driver.command("status shop", ADMIN)
    assert driver.reply(url)["text"].startswith("Status of `shop`: web=2")
    assert not gathered.broken
    assert aws.requests[0].action == "DescribeEnvironments"
    assert sorted(r.action for r in aws.requests[1:]) == [
        "DescribeConfigurationSettings",
        "DescribeEnvironmentHealth",
        "DescribeEnvironmentResources",
        "DescribeEvents",
    ]


SETTINGS, HEALTH = "DescribeConfigurationSettings", "DescribeEnvironmentHealth"
RESOURCES, EVENTS = "DescribeEnvironmentResources", "DescribeEvents"


@pytest.mark.parametrize(
    ("faults", "says"),
    [
        ([("InvalidParameterValue", SETTINGS)], "Elastic Beanstalk refused the request about"),
        ([("AccessDenied", HEALTH)], "AWS does not let the bot call"),
        ([("ResourceNotFound", RESOURCES)], "Elastic Beanstalk answered ResourceNotFound"),
        ([("ResourceNotFound", EVENTS)], "Elastic Beanstalk answered ResourceNotFound"),
        # Several failing in different ways: the first in the old order is told.
        (
            [("AccessDenied", RESOURCES), ("InvalidParameterValue", HEALTH)],
            "Elastic Beanstalk refused the request about",
        ),
        (
            [("InvalidParameterValue", EVENTS), ("AccessDenied", SETTINGS)],
            "AWS does not let the bot call",
        ),
    ],
    ids=["settings", "health", "resources", "events", "mixed", "mixed-2"],
)
def test_every_status_answer_is_the_one_reads_in_turn_gave(driver, aws, monkeypatch, faults, says):
    def status_text() -> str:
        aws._faults.clear()
        for code, action in faults:
            aws.fail_next(400, code=code, actions=[action])
        _, url = driver.command("status shop", ADMIN)
        return driver.reply(url)["text"]

    together = status_text()
    monkeypatch.setattr(beanstalk_module, "read_together", in_turn)
    assert status_text() == together
    assert together.count(says) == 1, together
    assert "Traceback" not in together


def test_a_process_type_other_than_web_on_beanstalk_says_why(driver, aws):
    # "The app has no `worker` process type" read as if the environment were missing one.
    for command in ("scale worker=2 shop", "kill shop worker"):
        _, url = driver.command(command, ADMIN)
        text = driver.reply(url)["text"]
        assert (
            "`shop` is an Elastic Beanstalk environment: it scales as `web` (its instances); "
            "`worker` has no meaning there." in text
        ), text
    assert not [r for r in aws.requests if r.action == "UpdateEnvironment"]


def test_a_long_health_cause_is_clipped_in_status_and_shown_as_typed(driver, aws):
    # A cause can quote what the app reported: no mention, and no element past Slack's limit.
    aws.set_health("shop-prod", region="us-east-1", color="Red", causes=["<!here> " + "z" * 3000])
    _, url = driver.command("status shop", ADMIN)
    context = json.dumps(driver.reply(url)["blocks"][-1], ensure_ascii=False)
    assert "cause: &lt;!here&gt; zzz" in context and "<!here>" not in context
    assert "z…" in context and len(context) < 2000


@pytest.mark.parametrize(
    ("code", "message", "says"),
    [
        ("ResourceNotFound", "No such resource", "Elastic Beanstalk answered ResourceNotFound: "),
        ("InvalidParameterValue", "Value x is not valid", "Elastic Beanstalk refused the "),
    ],
)
def test_aws_own_words_end_in_a_full_stop(driver, aws, code, message, says):
    # "… answered ResourceNotFound: No such resource" ended the reply mid-air.
    aws.fail_next(400, code=code, message=message, actions=["DescribeEnvironments"])
    _, url = driver.command("status shop", ADMIN)
    text = driver.reply(url)["text"]
    assert says in text and text.endswith(f"{message}."), text


def test_a_beanstalk_digest_counts_instance_hours_and_says_why_it_has_no_prices(
    config, aws, slack, tmp_path, monkeypatch
):
    from datetime import time
    from zoneinfo import ZoneInfo

    from bot.metrics.aggregate import Window
    from bot.metrics.store import MetricsStore
    from bot.store.autoscale_settings import Decision
    from bot.worker.main import Worker

    path = tmp_path / "deploybot.yml"
    path.write_text(
        REGISTRY.replace("    max: 6\n", "    max: 6\n    channel: C0SHOP\n    digest: '09:00'\n")
        .replace("aws_profile: nowhere\n", "aws_profile: nowhere\n    channel: C0LOST\n"
                 "    digest: '09:00'\n")
    )  # fmt: skip
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
    worker = Worker(config)
    try:
        utc = ZoneInfo("UTC")
        two_pm = datetime.combine(datetime.now(UTC).date() - timedelta(days=1), time(14), utc)
        for app in ("shop", "lost"):
            MetricsStore(worker.db).save([Window(app, int(two_pm.timestamp()), 30)])
            AutoscaleStore(worker.db).record(Decision(app, two_pm, 2, 2, False, "steady"))
        nine = datetime.combine(datetime.now(UTC).date(), time(9, 30), utc)
        assert worker.post_digests(nine) == 2
        said = {u.channel: u.initial_comment for u in slack.wait_for_uploads(2, timeout=20)}
        # Beanstalk runs instances: "Web dyno-hours" had named Heroku's unit.
        assert "Web instance-hours: 0.2, $" in said["C0SHOP"] and "dyno" not in said["C0SHOP"]
        # A formation it could not read (the AWS profile is missing) had left the prices out
        # without a word.
        assert (
            "Web size unknown, so no prices: The AWS profile `nowhere` is not configured"
        ) in said["C0LOST"]
    finally:
        worker.services().db.dispose()
        worker.db.dispose()
