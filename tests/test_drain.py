"""Heroku log drains end to end: `/deploy drain` adds one through the (fake) Heroku API,
router logs POSTed to `/drain/<token>` land in the database, `/deploy metrics` shows them,
and two web processes ingesting halves of a stream read back exactly as one."""

from __future__ import annotations

import json
import logging
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bot.__main__ import main
from bot.logs import LogfmtFormatter
from bot.metrics.aggregate import summarize
from bot.store.audit import AuditLog
from bot.store.drains import Drains
from bot.web import edge
from bot.web.app import close, create_app
from tests.conftest import ADMIN, USER
from tests.webclient import EndlessBody, SlackDriver, post_chunked

PUBLIC_URL = "https://deploybot.example.com"


def router_line(
    when: datetime, dyno: str, service: int, status: int, code: str | None = None
) -> str:
    at = f'at=error code={code} desc="Request timeout"' if code else "at=info"
    message = (
        f'<158>1 {when.isoformat()} host heroku router - {at} method=GET path="/p?q=1" '
        f'host=myapp.herokuapp.com request_id=r1 fwd="10.0.0.1" dyno={dyno} connect=1ms '
        f"service={service}ms status={status} bytes=512 protocol=https\n"
    )
    return f"{len(message.encode())} {message}"


def stream(n: int, seed: int = 7) -> list[str]:
    """`n` octet-counted router frames over the last few minutes, in whole past windows."""
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(microsecond=0)
    frames = []
    for i in range(n):
        when = now - timedelta(seconds=200 - (i * 170 // n))
        status, code = (
            (503, "H12") if i % 50 == 0 else (rng.choice([200, 200, 200, 302, 404]), None)
        )
        service = int(rng.lognormvariate(4, 0.8))
        frames.append(router_line(when, f"web.{1 + i % 3}", service, status, code))
    return frames


def post(client, token, frames, frame_id="f-1", **headers):
    body = "".join(frames).encode()
    return client.post(
        f"/drain/{token}",
        data=body,
        headers={
            "Content-Type": "application/logplex-1",
            "Logplex-Msg-Count": str(len(frames)),
            "Logplex-Frame-Id": frame_id,
            "Logplex-Drain-Token": "d.00000000-0000-0000-0000-000000000000",
            **headers,
        },
    )


@pytest.fixture
def config_with_url(config):
    return replace(config, public_url=PUBLIC_URL)


@pytest.fixture
def web(new_app, config_with_url):
    return new_app(config_with_url)


@pytest.fixture
def driver(web, slack):
    return SlackDriver(web.test_client(), slack)


def add_drain(driver, heroku, app="myapp"):
    _, url = driver.command(f"drain {app}", ADMIN)
    reply = driver.reply(url)["text"]
    [drain] = [r for r in heroku.requests if r.method == "POST" and r.path.endswith("/log-drains")][
        -1:
    ]
    token = drain.json["url"].rsplit("/", 1)[1]
    assert token not in reply, "the secret token must not be shown in Slack"
    return reply, token


def test_drain_then_metrics(driver, web, heroku):
    reply, token = add_drain(driver, heroku)
    assert "`myapp` now drains its logs to me" in reply and f"{PUBLIC_URL}/drain/…" in reply
    assert heroku.violations == []
    # Asking again finds the same drain instead of adding a second one, and says so.
    again, _ = add_drain(driver, heroku)
    assert again.startswith("`myapp` already drains its logs to me"), again
    assert len([r for r in heroku.requests if r.method == "POST"]) == 1

    frames = stream(300)
    assert post(driver.client, token, frames).status_code == 204
    # Heroku retries a batch with the same frame id: it counts once.
    assert post(driver.client, token, frames).status_code == 204
    web.extensions["deploybot.metrics"][1].flush()

    _, url = driver.command("metrics myapp 5m", USER)
    text = driver.reply(url)["text"]
    assert "*`myapp` over the last 5 min*" in text
    assert "Requests: 300 (60.0/min)" in text
    assert "Service time p50 / p95 / p99:" in text and "p95 service time: `" in text
    assert "5xx: 2.0% · H12 ×6" in text
    assert "Per dyno: web.1 20.0/min, web.2 20.0/min, web.3 20.0/min" in text


def test_metrics_for_scripts(driver, web, heroku, config_with_url, monkeypatch, capsys):
    _, token = add_drain(driver, heroku)
    post(driver.client, token, stream(120))
    web.extensions["deploybot.metrics"][1].flush()
    monkeypatch.setenv("DATABASE_URL", config_with_url.database_url)
    assert main(["metrics", "myapp", "--window", "5m", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["app"] == "myapp" and report["minutes"] == 5
    assert report["requests"] == 120 and report["codes"] == {"H12": 3}
    assert 0 < report["service"]["p50"] <= report["service"]["p95"] <= report["service"]["p99"]
    assert main(["metrics", "myapp", "--window", "3d"]) == 2
    assert "is not a window" in capsys.readouterr().err


def test_autoscale_on_says_when_drained_traffic_already_misses_a_service_target(
    driver, web, heroku
):
    """A p95 service time over the target before any spike is the app's own work: more
    dynos would not bring it under, so turning autoscaling on says so, with what to try."""
    _, token = add_drain(driver, heroku)
    now = datetime.now(UTC).replace(microsecond=0)
    slow = [
        router_line(now - timedelta(seconds=300 - i), f"web.{1 + i % 2}", 650 + i % 7, 200)
        for i in range(240)
    ]
    assert post(driver.client, token, slow).status_code == 204
    web.extensions["deploybot.metrics"][1].flush()

    _, url = driver.command("autoscale myapp on max=6 target=service:500ms", ADMIN)
    text = driver.reply(url)["text"]
    assert "set autoscaling of `myapp`: on, web 1–6, target p95 service time 500 ms." in text
    assert "Its p95 service time over the last 15 min is already 65" in text
    assert "the autoscaler will run max=6 and stay there" in text
    assert "set `target=service:800ms` or so, or `target=queue:300ms`" in text

    # A target the traffic meets, or one that is not service time, says nothing more.
    for target in ("service:900ms", "queue:300ms"):
        _, url = driver.command(f"autoscale myapp on target={target}", ADMIN)
        assert "already" not in driver.reply(url)["text"]
    # `shadow` decides as `on` would, so it says it too; `off` decides nothing.
    _, url = driver.command("autoscale myapp shadow target=service:500ms", ADMIN)
    assert "is already 65" in driver.reply(url)["text"]
    _, url = driver.command("autoscale myapp off", ADMIN)
    assert "already" not in driver.reply(url)["text"]


def test_metrics_before_any_drain_says_how_to_start(driver):
    _, url = driver.command("metrics myapp", USER)
    assert "Add a log drain with `/deploy drain myapp` first." in driver.reply(url)["text"]


def test_drain_needs_an_admin_and_a_public_url(config, slack, heroku, new_app):
    no_url = SlackDriver(new_app(config).test_client(), slack)
    _, url = no_url.command("drain myapp", ADMIN)
    # Heroku hosts are `APP-<12 characters>.herokuapp.com` since 2023: a made-up example
    # host would be copied wrong, so the reply says where the real one is.
    assert (
        "set DEPLOYBOT_URL to the bot's Web URL (`heroku apps:info`)" in no_url.reply(url)["text"]
    )
    _, url = no_url.command("drain myapp", USER)
    assert "only the admins" in no_url.reply(url)["text"]
    assert [r for r in heroku.requests if r.method == "POST"] == []


def test_forged_oversized_and_malformed_bodies(driver, web, heroku):
    _, token = add_drain(driver, heroku)
    assert post(driver.client, "forged-token", stream(3)).status_code == 403
    wrong = token[:-1] + ("y" if token.endswith("x") else "x")  # one character off
    assert post(driver.client, wrong, stream(3)).status_code == 403
    huge = ["x" * 1024] * 1100
    assert post(driver.client, token, huge, frame_id="big").status_code == 413
    junk = ["12 not a frame\n", "999999 <158>1 too long\n", *stream(5), "\x00\xff garbage\n"]
    assert post(driver.client, token, junk, frame_id="junk").status_code == 204
    intake, flusher = web.extensions["deploybot.metrics"]
    assert intake.malformed >= 2
    flusher.flush()
    store = web.extensions["deploybot"].metrics
    now = datetime.now(UTC).timestamp()
    assert summarize(store.windows("myapp", int(now) - 600, int(now)), now, 5).requests == 5


def test_two_web_processes_with_halves_read_back_as_one(config_with_url, slack, heroku, new_app):
    first = new_app(config_with_url)
    second = new_app(config_with_url)
    admin = SlackDriver(first.test_client(), slack)
    _, halves_token = add_drain(admin, heroku, "myapp")
    _, whole_token = add_drain(admin, heroku, "other-app")
    frames = stream(600, seed=11)
    for i, client in enumerate((first.test_client(), second.test_client())):
        part = frames[i::2]
        for j in range(0, len(part), 50):
            post(client, halves_token, part[j : j + 50], frame_id=f"h{i}-{j}")
    for j in range(0, len(frames), 50):
        post(first.test_client(), whole_token, frames[j : j + 50], frame_id=f"w-{j}")
    for app in (first, second):
        app.extensions["deploybot.metrics"][1].flush()

    store = first.extensions["deploybot"].metrics
    now = datetime.now(UTC).timestamp()
    halves = summarize(store.windows("myapp", int(now) - 600, int(now)), now, 5)
    whole = summarize(store.windows("other-app", int(now) - 600, int(now)), now, 5)
    assert halves.requests == whole.requests == 600
    assert replace(halves, app=None) == replace(whole, app=None)
    # Compaction folds the parts together and changes nothing a reader sees.
    assert store.rows("myapp") > store.rows("other-app")
    store.compact(int(now) + 3600)
    again = summarize(store.windows("myapp", int(now) - 600, int(now)), now, 5)
    assert replace(again, app=None) == replace(whole, app=None)
    assert store.rows("myapp") == store.rows("other-app")


# ---------------------------------------------------------------------------------------------
# Hostile drain bodies: every frame the parser cannot read is skipped and counted; no body
# makes a 500, loses its batch or poisons the next flush; no log line carries the token.


def hostile_frames() -> list[str]:
    now = datetime.now(UTC).replace(microsecond=0)
    stamp = (now - timedelta(seconds=60)).isoformat()
    good = router_line(now - timedelta(seconds=60), "web.1", 30, 200).split(" ", 1)[1][:-1]
    return [
        "1" * 5000 + " <158>1 x\n",  # a 5,000-digit length prefix
        frame_of(good.replace(stamp, "0001-01-01T00:00:00+01:00")),
        frame_of(good.replace(stamp, "9999-12-31T23:59:59-01:00")),
        frame_of(good.replace("+00:00 host", "+99:99 host")),
        frame_of(good.replace("service=30ms", "service=" + "9" * 400 + "ms")),
        frame_of(good.replace("connect=1ms", "connect=" + "9" * 5000 + "ms")),
        frame_of(f"<40>1 {stamp} host heroku web.1 - source=web.1 sample#load_avg_1m=" + "9" * 400),
        frame_of(f"<190>1 {stamp} host app web.1 - queue=" + "9" * 400 + "ms"),
        frame_of(good),
    ]  # fmt: skip


def frame_of(message: str) -> str:
    return f"{len(message.encode()) + 1} {message}\n"


def test_hostile_frames_are_skipped_and_counted_and_the_flush_still_saves(driver, web, heroku):
    _, token = add_drain(driver, heroku)
    intake, flusher = web.extensions["deploybot.metrics"]
    for i in range(2):  # the second batch lands after the first one's bad values
        answer = post(driver.client, token, hostile_frames(), frame_id=f"hostile-{i}")
        assert answer.status_code == 204
    assert intake.malformed == 2 * 4  # the prefix, the two years, the offset
    flusher.flush()  # no "int too large to convert to float": nothing unbounded got in
    store = web.extensions["deploybot"].metrics
    now = datetime.now(UTC).timestamp()
    summary = summarize(store.windows("myapp", int(now) - 600, int(now) + 60), now + 60, 6)
    # The good line and the two with an unreadable timing are requests; the runtime and
    # queue lines with 400-digit values are no samples.
    assert summary.requests == 2 * 3
    assert summary.runtime == {}


def test_the_batch_id_is_claimed_only_after_the_body_is_parsed(driver, web, heroku, monkeypatch):
    _, token = add_drain(driver, heroku)
    from bot.web import log_drain

    real = log_drain.parse_body
    calls = []

    def fails_once(body: bytes):
        calls.append(body)
        if len(calls) == 1:
            raise RuntimeError("a bug")
        return real(body)

    monkeypatch.setattr(log_drain, "parse_body", fails_once)
    frames = stream(20)
    assert post(driver.client, token, frames, frame_id="retried").status_code == 500
    # Heroku retries the batch: it is counted, the id was not claimed by the failure.
    assert post(driver.client, token, frames, frame_id="retried").status_code == 204
    assert post(driver.client, token, frames, frame_id="retried").status_code == 204
    web.extensions["deploybot.metrics"][1].flush()
    store = web.extensions["deploybot"].metrics
    now = datetime.now(UTC).timestamp()
    assert summarize(store.windows("myapp", int(now) - 600, int(now)), now, 5).requests == 20


def test_no_log_line_carries_the_drain_token(driver, web, heroku, monkeypatch, caplog):
    _, token = add_drain(driver, heroku)
    intake = web.extensions["deploybot.metrics"][0]

    def explode(*args):
        raise ValueError(f"boom while reading /drain/{token}")

    monkeypatch.setattr(intake, "receive", explode)
    caplog.set_level(logging.INFO)
    assert post(driver.client, token, stream(3)).status_code == 500
    # Two layers cut it: the drain's own line names the path redacted before any formatter
    # sees it (a handler that prints records raw would show what is here), and the
    # formatter redacts every line on its way out.
    [failed] = [record for record in caplog.records if record.getMessage() == "request failed"]
    assert failed.path == "/drain/[redacted]"
    lines = [LogfmtFormatter().format(record) for record in caplog.records]
    assert any("request failed" in line and "/drain/[redacted]" in line for line in lines)
    assert not [line for line in lines if token in line]
    assert not [line for line in lines if "Traceback" in line]


def test_a_chunked_drain_body_is_cut_at_the_ceiling(driver, heroku):
    _, token = add_drain(driver, heroku)
    body = EndlessBody()
    assert post_chunked(driver.client, f"/drain/{token}", body).status_code == 413
    assert body.read_bytes <= edge.MAX_BODY_BYTES + 64 * 1024
    # A wrong token is refused before a byte of the body is read.
    body = EndlessBody()
    assert post_chunked(driver.client, "/drain/forged", body).status_code == 403
    assert body.read_bytes == 0


def test_a_refusal_quoting_the_drain_url_keeps_its_token_out_of_slack_and_audit(
    config, slack, heroku, new_app
):
    # The fake, like Heroku, quotes a URL it refuses: "Url ftp://… is not a valid drain URL."
    web = new_app(replace(config, public_url="ftp://deploybot.example.com"))
    driver = SlackDriver(web.test_client(), slack)
    _, url = driver.command("drain myapp", ADMIN)
    reply = driver.reply(url)["text"]
    [refused] = [r for r in heroku.requests if r.method == "POST"]
    token = refused.json["url"].rsplit("/", 1)[1]
    assert Drains(web.extensions["deploybot"].db).get("myapp") is None  # none was added
    # Heroku's message is masked as it is read (policies.redact), the token with it.
    assert "is not a valid drain URL" in reply and "/drain/[redacted]" in reply
    assert token not in reply
    [entry] = AuditLog(web.extensions["deploybot"].db).recent("myapp")
    assert entry.error and "is not a valid drain URL" in entry.error
    assert token not in json.dumps([str(value) for value in vars(entry).values()])
    _, url = driver.command("history myapp", USER)
    assert token not in json.dumps(driver.reply(url))


def test_a_drain_heroku_refuses_for_a_listed_app_leaves_no_drain_behind(
    config_with_url, slack, heroku, tmp_path, monkeypatch
):
    # The registry's `myap` names no Heroku app: the entry is wrong, not the typing.
    path = tmp_path / "deploybot.yml"
    path.write_text("apps:\n  myap:\n    platform: heroku\n")
    monkeypatch.setenv("DEPLOYBOT_CONFIG", str(path))
    web = create_app(config_with_url)
    try:
        driver = SlackDriver(web.test_client(), slack)
        _, url = driver.command("drain myap", ADMIN)
        assert driver.reply(url)["text"] == (
            "Heroku has no app called `myap`, or the bot's key cannot see it. Check the name in "
            "the Heroku dashboard."
        )
        # Its token row had stayed: `about` listed a drain of `myap`, and metrics, alerts and
        # the detectors took it for an app waiting for traffic.
        assert Drains(web.extensions["deploybot"].db).get("myap") is None
        _, url = driver.command("about", ADMIN)
        assert "myap" not in driver.reply(url)["text"]
    finally:
        close(web)
        web.extensions["deploybot"].db.dispose()
