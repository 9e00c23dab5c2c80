"""`POST /drain/<token>` is answered in plain WSGI in front of Flask (bot/web/drain_wsgi.py):
the answers are the Flask route's, and every other request on a drain path still reaches
Flask and gets Flask's answer."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from bot.web import edge
from tests.test_drain import PUBLIC_URL, add_drain, post, stream
from tests.webclient import SlackDriver


@pytest.fixture
def web(new_app, config):
    # new_app closes it (the flusher too) while its database still exists: left running,
    # the flusher would log a failed flush into later tests every few seconds.
    return new_app(replace(config, public_url=PUBLIC_URL))


@pytest.fixture
def driver(web, slack):
    return SlackDriver(web.test_client(), slack)


def test_a_drain_post_is_answered_without_flask_and_counted(driver, web, heroku, monkeypatch):
    _, token = add_drain(driver, heroku)
    flask_saw: list[str] = []
    real = web.full_dispatch_request
    monkeypatch.setattr(web, "full_dispatch_request", lambda: flask_saw.append("x") or real())
    assert post(driver.client, token, stream(4), frame_id="one").status_code == 204
    assert post(driver.client, token, stream(4), frame_id="one").status_code == 204  # retry
    assert post(driver.client, "forged", stream(4)).status_code == 403
    assert flask_saw == []
    intake, _ = web.extensions["deploybot.metrics"]
    intake.settle()
    assert sum(w.requests for w in intake.aggregator.drain()) == 4  # the retry counted once


def test_other_methods_and_paths_still_get_flasks_answers(driver, web, heroku):
    _, token = add_drain(driver, heroku)
    assert driver.client.get(f"/drain/{token}").status_code == 405
    assert driver.client.post(f"/drain/{token}/more", data=b"x").status_code == 404
    assert driver.client.post("/drain/", data=b"x").status_code == 404


def test_a_length_past_the_ceiling_is_413_json_and_nothing_is_read(driver, heroku):
    _, token = add_drain(driver, heroku)
    response = driver.client.post(
        f"/drain/{token}",
        data=b"x" * (edge.MAX_BODY_BYTES + 1),
        headers={"Content-Type": "application/logplex-1"},
    )
    assert response.status_code == 413
    assert json.loads(response.data) == {"error": "request entity too large"}
    # Exactly the ceiling is still taken.
    body = "".join(stream(3)).encode()
    padded = body + b"\n" * (edge.MAX_BODY_BYTES - len(body))
    assert driver.client.post(f"/drain/{token}", data=padded).status_code == 204


@pytest.mark.parametrize(
    "path",
    ["/drain/%00", "/drain/forged%00token", "/drain/" + "a" * 5000, "/drain/caf%C3%A9"],
    ids=["NUL", "NUL inside", "5,000 characters", "not URL-safe"],
)
def test_a_token_no_drain_could_have_is_403_without_an_error(driver, caplog, path):
    # Anyone may post here: a NUL in the token was a DataError from PostgreSQL, a 500.
    response = driver.client.post(
        path, data=b"x", headers={"Content-Type": "application/logplex-1"}
    )
    assert response.status_code == 403
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
