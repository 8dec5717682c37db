"""The sandbox search server, and the items it serves.

Pages are shaped like a Chinese web search engine's: UTF-8 HTML with a result count
(``为您找到相关结果约N个``), result items carrying their source domain, the notice
``根据相关法律法规和政策，部分搜索结果未予显示。`` for hard-censored queries, results
only from authorized domains for soft-censored ones, and ``抱歉，没有找到`` for queries
with genuinely nothing to find. ``site:DOMAIN`` in a query restricts results to that
domain, which is what the soft-censorship test (restricted truism) relies on.

Items (``/item/ID``, watched as ``http://sandbox.invalid/item/ID``) are pages shaped like
WeChat's: an article with ``#js_content``, or a WeUI notice saying why it is gone. Each
item of the rules has a state per epoch (available, removed_censored, removed_by_author,
removed_other; the last one listed holds for later epochs). Every search result also links
to an item (``r-HEX-N``: the query in hexadecimal and the rank) that is available unless an
epoch's ``remove_results`` rule matches the query: search can feed a watch list.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import Field, field_validator

from ..errors import InputError, NotFoundError
from ..models import StrictModel
from ..yamlio import load_model

DEFAULT_RULES_PATH = Path(__file__).resolve().parent / "rules.yaml"

HARD_NOTICE = "根据相关法律法规和政策，部分搜索结果未予显示。"
NO_RESULTS_TEXT = "抱歉，没有找到与“{q}”相关的网页。"
ITEM_HOST = "http://sandbox.invalid"
ITEM_NOTICES = {
    "removed_censored": "此内容因违规无法查看",
    "removed_by_author": "该内容已被发布者删除",
    "removed_other": "该公众号已迁移",
}
ItemState = Literal["available", "removed_censored", "removed_by_author", "removed_other"]


class Epoch(StrictModel):
    name: str
    hard: list[list[str]] = Field(default_factory=list)
    soft: list[list[str]] = Field(default_factory=list)
    remove_results: list[list[str]] = Field(
        default_factory=list, description="the result items of queries matching these rules are removed (censored)")


class SandboxItem(StrictModel):
    title: str
    states: list[ItemState] = Field(min_length=1, description="the state in each epoch; the last one holds after")


class SandboxRules(StrictModel):
    truism: str = "的"
    authorized_domains: list[str] = Field(min_length=1)
    other_domains: list[str] = Field(min_length=1)
    empty: list[str] = Field(default_factory=list)
    epochs: list[Epoch] = Field(min_length=1)
    items: dict[str, SandboxItem] = Field(default_factory=dict, description="item id -> title and states per epoch")

    @field_validator("items")
    @classmethod
    def _item_ids(cls, v: dict[str, SandboxItem]) -> dict[str, SandboxItem]:
        for key in v:
            if not re.fullmatch(r"[A-Za-z0-9_]+", key) or key.startswith("r-"):
                raise ValueError(f"item id {key!r}: letters, digits and '_' only")
        return v


def load_rules(path: str | Path = DEFAULT_RULES_PATH) -> SandboxRules:
    rules, _ = load_model(path, SandboxRules, InputError)
    return rules


def _rule_hits(rules: list[list[str]], text: str) -> list[list[str]]:
    return [r for r in rules if r and all(c in text for c in r)]


def _h(*parts: str) -> int:
    return int.from_bytes(hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest(), "big")


class SearchOutcome(StrictModel):
    kind: str  # results | hard | empty
    domains: list[str] = Field(default_factory=list)
    count: int = 0
    rule: list[str] | None = None


def split_site(query: str) -> tuple[str, str | None]:
    site = None
    words = []
    for w in query.split():
        if w.startswith("site:") and len(w) > 5:
            site = w[5:].lower()
        else:
            words.append(w)
    return " ".join(words), site


class SandboxEngine:
    """The search logic, independent of HTTP (so tests can state the truth it serves)."""

    def __init__(self, rules: SandboxRules, epoch: int = 0):
        self.rules = rules
        self._epoch = epoch
        self._lock = threading.Lock()

    @property
    def epoch_index(self) -> int:
        return self._epoch

    @property
    def epoch(self) -> Epoch:
        return self.rules.epochs[self._epoch]

    def set_epoch(self, which: int | str) -> Epoch:
        with self._lock:
            if isinstance(which, str) and not which.lstrip("-").isdigit():
                names = [e.name for e in self.rules.epochs]
                if which not in names:
                    raise NotFoundError(f"unknown sandbox epoch {which!r} (known: {', '.join(names)})")
                self._epoch = names.index(which)
            else:
                idx = int(which)
                if not 0 <= idx < len(self.rules.epochs):
                    raise NotFoundError(f"sandbox epoch index {idx} out of range")
                self._epoch = idx
            return self.epoch

    def search(self, query: str) -> SearchOutcome:
        text, site = split_site(query)
        epoch = self.epoch
        hard = _rule_hits(epoch.hard, text)
        if hard:
            return SearchOutcome(kind="hard", rule=hard[0])
        if not text.strip() or any(e in text for e in self.rules.empty):
            return SearchOutcome(kind="empty")
        soft = _rule_hits(epoch.soft, text)
        pool = list(self.rules.authorized_domains)
        if not soft:
            pool += self.rules.other_domains
        if site is not None:
            pool = [d for d in pool if d == site or d.endswith("." + site) or site.endswith("." + d) or site == d]
        if not pool:
            return SearchOutcome(kind="empty", rule=soft[0] if soft else None)
        seed = _h(text, site or "")
        n = 3 + seed % 8
        domains = [pool[(seed >> (i * 3)) % len(pool)] for i in range(n)]
        count = 1000 + seed % 5_000_000
        if soft:
            count = max(3, count // 1000)
        return SearchOutcome(kind="results", domains=domains, count=count, rule=soft[0] if soft else None)

    def item_state(self, item_id: str) -> tuple[ItemState, str] | None:
        """(state, title) of an item in the current epoch; None for an unknown item."""
        if item_id.startswith("r-"):
            query = result_item_query(item_id)
            if query is None:
                return None
            removed = _rule_hits(self.epoch.remove_results, split_site(query)[0])
            return ("removed_censored" if removed else "available"), f"{query} 的搜索结果"
        item = self.rules.items.get(item_id)
        if item is None:
            return None
        return item.states[min(self._epoch, len(item.states) - 1)], item.title


def result_item_id(query: str, rank: int) -> str:
    """The id of the item behind a search result: the query (without site:) in hexadecimal, and the rank."""
    return f"r-{split_site(query)[0].encode('utf-8').hex()}-{rank}"


def result_item_query(item_id: str) -> str | None:
    parts = item_id.split("-")
    if len(parts) != 3 or parts[0] != "r" or not parts[2].isdigit():
        return None
    try:
        return bytes.fromhex(parts[1]).decode("utf-8")
    except ValueError:
        return None


def render_item(state: str, title: str) -> str:
    """An item page shaped like WeChat's: the article, or a WeUI notice (empty title, no #js_content)."""
    t = html.escape(title)
    if state == "available":
        return ('<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title></title></head><body>'
                f'<div id="js_article" class="rich_media"><h1 class="rich_media_title" id="activity-name">{t}</h1>'
                f'<div class="rich_media_content" id="js_content"><p>{t}：正文。</p></div></div>'
                f'<script>var msg_title = "{t}";</script></body></html>')
    return ('<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title></title></head><body>'
            '<div class="weui-msg"><div class="weui-msg__text-area">'
            f'<div class="weui-msg__title warn">{html.escape(ITEM_NOTICES[state])}</div></div></div></body></html>')


def render_page(query: str, outcome: SearchOutcome) -> str:
    q = html.escape(query)
    parts = [
        "<!DOCTYPE html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">",
        f"<title>{q}_沙盒搜索</title></head><body>",
        f'<form id="form" action="/s"><input name="wd" value="{q}"></form>',
        '<div id="content_left">',
    ]
    if outcome.kind == "hard":
        parts.append('<div class="nums">为您找到相关结果约0个</div>')
        parts.append(f'<div class="hint_boldline" data-id="40400">{HARD_NOTICE}</div>')
    elif outcome.kind == "empty":
        parts.append(f'<div class="nors"><p>{html.escape(NO_RESULTS_TEXT.format(q=query))}</p></div>')
    else:
        parts.append(f'<div class="nums">为您找到相关结果约{outcome.count:,}个</div>')
        for i, d in enumerate(outcome.domains):
            slug = _h(query, str(i)) % 10**8
            item = html.escape(f"{ITEM_HOST}/item/{result_item_id(query, i + 1)}")
            parts.append(
                f'<div class="result c-container" id="{i + 1}" data-domain="{d}" data-item="{item}">'
                f'<h3 class="t"><a href="https://www.{d}/a/{slug}.html">{q} - 第{i + 1}条</a></h3>'
                f'<div class="c-abstract">关于{q}的报道与讨论。</div>'
                f'<span class="c-showurl">www.{d}/a/{slug}.html</span></div>'
            )
    parts.append("</div></body></html>")
    return "".join(parts)


# The JavaScript search page (``/js/s?wd=``): the page is an empty shell; its script computes a
# token from the query and a nonce the page carries (FNV-1a, 32 bits, hex) and asks
# ``/js/api?wd=&token=`` for the results, which it renders into ``#content_left`` (same markup
# as :func:`render_page`). A plain HTTP client gets the shell: no results, no notice, no
# "nothing found" (every such text comes from the API). The browser transport's test page.
JS_SHELL = """<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>沙盒搜索 (JS)</title></head>
<body data-nonce="{nonce}"><form id="form" action="/js/s"><input name="wd" value="{q}"></form>
<div id="content_left"></div>
<script>
(function () {{
  function fnv1a(text) {{
    var bytes = new TextEncoder().encode(text), h = 0x811c9dc5;
    for (var i = 0; i < bytes.length; i++) {{ h ^= bytes[i]; h = Math.imul(h, 0x01000193) >>> 0; }}
    return ("0000000" + h.toString(16)).slice(-8);
  }}
  var q = new URLSearchParams(location.search).get("wd") || "";
  var token = fnv1a(document.body.dataset.nonce + "\u001f" + q);
  var box = document.getElementById("content_left");
  function el(tag, cls, text) {{ var e = document.createElement(tag); if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text; return e; }}
  fetch("/js/api?wd=" + encodeURIComponent(q) + "&token=" + token).then(function (r) {{ return r.json(); }})
    .then(function (d) {{
      if (d.code !== 0) {{ box.appendChild(el("div", "error", "error " + d.code)); }}
      else if (d.kind === "hard") {{ box.appendChild(el("div", "nums", d.count_text));
        var n = el("div", "hint_boldline", d.notice); n.dataset.id = "40400"; box.appendChild(n); }}
      else if (d.kind === "empty") {{ var e = el("div", "nors"); e.appendChild(el("p", null, d.notice));
        box.appendChild(e); }}
      else {{ box.appendChild(el("div", "nums", d.count_text));
        d.results.forEach(function (r, i) {{ var c = el("div", "result c-container"); c.id = String(i + 1);
          c.dataset.domain = r.domain; var h = el("h3", "t"); var a = el("a", null, r.title); a.href = r.url;
          h.appendChild(a); c.appendChild(h); c.appendChild(el("span", "c-showurl", r.url)); box.appendChild(c); }}); }}
      box.dataset.state = "done";
    }});
}})();
</script></body></html>"""


def js_token(nonce: str, query: str) -> str:
    """The token the JavaScript page computes: FNV-1a (32 bits) of nonce, U+001F, query (UTF-8), hex."""
    h = 0x811C9DC5
    for b in (nonce + "\x1f" + query).encode("utf-8"):
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return f"{h:08x}"


def js_answer(query: str, outcome: SearchOutcome) -> dict[str, Any]:
    """What ``/js/api`` answers: the outcome, with every visible text (the page script has none)."""
    if outcome.kind == "hard":
        return {"code": 0, "kind": "hard", "count_text": "为您找到相关结果约0个", "notice": HARD_NOTICE}
    if outcome.kind == "empty":
        return {"code": 0, "kind": "empty", "notice": NO_RESULTS_TEXT.format(q=query)}
    results = []
    for i, d in enumerate(outcome.domains):
        slug = _h(query, str(i)) % 10**8
        results.append({"domain": d, "url": f"https://www.{d}/a/{slug}.html", "title": f"{query} - 第{i + 1}条"})
    return {"code": 0, "kind": "results", "count_text": f"为您找到相关结果约{outcome.count:,}个", "results": results}


Responder = Callable[["SandboxHandler", str], bool]
"""A hook that may answer a search request itself (fault injection); returns True when it did."""


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence stderr logging
        pass

    def send_body(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def real_answer(self, query: str) -> tuple[bytes, str]:
        """The body and content type the sandbox answers a search (or an item) with (fault injection reuses it)."""
        path = urlsplit(self.path).path
        if path.startswith("/item/"):
            found = self.server.sandbox.engine.item_state(path[len("/item/"):])
            state, title = found if found is not None else ("removed_other", "")
            return render_item(state, title).encode("utf-8"), "text/html; charset=utf-8"
        outcome = self.server.sandbox.engine.search(query)
        if urlsplit(self.path).path == "/api/search":
            data = {"code": 0, "query": query, "data": {"kind": outcome.kind, "count": outcome.count,
                    "result": [{"domain": d} for d in outcome.domains]}}
            return json.dumps(data, ensure_ascii=False).encode(), "application/json; charset=utf-8"
        return render_page(query, outcome).encode("utf-8"), "text/html; charset=utf-8"

    def _json(self, status: int, data: Any) -> None:
        self.send_body(status, json.dumps(data, ensure_ascii=False).encode(), "application/json; charset=utf-8")

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        parts = urlsplit(self.path)
        qs = parse_qs(parts.query, keep_blank_values=True)
        sandbox = self.server.sandbox
        if parts.path in ("/s", "/api/search"):
            query = (qs.get("wd") or qs.get("q") or [""])[0]
            sandbox._record(query)
            if sandbox.responder is not None and sandbox.responder(self, query):
                return
            body, ctype = self.real_answer(query)
            self.send_body(200, body, ctype)
        elif parts.path.startswith("/item/"):
            item_id = parts.path[len("/item/"):]
            sandbox._record("item:" + item_id)
            if sandbox.engine.item_state(item_id) is None:
                self.send_body(404, b"no such item", "text/plain")
                return
            if sandbox.responder is not None and sandbox.responder(self, "item:" + item_id):
                return
            body, ctype = self.real_answer("item:" + item_id)
            self.send_body(200, body, ctype)
        elif parts.path == "/js/s":
            query = (qs.get("wd") or [""])[0]
            page = JS_SHELL.format(nonce=sandbox.nonce, q=html.escape(query))
            self.send_body(200, page.encode("utf-8"), "text/html; charset=utf-8")
        elif parts.path == "/js/api":
            query = (qs.get("wd") or [""])[0]
            if (qs.get("token") or [""])[0] != js_token(sandbox.nonce, query):
                self._json(403, {"code": 403, "message": "bad token"})
                return
            sandbox._record(query)
            self._json(200, js_answer(query, sandbox.engine.search(query)))
        elif parts.path == "/_sandbox/state":
            self._json(200, {"epoch": sandbox.engine.epoch.name, "index": sandbox.engine.epoch_index,
                             "epochs": [e.name for e in sandbox.engine.rules.epochs]})
        elif parts.path == "/healthz":
            self.send_body(200, b"ok", "text/plain")
        else:
            self.send_body(404, b"not found", "text/plain")

    def do_POST(self) -> None:  # noqa: N802
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if parts.path == "/_sandbox/epoch":
            qs = parse_qs(parts.query)
            which = (qs.get("name") or qs.get("index") or ["0"])[0]
            try:
                epoch = self.server.sandbox.engine.set_epoch(which)
            except NotFoundError as exc:
                self._json(404, {"error": str(exc)})
                return
            self._json(200, {"epoch": epoch.name})
        else:
            self.send_body(404, b"not found", "text/plain")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    sandbox: "Sandbox"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer (a capped body, a timeout) is normal, not a server error.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class Sandbox:
    """Start with ``with Sandbox() as sb: ... sb.url ...`` or ``start()``/``stop()``."""

    def __init__(self, rules: SandboxRules | None = None, host: str = "127.0.0.1", port: int = 0, epoch: int = 0):
        self.engine = SandboxEngine(rules or load_rules(), epoch)
        self.host = host
        self.port = port
        self.responder: Responder | None = None
        self.nonce = os.urandom(8).hex()  # what the JavaScript page's token is computed from
        self.queries: Counter[str] = Counter()
        self._qlock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def _record(self, query: str) -> None:
        with self._qlock:
            self.queries[query] += 1

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("sandbox not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> "Sandbox":
        self._server = _Server((self.host, self.port), SandboxHandler)
        self._server.sandbox = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        close = getattr(self.responder, "close", None)
        if callable(close):  # a fault injector: wake its stalled answers
            close()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def set_epoch(self, which: int | str) -> Epoch:
        return self.engine.set_epoch(which)

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
