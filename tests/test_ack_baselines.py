"""The ack benchmark's plain bolt app that does the work (`benchmarks/bare_app.py`) must do
what deploybot does for the same command, within Heroku's spec, and answer: otherwise the
comparison beside it in `make bench` would flatter one of the two."""

from __future__ import annotations

import pytest

from benchmarks.bare_app import create_working_app
from bot.sandbox.fakes.dyno import FakeEndpoints, web_dyno_env
from bot.sandbox.fakes.heroku import FakeHeroku
from bot.sandbox.fakes.slack import FakeSlack
from bot.sandbox.slack_requests import sign, slash_command

SECRET = "baseline-secret"


@pytest.mark.parametrize(
    ("text", "calls", "answer"),
    [
        (
            "status demo",
            [
                ("GET", "/apps/demo"),
                ("GET", "/apps/demo/dynos"),
                ("GET", "/apps/demo/formation"),
                ("GET", "/apps/demo/releases"),
            ],
            "status:",
        ),
        ("scale web=3 demo", [("PATCH", "/apps/demo/formation")], "scaled: HTTP 200"),
    ],
)
def test_the_working_baseline_makes_the_commands_heroku_calls_and_answers(
    monkeypatch: pytest.MonkeyPatch, text: str, calls: list[tuple[str, str]], answer: str
) -> None:
    with FakeHeroku(api_keys=("baseline-key",)) as heroku, FakeSlack() as slack:
        heroku.add_app("demo", formation={"web": (1, "standard-1x")})
        env = web_dyno_env(
            database_url="sqlite://",
            fakes=FakeEndpoints.of(heroku, slack),
            heroku_key="baseline-key",
            signing_secret=SECRET,
            admin="UADMIN",
        )
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        url = slack.new_response_url()
        body = slash_command(text, url, user_id="UADMIN")

        ack = (
            create_working_app()
            .test_client()
            .post("/slack/events", data=body, headers=sign(SECRET, body))
        )

        assert (ack.status_code, ack.text) == (200, "ok")
        (payload,) = slack.wait_for_responses(url)
        assert payload["text"].startswith(answer)
        assert sorted((r.method, r.path) for r in heroku.requests) == calls
        assert heroku.violations == []
    if text.startswith("scale"):
        assert heroku.formation("demo")["web"][0] == 3
