"""Python adapters for what a YAML spec cannot express (request signing, multi-step sessions).

An adapter is any object with one or more of these methods (all optional)::

    def build_request(self, spec: PlatformSpec, query: str, request: BuiltRequest) -> BuiltRequest: ...
    def classify(self, spec: PlatformSpec, status: int, headers: dict[str, str], body: bytes) -> Classification | None: ...
    async def prime(self, spec: PlatformSpec, ctx: PrimingContext) -> None: ...

``build_request`` receives the request the declarative template produced and returns the
one to send (e.g. with a signature parameter added). ``classify`` may decide the verdict
itself or return ``None`` to let the spec's signals decide.

``prime`` prepares a platform session before its first request, as a browser does before
a search: it may send requests (``ctx.get``, through the run's transport and proxy), set
cookies the session sends from then on (``ctx.set_cookie``: secrets, scrubbed from
evidence and never stored) and keep what it learned in ``ctx.state`` (a dict private to
the session). An adapter with ``prime`` receives that state as a fourth argument of
``build_request``. The session primes again after ``prime_ttl_s`` seconds (an optional
attribute; default never) and after an answer classified ``session_invalid`` (at most once
every :data:`REPRIME_MIN_S`). ``prime`` raises :class:`PrimingError` when the platform's
answers make a session impossible (``failure: session_invalid``); network errors
propagate and become the usual failure codes.

A spec names its adapter with ``adapter: NAME`` (and may pass it ``adapter_options``).
NAME is a built-in adapter (:data:`BUILTIN_ADAPTERS`) or is looked up in the entry-point
group ``harness.platforms`` of installed distributions::

    [project.entry-points."harness.platforms"]
    myplatform = "mypackage.adapters:MyAdapter"

The entry point may be a class (instantiated without arguments) or an object.
:func:`register_adapter` registers one in-process (tests, notebooks).
"""

from __future__ import annotations

import importlib
import json as _json
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from ..errors import PlatformSpecError
from .classification import Classification
from .spec import PlatformSpec

ENTRY_POINT_GROUP = "harness.platforms"

# Adapters that ship with the harness (module:attribute, imported on first use).
BUILTIN_ADAPTERS: dict[str, str] = {
    "bilibili_wbi": "harness.platforms.bilibili:BilibiliWbi",
}

REPRIME_MIN_S = 600.0
"""After a ``session_invalid`` answer a primed session primes again, at most this often."""


@dataclass
class BuiltRequest:
    """One HTTP request ready to send. ``url`` already carries its query string."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    json: Any = None
    data: dict[str, str] | None = None

    def httpx_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"headers": dict(self.headers)}
        if self.json is not None:
            kwargs["json"] = self.json
        if self.data is not None:
            kwargs["data"] = self.data
        return kwargs


@dataclass
class PrimeResponse:
    """An answer to a priming request. Its headers and body are never stored."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def json(self) -> Any:
        return _json.loads(self.body.decode("utf-8"))

    def set_cookies(self) -> dict[str, str]:
        """``Set-Cookie`` name -> value (attributes dropped)."""
        out = {}
        for name, value in self.headers:
            if name.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                k, sep, v = pair.partition("=")
                if sep and k.strip():
                    out[k.strip()] = v.strip()
        return out


class PrimingError(Exception):
    """The platform's answers make a session impossible; ``signal`` says which (``nav:no_wbi_keys``)."""

    def __init__(self, signal: str):
        self.signal = signal
        super().__init__(signal)


class PrimingContext(Protocol):
    """What ``prime`` may use: requests through the run's transport, the session's cookies and state."""

    state: dict[str, Any]

    async def get(self, url: str, headers: dict[str, str] | None = None) -> PrimeResponse: ...

    def set_cookie(self, name: str, value: str, *, secret: bool = True) -> None: ...


@runtime_checkable
class SessionPrimer(Protocol):
    async def prime(self, spec: "PlatformSpec", ctx: PrimingContext) -> None: ...


@runtime_checkable
class RequestBuilder(Protocol):
    def build_request(self, spec: "PlatformSpec", query: str, request: BuiltRequest) -> BuiltRequest: ...


@runtime_checkable
class PageClassifier(Protocol):
    def classify(self, spec: "PlatformSpec", status: int, headers: dict[str, str],
                 body: bytes) -> "Classification | None": ...


_registered: dict[str, Any] = {}
_loaded: dict[str, Any] = {}


def register_adapter(name: str, adapter: Any) -> None:
    """Register an adapter object under ``name`` for this process (takes precedence over entry points)."""
    _check(name, adapter)
    _registered[name] = adapter


def unregister_adapter(name: str) -> None:
    _registered.pop(name, None)
    _loaded.pop(name, None)


def _check(name: str, adapter: Any) -> None:
    if not isinstance(adapter, (RequestBuilder, PageClassifier, SessionPrimer)):
        raise PlatformSpecError(f"adapter {name!r} has none of build_request, classify, prime")


def available_adapters() -> list[str]:
    names = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(names | set(_registered) | set(BUILTIN_ADAPTERS))


def get_adapter(name: str) -> Any:
    """The adapter called ``name``; a clear error when it is not installed."""
    if name in _registered:
        return _registered[name]
    if name in _loaded:
        return _loaded[name]
    if name in BUILTIN_ADAPTERS:
        module, _, attr = BUILTIN_ADAPTERS[name].partition(":")
        obj = getattr(importlib.import_module(module), attr)
        obj = obj() if isinstance(obj, type) else obj
        _check(name, obj)
        _loaded[name] = obj
        return obj
    found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not found:
        known = ", ".join(available_adapters()) or "none installed"
        raise PlatformSpecError(f"platform adapter {name!r} not found in entry-point group {ENTRY_POINT_GROUP} "
                                f"(known: {known})")
    try:
        obj = found[0].load()
    except Exception as exc:
        raise PlatformSpecError(f"platform adapter {name!r} failed to load: {type(exc).__name__}: {exc}") from None
    if isinstance(obj, type):
        obj = obj()
    _check(name, obj)
    _loaded[name] = obj
    return obj
