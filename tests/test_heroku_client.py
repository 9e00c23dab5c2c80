"""The Heroku client's session: timeouts, retries that honour Retry-After, no ambient config."""

from __future__ import annotations

import base64
import json
import threading

import pytest
import requests
import requests.adapters
import urllib3.exceptions
import urllib3.util.retry

from bot.platforms import heroku as heroku_module
from bot.platforms.base import PlatformError
from bot.platforms.heroku import HerokuPlatform
from bot.sandbox.fakes import heroku as heroku_module_fake
from bot.store.throttles import LOW_REMAINING, Throttles
from tests.conftest import HEROKU_KEY


@pytest.fixture
def sleeps(monkeypatch):
    """Record urllib3's retry sleeps instead of sleeping (tests never wait on the clock)."""
    recorded: list[float] = []
    monkeypatch.setattr(urllib3.util.retry.time, "sleep", recorded.append)
    return recorded


BURSTS, THREADS, CALLS = 10, 8, 3  # calls to one platform from threads at once


def client(heroku) -> HerokuPlatform:
    return HerokuPlatform(HEROKU_KEY, heroku.url)


def test_a_short_retry_after_is_honoured(heroku, sleeps):
    heroku.fail_next(429, count=1, retry_after=2)
    assert client(heroku).formation("myapp")[0].type == "web"
    assert sleeps == [2.0]


def test_a_long_retry_after_is_not_slept_through(heroku, sleeps):
    heroku.fail_next(503, count=1, retry_after=3600)
    with pytest.raises(PlatformError, match=r"failed \(503\)"):
        client(heroku).formation("myapp")
    assert sleeps == [] and len(heroku.requests) == 1
    heroku.fail_next(429, count=5, retry_after=3600)
    with pytest.raises(PlatformError, match="allows the next call at") as caught:
        client(heroku).formation("myapp")
    assert sleeps == [] and len(heroku.requests) == 2
    assert caught.value.changed is False
    assert heroku_module.MAX_RETRY_AFTER < 3600


@pytest.mark.parametrize("retry_after", [2.5, -5])
def test_a_429_with_a_retry_after_urllib3_cannot_read_is_still_a_throttle(
    heroku, sleeps, database, retry_after
):
    # urllib3 raised InvalidHeader for it while retrying, told as "an answer the bot could
    # not read": a refused scale read as one that may have been made, and no throttle held.
    heroku.fail_next(429, count=5, retry_after=retry_after)
    throttles = Throttles(database)
    platform = HerokuPlatform(HEROKU_KEY, heroku.url, throttles=throttles)
    with pytest.raises(PlatformError, match="allows the next call at") as caught:
        platform.scale("myapp", {"web": (2, None)})
    assert caught.value.changed is False
    assert len(heroku.requests) == 4  # retried after backoff, as with no Retry-After
    assert throttles.get("HEROKU_API_KEY").throttled_until is not None


@pytest.mark.parametrize("retry_after", [4 * 3600, 10**9])
def test_a_429_asking_past_an_hour_throttles_the_account_for_an_hour(heroku, sleeps, retry_after):
    # Heroku's bucket refills whole within the hour; a longer Retry-After (a proxy's, a
    # broken header) had held every command and the autoscaler for it, six hours at most
    # (urllib3's own cap).
    heroku.fail_next(429, count=1, retry_after=retry_after)
    with pytest.raises(PlatformError, match=r"in about 60 min\)") as caught:
        client(heroku).formation("myapp")
    assert caught.value.changed is False


def test_gives_up_after_a_few_retries(heroku, sleeps):
    heroku.fail_next(502, count=10)
    with pytest.raises(PlatformError, match=r"failed \(502\)"):
        client(heroku).formation("myapp")
    assert len([r for r in heroku.requests if r.method == "GET"]) == 4  # 1 + 3 retries


def test_a_slow_answer_times_out_and_says_the_change_may_have_happened(heroku, monkeypatch):
    monkeypatch.setattr(heroku_module, "READ_TIMEOUT", 0.2)
    heroku.latency = 1.0
    with pytest.raises(PlatformError, match="did not answer in time") as caught:
        client(heroku).scale("myapp", {"web": (2, None)})
    assert caught.value.changed is None
    # A read timeout is never retried: the PATCH may have landed.
    assert len([r for r in heroku.requests if r.method == "PATCH"]) == 1


def test_an_unreachable_api_is_a_plain_sentence(sleeps):
    with pytest.raises(PlatformError, match="could not be reached"):
        HerokuPlatform(HEROKU_KEY, "http://127.0.0.1:9").formation("myapp")


def test_ambient_proxy_and_netrc_settings_are_ignored(heroku, monkeypatch, tmp_path):
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password other-key\n")
    monkeypatch.setenv("NETRC", str(netrc))
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    assert client(heroku).formation("myapp")  # a proxy on port 9 would have refused it
    [request] = heroku.requests
    scheme, _, token = request.headers["Authorization"].partition(" ")
    assert scheme == "Basic" and base64.b64decode(token).decode() == f":{HEROKU_KEY}"


def test_rate_limit_remaining_mirrors_heroku(heroku):
    platform = client(heroku)
    platform.formation("myapp")
    first = platform.rate_limit_remaining
    platform.formation("myapp")
    assert first is not None and platform.rate_limit_remaining == first - 1


def test_requests_carry_the_key_and_the_v3_accept_header(heroku):
    client(heroku).formation("myapp")
    [request] = heroku.requests
    assert request.headers["Accept"].startswith("application/vnd.heroku+json; version=3")
    assert request.headers["Authorization"].startswith("Basic ")


class _Raising(requests.adapters.HTTPAdapter):
    """A transport that fails the way `error` says, before or after sending."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
        raise self.error


def _refused() -> requests.ConnectionError:
    reason = urllib3.exceptions.NewConnectionError(None, "Connection refused")
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", reason))


# Every requests error class a call can raise → (words the user sees, may it have changed?)
TRANSPORT_FAULTS = [
    (_refused(), "could not be reached, so nothing was changed. Try again", False),
    (requests.ConnectTimeout(), "could not be reached, so nothing was changed. Try again", False),
    (requests.ReadTimeout(), "did not answer in time. Check `/deploy status myapp`", None),
    (
        requests.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.")),
        "dropped after the request was sent, so it may have been carried out. Check `/deploy status myapp`",
        None,
    ),
    (requests.exceptions.SSLError(), "secure (TLS) connection", False),
    (requests.exceptions.ProxyError(), "A proxy between the bot and Heroku's API", False),
    (requests.exceptions.ChunkedEncodingError(), "an answer the bot could not read", None),
    (requests.exceptions.ContentDecodingError(), "an answer the bot could not read", None),
    (requests.TooManyRedirects(), "kept redirecting", False),
    (requests.exceptions.InvalidURL(), "HEROKU_API_URL is not a URL", False),
    (requests.exceptions.InvalidSchema(), "HEROKU_API_URL is not a URL", False),
    (requests.exceptions.RetryError(), "could not be reached. Check `/deploy status", None),
]


@pytest.mark.parametrize(("error", "words", "changed"), TRANSPORT_FAULTS)
def test_every_transport_failure_is_one_plain_sentence(error, words, changed):
    session = heroku_module.make_session(retries=0)
    session.mount("http://", _Raising(error))
    platform = HerokuPlatform(HEROKU_KEY, "http://127.0.0.1:9", session=session)
    with pytest.raises(PlatformError) as caught:
        platform.scale("myapp", {"web": (2, None)})
    message = str(caught.value)
    assert words in message
    assert "Traceback" not in message and "Error(" not in message and len(message) < 200
    assert caught.value.changed is changed
    # A read that fails changed nothing, so it never says "may have changed".
    with pytest.raises(PlatformError) as read:
        platform.formation("myapp")
    assert read.value.changed is False and "/deploy status" not in str(read.value)


def test_an_answer_that_is_not_json_is_a_plain_sentence(heroku, monkeypatch):
    platform = client(heroku)
    monkeypatch.setattr(requests.Response, "json", lambda self: json.loads("<html>"))
    with pytest.raises(PlatformError, match="an answer the bot could not read"):
        platform.formation("myapp")
    with pytest.raises(PlatformError, match="an answer the bot could not read"):
        platform.releases("myapp", 5)  # read page by page, apart from the other calls


def test_a_limit_without_a_message_keeps_the_number(heroku):
    heroku.fail_next(422, body={"id": "cannot_update_above_limit", "limit": 100})
    with pytest.raises(PlatformError) as caught:
        client(heroku).scale("myapp", {"web": (150, None)})
    assert str(caught.value) == (
        "Heroku refused the change to `myapp`: that is more dynos than Heroku allows "
        "(Heroku's limit is 100)."
    )


def test_heroku_s_own_message_is_kept_and_escaped(heroku):
    heroku.fail_next(422, body={"id": "invalid_params", "message": "No <!channel> for you."})
    with pytest.raises(PlatformError) as caught:
        client(heroku).scale("myapp", {"web": (2, None)})
    assert str(caught.value) == "Heroku refused the change to `myapp`: No &lt;!channel&gt; for you."


def test_a_long_message_from_heroku_is_clipped(heroku):
    # Heroku's body is read up to its size cap; a message that long became a reply Slack
    # refuses (a section holds 3,000 characters).
    heroku.fail_next(422, body={"id": "invalid_params", "message": "<!here> " + "y" * 20_000})
    with pytest.raises(PlatformError) as caught:
        client(heroku).scale("myapp", {"web": (2, None)})
    shown = str(caught.value)
    assert shown.startswith("Heroku refused the change to `myapp`: &lt;!here&gt; yyy")
    assert shown.endswith("y….") and len(shown) < 400, shown[-40:]


def test_an_app_in_no_pipeline_is_said_so_with_what_to_do(heroku):
    # Heroku's own words were "Couldn't find that pipeline coupling."
    with pytest.raises(PlatformError) as caught:
        client(heroku).downstream("myapp")
    assert str(caught.value) == (
        "`myapp` is in no Heroku pipeline, so there is no stage to promote it to. "
        "Add it to one first (`heroku pipelines:add PIPELINE -a myapp`)."
    )


def test_a_refusal_that_quotes_a_secret_shows_it_masked(heroku):
    message = (
        "Could not fetch source_blob https://codeload.github.com/a/b/main?token=GHSAT0AAAAsecret1 "
        "(DATABASE_URL=postgres://u:hunter2@db/x)"
    )
    heroku.fail_next(422, body={"id": "invalid_params", "message": message})
    with pytest.raises(PlatformError) as caught:
        client(heroku).scale("myapp", {"web": (2, None)})
    shown = str(caught.value)
    assert "GHSAT0AAAAsecret1" not in shown and "hunter2" not in shown
    assert shown.startswith("Heroku refused the change to `myapp`: Could not fetch source_blob")


def test_failed_reads_are_worded_as_reads(heroku):
    # A log session is a POST that changes nothing: never "may have been carried out".
    platform = client(heroku)
    heroku.fail_next(500, methods=["POST"])
    with pytest.raises(PlatformError) as caught:
        platform.log_lines("myapp", None, 10)
    assert (
        str(caught.value)
        == "Heroku's API failed (500), so `myapp`'s logs could not be read. Try again in a minute."
    )
    assert caught.value.changed is False
    heroku.fail_next(422, methods=["GET"], body={"id": "invalid_params", "message": "Bad range"})
    with pytest.raises(PlatformError) as caught:
        platform.formation("myapp")
    assert str(caught.value) == "Heroku refused the request about `myapp`: Bad range."
    # `/deploy releases APP` answered 503 had said "so nothing was done", as of a change.
    heroku.fail_next(503, count=10, methods=["GET"])
    with pytest.raises(PlatformError) as caught:
        platform.releases("myapp", 10)
    assert str(caught.value) == (
        "Heroku's API failed (503), so `myapp`'s releases could not be read. Try again in a minute."
    )
    heroku.fail_next(503, count=10, methods=["GET"])
    with pytest.raises(PlatformError) as caught:
        platform.app_names()
    assert str(caught.value) == (
        "Heroku's API failed (503), so the list of apps could not be read. Try again in a minute."
    )


def test_a_conflict_says_to_wait_for_what_is_under_way(heroku):
    heroku.fail_next(409, body={"id": "conflict", "message": "A build is already running"})
    with pytest.raises(PlatformError) as caught:
        client(heroku).scale("myapp", {"web": (2, None)})
    assert str(caught.value) == (
        "Heroku cannot do that on `myapp` right now: A build is already running. "
        "Try again once what is under way has finished."
    )


def test_a_promotion_whose_targets_cannot_be_read_is_pending_not_failed(heroku, sleeps):
    # The POST made it: a failed read of its targets had said "try again", which would
    # promote twice.
    heroku.add_pipeline("shop", {"myapp": "staging", "other-app": "production"})
    platform = client(heroku)
    pipeline, source, _, downstream = platform.downstream("myapp")
    heroku.fail_next(500, count=10, methods=["GET"])
    [promotion] = platform.promote("myapp", pipeline, source, downstream)
    assert (promotion.app, promotion.status) == ("other-app", "pending")
    assert len(heroku.calls("POST", "/pipeline-promotions")) == 1


def hammer(platform: HerokuPlatform, heroku, check) -> None:  # type: ignore[no-untyped-def]
    """Bursts of calls to one platform from threads at once, and `check()` after each."""

    def calls(start: threading.Barrier) -> None:
        start.wait()
        for _ in range(CALLS):
            platform.formation("myapp")

    for _ in range(BURSTS):
        start = threading.Barrier(THREADS, timeout=10)
        threads = [threading.Thread(target=calls, args=(start,)) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        check()


def test_rate_limit_remaining_is_the_last_answers_under_concurrent_calls(heroku):
    # A status's reads and the background jobs share one platform: however their answers
    # interleave, once a burst of calls is done the figure is the one Heroku gave last.
    platform = client(heroku)

    def check() -> None:
        assert platform.rate_limit_remaining == heroku.rate_limit_remaining

    hammer(platform, heroku, check)
    spent = BURSTS * THREADS * CALLS
    assert heroku.rate_limit_remaining == heroku_module_fake.RATE_LIMIT - spent


def test_the_stored_remaining_is_the_last_answers_under_concurrent_calls(heroku, database):
    # Near the floor every answer's figure is stored for the worker's autoscaler budget.
    heroku.rate_limit_remaining = LOW_REMAINING - 1
    throttles = Throttles(database)
    platform = HerokuPlatform(HEROKU_KEY, heroku.url, throttles=throttles)

    def check() -> None:
        stored = throttles.get("HEROKU_API_KEY")
        assert stored is not None and stored.remaining == heroku.rate_limit_remaining

    hammer(platform, heroku, check)


@pytest.mark.parametrize(
    ("app", "status", "says"),
    [("nosuchapp", None, "Heroku has no app called"), ("myapp", 401, "rejected the bot's API key")],
    ids=["404", "401"],
)
def test_a_status_refused_by_heroku_still_counts_the_calls_it_made(
    heroku, database, app, status, says
):
    # Heroku counts a refused call against the hour as any other, and says what is left on
    # its answer: the four reads of a status that all failed were not counted.
    heroku.rate_limit_remaining = LOW_REMAINING - 1  # near the floor: stored as well
    throttles = Throttles(database)
    platform = HerokuPlatform(HEROKU_KEY, heroku.url, throttles=throttles)
    if status is not None:
        heroku.fail_next(status, count=4)
    with pytest.raises(PlatformError, match=says):
        platform.status(app)
    # The reads leave together, and once one is refused the rest are not sent (`together`):
    # how many reached Heroku first is the machine's timing. Each that did is counted.
    assert 1 <= len(heroku.requests) <= 4
    assert platform.rate_limit_remaining == heroku.rate_limit_remaining
    stored = throttles.get("HEROKU_API_KEY")
    assert stored is not None and stored.remaining == heroku.rate_limit_remaining
    assert stored.throttled_until is None  # refused, not rate-limited


def test_following_a_promotion_reads_each_target_app_once(heroku, monkeypatch):
    # Each target's name was read by its ID, then its release by that name: two calls per
    # next-stage app where its release, read by the app's ID, names both app and version.
    monkeypatch.setattr(heroku_module, "BUILD_POLL_SECONDS", 0.01)
    heroku.add_app("third-app", formation={"web": (1, "standard-1x")})
    heroku.add_pipeline(
        "shop", {"myapp": "staging", "other-app": "production", "third-app": "production"}
    )
    platform = client(heroku)
    pipeline, source, _, downstream = platform.downstream("myapp")
    [*promotions] = platform.promote("myapp", pipeline, source, downstream)
    promotion_id = str(promotions[0].promotion)
    before = len(heroku.requests)
    settled = platform.wait_for_promotion("myapp", promotion_id, 30, threading.Event(), "shop")
    assert settled.ok, settled.summary
    assert settled.summary == (
        "The promotion of `shop` to `other-app`, `third-app` succeeded: `other-app` runs "
        "`v4`, `third-app` runs `v4`."
    )
    calls = [f"{r.method} {r.path}" for r in heroku.requests[before:]]
    polls = [c for c in calls if c == f"GET /pipeline-promotions/{promotion_id}"]
    assert len(calls) - len(polls) == 1 + 2, calls  # its targets, then each one's release
    assert heroku.violations == []


def test_a_remaining_past_what_the_database_holds_does_not_undo_a_change_made(heroku, database):
    # RateLimit-Remaining went into an INTEGER column as it came: past 2**31 PostgreSQL
    # refused the write, and a scale Heroku had made was answered with the database's error.
    heroku.rate_limit_remaining = 3_000_000_000
    throttles = Throttles(database)
    platform = HerokuPlatform(HEROKU_KEY, heroku.url, throttles=throttles)
    scaled = platform.scale("myapp", {"web": (2, None)})
    assert [f.quantity for f in scaled if f.type == "web"] == [2]
    # Read as no figure, as one that is not a number is: nothing stored, nothing trusted.
    assert throttles.get("HEROKU_API_KEY") is None and platform.rate_limit_remaining is None


# Answers that are JSON but not of the shape Heroku's schema gives: each read says so in
# one plain sentence (a TypeError here once stopped the autoscale tick for every app).
MISSHAPEN = [
    ("formation", [{"type": "web", "quantity": None, "size": "basic"}]),
    ("formation", [{"type": "web", "quantity": "lots", "size": "basic"}]),
    ("formation", [{"type": "web", "quantity": -3, "size": "basic"}]),
    ("formation", [{"quantity": 1, "size": "basic"}]),
    ("formation", [{"type": None, "quantity": 1}]),
    ("formation", [{"type": "web", "quantity": 1, "dyno_size": "basic"}]),
    ("formation", {"type": "web", "quantity": 1}),
    ("formation", [None]),
    ("formation", "web=1"),
    ("dynos", [{"name": None, "type": "web"}]),
    ("dynos", [{"type": "web", "state": "up"}]),
    ("dynos", [{"name": "web.1", "state": ["up"]}]),
    ("dynos", {"name": "web.1"}),
    ("releases", [None]),
    ("releases", [{"version": None}]),
    ("releases", [{"version": 3, "user": "someone"}]),
    ("releases", {"version": 3}),
    ("releases", [{"version": 3, "slug": "abc"}]),
    ("releases", [{"version": 3, "slug": {"id": 7}}]),
    ("status", [{"type": "web", "quantity": None}]),
    ("status", ["v1"]),
    ("maintenance", ["on"]),
    ("scale", [{"type": "web", "quantity": None}]),
]


def test_a_release_names_the_slug_it_runs_or_none(heroku):
    # A promotion compares slugs: a release without one (Heroku's may be null) has none.
    [newest] = client(heroku).releases("myapp", 1)
    assert newest.slug == heroku.releases("myapp")[-1]["slug"]["id"] != ""
    assert heroku_module._release({"version": 1, "slug": None}).slug == ""


@pytest.mark.parametrize(("read", "body"), MISSHAPEN)
def test_an_answer_of_the_wrong_shape_is_a_plain_sentence(heroku, monkeypatch, read, body):
    platform = client(heroku)
    monkeypatch.setattr(requests.Response, "json", lambda self: body)
    calls = {
        "formation": lambda: platform.formation("myapp"),
        "dynos": lambda: platform.dynos("myapp"),
        "releases": lambda: platform.releases("myapp", 5),
        "status": lambda: platform.status("myapp"),
        "maintenance": lambda: platform.maintenance("myapp"),
        "scale": lambda: platform.scale("myapp", {"web": (2, None)}),
    }
    with pytest.raises(PlatformError, match="Heroku's API sent an answer the bot could not read"):
        calls[read]()
