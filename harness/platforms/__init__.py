"""Platforms: declarative specs (built in, from ``platforms/`` folders, or by path)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

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
    "SoftTest",
    "load_spec",
]


def load_spec(path: str | Path) -> PlatformSpec:
    spec, _ = load_model(path, PlatformSpec, PlatformSpecError)
    return spec


class PlatformRegistry:
    """Specs by name. Later sources override earlier ones: built-in, ./platforms, --platforms DIR."""

    def __init__(self, specs: dict[str, PlatformSpec] | None = None, origins: dict[str, Path] | None = None):
        self._specs: dict[str, PlatformSpec] = dict(specs or {})
        self._origins: dict[str, Path] = dict(origins or {})

    @classmethod
    def default(cls, extra_dirs: Iterable[str | Path] = (), include_cwd: bool = True) -> "PlatformRegistry":
        reg = cls()
        reg.add_dir(BUILTIN_DIR)
        if include_cwd and (Path.cwd() / "platforms").is_dir():
            reg.add_dir(Path.cwd() / "platforms")
        for d in extra_dirs:
            d = Path(d)
            if not d.is_dir():
                raise NotFoundError(f"platforms directory not found: {d}")
            reg.add_dir(d)
        return reg

    def add_dir(self, directory: Path) -> None:
        for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
            self.add_file(path)

    def add_file(self, path: str | Path) -> PlatformSpec:
        spec = load_spec(path)
        self._specs[spec.name] = spec
        self._origins[spec.name] = Path(path)
        return spec

    def get(self, name: str) -> PlatformSpec:
        try:
            return self._specs[name]
        except KeyError:
            known = ", ".join(sorted(self._specs)) or "none"
            raise NotFoundError(f"unknown platform {name!r} (known: {known})") from None

    def origin(self, name: str) -> Path | None:
        return self._origins.get(name)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self):
        return iter(self._specs[n] for n in self.names())
