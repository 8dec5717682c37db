"""Load YAML files into Pydantic models with errors that name the file and line."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import InputError

M = TypeVar("M", bound=BaseModel)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate mapping keys instead of keeping the last one."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    mapping: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class LocatedYaml:
    """Parsed YAML data plus a way to find the line of any path inside it."""

    def __init__(self, path: Path, data: Any, root: yaml.Node | None):
        self.path = path
        self.data = data
        self.root = root

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """1-based line of the node at ``loc`` (or of its deepest existing ancestor)."""
        node = self.root
        line = node.start_mark.line + 1 if node is not None else None
        for part in loc:
            if isinstance(node, yaml.MappingNode):
                nxt = None
                for k, v in node.value:
                    if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                        nxt = v
                        line = k.start_mark.line + 1
                        break
                if nxt is None:
                    return line
                node = nxt
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                return line
        return line

    def error(self, message: str, loc: Sequence[str | int] = (), cls: type[InputError] = InputError) -> InputError:
        return cls(message, self.path, self.line_of(loc))


def read_text(path: Path, cls: type[InputError] = InputError) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise cls("file not found", path) from None
    except IsADirectoryError:
        raise cls("is a directory, not a file", path) from None
    except OSError as exc:
        raise cls(f"cannot read: {exc.strerror}", path) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise cls(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})", path, line) from None
    return text


def load_yaml(path: str | Path, cls: type[InputError] = InputError) -> LocatedYaml:
    path = Path(path)
    text = read_text(path, cls)
    try:
        root = yaml.compose(text, Loader=_UniqueKeyLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise cls(f"invalid YAML: {problem}", path, mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise cls(f"invalid YAML: {exc}", path) from None
    return LocatedYaml(path, data, root)


def _describe(err: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ()))
    msg = err.get("msg", "invalid")
    if err.get("type") == "extra_forbidden":
        msg = "unknown field"
    elif err.get("type") == "missing":
        msg = "required field is missing"
    msg = msg.removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def validate_located(doc: LocatedYaml, model: type[M], cls: type[InputError] = InputError) -> M:
    if doc.data is None:
        raise cls("the file is empty", doc.path, 1)
    if not isinstance(doc.data, dict):
        raise cls(f"expected a mapping at the top level, found {type(doc.data).__name__}", doc.path, 1)
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise cls(_describe(first) + more, doc.path, doc.line_of(first.get("loc", ()))) from None


def load_model(path: str | Path, model: type[M], cls: type[InputError] = InputError) -> tuple[M, LocatedYaml]:
    doc = load_yaml(path, cls)
    return validate_located(doc, model, cls), doc


def _mode_for(path: Path) -> int:
    """The replaced file's permissions, or what a plain ``open()`` would give (0666 less the umask)."""
    try:
        return path.stat().st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    try:  # Linux: read it without changing it (os.umask would, briefly, for every thread)
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write a file so that readers see either the old or the new content, never half.

    The file keeps its permissions (a new one gets the usual ones, not mkstemp's 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _mode_for(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
