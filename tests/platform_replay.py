"""A loopback server that replays a platform's fixture pages, and a run of the built-in specs against it.

``Replay(handler)`` serves on 127.0.0.1: ``handler(request)`` returns ``(status, headers, body)``.
``run_builtin(platform, base_url, terms, tmp_path)`` runs ``harness run`` (in process) with the
built-in spec of ``platform`` pointed at the server, one probe per term, and returns the
measurements by role and input.
"""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from harness.models import Measurement
from harness.operations.runs import RunRequest, execute, prepare
from harness.store.sqlite import Store

from .conftest import fast_options


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]
    raw_query: str

    def cookies(self) -> dict[str, str]:
        out = {}
        for part in self.headers.get("cookie", "").split(";"):
            k, sep, v = part.strip().partition("=")
            if sep:
                out[k] = v
        return out


Handler = Callable[[Request], tuple[int, dict[str, str], bytes]]


@dataclass
class Replay:
    handler: Handler
    requests: list[Request] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def __enter__(self) -> "Replay":
        replay = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                req = Request("GET", unquote(parts.path), {k: v[0] for k, v in parse_qs(parts.query).items()},
                              {k.lower(): v for k, v in self.headers.items()}, parts.query)
                replay.requests.append(req)
                status, headers, body = replay.handler(req)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"


def run_builtin(platform: str, base_url: str, terms: list[str], tmp_path: Path, controls: tuple[str, ...] = ("天气",),
                retries: int = 0, concurrency: int = 1, **options: object) -> tuple[dict[str, Measurement], list[Measurement], Store]:
    """Run the built-in spec of ``platform`` against ``base_url``: probes by input, truism measurements, store path."""
    kw = tmp_path / "terms.yaml"
    kw.write_text("name: terms\nentries:\n" + "".join(f"  - {{term: '{t}', category: test}}\n" for t in terms))
    ctl = tmp_path / "ctl.yaml"
    ctl.write_text("name: ctl\nentries:\n" + "".join(f"  - {{term: '{t}', category: control}}\n" for t in controls))
    ps = tmp_path / "ps.yaml"
    ps.write_text(textwrap.dedent(f"""\
        name: replay-{platform}
        keywords: [{{list: {kw}}}]
        platforms: [{{name: {platform}}}]
        controls: {{every: 100, lists: [{ctl}]}}
        rate_limit: {{interval_s: 0, jitter: 0, concurrency: {concurrency}}}
        timeout_s: 10
        retries: {retries}
        flip_retest: false
        """))
    db = tmp_path / "replay.db"
    req = RunRequest(ps, db, base_urls={platform: base_url}, new=True, options=fast_options(**options))
    execute(req, prepare(req))
    st = Store(db, readonly=True)
    ms = list(st.measurements())
    return {m.input: m for m in ms if m.role in ("probe", "control")}, [m for m in ms if m.role == "truism"], st
