"""Charts: `/deploy chart` and the Chart buttons upload a PNG through the fake Slack's
files.getUploadURLExternal ▸ upload URL ▸ files.completeUploadExternal, drawn from the same
numbers the text beside it (and `/deploy metrics`) shows; without `files:write` the numbers
come as text and the missing scope is named."""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.metrics.aggregate import Window
from bot.metrics.chart import DPI, HEIGHT_IN, WIDTH_IN, render
from bot.metrics.chart_data import ChartData, Mark, Shade, buckets, summary_lines, web_steps
from bot.metrics.store import MetricsStore
from bot.store.autoscale_settings import AutoscaleStore, Decision
from bot.store.db import Database
from handlers.charts import CHART_ACTION
from policies.sketch import Sketch
from tests.conftest import ADMIN, USER
from tests.webclient import SlackDriver, ack_text, button, settle

CHANNEL = "C0CONSOLE"  # where the signed test requests say they were typed


def png_info(data: bytes) -> tuple[int, int, dict[str, str]]:
    """(width, height, text chunks) of a PNG, read with the standard library only."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    at, texts, size = 8, {}, (0, 0)
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind = data[at + 4 : at + 8]
        body = data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            texts[key.decode("latin-1")] = value.decode("latin-1")
        at += 12 + length
    return size[0], size[1], texts


def store_traffic(database_url: str, app: str, minutes: int, now: datetime) -> int:
    """`minutes` of traffic ending a minute before `now`: a ramp, so buckets differ."""
    db = Database(database_url)
    windows, total = [], 0
    end = int(now.timestamp()) // 60 * 60 - 60
    for minute in range(minutes):
        start = end - (minutes - minute) * 60
        for second in range(start, start + 60, 10):
            count = 1 + minute % 7
            service, queue = Sketch(), Sketch()
            service.add(100.0 + minute, count)
            queue.add(5.0 + minute % 3, count)
            windows.append(
                Window(
                    app, second, count, {"2xx": count}, {}, {"web.1": count}, service, queue=queue
                )
            )
            total += count
    MetricsStore(db).save(windows)
    db.dispose()
    return total


@pytest.fixture
def web(new_app, config):
    app = new_app(config)
    yield app
    app.extensions["deploybot"].db.dispose()  # its pool's connections, now


@pytest.fixture
def driver(web, slack):
    return SlackDriver(web.test_client(), slack)


def test_the_chart_draws_the_numbers_it_was_given():
    since = 1_800_000_000 // 3600 * 3600
    requests = tuple(60 * (i % 5) for i in range(360))
    service = tuple(None if i % 50 == 0 else 100.0 + i for i in range(360))
    marks = (Mark(since + 3600, 1, 3, "autoscaler"), Mark(since + 7200, 3, 2, "U1"))
    data = ChartData(
        app="myapp",
        since=since,
        until=since + 6 * 3600,
        step=60,
        requests=requests,
        service_p95=service,
        queue_p95=(None,) * 360,
        web=web_steps(marks, 2, since, since + 6 * 3600),
        marks=marks,
        shades=(Shade(since + 100, since + 900, "slow"),),
        target=("service_p95", 300.0),
    )
    rendered = render(data)
    width, height, texts = png_info(rendered.png)
    assert (width, height) == (int(WIDTH_IN * DPI), int(HEIGHT_IN * DPI))
    assert json.loads(texts["Description"]) == {
        "app": "myapp",
        "requests": data.total,
        "points": 360,
        "zone": "UTC",
    }
    assert rendered.plotted["requests_per_minute"] == list(data.rates)
    assert rendered.plotted["service_p95"] == list(service)
    assert rendered.plotted["web"] == [1, 3, 2, 2]
    assert (rendered.plotted["marks"], rendered.plotted["shades"]) == (2, 1)


def test_a_chart_of_nothing_is_refused():
    data = ChartData("quiet", 0, 3600, 60, (0,) * 60, (None,) * 60, (None,) * 60)
    with pytest.raises(ValueError, match="no requests"):
        render(data)


def test_buckets_add_windows_up_exactly():
    windows = [Window("a", start, 3) for start in range(0, 600, 10)]
    requests, service, _ = buckets(windows, 0, 600, 60)
    assert requests == (18,) * 10 and service == (None,) * 10


def test_chart_command_uploads_a_png_drawn_from_the_metrics_numbers(driver, slack, database_url):
    now = datetime.now(UTC)
    total = store_traffic(database_url, "myapp", 90, now)
    ack, _ = driver.command("chart myapp 6h", USER)
    assert "Working on `chart myapp 6h`" in ack_text(ack)
    [upload] = slack.wait_for_uploads(1, timeout=20)
    assert upload.channel == CHANNEL and upload.thread_ts is None
    width, height, texts = png_info(upload.data)
    assert (width, height) == (1000, 640)
    assert json.loads(texts["Description"])["requests"] == total
    assert f"Requests: {total:,} (peak" in upload.initial_comment
    # The same count the text reply of `/deploy metrics` gives for the same traffic.
    _, metrics_url = driver.command("metrics myapp 6h", USER)
    assert f"Requests: {total:,} (" in driver.reply(metrics_url)["text"]
    [get_url] = slack.calls_to("files.getUploadURLExternal")
    assert get_url.args["filename"] == "myapp-6h.png"
    assert int(get_url.args["length"]) == len(upload.data)
    assert slack.violations == []


def test_without_files_write_the_numbers_come_as_text_naming_the_scope(driver, slack, database_url):
    store_traffic(database_url, "myapp", 30, datetime.now(UTC))
    slack.scopes.discard("files:write")
    _, url = driver.command("chart myapp", USER)
    reply = driver.reply(url)
    assert "`files:write`" in reply["text"] and "Requests:" in reply["text"]
    assert slack.uploads == []
    [call] = slack.calls_to("files.getUploadURLExternal")
    assert call.response["error"] == "missing_scope"


def test_a_chart_of_an_app_with_no_traffic_says_so(driver, slack):
    _, url = driver.command("chart myapp 7d", USER)
    reply = driver.reply(url)
    assert "No requests recorded for `myapp` in the last 7 days" in reply["text"]
    assert "nothing to chart" in reply["text"]
    assert slack.calls_to("files.getUploadURLExternal") == []


def test_an_app_deleted_since_keeps_its_traffic_readable_without_asking_heroku(
    driver, slack, heroku, database_url
):
    # What the bot stored of an app is proof enough it was there: Heroku is not asked.
    total = store_traffic(database_url, "gone-app", 30, datetime.now(UTC))
    _, url = driver.command("metrics gone-app 1h", USER)
    assert f"Requests: {total:,} (" in driver.reply(url)["text"]
    assert heroku.calls("GET", "/apps/gone-app/formation") == []


def test_an_unknown_window_gets_the_accepted_forms(driver, slack):
    ack, _ = driver.command("chart myapp 3h", USER)
    text = ack_text(ack)
    assert "`3h` is not a chart window: use 6h, 24h, 7d." in text
    settle()
    assert [c for c in slack.calls if c.method.startswith("files.")] == []


def test_the_metrics_reply_has_a_chart_button_that_uploads(driver, slack, database_url):
    store_traffic(database_url, "myapp", 30, datetime.now(UTC))
    _, url = driver.command("metrics myapp 1h", USER)
    chart = button(driver.reply(url), CHART_ACTION)
    assert chart["value"] == "myapp|6h|channel"
    driver.click(CHART_ACTION, chart["value"], USER)
    [upload] = slack.wait_for_uploads(1, timeout=20)
    assert upload.channel == CHANNEL and upload.thread_ts is None


def test_an_incident_chart_goes_into_its_thread(driver, slack, database_url):
    store_traffic(database_url, "myapp", 30, datetime.now(UTC))
    driver.click(CHART_ACTION, "myapp|6h|thread", USER, message_ts="1700000000.000100")
    [upload] = slack.wait_for_uploads(1, timeout=20)
    assert (upload.channel, upload.thread_ts) == (CHANNEL, "1700000000.000100")


def test_scaling_decisions_are_marked_on_the_chart(driver, slack, database_url, web):
    now = datetime.now(UTC)
    store_traffic(database_url, "myapp", 30, now)
    services = web.extensions["deploybot"]
    store = AutoscaleStore(services.db)
    at = now.replace(microsecond=0)
    store.record(Decision("myapp", at, 1, 3, True, "queue above target"))
    data = services.dashboards.chart("myapp", 360).data
    assert [(m.before, m.after, m.by) for m in data.marks] == [(1, 3, "autoscaler")]
    assert data.web[-1] == (data.until, 1)  # the fake Heroku still runs one web dyno
    lines = summary_lines(data)
    assert "Web dynos: 1–3; 1 scaling change" in lines


def test_a_flat_dyno_count_reads_as_one_number(driver, slack, database_url, web):
    store_traffic(database_url, "myapp", 30, datetime.now(UTC))
    lines = summary_lines(web.extensions["deploybot"].dashboards.chart("myapp", 360).data)
    # It had read "Web dynos: 1–1; 0 scaling change(s)".
    assert "Web dynos: 1 throughout; no scaling changes" in lines


def test_charts_are_read_only_and_open_to_everyone(driver, slack, database_url):
    store_traffic(database_url, "myapp", 10, datetime.now(UTC))
    driver.command("chart myapp", ADMIN)
    driver.command("chart myapp", USER)
    assert len(slack.wait_for_uploads(2, timeout=30)) == 2


def test_the_web_dyno_starts_without_matplotlib(config):
    # A fresh interpreter: this test process may have drawn charts already.
    code = (
        "import sys\n"
        "from bot.config import Config\n"
        "from bot.web.app import create_app\n"
        f"create_app(Config(database_url={config.database_url!r}, slack_bot_token='x', "
        "slack_signing_secret='y'))\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported at start-up'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_fake_refuses_an_upload_it_did_not_hand_out(slack):
    client = WebClient(token=slack.bot_token, base_url=slack.api_url)
    with pytest.raises(SlackApiError) as refused:
        client.files_completeUploadExternal(files=[{"id": "F0NOPE", "title": "x"}])
    assert refused.value.response["error"] == "file_not_found"
    with pytest.raises(SlackApiError):
        client.api_call("files.getUploadURLExternal", params={"filename": "a.png"})
    assert slack.violations == ["files.getUploadURLExternal: missing required argument(s) length"]


def test_a_weeks_chart_is_named_and_titled_as_asked():
    # It had been uploaded as "myapp-168h.png", titled "last 168 h", beside "last 7 days".
    from bot.metrics.chart_data import span_words
    from handlers.charts import window_for

    assert (window_for(7 * 24 * 60), span_words(7 * 24 * 60)) == ("7d", "7 days")
    assert (window_for(24 * 60), span_words(24 * 60)) == ("24h", "24 h")


def test_a_logarithmic_latency_axis_is_labelled_where_the_lines_are():
    # A spike's service times (600-700 ms) over quiet queue times (20-80 ms) turn the axis
    # logarithmic; it had one label, 100, with the lines and the 500 ms target unreadable.
    since = 1_800_000_000 // 3600 * 3600
    data = ChartData(
        app="myapp",
        since=since,
        until=since + 3600,
        step=60,
        requests=(500,) * 60,
        service_p95=tuple(600.0 + i for i in range(60)),
        queue_p95=tuple(20.0 + i for i in range(60)),
        target=("service_p95", 500.0),
    )
    labels = render(data).plotted["latency_ticks"]
    assert {"20", "50", "100", "200", "500"} <= set(labels), labels


def test_the_minute_under_way_counts_but_is_not_drawn_as_a_plunge(driver, slack, database_url, web):
    # Its few seconds of requests, drawn as a per-minute rate, ended every chart (and its
    # sparkline) in a plunge, as if traffic had just stopped.
    if datetime.now(UTC).second >= 50:
        time.sleep(61 - datetime.now(UTC).second)  # drawn within the minute stored
    now = int(datetime.now(UTC).timestamp())
    windows = [
        Window("myapp", start, 10, {"2xx": 10}) for start in range(now // 60 * 60 - 1800, now, 10)
    ]
    db = Database(database_url)
    MetricsStore(db).save(windows)
    db.dispose()
    data = web.extensions["deploybot"].dashboards.chart("myapp", 360).data
    assert data.total == 10 * len(windows)  # the minute under way is counted
    drawn = render(data).plotted["requests_per_minute"]
    assert drawn[-1] is None and drawn[-31:-1] == [60.0] * 30
    requests = summary_lines(data)[1]
    assert "(peak 60/min)" in requests and requests.endswith("█`"), requests


def test_a_chart_slack_will_not_share_in_the_channel_says_what_to_do(driver, slack, database_url):
    # The bot answers in a public channel it is not in (chat:write.public, or the slash
    # command's response_url), but Slack shares a file only where the bot is a member: the
    # reply had said "I could not upload the chart (`not_in_channel`)" and nothing more.
    store_traffic(database_url, "myapp", 30, datetime.now(UTC))
    slack.leave_channel(CHANNEL)
    _, url = driver.command("chart myapp", USER)
    text = driver.reply(url)["text"]
    assert f"into <#{CHANNEL}>" in text and "`/invite @deploybot` there" in text
    assert "Requests:" in text and slack.uploads == []


def test_a_chart_slack_rate_limits_says_so_and_when_to_ask_again(driver, slack, database_url):
    # The reply had said "I could not upload the chart (`ratelimited`)": Slack's error code,
    # not what happened nor what to do.
    store_traffic(database_url, "myapp", 30, datetime.now(UTC))
    slack.fail_next("files.getUploadURLExternal", status=429, retry_after=90)
    _, url = driver.command("chart myapp", USER)
    text = driver.reply(url)["text"]
    assert "`ratelimited`" not in text, text
    assert "Slack is rate-limiting the bot" in text and "ask again in 2 min" in text, text
    assert "Requests:" in text and slack.uploads == []


def test_a_chart_slack_rate_limits_for_seconds_says_seconds(driver, slack, database_url):
    # Slack asked for 2 s (each of the three tries) and the reply said "in about 1 min".
    store_traffic(database_url, "myapp", 30, datetime.now(UTC))
    slack.fail_next("files.getUploadURLExternal", count=3, status=429, retry_after=2)
    _, url = driver.command("chart myapp", USER)
    text = driver.reply(url)["text"]
    assert "ask again in 2 s." in text and "min" not in text.split("Here")[0], text


def test_a_chart_slack_rate_limits_for_a_moment_is_uploaded_after_it(driver, slack, database_url):
    # Slack asked for 1 s; the user got the numbers without the chart and "ask again".
    store_traffic(database_url, "myapp", 30, datetime.now(UTC))
    slack.fail_next("files.getUploadURLExternal", status=429, retry_after=1)
    driver.command("chart myapp", USER)
    [upload] = slack.wait_for_uploads(1)
    assert upload.filename == "myapp-24h.png" and len(slack.faults_served) == 1


def test_a_chart_with_requests_only_in_the_minute_under_way_is_a_sentence(
    driver, slack, database_url
):
    # Right after `/deploy drain`, the first requests are in the minute under way, which is
    # counted but not drawn: an empty chart had been uploaded, "Requests: 5 (peak 0/min)".
    if datetime.now(UTC).second >= 50:
        time.sleep(61 - datetime.now(UTC).second)  # answered within the minute stored
    now = int(datetime.now(UTC).timestamp())
    db = Database(database_url)
    MetricsStore(db).save([Window("myapp", now // 60 * 60, 5, {"2xx": 5})])
    db.dispose()
    _, url = driver.command("chart myapp 6h", USER)
    text = driver.reply(url)["text"]
    assert "only in the minute under way" in text and "try again in a minute" in text, text
    assert slack.calls_to("files.getUploadURLExternal") == []


def _busy(requests: tuple[int, ...], service: tuple[float | None, ...]) -> ChartData:
    since = 1_800_000_000 // 3600 * 3600
    n = len(requests)
    return ChartData(
        app="busy",
        since=since,
        until=since + n * 60,
        step=60,
        requests=requests,
        service_p95=service,
        queue_p95=(None,) * n,
    )


def test_a_busy_apps_request_axis_reads_in_thousands_and_millions():
    # Millions of requests a minute were labelled 0.5 … 3.0 under a "1e6" in the corner.
    data = _busy(tuple(3_000_000 + 10_000 * i for i in range(60)), (50.0,) * 60)
    labels = render(data).plotted["traffic_ticks"]
    assert labels and all(re.fullmatch(r"0|\d+(\.\d+)?[kM]", label) for label in labels), labels
    assert "3M" in labels, labels
    quieter = render(_busy((12_000,) * 60, (50.0,) * 60)).plotted["traffic_ticks"]
    assert "10k" in quieter, quieter


def test_a_chart_with_no_latency_says_so_in_its_panel():
    # The panel was empty under made-up ticks from 0.00 to 0.05 ms.
    rendered = render(_busy((600,) * 60, (None,) * 60))
    assert rendered.plotted["latency_ticks"] == []
    assert rendered.plotted["latency_note"] == "No latency was recorded in this span."


def test_a_chart_on_a_local_clock_puts_its_hours_where_that_clock_has_them():
    # A digest's day in Paris was drawn on UTC hours: its 12:00 was Paris's 13:00.
    paris_day = int(datetime(2026, 11, 28, 23, tzinfo=UTC).timestamp())
    data = replace(
        _busy((600,) * 24 * 60, (50.0,) * 24 * 60),
        since=paris_day,
        until=paris_day + 86400,
        zone="Europe/Paris",
        heading="Sunday 29 November 2026",
    )
    rendered = render(data)
    noon = datetime(2026, 11, 29, 11, tzinfo=UTC).timestamp()
    assert ("12:00", noon) in rendered.plotted["time_ticks"], rendered.plotted["time_ticks"]
    assert rendered.plotted["title"] == "busy: Sunday 29 November 2026 (Europe/Paris)"
