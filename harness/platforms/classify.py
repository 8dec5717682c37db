"""Classify one HTTP answer with a platform spec. Pure functions: no I/O.

The order matters and is the heart of measurement validity: anything that looks like
an outage, a CAPTCHA or a rate limit is a failure *before* we look for censorship
notices, and a page that shows none of the spec's expected markers is
``unexpected_page``, never ``not_censored``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..failures import FailureCode
from ..models import Verdict
from .adapters import get_adapter
from .classification import Classification, failure
from .spec import FAILURE_KINDS, SIGNAL_KINDS, Extractor, Matcher, PlatformSpec

_CHARSET_RE = re.compile(r"charset=([\w.:-]+)", re.I)
_META_CHARSET_RE = re.compile(rb"<meta[^>]+charset=[\"']?([\w.:-]+)", re.I)
_NUMBER_RE = re.compile(r"\d[\d,，]*")


class Page:
    """A decoded answer with lazily built views (HTML tree, JSON document)."""

    def __init__(self, text: str, fmt: str):
        self.text = text
        self.fmt = fmt
        self._soup: Any = None
        self._tree: Any = None
        self._json: Any = None
        self._json_loaded = False
        self._css: dict[str, list[Any]] = {}
        self._docs: dict[str, list[Any]] = {}

    @property
    def soup(self) -> Any:
        if self._soup is None:
            from bs4 import BeautifulSoup

            self._soup = BeautifulSoup(self.text, "html.parser")
        return self._soup

    @property
    def tree(self) -> Any:
        """A Lexbor (selectolax) tree: ~50x faster than BeautifulSoup for parse + select."""
        if self._tree is None:
            from selectolax.lexbor import LexborHTMLParser

            self._tree = LexborHTMLParser(self.text)
        return self._tree

    def css(self, selector: str) -> list[Any]:
        """Lexbor nodes matching ``selector``, once per page (a spec often reuses one selector)."""
        nodes = self._css.get(selector)
        if nodes is None:
            nodes = self._css[selector] = self.tree.css(selector)
        return nodes

    def json_docs(self, selector: str) -> list[Any]:
        """The JSON documents in the text of every element matching ``selector`` (those that parse)."""
        docs = self._docs.get(selector)
        if docs is None:
            try:
                texts = [n.text(deep=True) for n in self.css(selector)]
            except Exception:  # as in css_texts: bs4 decides
                texts = [el.get_text() for el in self.soup.select(selector)]
            docs = []
            for t in texts:
                try:
                    docs.append(json.loads(t))
                except ValueError:
                    continue
            self._docs[selector] = docs
        return docs

    @property
    def json(self) -> Any:
        if not self._json_loaded:
            self._json = json.loads(self.text)
            self._json_loaded = True
        return self._json


@lru_cache(maxsize=1024)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.S)


def _walk_json(doc: Any, path: str) -> list[Any]:
    nodes = [doc]
    for part in path.split("."):
        nxt: list[Any] = []
        for node in nodes:
            if isinstance(node, str) and node[:1] in ("{", "["):  # a string that holds JSON is read into
                try:
                    node = json.loads(node)
                except ValueError:
                    continue
            if part == "*":
                if isinstance(node, list):
                    nxt.extend(node)
                elif isinstance(node, dict):
                    nxt.extend(node.values())
            elif isinstance(node, dict) and part in node:
                nxt.append(node[part])
            elif isinstance(node, list) and part.lstrip("-").isdigit():
                idx = int(part)
                if -len(node) <= idx < len(node):
                    nxt.append(node[idx])
        nodes = nxt
    return nodes


_SKIPPED_TEXT_PARENTS = frozenset({"script", "style", "template"})
_SKIPPED_TEXT_SELECTOR = ",".join(sorted(_SKIPPED_TEXT_PARENTS))


def _lexbor_strings(node: Any) -> list[str]:
    """The text nodes under ``node``, as BeautifulSoup's get_text sees them (no script/style/comments)."""
    out = []
    for child in node.traverse(include_text=True):
        if child.tag == "-text" and (child.parent is None or child.parent.tag not in _SKIPPED_TEXT_PARENTS):
            out.append(child.text_content or "")
    return out


def css_texts(page: Page, css: str, separator: str = "", strip: bool = False) -> list[str]:
    """Text of every element matching ``css`` (BeautifulSoup ``get_text`` semantics)."""
    try:
        nodes = page.css(css)
    except Exception:  # no selectolax, or a selector Lexbor cannot take (SelectolaxError): bs4 decides
        return [el.get_text(separator, strip=strip) for el in page.soup.select(css)]
    texts = []
    for node in nodes:
        if node.css_first(_SKIPPED_TEXT_SELECTOR) is None:  # common case: Lexbor joins the text in C
            if not strip:
                texts.append(node.text(deep=True, separator=separator))
                continue
            strings = node.text(deep=True, separator="\x00", strip=True).split("\x00")
        else:
            strings = _lexbor_strings(node)
        if strip:
            strings = [t.strip() for t in strings if t.strip()]
        texts.append(separator.join(strings))
    return texts


def count_matches(page: Page, ex: Extractor) -> int:
    """How many items ``ex`` finds (for CSS: without extracting any text)."""
    if ex.css is not None and ex.attr is None:
        try:
            return len(page.css(ex.css))
        except Exception:  # as in css_texts
            return len(page.soup.select(ex.css))
    return len(extract(page, ex))


def css_attrs(page: Page, css: str, attr: str) -> list[str]:
    try:
        nodes = page.css(css)
    except Exception:  # as in css_texts
        return [str(el.get(attr)) for el in page.soup.select(css) if el.get(attr) is not None]
    return [str(v) for v in (n.attributes.get(attr) for n in nodes) if v is not None]


def _json_docs(page: Page, within: str | None) -> list[Any]:
    return page.json_docs(within) if within is not None else [page.json]


def _json_values(page: Page, path: str, within: str | None) -> list[Any]:
    """Values at ``path``; ``prefix.(a|b.c)``: for every node the prefix reaches, the first
    alternative that has a value there."""
    out: list[Any] = []
    prefix, paren, group = path.partition("(")
    for doc in _json_docs(page, within):
        if not paren:
            out.extend(_walk_json(doc, path))
            continue
        nodes = _walk_json(doc, prefix.rstrip(".")) if prefix.rstrip(".") else [doc]
        for node in nodes:
            for alt in group.rstrip(")").split("|"):
                found = [v for v in _walk_json(node, alt.strip()) if v not in (None, "", [], {})]
                if found:
                    out.extend(found)
                    break
    return out


def matches(page: Page, m: Matcher) -> bool:
    """Whether page matcher ``m`` matches ``page`` (its status scope is the caller's business)."""
    if m.location is not None:
        return False  # reads a redirect's target, never a page
    if m.text is None and m.regex is None and m.css is None and m.json_path is None:
        return True  # a status-only matcher: the caller checked the status
    if m.text is not None:
        return m.text in page.text
    if m.regex is not None:
        return _compiled(m.regex).search(page.text) is not None
    if m.css is not None:
        return any(m.contains is None or m.contains in text for text in css_texts(page, m.css))
    values = _json_values(page, m.json_path or "", m.within)
    if m.values is None:
        return any(v not in (None, "", [], {}) for v in values)
    return any(v in m.values for v in values)


def extract(page: Page, ex: Extractor) -> list[str]:
    if ex.regex is not None:
        out = []
        for mo in _compiled(ex.regex).finditer(page.text):
            out.append(mo.group(ex.group))
        return out
    if ex.css is not None:
        if ex.attr:
            return css_attrs(page, ex.css, ex.attr)
        return css_texts(page, ex.css, " ", strip=True)
    values = _json_values(page, ex.json_path or "", ex.within)
    if ex.exclude:
        values = [v for v in values if v not in ex.exclude]
    return [v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for v in values]


def domain_of(value: str) -> str:
    value = value.strip()
    if "//" in value:
        host = urlsplit(value if "://" in value else "http:" + value).hostname or ""
    else:
        host = value.split("/")[0].split(":")[0]
    return host.lower().strip(".")


def origin_of(url: str) -> tuple[str, str | None, int | None]:
    """Scheme, host and port of ``url``: a redirect is only followed on the spec's own origin."""
    parts = urlsplit(url)
    try:
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:  # a Location with a port that is not a number
        port = -1
    return parts.scheme, parts.hostname, port


def domain_in(domain: str, domains: list[str]) -> bool:
    return any(domain == d or domain.endswith("." + d) for d in domains)


def _parse_count(values: list[str]) -> int | None:
    for v in values:
        mo = _NUMBER_RE.search(v)
        if mo:
            return int(re.sub(r"[,，]", "", mo.group(0)))
    return None


class _Encoded(Protocol):
    page_encoding: str | None
    response_format: str


def charset_of(headers: dict[str, str], body: bytes, spec: _Encoded) -> str:
    """The answer's charset: the Content-Type header's, else a ``<meta charset>``'s, else the spec's (a platform or
    an item spec), else UTF-8."""
    ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    mo = _CHARSET_RE.search(ctype)
    if mo:
        return mo.group(1)
    mo2 = _META_CHARSET_RE.search(body[:2048])
    if mo2:
        return mo2.group(1).decode("ascii", "replace")
    return spec.page_encoding or "utf-8"


def decode_body(spec: _Encoded, headers: dict[str, str], body: bytes) -> Page | Classification:
    """The answer as a page in the spec's format (a platform or an item spec), or the failure ``decode_error``
    (signal ``charset:NAME``, or ``invalid_json`` for a JSON spec answered with something else)."""
    charset = charset_of(headers, body, spec)
    try:
        text = body.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return failure(FailureCode.decode_error, f"charset:{charset}")
    page = Page(text, spec.response_format)
    if spec.response_format == "json":
        try:
            page.json  # noqa: B018 - parse once to find broken JSON now
        except ValueError:
            return failure(FailureCode.decode_error, "invalid_json")
    return page


def decode_page(spec: PlatformSpec, headers: dict[str, str], body: bytes) -> Page | Classification:
    page = decode_body(spec, headers, body)
    if isinstance(page, Classification) and page.signals == ["invalid_json"]:
        raw = Page(body.decode(charset_of(headers, body, spec)), spec.response_format)
        return _raw_failure(spec, raw) or page
    return page


def _raw_failure(spec: PlatformSpec, page: Page) -> Classification | None:
    """A JSON platform that answered something else (an HTML CAPTCHA page, the literal ``blocked``,
    an empty body): its ``text``/``regex`` failure signals still name it."""
    for kind, code in FAILURE_KINDS.items():
        for m in getattr(spec.signals, kind):
            if (m.text is not None or m.regex is not None) and m.status is None and matches(page, m):
                return failure(FailureCode(code), m.label)
    return None


@dataclass
class SignalReport:
    """Every signal of a spec, evaluated on one page (for ``harness platforms check``)."""

    matched: dict[str, list[str]] = field(default_factory=dict)
    missing: dict[str, list[str]] = field(default_factory=dict)
    result_items: int = 0
    result_count: int | None = None
    result_domains: list[str] = field(default_factory=list)
    error: str | None = None


def evaluate_signals(spec: PlatformSpec, page: Page, status: int = 200) -> SignalReport:
    """Every page signal of ``spec`` on ``page`` (an answer with HTTP ``status``), matched or not."""
    report = SignalReport()
    sig = spec.signals
    try:
        for kind in SIGNAL_KINDS:
            for m in getattr(sig, kind):
                if m.on_redirect or not m.applies_to_status(status):
                    continue
                bucket = report.matched if matches(page, m) else report.missing
                bucket.setdefault(kind, []).append(m.label)
        report.result_items = len(extract(page, sig.result_item)) if sig.result_item else 0
        report.result_count = _parse_count(extract(page, sig.result_count)) if sig.result_count else None
        if sig.result_domain:
            report.result_domains = [d for d in (domain_of(v) for v in extract(page, sig.result_domain)) if d]
    except (ValueError, TypeError) as exc:
        report.error = f"parse:{type(exc).__name__}"
    return report


def _page_matches(page: Page, m: Matcher, status: int) -> bool:
    return not m.on_redirect and m.applies_to_status(status) and matches(page, m)


def classify_page(spec: PlatformSpec, page: Page, status: int = 200) -> Classification:
    """Classify a decoded page that came with HTTP 2xx (``status``)."""
    sig = spec.signals
    try:
        for kind, code in FAILURE_KINDS.items():
            for m in getattr(sig, kind):
                if _page_matches(page, m, status):
                    return failure(FailureCode(code), m.label)
        hard = [m.label for m in sig.hard if _page_matches(page, m, status)]
        soft = [m.label for m in sig.soft if _page_matches(page, m, status)]
        n_items = count_matches(page, sig.result_item) if sig.result_item else 0
        domains = [d for d in (domain_of(v) for v in extract(page, sig.result_domain)) if d] if sig.result_domain else []
        count = _parse_count(extract(page, sig.result_count)) if sig.result_count else None
        no_results = [m.label for m in sig.no_results if _page_matches(page, m, status)]
        page_ok = [m.label for m in sig.page_ok if _page_matches(page, m, status)]
        shell = [m.label for m in sig.shell if _page_matches(page, m, status)] if not (
            hard or soft or n_items or no_results or page_ok) else []
    except (ValueError, TypeError, AttributeError) as exc:  # e.g. a JSON body that is a list where a mapping was expected
        return failure(FailureCode.unexpected_page, f"parse:{type(exc).__name__}")
    if hard:
        return Classification(Verdict.hard, None, hard, count, n_items, domains)
    if soft:
        return Classification(Verdict.soft if n_items else Verdict.hard, None, soft, count, n_items, domains)
    if n_items > 0:
        signals = ["results"]
        if domains and spec.authorized_domains and all(domain_in(d, spec.authorized_domains) for d in domains):
            signals.append("only_authorized_sources")
        urls = [u.strip() for u in extract(page, sig.result_url) if u.strip()][:100] if sig.result_url else []
        return Classification(Verdict.not_censored, None, signals, count, n_items, domains, urls)
    if no_results or page_ok:
        return Classification(Verdict.no_results, None, no_results or page_ok, count, 0, domains)
    if shell:
        return failure(FailureCode.empty_shell, *shell)
    return failure(FailureCode.unexpected_page)


def _kind_outcome(kind: str, labels: list[str]) -> Classification:
    """What a signal of ``kind`` means on an answer that is not a results page (a redirect,
    an error status): failures as usual, a notice is ``hard`` (no results came with it)."""
    if kind in FAILURE_KINDS:
        return failure(FailureCode(FAILURE_KINDS[kind]), *labels)
    if kind == "shell":
        return failure(FailureCode.empty_shell, *labels)
    if kind in ("hard", "soft"):
        return Classification(Verdict.hard, None, labels, None, 0)
    return Classification(Verdict.no_results, None, labels, None, 0)


def classify_redirect(spec: PlatformSpec, status: int, target: str) -> Classification | None:
    """What a redirect to ``target`` (absolute URL) means by the spec's ``location`` signals,
    or None when no signal explains it (the caller follows it on the spec's origin, and
    calls it ``redirect_offsite`` elsewhere).

    The recorded signals are the matcher's name and ``location:HOST``.
    """
    host = urlsplit(target).hostname or ""
    for kind in SIGNAL_KINDS:
        for m in getattr(spec.signals, kind):
            if m.location is None or (m.status is not None and status not in m.status):
                continue
            if _compiled(m.location).search(target):
                return _kind_outcome(kind, [m.label, f"location:{host}"])
    return None


def first_status_signal(scoped: Iterable[tuple[str, Matcher]], status: int,
                        decode: Callable[[], Page | Classification],
                        outcome: Callable[[str, list[str]], Classification]) -> Classification | None:
    """The outcome of the first status-scoped matcher (``status: [412]``) that matches a non-2xx answer: a matcher
    with only ``status`` on the code alone, a body matcher on the page ``decode`` gives (decoded once, when first
    needed; an undecodable or unreadable body matches no body matcher). ``outcome(kind, signals)`` says what a
    matcher of that kind means (platform and item specs differ). None when no matcher matches."""
    page: Page | Classification | None = None
    for kind, m in scoped:
        if m.text is None and m.regex is None and m.css is None and m.json_path is None:
            return outcome(kind, [m.label, f"status:{status}"])
        if page is None:
            page = decode()
        if isinstance(page, Classification):
            continue  # an undecodable body cannot match a body matcher
        try:
            hit = matches(page, m)
        except (ValueError, TypeError, AttributeError):
            hit = False
        if hit:
            return outcome(kind, [m.label, f"status:{status}"])
    return None


def _classify_status(spec: PlatformSpec, status: int, headers: dict[str, str], body: bytes) -> Classification | None:
    """A non-2xx answer read through the spec's status-scoped matchers (``status: [412]``), or None."""
    scoped = [(kind, m) for kind in SIGNAL_KINDS for m in getattr(spec.signals, kind)
              if not m.on_redirect and m.status is not None and status in m.status]
    return first_status_signal(scoped, status, lambda: decode_page(spec, headers, body), _kind_outcome)


def status_failure(status: int, readable: Collection[int] = ()) -> Classification | None:
    """The failure an HTTP status is by itself (429, 407, 5xx, a redirect left unfollowed, 4xx), or None for 2xx
    and for the 4xx statuses in ``readable`` (an item spec's ``read_statuses``: the body decides)."""
    if status == 429:
        return failure(FailureCode.http_429, "status:429")
    if status == 407:
        return failure(FailureCode.proxy_error, "status:407")
    if status >= 500:
        return failure(FailureCode.http_5xx, f"status:{status}")
    if 300 <= status < 400:
        return failure(FailureCode.too_many_redirects, f"status:{status}")
    if status >= 400 and status not in readable:
        return failure(FailureCode.http_4xx, f"status:{status}")
    return None


def classify_http(
    spec: PlatformSpec, status: int, headers: dict[str, str], body: bytes
) -> Classification:
    """Classify a complete HTTP answer (status, headers, body bytes already size-checked).

    A spec with an ``adapter`` whose object has ``classify`` lets the adapter decide first;
    it may return ``None`` to fall back to the declarative signals.
    """
    if spec.adapter:
        adapter = get_adapter(spec.adapter)
        if hasattr(adapter, "classify"):
            try:
                decided = adapter.classify(spec, status, headers, body)
            except Exception as exc:  # an adapter is third-party code: its bug is a failure, not a verdict
                return failure(FailureCode.adapter_error, type(exc).__name__)
            if decided is not None:
                if decided.failure is not None and decided.failure not in FailureCode.__members__:
                    return failure(FailureCode.adapter_error, f"unknown_failure_code:{decided.failure}")
                return decided
    if not 200 <= status < 300:
        scoped = _classify_status(spec, status, headers, body)
        if scoped is not None:
            return scoped
    failed = status_failure(status)
    if failed is not None:
        return failed
    page = decode_page(spec, headers, body)
    if isinstance(page, Classification):
        return page
    return classify_page(spec, page, status)


# --------------------------------------------------------------------------- the method


SILENT_EMPTY = "silent_empty_with_truism"
SOFT_EMPTY = "soft_restricted_truism_empty"


def apply_truism_method(spec: PlatformSpec, c: Classification, *, sent_with_truism: bool,
                        control_ok: bool | None) -> Classification:
    """Hard test on a platform that censors silently: term + truism with no results while
    the truism alone works is ``hard``. Without a working control it stays ``no_results``."""
    if sent_with_truism and c.verdict is Verdict.no_results and control_ok:
        return replace(c, verdict=Verdict.hard, signals=[*c.signals, SILENT_EMPTY])
    return c


def apply_soft_test(c: Classification, soft_probe: Classification | None) -> Classification:
    """Soft test: results for the term, but none once restricted to a non-authorized
    domain whose restricted truism has results: ``soft``."""
    if c.verdict is not Verdict.not_censored or soft_probe is None:
        return c
    if soft_probe.verdict in (Verdict.no_results, Verdict.hard):
        return replace(c, verdict=Verdict.soft, signals=[*c.signals, SOFT_EMPTY])
    if soft_probe.verdict is Verdict.failure:
        return replace(c, verdict=Verdict.failure, failure=soft_probe.failure,
                       signals=[*c.signals, f"soft_probe:{soft_probe.failure}"])
    return c
