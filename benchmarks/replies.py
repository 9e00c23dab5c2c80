"""Posts to Slack, on one endpoint that keeps connections open: to a `response_url`,
bolt's `respond` (a new connection per post) against ours (`handlers.replies`, kept-alive
connections); and Web API `chat.postMessage` calls, slack_sdk's `WebClient` (urllib, a
new connection per call) against ours (`bot.slack_api`, kept alive, answers read within
limits).

Fair: each pair sends the same messages, one at a time, to the same local HTTP/1.1
endpoint (Python's `ThreadingHTTPServer` with Nagle off, as a real server answers),
alternating rounds in one process; the CPU figure counts the endpoint's share too, the
same for both. Plain HTTP on 127.0.0.1, so what a new connection costs here is a TCP
handshake only: in production each of the baselines' posts also makes a TLS handshake
with hooks.slack.com or slack.com, which this leaves out.

    .venv/bin/python -m benchmarks.replies [--posts 500] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from slack_bolt import Respond
from slack_sdk import WebClient

from bot.slack_api import web_client
from handlers.replies import respond_to


class KeepAlive(BaseHTTPRequestHandler):
    """An HTTP/1.1 endpoint that keeps connections open, as hooks.slack.com does, and notes
    each post with the client port it came from."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave together, as a real server's do
    posts: list[tuple[int, dict]]
    connections: list[int]

    def setup(self) -> None:
        super().setup()
        self.connections.append(self.client_address[1])

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.posts.append((self.client_address[1], json.loads(body)))
        self.answer()

    def answer(self) -> None:
        # A response_url answers "ok"; the Web API (under /api/) a JSON object.
        if self.path.startswith("/api/"):
            self.send_whole(b'{"ok": true, "ts": "1.000100"}', "application/json; charset=utf-8")
        else:
            self.send_whole(b"ok")

    def send_whole(self, body: bytes, content_type: str | None = None) -> None:
        """A 200 with `body`, its length given, so the connection stays open after it."""
        self.send_response(200)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextlib.contextmanager
def keep_alive_endpoint(
    serve: type[KeepAlive] = KeepAlive,
) -> Iterator[tuple[str, list[tuple[int, dict]], list[int]]]:
    """A response_url on a local keep-alive server, the posts it has received (client port,
    body) and the connections it has accepted (client port)."""
    posts: list[tuple[int, dict]] = []
    connections: list[int] = []
    handler = type("Hooks", (serve,), {"posts": posts, "connections": connections})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/commands/T1/1/abc", posts, connections
    finally:
        server.shutdown()
        server.server_close()


def _round(
    post: Callable[[int], object], posts: int, opened: list[int]
) -> tuple[float, float, int]:
    """(wall ms, CPU ms) per post, and the connections the round opened."""
    before, wall, cpu = len(opened), time.perf_counter(), time.process_time()
    for i in range(posts):
        post(i)
    return (
        1000 * (time.perf_counter() - wall) / posts,
        1000 * (time.process_time() - cpu) / posts,
        len(opened) - before,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with keep_alive_endpoint() as (url, _, opened):
        api = url.split("/commands/")[0] + "/api/"
        stock = WebClient(token="xoxb-bench", base_url=api)
        ours = web_client("xoxb-bench", api)
        pairs = {
            "Answers to a response_url": {
                "bolt's respond (baseline)": lambda i: Respond(response_url=url)(
                    text=f"answer {i}", response_type="ephemeral"
                ),
                "ours (kept alive)": lambda i: respond_to(url)(
                    text=f"answer {i}", response_type="ephemeral"
                ),
            },
            "Web API chat.postMessage": {
                "slack_sdk's WebClient (baseline)": lambda i: stock.chat_postMessage(
                    channel="C1", text=f"alert {i}"
                ),
                "ours (kept alive)": lambda i: ours.chat_postMessage(
                    channel="C1", text=f"alert {i}"
                ),
            },
        }
        figures: dict[tuple[str, str], list[tuple[float, float, int]]] = {
            (title, name): [] for title, ways in pairs.items() for name in ways
        }
        for _ in range(args.rounds):
            for title, ways in pairs.items():
                for name, post in ways.items():
                    figures[title, name].append(_round(post, args.posts, opened))
    print(
        f"{args.rounds} alternating rounds of {args.posts} posts each; the best round's figures.\n"
    )
    print("| posts | way | wall ms per post | CPU ms per post | connections opened |")
    print("|---|---|---:|---:|---:|")
    for (title, name), rounds in figures.items():
        wall = min(w for w, _, _ in rounds)
        cpu = min(c for _, c, _ in rounds)
        made = sum(n for _, _, n in rounds)
        print(f"| {title} | {name} | {wall:.3f} | {cpu:.3f} | {made:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
