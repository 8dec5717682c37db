"""A loopback HTTP server that answers each request with a page chosen by the test.

Tests serve saved platform pages (``tests/fixtures/platforms/<name>/``), redirect
answers and error statuses from it, then run the real engine (``harness run``) or
``harness platforms check`` against ``server.url``. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote_plus, urlsplit


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/html; charset=utf-8"})

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> "Answer":
        return cls(status, b"", {"Location": location, "Content-Type": "text/html"})


Route = Callable[[str, dict[str, str]], Answer]
"""(path, decoded query parameters) -> the answer."""


def decode_params(raw: str, encoding: str = "utf-8") -> dict[str, str]:
    out = {}
    for pair in raw.split("&"):
        name, _, value = pair.partition("=")
        if name:
            out[unquote_plus(name, encoding=encoding, errors="replace")] = unquote_plus(
                value, encoding=encoding, errors="replace")
    return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Server"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        parts = urlsplit(self.path)
        params = decode_params(parts.query, self.server.encoding)
        self.server.requests.append((parts.path, params, dict(self.headers)))
        answer = self.server.route(parts.path, params)
        self.send_response(answer.status)
        for k, v in answer.headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    route: Route
    encoding: str
    requests: list[tuple[str, dict[str, str], dict[str, str]]]


@contextmanager
def replay_server(route: Route, encoding: str = "utf-8") -> Iterator[_Server]:
    """A started server (``.url``, ``.requests``) that answers with ``route``."""
    server = _Server(("127.0.0.1", 0), _Handler)
    server.route = route
    server.encoding = encoding
    server.requests = []
    server.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
