"""Sessions: per-platform cookies, proxy settings, and the secrets they carry.

Cookies load from a Netscape ``cookies.txt`` (what browser extensions and curl write)
or from JSON (a list of ``{name, value, domain, path}`` objects as browser exports
write them, or a plain ``{name: value}`` mapping). Every cookie value, every
``{env:NAME}`` value a spec uses and the proxy's credentials are *secrets*: the
:class:`Secrets` scrubber removes them from any URL or text the harness keeps. Nothing
here is ever written to the store; error messages name the file and line, never a value.
"""

from __future__ import annotations

import asyncio
import html
import http.cookiejar
import io
import json
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from ..errors import InputError
from ..safeio import MAX_SMALL_INPUT, check_depth, read_input_bytes, too_deep

REDACTED = "REDACTED"
PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")


@dataclass(frozen=True)
class Cookie:
    name: str
    value: str
    domain: str = ""  # empty: every host of the platform
    path: str = "/"
    expires: float | None = None

    def applies_to(self, host: str, path: str = "/") -> bool:
        dom = self.domain.lstrip(".").lower()
        host = host.lower()
        if dom and not (host == dom or host.endswith("." + dom)):
            return False
        if self.expires and self.expires < time.time():
            return False
        return path.startswith(self.path or "/")


def _cookie_error(path: Path, line: int | None, message: str) -> InputError:
    return InputError(message, path, line)


def load_cookies(path: str | Path) -> list[Cookie]:
    """Read a cookies file: Netscape cookies.txt, JSON, or one ``Cookie:`` header line (``a=1; b=2``)."""
    path = Path(path)
    try:
        text = read_input_bytes(path, InputError, MAX_SMALL_INPUT).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InputError("cannot read the cookies file: not valid UTF-8", path) from None
    stripped = text.lstrip()
    if stripped.startswith(("[", "{")):
        return _json_cookies(path, text)
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if len(lines) == 1 and "\t" not in lines[0] and "=" in lines[0]:
        return _header_cookies(lines[0])
    return _netscape_cookies(path, text)


def _header_cookies(line: str) -> list[Cookie]:
    header = line.strip().removeprefix("Cookie:").strip()
    out = []
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name:
            out.append(Cookie(name, value))
    return out


def _json_cookies(path: Path, text: str) -> list[Cookie]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _cookie_error(path, exc.lineno, "invalid JSON in the cookies file") from None
    except RecursionError:
        raise too_deep(path) from None
    check_depth(data, path)
    out: list[Cookie] = []
    if isinstance(data, dict):
        for name, value in data.items():
            if not isinstance(value, str):
                raise _cookie_error(path, None, f"cookie {name!r}: the value must be a string")
            out.append(Cookie(str(name), value))
        return out
    if not isinstance(data, list):
        raise _cookie_error(path, None, "a JSON cookies file is a list of cookies or a {name: value} mapping")
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not isinstance(item.get("value"), str):
            raise _cookie_error(path, None, f"cookie #{i + 1}: needs string 'name' and 'value'")
        expires = item.get("expirationDate", item.get("expires"))
        out.append(Cookie(item["name"], item["value"], str(item.get("domain") or ""), str(item.get("path") or "/"),
                          float(expires) if isinstance(expires, (int, float)) and expires > 0 else None))
    return out


class _NetscapeJar(http.cookiejar.MozillaCookieJar):
    """The standard library's reader of Netscape cookies.txt, fed from text we already read
    (a file without the magic first line some exporters omit is read all the same)."""

    def load_text(self, text: str, filename: str) -> None:
        if not re.match(r"#( Netscape)? HTTP Cookie File", text):
            text = "# Netscape HTTP Cookie File\n" + text
        self._really_load(io.StringIO(text), filename, ignore_discard=True, ignore_expires=True)


def _netscape_cookies(path: Path, text: str) -> list[Cookie]:
    """Netscape cookies.txt through :mod:`http.cookiejar` (``#HttpOnly_`` lines included); a bad
    line is reported with its number before the jar reads the file."""
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip("\r\n")
        if line.startswith("#HttpOnly_"):
            line = line[len("#HttpOnly_"):]
        elif not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 7:
            raise _cookie_error(path, lineno, f"a Netscape cookie line has 7 tab-separated fields, not {len(fields)}")
        try:
            float(fields[4])
        except ValueError:
            raise _cookie_error(path, lineno, "the expiry field is not a number") from None
    jar = _NetscapeJar()
    try:
        jar.load_text(text, str(path))
    except http.cookiejar.LoadError as exc:
        raise _cookie_error(path, None, f"not a Netscape cookies file ({exc.__class__.__name__})") from None
    return [Cookie(c.name, c.value or "", c.domain, c.path or "/", float(c.expires) if c.expires else None)
            for c in jar]


def cookie_header(cookies: Iterable[Cookie], url: str) -> str | None:
    parts = urlsplit(url)
    chosen = [c for c in cookies if c.applies_to(parts.hostname or "", parts.path or "/")]
    return "; ".join(f"{c.name}={c.value}" for c in chosen) or None


def check_proxy(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in PROXY_SCHEMES or not parts.hostname:
        raise InputError(f"--proxy takes {'|'.join(PROXY_SCHEMES)}://[user:password@]host:port, "
                         f"got a URL with scheme {parts.scheme or 'none'!r}")
    return url


def redact_userinfo(url: str) -> str:
    """A URL with any ``user:password@`` removed (safe to print or store)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass
class Secrets:
    """Values that must never be kept: replaced by ``REDACTED`` wherever they appear."""

    values: set[str] = field(default_factory=set)

    def add(self, *values: str | None) -> None:
        """Add secrets, with the forms a page may echo them in (URL-encoded, HTML- and JSON-escaped)."""
        for v in values:
            if v and len(v) >= 3:  # shorter values would redact ordinary text
                self.values.add(v)
                self.values.add(quote(v, safe=""))
                self.values.add(quote(v, safe="").replace("%20", "+"))
                self.values.add(unquote(v))
                self.values.add(html.escape(v))
                self.values.add(json.dumps(v, ensure_ascii=False)[1:-1])
                self.values.add(json.dumps(v)[1:-1])

    def scrub(self, text: str) -> str:
        for v in sorted(self.values, key=len, reverse=True):
            if v in text:
                text = text.replace(v, REDACTED)
        return text

    def scrub_bytes(self, body: bytes) -> bytes:
        """``scrub`` for a body as received (each value as UTF-8 bytes)."""
        return self.redact_bytes(body)[0]

    def redact_bytes(self, body: bytes, extra: Iterable[str] = ()) -> tuple[bytes, int]:
        """The body with every secret (and every value of ``extra``) replaced by ``REDACTED``, and how
        many replacements were made. Values are matched as UTF-8 and, for pages in a legacy charset
        such as GBK, in that form too."""
        values = self.values | {v for v in extra if v and len(v) >= 3}
        n = 0
        for v in sorted(values, key=len, reverse=True):
            for raw in {v.encode("utf-8", "ignore"), v.encode("gb18030", "ignore")}:
                if raw and raw in body:
                    n += body.count(raw)
                    body = body.replace(raw, REDACTED.encode())
        return body, n

    def copy(self) -> "Secrets":
        return Secrets(set(self.values))

    def __bool__(self) -> bool:
        return bool(self.values)


@dataclass
class PlatformSession:
    """What one platform's requests carry besides the spec: cookies and ``{env:NAME}`` values,
    and what a priming adapter learned (``adapter_state``, cookies it set: see
    :mod:`harness.platforms.adapters`)."""

    cookies: list[Cookie] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    secrets: Secrets = field(default_factory=Secrets)
    via_proxy: bool = False
    adapter_state: dict[str, Any] = field(default_factory=dict)
    primed_at: float | None = None  # time.monotonic() of the last successful priming
    reprime: bool = False  # prime again before the next request (the platform rejected the session)
    forced_reprime_at: float | None = None
    _prime_lock: asyncio.Lock | None = field(default=None, repr=False)

    @property
    def prime_lock(self) -> asyncio.Lock:
        if self._prime_lock is None:
            self._prime_lock = asyncio.Lock()
        return self._prime_lock

    def set_cookie(self, name: str, value: str, domain: str = "", *, secret: bool = True) -> None:
        """A cookie this session sends from now on (replacing one of the same name); its value is a
        secret unless ``secret=False`` (a timestamp, say, that identifies nobody)."""
        self.cookies = [c for c in self.cookies if c.name != name] + [Cookie(name, value, domain)]
        if secret:
            self.secrets.add(value)

    @classmethod
    def build(cls, *, cookies_file: str | Path | None = None, env_names: Iterable[str] = (),
              proxy: str | None = None, platform: str = "", identifiers: Iterable[str] = ()) -> "PlatformSession":
        """``identifiers``: the account's own identifiers (uid, nickname, phone) that a logged-in page
        embeds: secrets like the rest (``account_identifiers`` in harness.toml)."""
        session = cls()
        session.secrets.add(*identifiers)
        if cookies_file is not None:
            session.cookies = load_cookies(cookies_file)
            for c in session.cookies:
                session.secrets.add(c.value)
        for name in env_names:
            value = os.environ.get(name)
            if value is None:
                raise InputError(f"platform {platform!r} needs the environment variable {name} "
                                 f"(its request template uses {{env:{name}}})")
            session.env[name] = value
            session.secrets.add(value)
        if proxy:
            session.via_proxy = True
            parts = urlsplit(proxy)
            session.secrets.add(parts.username and unquote(parts.username), parts.password and unquote(parts.password))
        return session

    def cookie_header(self, url: str) -> str | None:
        return cookie_header(self.cookies, url)


_TOKENISH = re.compile(r"[A-Za-z0-9_\-]{24,}")


def looks_like_token(value: str) -> bool:
    """Long opaque strings (signatures, session ids) in URLs are treated as secrets."""
    return bool(_TOKENISH.fullmatch(value)) and any(c.isdigit() for c in value) and any(c.isalpha() for c in value)
