"""Cookies, tokens and proxy credentials never reach the store, logs or outputs.

Marker secrets are planted in a cookies file, in environment tokens a spec uses, in a
same-host redirect and in the proxy URL; after a real run through a real loopback proxy
the store's bytes (database, WAL, shared memory) and every output are searched for them.
"""

from __future__ import annotations

import base64
import http.client
import json
import textwrap
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from harness.errors import InputError
from harness.measure.engine import RunOptions
from harness.measure.sessions import PlatformSession, Secrets, load_cookies
from harness.platforms.registry import BUILTIN_DIR

from .conftest import FIXTURES, run_cli

COOKIE_SECRET = "CookieMarker7f3a9e"
TOKEN_SECRET = "TokenMarker55c1d0"
SIG_SECRET = "SigMarker_a8e2b4"
PROXY_PASSWORD = "ProxyPassMarker91d"
MARKERS = [COOKIE_SECRET, TOKEN_SECRET, SIG_SECRET, PROXY_PASSWORD]


class ForwardProxy(BaseHTTPRequestHandler):
    """A minimal HTTP forward proxy with Basic authentication."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        expected = "Basic " + base64.b64encode(f"researcher:{PROXY_PASSWORD}".encode()).decode()
        if self.headers.get("Proxy-Authorization") != expected:
            self.send_response(407)
            self.send_header("Proxy-Authenticate", 'Basic realm="p"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.server.forwarded += 1  # type: ignore[attr-defined]
        target = urlsplit(self.path)
        conn = http.client.HTTPConnection(target.hostname, target.port, timeout=5)
        headers = {k: v for k, v in self.headers.items() if not k.lower().startswith("proxy-")}
        conn.request("GET", target.path + ("?" + target.query if target.query else ""), headers=headers)
        resp = conn.getresponse()
        body = resp.read()
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() in ("content-type", "location", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        conn.close()


@pytest.fixture
def proxy():
    server = ThreadingHTTPServer(("127.0.0.1", 0), ForwardProxy)
    server.forwarded = 0  # type: ignore[attr-defined]
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def secretive_platform(tmp_path: Path) -> Path:
    d = tmp_path / "platforms"
    d.mkdir()
    text = (BUILTIN_DIR / "sandbox.yaml").read_text().replace("name: sandbox", "name: secretive").replace(
        'params: {wd: "{query}"}', 'params: {wd: "{query}", token: "{env:HARNESS_TEST_TOKEN}", v: "{env:HARNESS_TEST_SIG}"}')
    (d / "secretive.yaml").write_text(text)
    return d


def test_no_secret_reaches_the_store_or_any_output(sandbox, proxy, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_TEST_TOKEN", TOKEN_SECRET)
    monkeypatch.setenv("HARNESS_TEST_SIG", SIG_SECRET)
    cookies = tmp_path / "cookies.txt"
    cookies.write_text("# Netscape HTTP Cookie File\n"
                       f"127.0.0.1\tFALSE\t/\tFALSE\t0\tSUB\t{COOKIE_SECRET}\n"
                       f"#HttpOnly_.weibo.com\tTRUE\t/\tTRUE\t0\tOTHER\tnot-for-this-host\n")
    seen: dict[str, list[str]] = {"cookie": []}

    def responder(handler, query):
        seen["cookie"].append(handler.headers.get("Cookie") or "")
        if query == "白纸" and "moved" not in handler.path:
            handler.send_body(302, b"", "text/html", {"Location": f"/s?wd=%E7%99%BD%E7%BA%B8&moved=1&v={SIG_SECRET}"})
            return True
        return False

    sandbox.responder = responder
    ps = tmp_path / "ps.yaml"
    ps.write_text(textwrap.dedent(f"""\
        name: secrets
        keywords:
          - list: {FIXTURES / 'keywords' / 'mini.yaml'}
        platforms:
          - name: secretive
            rate_limit: {{interval_s: 0, jitter: 0, concurrency: 2}}
        controls: {{every: 5, lists: []}}
        timeout_s: 5
        retries: 0
        """))
    db = tmp_path / "s.db"
    proxy_url = f"http://researcher:{PROXY_PASSWORD}@127.0.0.1:{proxy.server_address[1]}"
    d = secretive_platform(tmp_path)
    outputs = []
    res = run_cli("run", str(ps), "--store", str(db), "--specs", str(d), "--base-url", f"secretive={sandbox.url}",
                  "--cookies", f"secretive={cookies}", "--proxy", proxy_url, "--json")
    outputs += [res.stdout, res.stderr]
    assert res.returncode == 0, res.stderr
    counts = json.loads(res.stdout)["counts"]["secretive"]
    assert counts.get("failure", 0) == 0 and counts["hard"] == 5
    # the secrets were used: through the proxy, with the cookie and the tokens
    assert proxy.forwarded >= 12
    assert seen["cookie"] and all(c == f"SUB={COOKIE_SECRET}" for c in seen["cookie"])
    assert any(TOKEN_SECRET in q for q in sandbox.queries) is False  # tokens travel in params, not in the query
    run_id = json.loads(res.stdout)["run_id"]
    for args in (["reclassify", run_id, "--store", str(db), "--specs", str(d), "--json"],
                 ["platforms", "check", "secretive", "--specs", str(d), "--base-url", sandbox.url,
                  "--proxy", proxy_url, "--cookies", str(cookies), "--json"]):
        out = run_cli(*args)
        assert out.returncode in (0, 1), out.stderr
        outputs += [out.stdout, out.stderr]
    check = json.loads(outputs[-2])
    assert "REDACTED" in check["truism"]["url"]
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("s.db*") if p.is_file())
    assert b"REDACTED" in stored  # the token parameters were there, and were removed
    for marker in MARKERS:
        assert marker.encode() not in stored, marker
        assert all(marker not in text for text in outputs), marker
    from harness.store.sqlite import Store

    with Store(db, readonly=True) as st:
        redirected = next(m for m in st.measurements(run_id) if m.input == "白纸")
        runs_doc = st.conn.execute("SELECT doc FROM runs").fetchone()[0]
    assert "moved=1" in redirected.evidence.final_url and "REDACTED" in redirected.evidence.final_url
    assert json.loads(runs_doc)["session"] == {"proxy": "http", "cookies": {"secretive": ["OTHER", "SUB"]}}


def test_a_wrong_proxy_password_is_a_failure_never_a_verdict(sandbox, proxy, tmp_path):
    from harness.operations.runs import RunRequest, execute, prepare
    from harness.store.sqlite import Store

    from .conftest import fast_options

    ps = tmp_path / "ps.yaml"
    ps.write_text((FIXTURES / "probes" / "mini.yaml").read_text().replace(
        "list: mini", f"list: {FIXTURES / 'keywords' / 'mini.yaml'}").replace("lists: [controls]", "lists: []"))
    db = tmp_path / "p.db"
    opts = fast_options(proxy=f"http://researcher:wrong-{PROXY_PASSWORD}@127.0.0.1:{proxy.server_address[1]}")
    req = RunRequest(ps, db, base_urls={"sandbox": sandbox.url}, options=opts)
    summary = execute(req, prepare(req))
    assert not any(dict(summary.counts["sandbox"]).values())  # nothing was sent: the platform was given up
    assert "(proxy_error); 12 probes not sent" in summary.stopped["sandbox"]
    with Store(db, readonly=True) as st:
        truisms = [m for m in st.measurements(summary.run_id) if m.role == "truism"]
    assert truisms and all(m.failure == "proxy_error" for m in truisms)
    assert PROXY_PASSWORD.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("p.db*") if p.is_file())


def test_an_unreachable_proxy_is_proxy_error(sandbox, tmp_path):
    import asyncio

    from harness.measure.request import fetch
    from harness.measure.transport import Sender
    from harness.platforms.registry import PlatformRegistry

    spec = PlatformRegistry.default(include_cwd=False).get("sandbox").model_copy(update={"base_url": sandbox.url})
    session = PlatformSession.build(proxy="socks5://u:pw@127.0.0.1:9")

    async def go():
        async with Sender.open(10, proxy="socks5://u:pw@127.0.0.1:9") as sender:
            return await fetch(sender, spec, "六四", session=session)

    assert asyncio.run(go()).classification.failure == "proxy_error"


def test_cookie_files_in_both_formats(tmp_path):
    ns = tmp_path / "c.txt"
    ns.write_text("# Netscape HTTP Cookie File\n.weibo.com\tTRUE\t/\tFALSE\t4102444800\tSUB\tabc\n"
                  "#HttpOnly_s.weibo.com\tFALSE\t/\tTRUE\t0\tSUBP\tdef\n\n")
    cookies = load_cookies(ns)
    assert [(c.name, c.value, c.domain) for c in cookies] == [("SUB", "abc", ".weibo.com"), ("SUBP", "def", "s.weibo.com")]
    js = tmp_path / "c.json"
    js.write_text(json.dumps([{"name": "sessionid", "value": "xyz", "domain": ".douyin.com", "path": "/"}]))
    assert load_cookies(js)[0].domain == ".douyin.com"
    flat = tmp_path / "flat.json"
    flat.write_text('{"sessionid": "xyz", "ttwid": "1%7Cabc"}')
    session = PlatformSession.build(cookies_file=flat)
    assert session.cookie_header("https://www.douyin.com/x") == "sessionid=xyz; ttwid=1%7Cabc"
    assert PlatformSession.build(cookies_file=ns).cookie_header("https://s.weibo.com/weibo") == "SUB=abc; SUBP=def"
    assert PlatformSession.build(cookies_file=ns).cookie_header("https://www.baidu.com/") is None


def test_a_bad_cookies_file_names_file_and_line_but_not_the_value(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text(f"# comment\n.weibo.com\tTRUE\t/\tFALSE\tnever\tSUB\t{COOKIE_SECRET}\n")
    with pytest.raises(InputError) as exc:
        load_cookies(bad)
    assert f"{bad}:2:" in str(exc.value) and COOKIE_SECRET not in str(exc.value)


def test_cli_bad_cookies_file_is_one_line_and_writes_nothing(sandbox, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": 1}')
    db = tmp_path / "x.db"
    res = run_cli("run", str(FIXTURES / "probes" / "mini.yaml"), "--store", str(db), "--base-url",
                  f"sandbox={sandbox.url}", "--cookies", f"sandbox={bad}")
    assert res.returncode == 2 and str(bad) in res.stderr and "Traceback" not in res.stderr
    from harness.store.sqlite import Store

    with Store(db, readonly=True) as st:
        assert st.list_runs() == []


def test_secrets_scrubber_and_options_repr():
    s = Secrets()
    s.add("a b/c", "xy")  # too short values are not scrubbed (they would redact ordinary text)
    assert s.scrub("q=a%20b%2Fc&r=a+b%2Fc&t=xy") == "q=REDACTED&r=REDACTED&t=xy"
    assert PROXY_PASSWORD not in repr(RunOptions(proxy=f"socks5://u:{PROXY_PASSWORD}@127.0.0.1:1080"))


class Socks5Server:
    """A minimal SOCKS5 proxy (RFC 1928) with username/password authentication (RFC 1929)."""

    def __init__(self, username: str, password: str):
        import socket

        self.username, self.password = username, password
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.auth_failures = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    @staticmethod
    def _read(conn, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data

    def _serve(self, conn) -> None:
        import socket
        import struct

        try:
            ver, nmethods = self._read(conn, 2)
            methods = self._read(conn, nmethods)
            if ver != 5 or 2 not in methods:
                conn.sendall(b"\x05\xff")
                return
            conn.sendall(b"\x05\x02")
            _, ulen = self._read(conn, 2)
            user = self._read(conn, ulen).decode()
            (plen,) = self._read(conn, 1)
            password = self._read(conn, plen).decode()
            if (user, password) != (self.username, self.password):
                self.auth_failures += 1
                conn.sendall(b"\x01\x01")
                return
            conn.sendall(b"\x01\x00")
            _, cmd, _, atyp = self._read(conn, 4)
            if atyp == 1:
                host = socket.inet_ntoa(self._read(conn, 4))
            elif atyp == 3:
                (n,) = self._read(conn, 1)
                host = self._read(conn, n).decode()
            else:
                conn.sendall(b"\x05\x08\x00\x01" + b"\x00" * 6)
                return
            (port,) = struct.unpack("!H", self._read(conn, 2))
            upstream = socket.create_connection((host, port), timeout=5)
            self.connections += 1
            conn.sendall(b"\x05\x00\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack("!H", port))

            def pump(src, dst) -> None:
                try:
                    while data := src.recv(65536):
                        dst.sendall(data)
                except OSError:
                    pass
                finally:
                    for s in (src, dst):
                        try:
                            s.shutdown(socket.SHUT_RDWR)
                        except OSError:
                            pass

            threading.Thread(target=pump, args=(upstream, conn), daemon=True).start()
            pump(conn, upstream)
        except (ConnectionError, OSError):
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.sock.close()


def test_runs_through_a_socks5_proxy_with_credentials_never_stored(sandbox, tmp_path):
    from harness.operations.runs import RunRequest, execute, prepare
    from harness.store.sqlite import Store

    from .conftest import fast_options

    socks = Socks5Server("researcher", PROXY_PASSWORD)
    try:
        ps = tmp_path / "ps.yaml"
        ps.write_text((FIXTURES / "probes" / "mini.yaml").read_text().replace(
            "list: mini", f"list: {FIXTURES / 'keywords' / 'mini.yaml'}"))
        db = tmp_path / "socks.db"
        opts = fast_options(proxy=f"socks5://researcher:{PROXY_PASSWORD}@127.0.0.1:{socks.port}")
        req = RunRequest(ps, db, base_urls={"sandbox": sandbox.url}, options=opts)
        summary = execute(req, prepare(req))
        assert summary.counts["sandbox"]["hard"] == 5 and summary.counts["sandbox"].get("failure", 0) == 0
        assert socks.connections >= 1 and socks.auth_failures == 0
        with Store(db, readonly=True) as st:
            doc = json.loads(st.conn.execute("SELECT doc FROM runs").fetchone()[0])
        assert doc["session"]["proxy"] == "socks5"
        assert PROXY_PASSWORD.encode() not in b"".join(p.read_bytes() for p in tmp_path.glob("socks.db*") if p.is_file())
        bad = fast_options(proxy=f"socks5://researcher:wrong@127.0.0.1:{socks.port}")
        req = RunRequest(ps, tmp_path / "bad.db", base_urls={"sandbox": sandbox.url}, options=bad, new=True)
        summary = execute(req, prepare(req))
        assert "(proxy_error); 15 probes not sent" in summary.stopped["sandbox"] and socks.auth_failures >= 1
        with Store(tmp_path / "bad.db", readonly=True) as st:
            assert {m.failure for m in st.measurements() if m.role == "truism"} == {"proxy_error"}
    finally:
        socks.close()


def test_evidence_urls_lose_credentials_and_tokens_but_keep_every_other_byte():
    from harness.measure.request import redact_url
    from harness.measure.sessions import Secrets

    gbk = "%B2%E2%CA%D4"  # 测试 in GBK: not valid UTF-8, must survive as sent
    url = (f"https://user:pw@www.example.cn:8443/s?wd={gbk}&sign=abc&Session_Id=1"
           "&x=a1b2c3d4e5f6a1b2c3d4e5f6a1b2&flag&q=a+b&n=12345678901234567890123456#frag")
    out = redact_url(url)
    assert out == (f"https://www.example.cn:8443/s?wd={gbk}&sign=REDACTED&Session_Id=REDACTED"
                   "&x=REDACTED&flag&q=a+b&n=12345678901234567890123456")
    secrets = Secrets()
    secrets.add("planted-secret-value")
    assert "planted" not in redact_url("http://h/p?wd=planted-secret-value", secrets)


def test_the_query_parameter_keyword_stays_in_evidence_urls_while_credentials_go():
    from harness.measure.request import redact_url

    # JD, Bilibili, Toutiao and Douyin send the query as `keyword`: it is the measurement, not a key
    out = redact_url("https://so.example.cn/s?keyword=%E5%85%AD%E5%9B%9B&author=x&msToken=abc&api_key=k&appkey=k"
                     "&a_bogus=b&X-Bogus=b&signature=s&access_token=t&sessionid=1&search_type=video")
    assert out == ("https://so.example.cn/s?keyword=%E5%85%AD%E5%9B%9B&author=x&msToken=REDACTED&api_key=REDACTED"
                   "&appkey=REDACTED&a_bogus=REDACTED&X-Bogus=REDACTED&signature=REDACTED&access_token=REDACTED"
                   "&sessionid=REDACTED&search_type=video")
