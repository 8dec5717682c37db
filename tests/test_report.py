"""The HTML and Markdown reports: content, self-containment, and hostile content in real headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.analysis.report import build_report, h, safe_link
from harness.store.sqlite import Store

from .comparator_helpers import cli, make_world, outage_and_purge, run, sandboxes, switch_list
from .conftest import run_cli, skip_without

HOSTILE_TERM = '<script>document.title="PWNED"</script>'
HOSTILE_BODY = (
    '<html><body><div class="nums">为您找到相关结果约0个</div>'
    '<div class="hint_boldline">根据相关法律法规和政策，部分搜索结果未予显示。</div>'
    '<script>document.title="PWNED-BODY"</script><a href="javascript:alert(1)" onmouseover="alert(2)">x</a>'
    '<img src=x onerror="document.title=\'PWNED-IMG\'"></body></html>'
)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-quic"]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def hostile_store(tmp_path_factory) -> Path:
    """Two real runs; the list and the second run's pages carry script, attribute and javascript: injections."""
    root = tmp_path_factory.mktemp("rep")
    ps = make_world(root, two_platforms=True, hostile=True)
    sb1, sb2 = sandboxes(2)
    db = root / "store.db"

    def evil(handler, query: str) -> bool:
        if "<script>" in query or "onerror" in query:
            handler.send_body(200, HOSTILE_BODY.encode(), "text/html; charset=utf-8")
            return True
        return outage_and_purge(handler, query)

    try:
        urls = {"sandbox": sb1.url, "sandbox2": sb2.url}
        run(ps, db, urls)
        for sb in (sb1, sb2):
            sb.set_epoch("after")
            sb.responder = evil
        switch_list(root, include_new=True, hostile=True)
        run(ps, db, urls)
    finally:
        sb1.stop()
        sb2.stop()
    return db


def test_report_content(hostile_store, tmp_path):
    with Store(hostile_store, readonly=True) as st:
        page, md = build_report(st)
    assert page.startswith("<!DOCTYPE html>")
    for section in ('id="summary"', 'id="chart-censored"', 'id="heatmap"', 'id="changes"', 'id="evidence"'):
        assert section in page
    assert page.count('<polyline class="series"') == 2  # one line per platform
    assert "newly_censored" in page and "became_unknown" in page and "results_dropped" in page
    assert "legal_notice" in page  # the evidence's signals
    # self-contained: nothing loaded from elsewhere, no script at all
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page.split("<body>")[1].split('id="evidence"')[0])
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert "&lt;script&gt;document.title=&quot;PWNED&quot;&lt;/script&gt;" in page
    assert "## Changes since the previous run" in md and "<script>" not in md
    assert str(hostile_store) not in page and str(hostile_store.parent) not in page + md  # shared: no local path
    assert "| newly_censored | sandbox | 甲一 |" in md


def test_links_and_escaping_helpers():
    assert safe_link("javascript:alert(1)") == "<code>javascript:alert(1)</code>"
    assert safe_link(" JAVASCRIPT:alert(1)").startswith("<code>")
    assert safe_link("data:text/html,<b>") == "<code>data:text/html,&lt;b&gt;</code>"
    link = safe_link('https://example.org/?q="><script>')
    assert link.startswith('<a href="https://example.org/?q=&quot;&gt;&lt;script&gt;"')
    assert h('" onmouseover="x') == "&quot; onmouseover=&quot;x"


def test_cli_writes_html_and_markdown(hostile_store, tmp_path):
    out = tmp_path / "r" / "report.html"
    res = cli("report", "--store", str(hostile_store), "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert out.with_suffix(".md").read_text(encoding="utf-8").startswith("# ")
    empty = run_cli("report", "--store", str(tmp_path / "none.db"), "-o", str(tmp_path / "x.html"))
    assert empty.returncode == 2 and "Traceback" not in empty.stderr
    # -o r.md would write the HTML, then the Markdown over it: refused, nothing written
    same = run_cli("report", "--store", str(hostile_store), "-o", str(tmp_path / "r.md"))
    assert same.returncode == 2 and "same file" in same.stderr and not (tmp_path / "r.md").exists()
    md = tmp_path / "r.md"
    assert cli("report", "--store", str(hostile_store), "-o", str(md), "--markdown", str(tmp_path / "notes.md")).returncode == 0
    assert md.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_report_renders_inert_in_headless_chromium(hostile_store, tmp_path):
    if find_chromium() is None:
        skip_without("chromium", "Chromium is not installed (apt-get install chromium)")
    with Store(hostile_store, readonly=True) as st:
        page, _ = build_report(st, title='Report <script>document.title="PWNED-TITLE"</script>')
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    cmd = [find_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", path.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    assert proc.returncode == 0 and "</html>" in dom, proc.stderr[-2000:]
    # what the browser built: no script element, no event handler attribute, no javascript: link
    assert "<script" not in dom.lower()
    assert not re.search(r"<[^>]+\son[a-z]+\s*=", dom, re.I)
    assert not re.search(r"""<a\b[^>]*href\s*=\s*["']?\s*javascript:""", dom, re.I)
    assert not re.search(r"<img\b", dom, re.I)
    # nothing executed: the title Chromium ends up with is ours, not one set by injected script
    title = re.search(r"<title>(.*?)</title>", dom, re.S).group(1)
    assert "PWNED" not in title.replace("&lt;script&gt;document.title=\"PWNED-TITLE\"&lt;/script&gt;", "")
    assert title.startswith("Report &lt;script&gt;")
    # the hostile text is there, as text
    assert "&lt;script&gt;document.title=\"PWNED\"&lt;/script&gt;" in dom
    assert "javascript:alert(1)" in dom  # shown inside the escaped body excerpt
    assert dom.count("<svg") >= 2 and "<polyline" in dom and 'class="cell"' in dom
    shot = tmp_path / "report.png"
    subprocess.run([find_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile2'}",
                    f"--screenshot={shot}", "--window-size=1200,2000", path.as_uri()],
                   capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000
