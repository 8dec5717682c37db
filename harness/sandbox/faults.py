"""Fault injection for the sandbox: the ways a real platform misbehaves, on demand.

A :class:`FaultPlan` says how often each kind of fault is served (seeded, so a run can
be repeated); a :class:`FaultInjector` installs it on a :class:`~harness.sandbox.Sandbox`
through the ``responder`` hook. Whether the *n*-th request for a query is faulty, and
how, depends only on (seed, query, n), never on thread timing, so the same run against
the same plan meets the same faults.

Faults that need the raw socket (resets, truncation, trickles) write to
``handler.wfile`` / ``handler.connection`` directly and close the connection.
"""

from __future__ import annotations

import hashlib
import socket
import struct
import threading
import time
import zlib
from collections import Counter, deque
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, model_validator

from ..errors import InputError
from ..models import StrictModel
from ..yamlio import load_model

if TYPE_CHECKING:
    from .server import Sandbox, SandboxHandler

CAPTCHA_TEXT = "请完成安全验证"
LOOP_MARKER = "_fault_loop"


class FaultKind(str, Enum):
    stall = "stall"  # no answer until well past the client timeout, then close
    reset = "reset"  # TCP RST instead of an answer
    http_429 = "http_429"  # 429 without Retry-After
    http_429_retry_after = "http_429_retry_after"  # 429 with Retry-After: retry_after_s
    http_503 = "http_503"
    captcha = "captcha"  # a verification page served with HTTP 200
    truncated = "truncated"  # Content-Length larger than what is sent, then close
    malformed_html = "malformed_html"  # the real page with its tags broken
    gbk = "gbk"  # the real page, encoded and labelled as GBK
    invalid_utf8 = "invalid_utf8"  # labelled UTF-8, bytes that are not
    gzip_bomb = "gzip_bomb"  # Content-Encoding: gzip, small compressed, bomb_bytes decompressed
    huge_body = "huge_body"  # huge_body_bytes of filler (50 MB by default)
    redirect_loop = "redirect_loop"  # a same-host redirect that always redirects again
    trickle = "trickle"  # the real page, a few bytes at a time over slow_s seconds


class FaultPlan(StrictModel):
    """How often each fault is served. ``rate`` is spread evenly over ``kinds``; ``rates`` overrides per kind."""

    seed: int = 0
    rate: float = Field(default=0.0, ge=0, le=1, description="total share of faulty answers, split over `kinds`")
    kinds: list[FaultKind] = Field(default_factory=lambda: list(FaultKind))
    rates: dict[FaultKind, float] = Field(default_factory=dict, description="explicit probability of one kind")
    slow_s: float = Field(default=30.0, gt=0, description="how long stalls and trickles last")
    retry_after_s: int = Field(default=1, ge=0)
    bomb_bytes: int = Field(default=256 * 2**20, ge=1024, description="decompressed size of the gzip bomb")
    huge_body_bytes: int = Field(default=50 * 2**20, ge=1024)

    @model_validator(mode="after")
    def _rates_add_up(self) -> "FaultPlan":
        for kind, p in self.rates.items():
            if not 0 <= p <= 1:
                raise ValueError(f"rate of {kind.value} must be between 0 and 1, got {p}")
        if sum(self.per_kind().values()) > 1 + 1e-9:
            raise ValueError("fault rates add up to more than 1")
        return self

    def per_kind(self) -> dict[FaultKind, float]:
        share = self.rate / len(self.kinds) if self.kinds else 0.0
        out = {k: share for k in self.kinds}
        out.update(self.rates)
        return {k: p for k, p in out.items() if p > 0}

    def choose(self, query: str, n: int) -> FaultKind | None:
        """The fault for the ``n``-th request (0-based) of ``query``, or None for a normal answer."""
        digest = hashlib.blake2b(f"{self.seed}\x1f{n}\x1f{query}".encode(), digest_size=8).digest()
        x = int.from_bytes(digest, "big") / 2**64
        acc = 0.0
        for kind in FaultKind:  # a fixed order keeps choices stable when rates are edited
            acc += self.per_kind().get(kind, 0.0)
            if x < acc:
                return kind
        return None


_SCALARS = {"seed": int, "rate": float, "slow_s": float, "retry_after_s": int, "bomb_bytes": int,
            "huge_body_bytes": int}


def parse_fault_spec(spec: str) -> FaultPlan:
    """``rate=0.2,seed=7[,stall=0.05,...][,kinds=reset+stall]`` or the path of a YAML file."""
    text = spec.strip()
    if text.endswith((".yaml", ".yml")) or Path(text).is_file():
        plan, _ = load_model(text, FaultPlan, InputError)
        return plan
    data: dict[str, object] = {}
    rates: dict[str, float] = {}
    known_kinds = {k.value for k in FaultKind}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep:
            raise InputError(f"--faults: expected KEY=VALUE, got {item!r}")
        try:
            if key in _SCALARS:
                data[key] = _SCALARS[key](value)
            elif key == "kinds":
                data["kinds"] = [v for v in value.split("+") if v]
            elif key in known_kinds:
                rates[key] = float(value)
            else:
                raise InputError(
                    f"--faults: unknown key {key!r} (known: {', '.join([*_SCALARS, 'kinds', *sorted(known_kinds)])})"
                )
        except ValueError:
            raise InputError(f"--faults: {key} needs a number, got {value!r}") from None
    if rates:
        data["rates"] = rates
    try:
        return FaultPlan.model_validate(data)
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        first = exc.errors()[0] if hasattr(exc, "errors") else {"msg": str(exc), "loc": ()}
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise InputError(f"--faults: {where + ': ' if where else ''}{first['msg']}") from None


@lru_cache(maxsize=4)
def gzip_bomb(decompressed_bytes: int) -> bytes:
    """A gzip stream of zeros: about 1 KB per MB, built without holding the decompressed bytes."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(2**20)
    parts = []
    left = decompressed_bytes
    while left > 0:
        parts.append(comp.compress(block[: min(left, len(block))]))
        left -= len(block)
    parts.append(comp.flush())
    return b"".join(parts)


def _malformed(body: bytes) -> bytes:
    """Tags that never close and stray markup: the text survives, the structure does not."""
    return b"<html><body <div <<p>>" + body.replace(b">", b" ").replace(b"</", b"<") + b"<!-- <div class=\"result\""


def _not_utf8(body: bytes) -> bytes:
    middle = len(body) // 2
    return body[:middle] + b"\xff\xfe\xc3\x28\xa0\xa1" + body[middle:]


@dataclass
class FaultEvent:
    at: float
    query: str
    kind: FaultKind | None
    retry_after_s: int | None = None


class FaultInjector:
    """Serves a :class:`FaultPlan` from a sandbox: ``FaultInjector(plan).install(sandbox)``."""

    def __init__(self, plan: FaultPlan, keep_events: int = 200_000):
        self.plan = plan
        self.counts: Counter[FaultKind] = Counter()
        self.events: deque[FaultEvent] = deque(maxlen=keep_events)
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._closing = threading.Event()

    def install(self, sandbox: "Sandbox") -> "FaultInjector":
        sandbox.responder = self
        return self

    def close(self) -> None:
        """Wake stalled and trickling answers (call before stopping the sandbox)."""
        self._closing.set()

    def __call__(self, handler: "SandboxHandler", query: str) -> bool:
        if LOOP_MARKER in handler.path:
            self._redirect(handler)
            return True
        with self._lock:
            n = self._seen[query]
            self._seen[query] += 1
        kind = self.plan.choose(query, n)
        with self._lock:
            self.events.append(FaultEvent(time.monotonic(), query, kind,
                                          self.plan.retry_after_s if kind is FaultKind.http_429_retry_after else None))
            if kind is not None:
                self.counts[kind] += 1
        if kind is None:
            return False
        try:
            getattr(self, "_" + kind.value)(handler, query)
        except OSError:  # the client gave up first (a capped body, its own timeout)
            handler.close_connection = True
        return True

    # ------------------------------------------------------------------ the faults

    def _stall(self, h: "SandboxHandler", query: str) -> None:
        self._closing.wait(self.plan.slow_s)
        self._hang_up(h)

    def _reset(self, h: "SandboxHandler", query: str) -> None:
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._hang_up(h)

    def _http_429(self, h: "SandboxHandler", query: str) -> None:
        h.send_body(429, "访问过于频繁，请稍后再试".encode(), "text/plain; charset=utf-8")

    def _http_429_retry_after(self, h: "SandboxHandler", query: str) -> None:
        h.send_body(429, b"too many requests", "text/plain", {"Retry-After": str(self.plan.retry_after_s)})

    def _http_503(self, h: "SandboxHandler", query: str) -> None:
        h.send_body(503, b"service unavailable", "text/plain")

    def _captcha(self, h: "SandboxHandler", query: str) -> None:
        page = f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>安全验证</title></head><body>' \
               f'<div class="verify"><p>{CAPTCHA_TEXT}</p><div id="slider"></div></div></body></html>'
        h.send_body(200, page.encode(), "text/html; charset=utf-8")

    def _truncated(self, h: "SandboxHandler", query: str) -> None:
        body, ctype = h.real_answer(query)
        self._raw_head(h, 200, ctype, len(body) + 4096)
        h.wfile.write(body[: len(body) // 2])
        self._hang_up(h)

    def _malformed_html(self, h: "SandboxHandler", query: str) -> None:
        body, ctype = h.real_answer(query)
        h.send_body(200, _malformed(body), ctype)

    def _gbk(self, h: "SandboxHandler", query: str) -> None:
        body, ctype = h.real_answer(query)
        text = body.decode("utf-8").replace('charset="utf-8"', 'charset="gbk"')
        h.send_body(200, text.encode("gbk", "xmlcharrefreplace"), ctype.replace("utf-8", "gbk"))

    def _invalid_utf8(self, h: "SandboxHandler", query: str) -> None:
        body, ctype = h.real_answer(query)
        h.send_body(200, _not_utf8(body), ctype)

    def _gzip_bomb(self, h: "SandboxHandler", query: str) -> None:
        h.send_body(200, gzip_bomb(self.plan.bomb_bytes), "text/html; charset=utf-8", {"Content-Encoding": "gzip"})

    def _huge_body(self, h: "SandboxHandler", query: str) -> None:
        total = self.plan.huge_body_bytes
        self._raw_head(h, 200, "text/html; charset=utf-8", total)
        block = (b"<p>" + b"x" * 1021) * 64  # 64 KiB, written again and again
        sent = 0
        while sent < total and not self._closing.is_set():
            piece = block[: total - sent]
            h.wfile.write(piece)
            sent += len(piece)
        h.close_connection = True

    def _redirect_loop(self, h: "SandboxHandler", query: str) -> None:
        self._redirect(h)

    def _trickle(self, h: "SandboxHandler", query: str) -> None:
        body, ctype = h.real_answer(query)
        self._raw_head(h, 200, ctype, len(body))
        pieces = max(2, int(self.plan.slow_s / 0.1))
        step = max(1, -(-len(body) // pieces))
        for i in range(0, len(body), step):
            h.wfile.write(body[i : i + step])
            if self._closing.wait(self.plan.slow_s / pieces):
                break
        h.close_connection = True

    # ------------------------------------------------------------------ helpers

    def _redirect(self, h: "SandboxHandler") -> None:
        sep = "&" if "?" in h.path else "?"
        h.send_body(302, b"", "text/plain", {"Location": f"{h.path}{sep}{LOOP_MARKER}=1"})

    @staticmethod
    def _raw_head(h: "SandboxHandler", status: int, ctype: str, length: int) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(length))
        h.end_headers()

    @staticmethod
    def _hang_up(h: "SandboxHandler") -> None:
        h.close_connection = True
        try:
            h.connection.close()
        except OSError:
            pass
