"""Platforms: declarative specs (built in, from ``platforms/`` folders, or by path)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from pydantic import BaseModel

from ..errors import NotFoundError, PlatformSpecError
from ..yamlio import load_model
from .spec import Extractor, Matcher, PlatformSpec, RequestTemplate, Signals, SoftTest

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"

__all__ = [
    "BUILTIN_DIR",
    "Extractor",
    "Matcher",
    "PlatformRegistry",
    "PlatformSpec",
    "RequestTemplate",
    "Signals",
    "SpecRegistry",
    "SoftTest",
    "load_cached",
    "load_spec",
]


S = TypeVar("S", bound=BaseModel)


class _Named(Protocol):
    name: str


N = TypeVar("N", bound=_Named)
_cache: dict[tuple[str, int, int], PlatformSpec] = {}


def load_cached(path: str | Path, model: type[S], cache: dict[tuple[str, int, int], S]) -> S:
    """Load and validate one spec file of ``model`` (a platform or an item spec), cached per file version
    (parsing YAML with line numbers is slow); a bad file is one :class:`PlatformSpecError` (file, line, problem)."""
    p = Path(path)
    try:
        st = p.stat()
        key: tuple[str, int, int] | None = (str(p.resolve()), st.st_mtime_ns, st.st_size)
    except OSError:
        key = None
    if key is not None and key in cache:
        return cache[key]
    spec, _ = load_model(path, model, PlatformSpecError)
    if key is not None:
        cache[key] = spec
    return spec


def load_spec(path: str | Path) -> PlatformSpec:
    """Load and validate one platform spec file (cached per file version)."""
    return load_cached(path, PlatformSpec, _cache)


class SpecRegistry(Generic[N]):
    """Specs by name, later sources overriding earlier ones; built-in files are named after their spec and
    parsed on first use. Subclasses say what they hold (``what``, in messages) and how a file is loaded."""

    what = "spec"

    def __init__(self, specs: dict[str, N] | None = None, origins: dict[str, Path] | None = None):
        self._specs: dict[str, N] = dict(specs or {})
        self._origins: dict[str, Path] = dict(origins or {})
        self._lazy: dict[str, Path] = {}  # built-in specs, named by their file, parsed on first use

    def load(self, path: str | Path) -> N:
        raise NotImplementedError

    def add_builtins(self, directory: Path) -> None:
        for path in sorted(directory.glob("*.yaml")):
            self._lazy[path.stem] = path  # a test checks that every built-in file is named after its spec

    def add_dir(self, directory: Path) -> None:
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            self.add_file(path)

    def add_file(self, path: str | Path) -> N:
        spec = self.load(path)
        name = spec.name
        self._lazy.pop(name, None)
        self._specs[name] = spec
        self._origins[name] = Path(path)
        return spec

    def _materialise(self, name: str) -> None:
        path = self._lazy.pop(name, None)
        if path is not None:
            spec = self.load(path)
            if spec.name != name:
                raise PlatformSpecError(f"the built-in file is named {path.name} but defines {self.what} {spec.name!r}",
                                        path)
            self._specs[name] = spec
            self._origins[name] = path

    def get(self, name: str) -> N:
        self._materialise(name)
        try:
            return self._specs[name]
        except KeyError:
            raise NotFoundError(f"unknown {self.what} {name!r} (known: {', '.join(self.names()) or 'none'})") from None

    def origin(self, name: str) -> Path | None:
        self._materialise(name)
        return self._origins.get(name)

    def names(self) -> list[str]:
        return sorted({*self._specs, *self._lazy})

    def __contains__(self, name: object) -> bool:
        return name in self._specs or name in self._lazy


class PlatformRegistry(SpecRegistry[PlatformSpec]):
    """Specs by name. Later sources override earlier ones: built-in, ./platforms, --specs DIR."""

    what = "platform"

    def load(self, path: str | Path) -> PlatformSpec:
        return load_spec(path)

    @classmethod
    def default(cls, extra_dirs: Iterable[str | Path] = (), include_cwd: bool = True) -> "PlatformRegistry":
        reg = cls()
        reg.add_builtins(BUILTIN_DIR)
        if include_cwd and (Path.cwd() / "platforms").is_dir():
            reg.add_dir(Path.cwd() / "platforms")
        for d in extra_dirs:
            d = Path(d)
            if not d.is_dir():
                raise NotFoundError(f"platforms directory not found: {d}")
            reg.add_dir(d)
        return reg

    def __iter__(self):
        return iter(self.get(n) for n in self.names())
