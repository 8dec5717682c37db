"""F8: secrets a platform echoes back never reach the store, exports or reports.

A page that reflects the Cookie header, a token parameter (``{env:...}``), an Authorization
header and the account's own identifiers is stored with each of them replaced by REDACTED:
the test decompresses every stored body and searches exports and the report. The evidence
keeps the hash of what was received and says that a redaction happened; the stored form
has its own hash, which `store check` and `reclassify` use.
"""

from __future__ import annotations

import hashlib
import json
import textwrap
import zlib
from pathlib import Path

from harness.measure.engine import RunOptions
from harness.operations.runs import RunRequest, execute, prepare
from harness.platforms.registry import BUILTIN_DIR
from harness.store.sqlite import Store

from .conftest import FIXTURES
from .test_schedule_support import cli_inprocess

COOKIE = "EchoCookie4d8e2f"
TOKEN = "EchoToken9b7c3a"
BEARER = "EchoBearer5e6f7a"
UID = "uid-77341902"
NICK = "某某研究员Nick"
MARKERS = [COOKIE, TOKEN, BEARER, UID, NICK]


def _platform(tmp_path: Path) -> Path:
    d = tmp_path / "platforms"
    d.mkdir()
    text = (BUILTIN_DIR / "sandbox.yaml").read_text().replace("name: sandbox", "name: echoing").replace(
        'params: {wd: "{query}"}', 'params: {wd: "{query}", token: "{env:HARNESS_ECHO_TOKEN}"}')
    text = text.replace("request:\n", "request:\n  headers: {Authorization: \"Bearer {env:HARNESS_ECHO_BEARER}\"}\n", 1)
    (d / "echoing.yaml").write_text(text)
    return d


def echo_everything(handler, query: str) -> bool:
    body, ctype = handler.real_answer(query)
    echoed = (f"<!-- cookie: {handler.headers.get('Cookie')} | auth: {handler.headers.get('Authorization')} | "
              f"url: {handler.path} | welcome {NICK} ({UID}) -->").encode()
    handler.send_body(200, body.replace(b"</body>", echoed + b"</body>"), ctype)
    return True


def test_echoed_secrets_are_redacted_in_stored_bodies_exports_and_reports(sandbox, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HARNESS_ECHO_TOKEN", TOKEN)
    monkeypatch.setenv("HARNESS_ECHO_BEARER", BEARER)
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(f"SUB={COOKIE}\n")
    sandbox.responder = echo_everything
    ps = tmp_path / "ps.yaml"
    ps.write_text(textwrap.dedent(f"""\
        name: echo
        keywords:
          - list: {FIXTURES / 'keywords' / 'mini.yaml'}
        platforms:
          - name: echoing
            rate_limit: {{interval_s: 0, jitter: 0, concurrency: 2}}
        controls: {{every: 5, lists: []}}
        timeout_s: 5
        retries: 0
        """))
    db = tmp_path / "s.db"
    d = _platform(tmp_path)

    req = RunRequest(ps, db, base_urls={"echoing": sandbox.url}, new=True, platform_dirs=(d,),
                     options=RunOptions(retry_backoff_s=0.01, control_backoff_s=0.01, cookies={"echoing": cookies},
                                        account_identifiers={"*": [UID], "echoing": [NICK]}))
    first = execute(req, prepare(req))
    sandbox.set_epoch(1)  # a second run with changes, so the report shows evidence excerpts
    summary = execute(req, prepare(req))
    assert first.run_id != summary.run_id
    assert summary.failures == {} or sum(summary.failures.values()) == 0
    with Store(db, readonly=True) as st:
        bodies = [zlib.decompress(r[0]) for r in st.conn.execute("SELECT data FROM bodies")]
        ms = list(st.measurements(summary.run_id))
    assert bodies and all(b"REDACTED" in b for b in bodies)
    for marker in MARKERS:
        assert all(marker.encode() not in b for b in bodies), marker
    m = next(m for m in ms if m.role == "probe" and m.evidence.body_sha256)
    assert m.evidence.redacted >= 4  # cookie, bearer (header and value), token, uid, nickname
    assert m.evidence.stored_body_sha256 and m.evidence.stored_body_sha256 != m.evidence.body_sha256
    with Store(db, readonly=True) as st:
        stored = st.get_body(m.evidence.stored_key)
    assert hashlib.sha256(stored).hexdigest() == m.evidence.stored_body_sha256
    outputs = []
    for args in (("export", "--bodies", "-o", str(tmp_path / "e.jsonl")), ("report", "-o", str(tmp_path / "r.html")),
                 ("store", "check"), ("reclassify", summary.run_id, "--platforms", str(d), "--json")):
        res = cli_inprocess(capsys, *args, "--store", str(db))
        assert res.returncode == 0, (args, res.stderr)
        outputs += [res.stdout, res.stderr]
    changed = json.loads(outputs[-2])
    assert changed.get("changed", 0) == 0, changed  # the stored (redacted) form reclassifies to the same verdicts
    export = (tmp_path / "e.jsonl").read_text(encoding="utf-8")
    decoded = b"".join(__import__("base64").b64decode(v) for line in export.splitlines()
                       for v in json.loads(line)["test_keys"].get("bodies_b64", {}).values())
    assert b"REDACTED" in decoded
    report = (tmp_path / "r.html").read_text(encoding="utf-8") + (tmp_path / "r.md").read_text(encoding="utf-8")
    assert "stored body" in report  # excerpts are there, from the stored (redacted) form
    for marker in MARKERS:
        assert marker.encode() not in decoded and marker not in export and marker not in report, marker
        assert all(marker not in text for text in outputs), marker
