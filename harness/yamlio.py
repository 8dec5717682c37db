"""Load YAML files into Pydantic models with errors that name the file and line.

Inputs are bounded before they are parsed (:mod:`harness.safeio`: no special files, a size
limit per kind of file) and after (nesting depth); a NUL or another character YAML refuses is
reported with its line. ``atomic_write_text`` is :func:`harness.safeio.atomic_write_text`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .errors import InputError
from .safeio import MAX_LARGE_INPUT, MAX_SMALL_INPUT, atomic_write_text, check_depth, read_input_bytes, too_deep

__all__ = ["LocatedYaml", "atomic_write_text", "load_model", "load_yaml", "read_text", "validate_located",
           "MAX_SMALL_INPUT", "MAX_LARGE_INPUT"]

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


def read_text(path: Path, cls: type[InputError] = InputError, max_bytes: int = MAX_LARGE_INPUT) -> str:
    """A UTF-8 text file (BOM allowed), refused before reading when it is not a regular file or
    is larger than ``max_bytes``."""
    raw = read_input_bytes(Path(path), cls, max_bytes)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise cls(f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})", path, line) from None
    return text


def load_yaml(path: str | Path, cls: type[InputError] = InputError, max_bytes: int = MAX_SMALL_INPUT) -> LocatedYaml:
    """A YAML file with the node tree kept for line numbers. Bounded: ``max_bytes`` before parsing
    (1 MiB by default: probe sets, specs and other configuration), nesting after."""
    path = Path(path)
    return parse_yaml_text(path, read_text(path, cls, max_bytes), cls)


def parse_yaml_text(path: Path, text: str, cls: type[InputError] = InputError) -> LocatedYaml:
    """:func:`load_yaml` of text already read (bounded) by the caller."""
    try:
        root = yaml.compose(text, Loader=_UniqueKeyLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise cls(f"invalid YAML: {problem}", path, mark.line + 1 if mark else None) from None
    except yaml.reader.ReaderError as exc:  # a NUL or another character YAML does not allow
        line = text[: exc.position].count("\n") + 1 if isinstance(exc.position, int) else None
        raise cls(f"invalid YAML: the character U+{exc.character:04X} is not allowed"
                  if isinstance(exc.character, int) else f"invalid YAML: {exc.reason}", path, line) from None
    except yaml.YAMLError as exc:
        raise cls(f"invalid YAML: {exc}", path) from None
    except RecursionError:
        raise too_deep(path, cls) from None
    check_depth(data, path, cls)
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
