"""``harness platforms record``: save a platform's answers as a fixture folder, secrets scrubbed.

From a vantage point, a researcher records the truism, a benign control, a query with nothing
to find and any terms they give. Each answer is saved as the engine received it (a page, with
its status and kept headers beside it in ``NAME.response.yaml``, or a redirect as
``NAME.redirect.yaml``) and ``expected.yaml`` records the verdict the spec gave at recording
time, so ``harness platforms check NAME --fixtures DIR`` replays the folder offline later and
says what a changed spec (or a changed site, recorded again) concludes differently.

What is never written: cookie values, ``{env:...}`` tokens and proxy credentials
(:class:`harness.measure.sessions.Secrets`), token-like URL parameters
(:func:`harness.measure.request.redact_url`), ``Set-Cookie`` and other headers outside the kept
subset, and account identifiers a logged-in page carries in scripts (``uid``, ``nick``, ``pin``
... assignments: :func:`scrub_identifiers`). The folder appears whole or not at all: it is
written next to its final place and renamed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import yaml

from .. import __version__
from ..errors import InputError
from ..safeio import output_error
from ..platforms.spec import PlatformSpec
from .request import Fetched, fetch, redact_url
from .sessions import REDACTED, PlatformSession, Secrets, check_proxy
from .transport import Sender

DEFAULT_CONTROL = "天气"
DEFAULT_NO_RESULTS = "zqxjvkwbnmpl"
"""A query with nothing to find (no word of any language); override with ``--no-results``."""

_IDENTIFIER_KEYS = ("uid", "userid", "user_id", "usrid", "nick", "nickname", "onick", "username", "user_name", "uname",
                    "screen_name", "pin", "unick", "loginname", "login_name", "email", "mobile", "phone", "account",
                    "avatar", "profile_image_url")
_IDENTIFIER_RE = re.compile(
    r"""((?:\$CONFIG\[)?['"]?(?:%s)['"]?\]?\s*[:=]\s*['"])([^'"\\\r\n]{1,300})(['"])""" % "|".join(_IDENTIFIER_KEYS),
    re.I)


def scrub_identifiers(text: str) -> str:
    """Replace the values of account-identifying assignments in scripts and JSON (``uid = '123'``,
    ``"nick": "name"``, ``$CONFIG['uid']='…'``) by ``REDACTED``."""
    return _IDENTIFIER_RE.sub(lambda m: f"{m.group(1)}{REDACTED}{m.group(3)}", text)


@dataclass
class Recorded:
    role: str
    query: str
    file: str
    status: int | None
    verdict: str
    failure: str | None
    signals: list[str] = field(default_factory=list)
    sent_with_truism: bool = False


def _ext(fetched: Fetched, spec: PlatformSpec) -> str:
    ctype = fetched.headers.get("content-type", "")
    if "json" in ctype or (spec.response_format == "json" and "html" not in ctype):
        return ".json"
    return ".html"


def _charset(headers: dict[str, str]) -> str:
    mo = re.search(r"charset=([\w.:-]+)", headers.get("content-type", ""), re.I)
    return mo.group(1) if mo else "utf-8"


def _scrub_body(body: bytes, headers: dict[str, str], secrets: Secrets) -> bytes:
    body = secrets.scrub_bytes(body)
    charset = _charset(headers)
    try:
        text = body.decode(charset)
    except (LookupError, UnicodeDecodeError):
        return body  # cannot read it as text: only the exact secret values were removed
    return scrub_identifiers(secrets.scrub(text)).encode(charset, "replace")


async def _record(spec: PlatformSpec, out: Path, queries: list[tuple[str, str, bool]], session: PlatformSession,
                  sender: Sender, interval_s: float) -> list[Recorded]:
    recorded = []
    for i, (role, query, with_truism) in enumerate(queries, 1):
        if i > 1 and interval_s:
            await asyncio.sleep(interval_s)  # the spec's pace, as a run would keep it
        sent = query + spec.combination_separator + spec.truism if with_truism else query
        fetched = await fetch(sender, spec, sent, session=session)
        c = fetched.classification
        stem = f"{i:02d}-{role}"
        location = fetched.headers.get("location")
        if fetched.status is not None and 300 <= fetched.status < 400 and location:
            name = stem + ".redirect.yaml"
            target = str(httpx.URL(fetched.final_url or spec.base_url).join(location))
            (out / name).write_text(yaml.safe_dump({"status": fetched.status, "location": redact_url(
                target, session.secrets)}, allow_unicode=True), encoding="utf-8")
        elif fetched.body is not None:
            name = stem + _ext(fetched, spec)
            (out / name).write_bytes(_scrub_body(fetched.body, fetched.headers, session.secrets))
            meta = {"status": fetched.status, "headers": {k: v for k, v in fetched.headers.items()
                                                        if k in ("content-type", "server", "content-encoding")}}
            (out / (stem + ".response.yaml")).write_text(yaml.safe_dump(meta, allow_unicode=True), encoding="utf-8")
        else:  # nothing came back (a network failure): say so, there is no page to keep
            name = ""
        recorded.append(Recorded(role, sent, name, fetched.status, c.verdict.value, c.failure, list(c.signals),
                                 with_truism))
    return recorded


def record_platform(spec: PlatformSpec, out: Path, *, terms: list[str] = (), control: str = DEFAULT_CONTROL,  # type: ignore[assignment]
                    no_results_query: str = DEFAULT_NO_RESULTS, session: PlatformSession | None = None,
                    proxy: str | None = None, timeout_s: float = 20.0, vantage: str = "",
                    interval_s: float | None = None,
                    transport: httpx.AsyncBaseTransport | None = None) -> list[Recorded]:
    """Send the truism, a control, a no-results query and ``terms`` once each; write the folder ``out``.

    Probe terms go out as the engine would send them (term + truism on platforms that censor
    silently), ``interval_s`` apart (default: the spec's rate-limit interval). Raises :class:`InputError` when ``out`` already exists and is not empty.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError("the fixture folder already exists: record into a new folder", out)
    session = session or PlatformSession.build(env_names=spec.request.env_names(), proxy=proxy, platform=spec.name)
    queries = [("truism", spec.truism, False), ("control", control, False), ("no_results", no_results_query, False)]
    queries += [("term", t, spec.hard_needs_truism) for t in terms]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as exc:
        raise output_error(exc, out) from None
    try:
        async def go() -> list[Recorded]:
            async with Sender.open(timeout_s, proxy=check_proxy(proxy) if proxy and transport is None else None,
                                   transport=transport) as sender:
                pace = spec.rate_limit.interval_s if interval_s is None else interval_s
                return await _record(spec, tmp, queries, session, sender, pace)

        recorded = asyncio.run(go())
        cases = []
        for r in recorded:
            if not r.file:
                continue
            case: dict[str, object] = {"file": r.file, "role": r.role, "query": r.query, "verdict": r.verdict}
            if r.failure:
                case["failure"] = r.failure
            if r.signals:
                case["signals"] = r.signals
            if r.sent_with_truism:
                case["sent_with_truism"] = True
            cases.append(case)
        (tmp / "expected.yaml").write_text(
            "# Recorded by harness platforms record: the verdict the spec gave at recording time.\n"
            "# Edit a verdict when you know better; harness platforms check NAME --fixtures DIR replays it.\n"
            + yaml.safe_dump(cases, allow_unicode=True, sort_keys=False, width=1000), encoding="utf-8")
        when = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        lines = [f"# {spec.name}: answers recorded {when}", "",
                 f"Recorded with censorship-harness {__version__} by `harness platforms record {spec.name}` from "
                 f"vantage point {vantage or '(unlabelled)'} against {redact_url(spec.base_url)}. Cookie values, "
                 "tokens, proxy credentials and account identifiers in scripts were replaced by REDACTED.", "",
                 "| file | role | query | HTTP | verdict at recording |", "| --- | --- | --- | --- | --- |"]
        for r in recorded:
            outcome = r.verdict if r.failure is None else f"failure {r.failure}"
            lines.append(f"| {r.file or '(no answer)'} | {r.role} | {r.query} | {r.status or '-'} | {outcome} |")
        (tmp / "SOURCES.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            if out.exists():
                out.rmdir()
            os.replace(tmp, out)
        except OSError as exc:
            raise output_error(exc, out) from None
        return recorded
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

