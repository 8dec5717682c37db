"""Python adapters for what a YAML spec cannot express (request signing, multi-step sessions).

An adapter is any object with one or both of these methods (both optional)::

    def build_request(self, spec: PlatformSpec, query: str, request: BuiltRequest) -> BuiltRequest: ...
    def classify(self, spec: PlatformSpec, status: int, headers: dict[str, str], body: bytes) -> Classification | None: ...

``build_request`` receives the request the declarative template produced and returns the
one to send (e.g. with a signature parameter added). ``classify`` may decide the verdict
itself or return ``None`` to let the spec's signals decide.

A spec names its adapter with ``adapter: NAME``; NAME is looked up in the entry-point
group ``harness.platforms`` of installed distributions::

    [project.entry-points."harness.platforms"]
    myplatform = "mypackage.adapters:MyAdapter"

The entry point may be a class (instantiated without arguments) or an object.
:func:`register_adapter` registers one in-process (tests, notebooks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Protocol, runtime_checkable

from ..errors import PlatformSpecError
from .classification import Classification
from .spec import PlatformSpec

ENTRY_POINT_GROUP = "harness.platforms"


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
    if not isinstance(adapter, (RequestBuilder, PageClassifier)):
        raise PlatformSpecError(f"adapter {name!r} has neither build_request nor classify")


def available_adapters() -> list[str]:
    names = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return sorted(names | set(_registered))


def get_adapter(name: str) -> Any:
    """The adapter called ``name``; a clear error when it is not installed."""
    if name in _registered:
        return _registered[name]
    if name in _loaded:
        return _loaded[name]
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
