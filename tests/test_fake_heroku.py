"""The fake Heroku over real HTTP: driven by heroku3 and plain requests, checked by the schema."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import heroku3
import pytest
import requests
from heroku3.api import RateLimitExceeded
from jsonschema import FormatChecker

from bot.sandbox.fakes.heroku import IMPLEMENTED, RATE_LIMIT, FakeHeroku, load_schema

KEY = "test-key"
ACCEPT = "application/vnd.heroku+json; version=3"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


class Api:
    """Plain requests against the fake, with the headers a well-behaved client sends."""

    def __init__(self, url: str, auth: Any = ("", KEY), accept: str = ACCEPT) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.trust_env = False  # a proxy in the environment must not see these
        self.session.headers["Accept"] = accept
        self.session.auth = auth

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, self.url + path, **kwargs)


@pytest.fixture
def fake() -> Iterator[FakeHeroku]:
    fake = FakeHeroku(api_keys=(KEY,))
    fake.add_app("myapp", formation={"web": (1, "standard-1x"), "worker": (0, "standard-1x")})
    fake.add_app("hobby-app", formation={"web": (1, "basic")}, releases=1)
    with fake:
        yield fake


@pytest.fixture
def api(fake: FakeHeroku) -> Api:
    return Api(fake.url)


@pytest.fixture
def h(fake: FakeHeroku) -> heroku3.api.Heroku:
    session = requests.Session()
    session.trust_env = False
    client = heroku3.api.Heroku(session=session)
    # Point heroku3 at the fake before authenticate(): that call already hits the API.
    client._heroku_url = fake.url
    assert client.authenticate(KEY)
    return client


def states(fake: FakeHeroku, app: str = "myapp") -> dict[str, str]:
    return {dyno["name"]: dyno["state"] for dyno in fake.dynos(app)}


def stamp(fake: FakeHeroku) -> str:
    return fake.now.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- heroku3 against the fake ----------------------------------------------------------------


def test_heroku3_lists_apps_and_reads_one_by_name_or_id(fake, h):
    assert sorted(app.name for app in h.apps()) == ["hobby-app", "myapp"]
    app = h.app("myapp")
    assert h.app(app.id).name == "myapp"
    first = fake.requests[0]
    assert (first.method, first.path) == ("GET", "/account/rate-limits")
    assert first.headers["Accept"] == "application/vnd.heroku+json; version=3.cedar-acm"
    assert fake.violations == []


def test_heroku3_reads_the_formation_with_canonical_sizes(h):
    formation = h.app("myapp").process_formation()
    assert {f.type: (f.quantity, f.size) for f in formation} == {
        "web": (1, "Standard-1X"),
        "worker": (0, "Standard-1X"),
    }


def test_heroku3_batch_resize_sends_size_which_the_schema_forbids(fake, h):
    with pytest.raises(requests.HTTPError) as caught:
        h.app("myapp").batch_resize_formation_processes({"web": "standard-2X"})
    assert caught.value.response.status_code == 422
    assert caught.value.response.json() == {
        "id": "invalid_params",
        "message": "Additional properties are not allowed ('size' was unexpected)",
    }
    [sent] = fake.calls("PATCH", "/formation")
    assert sent.json == {"updates": [{"type": "web", "size": "standard-2X"}]}
    [violation] = fake.violations
    assert violation.startswith("PATCH /apps/") and "'size' was unexpected" in violation
    assert fake.formation("myapp")["web"] == (1, "Standard-1X")


def test_heroku3_batch_scale_is_valid_and_scaling_down_drops_the_highest_dynos(fake, h):
    app = h.app("myapp")
    first_id = fake.dynos("myapp")[0]["id"]
    [web] = app.batch_scale_formation_processes({"web": 3})
    assert (web.type, web.quantity) == ("web", 3)
    assert [d["name"] for d in fake.dynos("myapp")] == ["web.1", "web.2", "web.3"]
    app.batch_scale_formation_processes({"web": 1})
    assert [(d["name"], d["id"]) for d in fake.dynos("myapp")] == [("web.1", first_id)]
    assert fake.violations == []


def test_heroku3_single_scale_and_dyno_restart(fake, h):
    app = h.app("myapp")
    assert app.scale_formation_process("worker", 2).quantity == 2
    fake.boot_seconds = 10
    fake.advance(60)
    [worker_1] = [d for d in app.dynos() if d.name == "worker.1"]
    worker_1.restart()
    assert states(fake) == {"web.1": "up", "worker.1": "starting", "worker.2": "up"}
    assert fake.calls("DELETE", "/dynos/worker.1")
    assert fake.violations == []


# -- formation changes over plain HTTP --------------------------------------------------------


def test_batch_update_scales_and_resizes(fake, api):
    updates = [
        {"type": "web", "quantity": 2, "dyno_size": {"name": "standard-2x"}},
        {"type": "worker", "quantity": 1},
    ]
    answer = api("PATCH", "/apps/myapp/formation", json={"updates": updates})
    assert answer.status_code == 200
    assert {f["type"]: (f["quantity"], f["dyno_size"]["name"]) for f in answer.json()} == {
        "web": (2, "Standard-2X"),
        "worker": (1, "Standard-1X"),
    }
    assert fake.formation("myapp") == {"web": (2, "Standard-2X"), "worker": (1, "Standard-1X")}
    assert [(d["name"], d["size"]) for d in fake.dynos("myapp")] == [
        ("web.1", "Standard-2X"),
        ("web.2", "Standard-2X"),
        ("worker.1", "Standard-1X"),
    ]
    assert fake.violations == []


def test_single_update_by_type_or_id_with_quantity_and_dyno_size(fake, api):
    answer = api("PATCH", "/apps/myapp/formation/web", json={"quantity": 2})
    assert (answer.status_code, answer.json()["quantity"]) == (200, 2)
    formation_id = answer.json()["id"]
    body = {"dyno_size": {"name": "PERFORMANCE-M"}}
    answer = api("PATCH", f"/apps/myapp/formation/{formation_id}", json=body)
    assert (answer.json()["size"], answer.json()["dyno_size"]["name"]) == (
        "Performance-M",
        "Performance-M",
    )
    assert fake.formation("myapp")["web"] == (2, "Performance-M")
    assert {d["size"] for d in fake.dynos("myapp")} == {"Performance-M"}
    assert fake.violations == []


def test_a_batch_with_one_bad_update_changes_nothing(fake, api):
    updates = [{"type": "web", "quantity": 3}, {"type": "xyz", "quantity": 1}]
    answer = api("PATCH", "/apps/myapp/formation", json={"updates": updates})
    assert answer.status_code == 404
    assert fake.formation("myapp")["web"] == (1, "Standard-1X")
    assert len(fake.dynos("myapp")) == 1


# -- dynos on the fake's clock ----------------------------------------------------------------


def test_new_dynos_start_and_are_up_after_boot_seconds(fake, api):
    fake.boot_seconds = 30
    api("PATCH", "/apps/myapp/formation/web", json={"quantity": 2})
    assert states(fake) == {"web.1": "up", "web.2": "starting"}
    assert fake.dynos("myapp")[1]["updated_at"] == stamp(fake)
    fake.advance(29)
    assert states(fake)["web.2"] == "starting"
    fake.advance(1)
    assert states(fake)["web.2"] == "up"
    assert fake.dynos("myapp")[1]["updated_at"] == stamp(fake)


def test_restart_one_dyno_one_type_and_all(fake, api):
    api("PATCH", "/apps/myapp/formation", json={"updates": [{"type": "web", "quantity": 2}]})
    api("PATCH", "/apps/myapp/formation/worker", json={"quantity": 1})
    fake.boot_seconds = 10
    fake.advance(60)

    answer = api("DELETE", "/apps/myapp/dynos/web.2")
    assert (answer.status_code, answer.json()) == (202, {})
    assert states(fake) == {"web.1": "up", "web.2": "starting", "worker.1": "up"}

    fake.advance(10)
    assert api("DELETE", "/apps/myapp/formations/worker").status_code == 202
    assert states(fake) == {"web.1": "up", "web.2": "up", "worker.1": "starting"}

    fake.advance(10)
    assert api("DELETE", "/apps/myapp/dynos").status_code == 202
    assert set(states(fake).values()) == {"starting"}
    assert {d["updated_at"] for d in fake.dynos("myapp")} == {stamp(fake)}
    fake.advance(10)
    assert set(states(fake).values()) == {"up"}
    assert fake.violations == []


def test_a_fir_apps_dynos_restart_by_name_or_id(fake, api):
    """The schema's dyno identity is its name or its id; on Fir, names have no dot."""
    fake.add_app("firapp", formation={"web": (2, "standard-1x")}, generation="fir")
    assert api("GET", "/apps/firapp").json()["generation"]["name"] == "fir"
    first, second = fake.dynos("firapp")
    fake.boot_seconds = 10
    assert api("DELETE", f"/apps/firapp/dynos/{second['name']}").status_code == 202
    assert [d["state"] for d in fake.dynos("firapp")] == ["up", "starting"]
    assert api("DELETE", f"/apps/firapp/dynos/{first['id']}").status_code == 202
    assert [d["state"] for d in fake.dynos("firapp")] == ["starting", "starting"]
    assert api("DELETE", "/apps/firapp/formations/web-1234abcde-123ab").status_code == 404
    assert fake.violations == []


# -- releases and Range ----------------------------------------------------------------------


def test_releases_honour_range_order_and_max_and_page_on(fake, api, h):
    answer = api("GET", "/apps/myapp/releases", headers={"Range": "version ..; order=desc, max=1"})
    assert answer.status_code == 206
    [latest] = answer.json()
    assert (latest["version"], latest["current"]) == (3, True)
    versions = [3]
    while answer.status_code == 206:
        answer = api("GET", "/apps/myapp/releases", headers={"Range": answer.headers["Next-Range"]})
        versions += [release["version"] for release in answer.json()]
    assert versions == [3, 2, 1]

    everything = api("GET", "/apps/myapp/releases").json()
    assert [(r["version"], r["current"]) for r in everything] == [(1, False), (2, False), (3, True)]
    assert [r.version for r in h.app("myapp").releases(sort="desc", limit=2)] == [3, 2]


def test_one_release_by_version_or_id(api):
    by_version = api("GET", "/apps/myapp/releases/2").json()
    assert by_version["version"] == 2
    assert api("GET", f"/apps/myapp/releases/{by_version['id']}").json() == by_version
    assert api("GET", "/apps/myapp/releases/99").status_code == 404


def test_a_build_whose_source_cannot_be_fetched_fails_and_releases_nothing(fake, api):
    # Heroku fetches `source_blob.url` after answering: a ref the host does not have is a
    # build that fails at its fetch (no slug, no release), where the fake released it.
    fake.source_exists = lambda url: "/nope." not in url
    blob = {"url": "https://example.com/src/nope.tar.gz?token=SECRET", "version": "nope"}
    made = api("POST", "/apps/myapp/builds", json={"source_blob": blob})
    assert made.status_code == 201 and made.json()["status"] == "pending"
    build = api("GET", f"/apps/myapp/builds/{made.json()['id']}").json()
    assert (build["status"], build["release"], build["slug"]) == ("failed", None, None)
    output = requests.get(build["output_stream_url"], timeout=5).text
    assert "could not be fetched" in output and "Released" not in output
    assert "SECRET" not in output  # the URL may carry its grant: never printed
    assert [r["version"] for r in fake.releases("myapp")] == [1, 2, 3]
    assert fake.violations == []


def test_a_release_phase_that_fails_leaves_the_build_succeeded_and_its_release_failed(fake, api):
    fake.fail_next_release_phase("myapp", ["migrate: no database"])
    blob = {"url": "https://example.com/src/v2.tar.gz", "version": "v2"}
    made = api("POST", "/apps/myapp/builds", json={"source_blob": blob}).json()
    build = api("GET", f"/apps/myapp/builds/{made['id']}").json()
    assert build["status"] == "succeeded"
    release = api("GET", f"/apps/myapp/releases/{build['release']['id']}").json()
    assert (release["status"], release["current"], release["version"]) == ("failed", False, 4)
    output = requests.get(release["output_stream_url"], timeout=5).text
    assert "migrate: no database" in output
    assert api("GET", "/apps/myapp/releases/3").json()["current"] is True
    # A rollback's release runs the phase too: answered pending, then failed, never live.
    fake.fail_next_release_phase("myapp", ["migrate: no database"])
    rolled = api("POST", "/apps/myapp/releases", json={"release": fake.releases("myapp")[1]["id"]})
    assert rolled.status_code == 201 and rolled.json()["status"] == "pending"
    assert api("GET", "/apps/myapp/releases/5").json()["status"] == "failed"
    assert api("GET", "/apps/myapp/releases/3").json()["current"] is True
    assert fake.violations == []


def test_a_rollback_restores_the_config_vars_of_the_release_it_goes_back_to(api):
    # Heroku rolls back code and config together; the fake had left config as it was.
    assert api("PATCH", "/apps/myapp/config-vars", json={"MODE": "old"}).status_code == 200
    old = api("GET", "/apps/myapp/releases", headers={"Range": "version ..; order=desc"})
    old_version = old.json()[0]["version"]
    api("PATCH", "/apps/myapp/config-vars", json={"MODE": "new", "EXTRA": "1"})
    answer = api("POST", "/apps/myapp/releases", json={"release": str(old_version)})
    assert answer.status_code == 201
    assert api("GET", "/apps/myapp/config-vars").json() == {"MODE": "old"}


# -- refusals ----------------------------------------------------------------------------------


REFUSALS = [
    ("GET", "/apps/nope", None, 404, "Couldn't find that app."),
    ("GET", "/apps/nope/formation", None, 404, "Couldn't find that app."),
    ("GET", "/apps/myapp/formation/xyz", None, 404, "Couldn't find that process type (xyz)."),
    ("PATCH", "/apps/myapp/formation/xyz", {"quantity": 1}, 404, "(xyz)"),
    ("DELETE", "/apps/myapp/formations/xyz", None, 404, "(xyz)"),
    ("DELETE", "/apps/myapp/dynos/web.9", None, 404, "Couldn't find that dyno."),
    (
        "PATCH",
        "/apps/myapp/formation",
        {"updates": [{"type": "web", "dyno_size": {"name": "Standard-3X"}}]},
        422,
        "No such size as Standard-3X.",
    ),
    ("PATCH", "/apps/myapp/formation/web", {"quantity": -1}, 422, "zero or more"),
    ("PATCH", "/apps/hobby-app/formation/web", {"quantity": 2}, 422, "more than 1 Basic"),
    # Heroku's default limits on Cedar: 10 per type at Performance sizes, 100 dynos in all.
    (
        "PATCH",
        "/apps/myapp/formation/web",
        {"quantity": 11, "dyno_size": {"name": "performance-m"}},
        422,
        "more than 10 Performance-M size dynos per process type",
    ),
    (
        "PATCH",
        "/apps/myapp/formation",
        {"updates": [{"type": "web", "quantity": 60}, {"type": "worker", "quantity": 41}]},
        422,
        "more than 100 dynos in total",
    ),
    ("PATCH", "/apps/myapp/formation/web", {"quantity": 101}, 422, "more than 100 dynos in total"),
]


def test_heroku_default_limits_let_through_what_they_allow_and_fir_s_are_higher(fake, api):
    updates = [{"type": "web", "quantity": 60}, {"type": "worker", "quantity": 40}]
    assert api("PATCH", "/apps/myapp/formation", json={"updates": updates}).status_code == 200
    body = {"quantity": 10, "dyno_size": {"name": "performance-l"}}
    assert api("PATCH", "/apps/myapp/formation/web", json=body).status_code == 200
    fake.add_app("firapp", formation={"web": (1, "performance-m")}, generation="fir")
    assert api("PATCH", "/apps/firapp/formation/web", json={"quantity": 255}).status_code == 200
    refused = api("PATCH", "/apps/firapp/formation/web", json={"quantity": 256})
    assert "more than 255 Performance-M size dynos" in refused.json()["message"]
    assert fake.violations == []


def test_heroku_refusals_leave_state_alone(fake, api, subtests):
    def snapshot() -> Any:
        return [(fake.formation(app), fake.dynos(app)) for app in ("myapp", "hobby-app")]

    before = snapshot()
    for method, path, body, status, message in REFUSALS:
        with subtests.test(f"{method} {path}"):
            answer = api(method, path, json=body)
            assert answer.status_code == status
            assert answer.json()["id"] == ("not_found" if status == 404 else "invalid_params")
            assert message in answer.json()["message"]
            assert snapshot() == before
    assert fake.violations == []  # the schema allows every one of these: Heroku refuses them


def test_a_missing_app_names_the_resource(api):
    assert api("GET", "/apps/nope").json() == {
        "id": "not_found",
        "message": "Couldn't find that app.",
        "resource": "app",
    }


def test_bodies_the_schema_forbids_are_422_and_recorded(fake, api):
    answer = api("PATCH", "/apps/myapp/formation/web", json={"quantity": "2"})
    assert answer.json() == {"id": "invalid_params", "message": "'2' is not of type 'integer'"}
    answer = api("PATCH", "/apps/myapp/formation", json={"quantity": 2})
    assert answer.json()["message"] == "'updates' is a required property"
    assert len(fake.violations) == 2
    assert fake.formation("myapp")["web"] == (1, "Standard-1X")


def test_the_schema_s_patterns_read_as_ecma_262_does_with_ascii_classes(fake, api):
    # `^\w+$` for a config var name: `\w` is ASCII in the schema's regex dialect, so
    # `KÉY` is no name Heroku takes; Python's `re` had read it as any letter and the fake
    # had taken it.
    answer = api("PATCH", "/apps/myapp/config-vars", json={"KÉY": "1"})
    assert answer.status_code == 422 and answer.json()["id"] == "invalid_params"
    assert fake.config_vars("myapp") == {} and len(fake.violations) == 1
    assert api("PATCH", "/apps/myapp/config-vars", json={"9LIVES": "1"}).status_code == 200
    assert fake.config_vars("myapp") == {"9LIVES": "1"} and len(fake.violations) == 1


def test_paths_outside_the_schema_are_404_and_recorded(fake, api):
    assert api("GET", "/apps/myapp/nonsense").json()["id"] == "not_found"
    assert api("POST", "/apps/myapp/formation", json={}).status_code == 404
    assert [v.split(":")[0] for v in fake.violations] == [
        "GET /apps/myapp/nonsense",
        "POST /apps/myapp/formation",
    ]


def test_schema_links_the_fake_lacks_answer_501(fake, api):
    answer = api("GET", "/apps/myapp/addons")
    assert answer.status_code == 501
    assert answer.json()["id"] == "not_implemented"
    assert "/apps/{app}/addons" in answer.json()["message"]
    assert fake.calls("GET", "/addons") and fake.violations == []


def test_an_unknown_or_missing_key_is_401(fake):
    for auth in (("", "wrong-key"), None):
        answer = Api(fake.url, auth=auth)("GET", "/apps")
        assert (answer.status_code, answer.json()["id"]) == (401, "unauthorized")
    bearer = Api(fake.url, auth=None)
    assert bearer("GET", "/apps", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    client = heroku3.api.Heroku(session=bearer.session)
    client._heroku_url = fake.url
    assert client.authenticate("wrong-key") is False


def test_the_accept_header_must_ask_for_version_3(fake):
    answer = Api(fake.url, accept="application/json")("GET", "/apps")
    assert (answer.status_code, answer.json()["id"]) == (400, "bad_request")
    assert fake.violations == ["GET /apps: the Accept header does not ask for version=3"]


def test_range_headers_are_accepted_on_every_list(api):
    for path in ("/apps", "/apps/myapp/formation", "/apps/myapp/dynos"):
        assert api("GET", path, headers={"Range": "id ..; ;"}).status_code == 200


# -- faults, latency, rate limit ---------------------------------------------------------------


def test_fail_next_429_with_retry_after_then_recovers(fake, api, h):
    fake.fail_next(429, retry_after=7)
    answer = api("GET", "/apps")
    assert answer.status_code == 429
    assert answer.headers["Retry-After"] == "7"
    assert answer.headers["RateLimit-Remaining"] == "0"
    assert answer.json()["id"] == "rate_limit"
    assert "rate limit" in answer.json()["message"]
    assert api("GET", "/apps").status_code == 200
    fake.fail_next(429)
    with pytest.raises(RateLimitExceeded):
        h.apps()


def test_faults_queue_up_and_can_target_methods(fake, api):
    fake.fail_next(503, count=2, methods=["PATCH"])
    fake.fail_next(500)
    assert api("GET", "/apps/myapp").status_code == 500
    assert api("GET", "/apps/myapp").status_code == 200
    for _ in range(2):
        answer = api("PATCH", "/apps/myapp/formation/web", json={"quantity": 2})
        assert (answer.status_code, answer.json()["id"]) == (503, "unavailable")
    assert fake.formation("myapp")["web"][0] == 1
    assert api("PATCH", "/apps/myapp/formation/web", json={"quantity": 2}).status_code == 200
    assert len(fake.requests) == 5


def test_latency_delays_the_answer_but_the_request_is_recorded_at_once(fake, api):
    fake.latency = 0.3
    with pytest.raises(requests.ReadTimeout):
        api("PATCH", "/apps/myapp/formation/web", json={"quantity": 2}, timeout=0.05)
    assert len(fake.calls("PATCH", "/formation/web")) == 1
    fake.latency = 0.2
    started = time.monotonic()
    assert api("GET", "/apps").status_code == 200
    assert time.monotonic() - started >= 0.2


def test_rate_limit_remaining_counts_down_and_never_below_zero(fake, api):
    first = api("GET", "/apps")
    second = api("GET", "/apps")
    assert int(first.headers["RateLimit-Remaining"]) == RATE_LIMIT - 1
    assert int(second.headers["RateLimit-Remaining"]) == RATE_LIMIT - 2
    ids = {first.headers["Request-Id"], second.headers["Request-Id"]}
    assert len(ids) == 2 and all(uuid.UUID(i) for i in ids)
    # The schema: rate-limit requests "do not count towards the rate limit".
    assert api("GET", "/account/rate-limits").json() == {"remaining": RATE_LIMIT - 2}
    assert api("GET", "/account/rate-limits").headers["RateLimit-Remaining"] == str(RATE_LIMIT - 2)
    fake.rate_limit_remaining = 1
    assert api("GET", "/apps").headers["RateLimit-Remaining"] == "0"
    exhausted = api("GET", "/apps")
    assert (exhausted.status_code, exhausted.json()["id"]) == (429, "rate_limit")
    assert exhausted.headers["RateLimit-Remaining"] == "0"


def test_a_failed_call_counts_against_the_budget_as_heroku_counts_every_call(fake, api):
    # Heroku's rate limits: each API call removes a token from the account's pool, whatever
    # its answer; only a 429 (the pool is empty) removes none, and says 0 is left.
    fake.fail_next(503)
    fake.fail_next(404, path="/apps/myapp/dynos")
    answers = [api("GET", path) for path in ("/apps/myapp", "/apps/myapp/dynos", "/apps")]
    assert [(a.status_code, a.headers["RateLimit-Remaining"]) for a in answers] == [
        (503, str(RATE_LIMIT - 1)),
        (404, str(RATE_LIMIT - 2)),
        (200, str(RATE_LIMIT - 3)),
    ]
    fake.fail_next(429, retry_after=7)
    limited = api("GET", "/apps")
    assert (limited.status_code, limited.headers["RateLimit-Remaining"]) == (429, "0")
    assert fake.rate_limit_remaining == RATE_LIMIT - 3
    # An empty pool answers 429 before any fault a test queued: the fault waits its turn.
    fake.rate_limit_remaining = 0
    fake.fail_next(500)
    assert api("GET", "/apps").status_code == 429
    fake.rate_limit_remaining = 5
    answer = api("GET", "/apps")
    assert (answer.status_code, answer.headers["RateLimit-Remaining"]) == (500, "4")


# -- every answer in the schema's shapes -------------------------------------------------------

SAMPLES = [
    ("GET", "/account/rate-limits", None),
    ("GET", "/apps", None),
    ("GET", "/apps/myapp", None),
    ("GET", "/apps/myapp/formation", None),
    ("GET", "/apps/myapp/formation/web", None),
    ("PATCH", "/apps/myapp/formation", {"updates": [{"type": "web", "quantity": 2}]}),
    ("PATCH", "/apps/myapp/formation/worker", {"dyno_size": {"name": "eco"}}),
    ("GET", "/apps/myapp/dynos", None),
    ("GET", "/apps/myapp/dynos/web.1", None),
    ("DELETE", "/apps/myapp/dynos", None),
    ("DELETE", "/apps/myapp/dynos/web.1", None),
    ("DELETE", "/apps/myapp/formations/web", None),
    ("GET", "/apps/myapp/releases", None),
    ("GET", "/apps/myapp/releases/3", None),
    ("POST", "/apps/myapp/log-drains", {"url": "https://bot.example.com/drain/t0k3n"}),
    ("GET", "/apps/myapp/log-drains", None),
    (
        "POST",
        "/apps/myapp/webhooks",
        {
            "include": ["dyno", "api:release", "api:formation"],
            "level": "sync",
            "url": "https://bot.example.com/webhooks/heroku",
            "secret": "s3cr3t",
        },
    ),
    ("GET", "/apps/myapp/webhooks", None),
    ("PATCH", "/apps/myapp/webhooks/{webhook}", {"secret": "n3w-s3cr3t"}),
    ("PATCH", "/apps/myapp", {"maintenance": True}),
    ("GET", "/apps/myapp/config-vars", None),
    ("PATCH", "/apps/myapp/config-vars", {"LOG_LEVEL": "debug", "UNUSED": None}),
    ("POST", "/apps/myapp/releases", {"release": "{release}"}),
    (
        "POST",
        "/apps/myapp/builds",
        {"source_blob": {"url": "https://example.com/src/v1.tar.gz", "version": "v1"}},
    ),
    ("GET", "/apps/myapp/builds/{build}", None),
    ("GET", "/apps/myapp/builds", None),
    ("POST", "/apps/myapp/dynos", {"command": "python manage.py migrate", "attach": False}),
    ("POST", "/apps/myapp/log-sessions", {"lines": 10, "tail": False, "dyno_name": "web.1"}),
    ("GET", "/apps/myapp/pipeline-couplings", None),
    ("GET", "/pipelines/{pipeline}/pipeline-couplings", None),
    (
        "POST",
        "/pipeline-promotions",
        {
            "pipeline": {"id": "{pipeline}"},
            "source": {"app": {"id": "{myapp}"}},
            "targets": [{"app": {"id": "{hobby-app}"}}],
        },
    ),
    ("GET", "/pipeline-promotions/{promotion}/promotion-targets", None),
    ("GET", "/pipeline-promotions/{promotion}", None),
]
# The definition whose properties an answer carries, by the last collection in its path.
SHAPES = {
    "account": "rate-limit",
    "apps": "app",
    "formation": "formation",
    "dynos": "dyno",
    "releases": "release",
    "log-drains": "log-drain",
    "webhooks": "app-webhook",
    "builds": "build",
    "log-sessions": "log-session",
    "pipeline-couplings": "pipeline-coupling",
    "pipeline-promotions": "pipeline-promotion",
    "promotion-targets": "pipeline-promotion-target",
}


def _kind(path: str) -> str:
    return [SHAPES[part] for part in path.split("/") if part in SHAPES][-1]


def _declared(definition: dict[str, Any]) -> dict[str, Any]:
    # app-webhook keeps its properties one level down, under `definitions.app_webhook`.
    if "properties" in definition:
        return definition["properties"]
    return definition["definitions"]["app_webhook"]["properties"]


def _checker() -> FormatChecker:
    checker = FormatChecker()
    # jsonschema checks date-time only with an extra package: check Heroku's own form.
    checker.checks("date-time")(
        lambda value: not isinstance(value, str) or bool(TIMESTAMP.fullmatch(value))
    )
    return checker


def test_the_samples_cover_every_implemented_endpoint():
    schema = load_schema()
    covered = {schema.match(method, path)[0][0].route for method, path, _ in SAMPLES}
    assert covered == IMPLEMENTED


def test_every_answer_validates_against_its_target_schema(fake, api, subtests):
    schema = load_schema()
    ids = {
        "{pipeline}": fake.add_pipeline("p", {"myapp": "staging", "hobby-app": "production"}),
        "{myapp}": api("GET", "/apps/myapp").json()["id"],
        "{hobby-app}": api("GET", "/apps/hobby-app").json()["id"],
    }
    for method, sample, body in SAMPLES:
        with subtests.test(f"{method} {sample}"):
            ids["{webhook}"] = (fake.webhooks("myapp") or [{"id": "none"}])[0]["id"]
            ids["{release}"] = api("GET", "/apps/myapp/releases").json()[0]["id"]
            path = sample
            text = json.dumps(body)
            for placeholder, value in ids.items():
                path, text = path.replace(placeholder, value), text.replace(placeholder, value)
            body = json.loads(text)
            answer = api(method, path, json=body)
            if method == "POST" and path.endswith("/builds"):
                ids["{build}"] = answer.json()["id"]
            if path == "/pipeline-promotions":
                ids["{promotion}"] = answer.json()["id"]
            assert answer.ok, answer.text
            # Release Create and Rollback share POST /apps/{app}/releases: the body picks one.
            links = schema.match(method, path)[0]
            [link] = [x for x in links if x.title == "Rollback"] if len(links) > 1 else links
            validator = schema.validator(f"{link.pointer}/targetSchema", format_checker=_checker())
            found = answer.json()
            assert [
                f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(found)
            ] == []
            if (
                method != "DELETE" and "config-vars" not in path
            ):  # Heroku's `strictProperties`: exactly the declared properties
                declared = set(_declared(schema.document["definitions"][_kind(path)]))
                items = found if isinstance(found, list) else [found]
                assert items and all(set(item) == declared for item in items)
    assert fake.violations == []


# -- helpers and plumbing ----------------------------------------------------------------------


def test_calls_filters_by_method_and_suffix_or_regex(fake, api):
    api("GET", "/apps/myapp/dynos")
    api("DELETE", "/apps/myapp/dynos/web.1")
    assert [r.path for r in fake.calls("get", "/dynos")] == ["/apps/myapp/dynos"]
    assert [r.path for r in fake.calls("DELETE", re.compile(r"/dynos/web\.\d+$"))] == [
        "/apps/myapp/dynos/web.1"
    ]
    assert fake.calls("PATCH", "/dynos") == []


def test_add_app_checks_what_it_is_given(fake):
    with pytest.raises(ValueError, match="valid Heroku app name"):
        fake.add_app("My_App")
    with pytest.raises(ValueError, match="no such dyno size"):
        fake.add_app("sized-app", formation={"web": (1, "standard-3x")})
    with pytest.raises(ValueError, match="already exists"):
        fake.add_app("myapp")
    made = fake.add_app("fresh-app")
    assert made["name"] == "fresh-app" and made["web_url"].startswith("https://fresh-app-")
    assert fake.formation("fresh-app") == {"web": (1, "Standard-1X"), "worker": (0, "Standard-1X")}


def test_concurrent_scales_leave_dynos_matching_the_formation(fake, api):
    def scale(quantity: int) -> int:
        body = {"updates": [{"type": "web", "quantity": quantity}]}
        return api("PATCH", "/apps/myapp/formation", json=body).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert set(pool.map(scale, [3, 1, 4, 1, 5, 9, 2, 6] * 2)) == {200}
    quantity = fake.formation("myapp")["web"][0]
    names = [d["name"] for d in fake.dynos("myapp")]
    assert names == [f"web.{n}" for n in range(1, quantity + 1)]


def test_werkzeug_request_lines_are_quiet(fake):
    assert logging.getLogger("werkzeug").level == logging.WARNING


def test_a_promotion_stays_pending_a_while_as_heroku_s_does(fake, api):
    # Heroku answers a promotion `pending`, and its targets stay pending for seconds; the
    # fake's targets had read `succeeded` at once, so the bot was never made to follow one.
    pipeline = fake.add_pipeline("p", {"myapp": "staging", "hobby-app": "production"})
    source = api("GET", "/apps/myapp").json()["id"]
    target = api("GET", "/apps/hobby-app").json()["id"]
    body = {
        "pipeline": {"id": pipeline},
        "source": {"app": {"id": source}},
        "targets": [{"app": {"id": target}}],
    }
    promotion = api("POST", "/pipeline-promotions", json=body).json()
    assert promotion["status"] == "pending"
    [first] = api("GET", f"/pipeline-promotions/{promotion['id']}/promotion-targets").json()
    assert (first["status"], first["release"]) == ("pending", None)
    assert api("GET", f"/pipeline-promotions/{promotion['id']}").json()["status"] == "completed"
    [done] = api("GET", f"/pipeline-promotions/{promotion['id']}/promotion-targets").json()
    assert done["status"] == "succeeded" and done["release"]["id"]
    assert fake.violations == []
