"""`harness platforms record` saves a platform's answers as a fixture folder with secrets scrubbed;
`harness platforms check NAME --fixtures DIR` replays it offline and says what changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from harness.errors import InputError
from harness.platforms.fixtures import check_folder, load_cases
from harness.platforms.registry import BUILTIN_DIR, PlatformRegistry

from .comparator_helpers import cli
from .conftest import FIXTURES, run_cli
from .platform_replay import Replay, Request

COOKIE_VALUE = "SUB-secret-cookie-value-0123456789abcdef"
UID = "7731904482"
PAGE = (FIXTURES / "platforms" / "weibo" / "not_censored.html").read_text()
EMPTY = (FIXTURES / "platforms" / "weibo" / "no_results.html").read_text()
HARD = (FIXTURES / "platforms" / "weibo" / "hard.html").read_text()


def weibo_like(req: Request) -> tuple[int, dict[str, str], bytes]:
    """A logged-in Weibo that echoes the session into its pages, as real pages do."""
    q = req.params.get("q", "")
    if q == "去登录":
        return 302, {"Location": "https://passport.weibo.com/visitor/visitor?entry=miniblog&a=enter"}, b""
    page = HARD if q == "六四" else EMPTY if q == "zqxjvkwbnmpl" else PAGE
    config = (f"<script>$CONFIG['uid']='{UID}'; $CONFIG['nick']='某研究者'; var c = \"{req.cookies().get('SUB', '')}\";"
              f"</script>")
    return 200, {"Content-Type": "text/html; charset=utf-8", "Set-Cookie": "SRF=fresh-value"}, \
        page.replace("</head>", config + "</head>").encode()


def test_record_writes_a_scrubbed_fixture_folder_and_check_replays_it(tmp_path):
    cookies = tmp_path / "cookies.json"
    cookies.write_text(json.dumps({"SUB": COOKIE_VALUE}))
    out = tmp_path / "weibo-2026-12"
    with Replay(weibo_like) as server:
        res = run_cli("platforms", "record", "weibo", "--out", str(out), "--base-url", server.url, "--cookies",
                      str(cookies), "--term", "六四", "--term", "去登录", "--vantage", "lab-1", "--interval", "0")
        assert server.requests[0].cookies() == {"SUB": COOKIE_VALUE}  # the session went out ...
    assert res.returncode == 0, res.stderr
    saved = b"".join(p.read_bytes() for p in out.iterdir())
    assert COOKIE_VALUE.encode() not in saved and UID.encode() not in saved  # ... and is nowhere in the folder
    assert "某研究者".encode() not in saved and b"fresh-value" not in saved
    cases = yaml.safe_load((out / "expected.yaml").read_text())
    assert [(c["role"], c["query"], c["verdict"], c.get("failure")) for c in cases] == [
        ("truism", "的", "not_censored", None), ("control", "天气", "not_censored", None),
        ("no_results", "zqxjvkwbnmpl", "no_results", None), ("term", "六四", "hard", None),
        ("term", "去登录", "failure", "session_required")]
    assert (out / "05-term.redirect.yaml").exists() and "lab-1" in (out / "SOURCES.md").read_text()

    ok = cli("platforms", "check", "weibo", "--fixtures", str(out))
    assert ok.returncode == 0 and "all 5 answers give the expected verdict" in " ".join(ok.stdout.split())

    # the site changed its notice, or the spec broke: the recorded folder says which answers differ
    broken = tmp_path / "platforms"
    broken.mkdir()
    (broken / "weibo.yaml").write_text((BUILTIN_DIR / "weibo.yaml").read_text().replace("根据相关法律法规和政策", "依据有关规定"))
    bad = cli("platforms", "check", "weibo", "--specs", str(broken), "--fixtures", str(out), "--json")
    assert bad.returncode == 1, bad.stdout
    pages = {p["file"]: p for p in json.loads(bad.stdout)["pages"]}
    assert pages["04-term.html"]["problems"][0] == "expected hard, got failure:unexpected_page"
    assert sum(bool(p["problems"]) for p in pages.values()) == 1


def test_record_refuses_an_existing_folder_and_bad_fixture_folders_are_one_line(tmp_path):
    out = tmp_path / "exists"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    res = run_cli("platforms", "record", "weibo", "--out", str(out), "--base-url", "http://127.0.0.1:9")
    assert res.returncode == 2 and "already exists" in res.stderr and "Traceback" not in res.stderr
    assert (out / "keep.txt").read_text() == "x"
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "expected.yaml").write_text("- {file: missing.html, verdict: hard}\n")
    res = run_cli("platforms", "check", "weibo", "--fixtures", str(bad))
    assert res.returncode == 2 and "missing.html" in res.stderr and "Traceback" not in res.stderr
    (bad / "expected.yaml").write_text("- {file: x.html, verdit: hard}\n")
    (bad / "x.html").write_text("<html></html>")
    with pytest.raises(InputError, match="verdit"):
        load_cases(bad)


def test_the_project_fixtures_replay_through_the_same_check():
    registry = PlatformRegistry.default(include_cwd=False)
    for name in ("baidu", "bing", "sogou", "weibo", "jingdong", "baidu_zhidao"):
        results = check_folder(registry.get(name), FIXTURES / "platforms" / name)
        assert results and all(r.ok for r in results), [(r.case.file, r.problems) for r in results if not r.ok]
