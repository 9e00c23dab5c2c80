"""Answers to `response_url`: bolt's message, over a connection kept open between posts,
never one a forked process inherited."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from benchmarks.replies import KeepAlive, keep_alive_endpoint
from bot.logs import LogfmtFormatter
from handlers.replies import respond_to


@pytest.fixture
def hooks() -> Iterator[tuple[str, list[tuple[int, dict]]]]:
    with keep_alive_endpoint() as (url, posts, _):
        yield url, posts


def test_answers_are_bolts_message_and_share_one_connection(hooks) -> None:
    url, posts = hooks
    respond = respond_to(url)
    answer = respond(text="Working", response_type="ephemeral")
    assert (answer.status_code, answer.body) == (200, "ok")
    respond(text="web 1 → 2", blocks=[{"type": "section"}], replace_original=True)
    respond({"text": "whole", "delete_original": False})
    assert [body for _, body in posts] == [
        {"text": "Working", "response_type": "ephemeral"},
        {"text": "web 1 → 2", "blocks": [{"type": "section"}], "replace_original": True},
        {"text": "whole", "delete_original": False},
    ]
    assert len({port for port, _ in posts}) == 1  # one connection, kept open


def test_a_forked_process_opens_its_own_connection(hooks) -> None:
    url, posts = hooks
    respond_to(url)(text="parent")
    pid = os.fork()
    if pid == 0:  # the child: posts, then leaves without running the test's teardown
        status = 1
        try:
            respond_to(url)(text="child")
            status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    respond_to(url)(text="parent again")
    ports = {body["text"]: port for port, body in posts}
    assert set(ports) == {"parent", "child", "parent again"}
    assert ports["child"] != ports["parent"] == ports["parent again"]


def test_no_response_url_is_refused_as_bolt_refuses_it() -> None:
    with pytest.raises(ValueError, match="no response_url"):
        respond_to(None)(text="hello")


class HangsUpOnce(KeepAlive):
    """Reads the first post and closes the connection unanswered, as a server does that
    closes a kept-alive connection just as the client reuses it."""

    def answer(self) -> None:
        if len(self.posts) == 1:
            self.close_connection = True
            return
        super().answer()


def test_a_post_cut_off_is_sent_again_and_the_log_keeps_the_url_secret(caplog) -> None:
    with keep_alive_endpoint(HangsUpOnce) as (url, posts, _):
        secret_url = url.replace("/commands/T1/1/abc", "/commands/T0ABC12/9876543210/s3cretT0ken")
        answer = respond_to(secret_url)(text="web 1 → 2")
    assert answer.status_code == 200
    assert [body["text"] for _, body in posts] == ["web 1 → 2", "web 1 → 2"]  # better twice
    lines = [LogfmtFormatter().format(record) for record in caplog.records]
    assert any("Retrying" in line for line in lines)  # urllib3 said so, naming the path
    assert all("s3cretT0ken" not in line for line in lines)
    assert any("/commands/T0ABC12/9876543210/[redacted]" in line for line in lines)


def test_the_benchmark_measures_both_clients_beside_their_baselines(capsys) -> None:
    from benchmarks.replies import main

    assert main(["--posts", "5", "--rounds", "2"]) == 0
    rows = [line.strip("| ").split(" | ") for line in capsys.readouterr().out.splitlines()]
    opened = {(row[0], row[1]): row[4] for row in rows if row[0].startswith(("Answers", "Web"))}
    assert opened == {
        ("Answers to a response_url", "bolt's respond (baseline)"): "10",
        ("Answers to a response_url", "ours (kept alive)"): "1",
        ("Web API chat.postMessage", "slack_sdk's WebClient (baseline)"): "10",
        ("Web API chat.postMessage", "ours (kept alive)"): "1",
    }


class Expired(KeepAlive):
    """Answers as hooks.slack.com does a response_url past its 30 minutes."""

    def answer(self) -> None:
        body = b"expired_url"
        self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_an_answer_slack_refuses_is_logged_without_its_url(caplog) -> None:
    # An answer Slack refused (expired, used five times) had been dropped without a word:
    # nobody could tell from the log why someone heard nothing.
    with keep_alive_endpoint(Expired) as (url, posts, _):
        secret_url = url.replace("/commands/T1/1/abc", "/commands/T0ABC12/9876543210/s3cretT0ken")
        answer = respond_to(secret_url)(text="web 1 → 2")
    assert answer.status_code == 404 and len(posts) == 1  # a refusal is not sent again
    lines = [LogfmtFormatter().format(record) for record in caplog.records]
    [refused] = [line for line in lines if "answer not taken" in line]
    assert "status=404" in refused and "error=expired_url" in refused
    assert all("s3cretT0ken" not in line and "9876543210" not in line for line in lines)
