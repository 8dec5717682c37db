"""Watch lists: load, validate, select, add to, remove from and import ``watch/*.yaml``.

A watch list (:class:`harness.models.WatchList`) names items whose availability a probe set
follows over time: a WeChat article, a Weibo post, a Douyin video, a Toutiao article. The
file is written by people and by the harness (``harness watch add | import | remove``, and
search results enrolled by a probe set's ``watch_results``), so edits keep the file as it
was: new items are appended as one JSON-compatible flow mapping per line at the end of the
``items:`` block, removed items lose exactly their lines, comments elsewhere stay. Every
edit is validated before the file is replaced (atomically): a bad edit leaves the file as it was.

Which item spec reads an item (and so its platform) is decided by the measuring stage
(:mod:`harness.platforms.items`); this module only handles files.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import NotFoundError, WatchListError
from ..models import ItemSelection, WatchedItem, WatchList, normalise_item_url
from ..yamlio import LocatedYaml, _UniqueKeyLoader, atomic_write_text, load_yaml, read_text, validate_located

WATCH_DIRNAME = "watch"
ITEM_FIELDS = tuple(WatchedItem.model_fields)

__all__ = [
    "AddResult", "LoadedWatchList", "WATCH_DIRNAME", "add_items", "default_watch_dirs", "find_watch_list",
    "items_from_file", "load_watch_list", "remove_items", "select_items", "watch_list_path",
]


@dataclass
class LoadedWatchList:
    path: Path
    watch_list: WatchList
    doc: LocatedYaml

    @property
    def name(self) -> str:
        return self.watch_list.name

    def line_of_item(self, index: int) -> int | None:
        return self.doc.line_of(("items", index))


def load_watch_list(path: str | Path) -> LoadedWatchList:
    """Load and validate one watch list; a problem is one ``file:line: message`` error."""
    doc = load_yaml(path, WatchListError)
    wl = validate_located(doc, WatchList, WatchListError)
    return LoadedWatchList(Path(path), wl, doc)


def default_watch_dirs(extra: Iterable[Path] = ()) -> list[Path]:
    """Where watch list names are looked up: given folders, then ./watch."""
    dirs: list[Path] = []
    for d in [*(Path(p) for p in extra), Path.cwd() / WATCH_DIRNAME]:
        if d.resolve() not in [x.resolve() for x in dirs]:
            dirs.append(d)
    return dirs


def find_watch_list(name_or_path: str, search_dirs: Iterable[Path]) -> Path:
    """Resolve a watch list given by name (``wechat-2026``) or by path (``lists/mine.yaml``)."""
    dirs = list(search_dirs)
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or "/" in name_or_path:
        if candidate.is_file():
            return candidate
        for d in dirs:
            if (d.parent / candidate).is_file():
                return d.parent / candidate
        raise NotFoundError(f"watch list file not found: {name_or_path}")
    for d in dirs:
        for ext in (".yaml", ".yml"):
            p = d / f"{name_or_path}{ext}"
            if p.is_file():
                return p
    raise NotFoundError(f"unknown watch list {name_or_path!r} (looked in {', '.join(str(d) for d in dirs)})")


def watch_list_path(name_or_path: str, search_dirs: Iterable[Path]) -> Path:
    """Where a watch list is, or would be created (``watch/NAME.yaml`` in the first folder)."""
    try:
        return find_watch_list(name_or_path, search_dirs)
    except NotFoundError:
        if name_or_path.endswith((".yaml", ".yml")) or "/" in name_or_path:
            return Path(name_or_path)
        first = next(iter(search_dirs), Path.cwd() / WATCH_DIRNAME)
        return Path(first) / f"{name_or_path}.yaml"


def select_items(loaded: LoadedWatchList, selection: ItemSelection, platform_of: dict[str, str] | None = None
                 ) -> list[WatchedItem]:
    """The watched items (controls left out) a probe-set selection asks for, in list order.

    ``platform_of`` gives the platform of items that do not name one (from the item specs).
    """
    out: list[WatchedItem] = []
    for item in loaded.watch_list.items:
        if item.control:
            continue
        platform = item.platform or (platform_of or {}).get(item.url)
        if selection.platforms and platform not in selection.platforms:
            continue
        if selection.categories and item.category not in selection.categories:
            continue
        if selection.tags and not set(selection.tags) & set(item.tags):
            continue
        if selection.exclude_tags and set(selection.exclude_tags) & set(item.tags):
            continue
        out.append(item)
        if selection.limit and len(out) >= selection.limit:
            break
    return out


# --------------------------------------------------------------------------- editing


def item_to_dict(item: WatchedItem) -> dict[str, Any]:
    """The fields of an item that differ from their defaults, in model order (``url`` first)."""
    data = item.model_dump(mode="json")
    defaults = {name: f.get_default(call_default_factory=True) for name, f in WatchedItem.model_fields.items()}
    return {k: v for k, v in data.items() if k == "url" or v != defaults.get(k)}


def _flow_line(item: WatchedItem, indent: str) -> str:
    # JSON is valid YAML flow style: one item per line, any character escaped safely
    return f"{indent}- {json.dumps(item_to_dict(item), ensure_ascii=False)}"


@dataclass
class AddResult:
    path: Path
    added: list[WatchedItem] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    created: bool = False


def _compose(text: str, path: Path) -> yaml.Node | None:
    try:
        return yaml.compose(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise WatchListError(f"invalid YAML: {getattr(exc, 'problem', None) or exc}", path,
                             mark.line + 1 if mark else None) from None


def _items_node(root: yaml.Node | None) -> tuple[yaml.Node | None, yaml.Node | None]:
    """(the ``items`` key node, its value node) of a watch list document."""
    if not isinstance(root, yaml.MappingNode):
        return None, None
    for k, v in root.value:
        if isinstance(k, yaml.ScalarNode) and k.value == "items":
            return k, v
    return None, None


def _check_and_write(path: Path, text: str) -> WatchList:
    """Validate the new text as a watch list, then replace the file atomically."""
    from ..yamlio import LocatedYaml as _Doc

    try:
        root = yaml.compose(text, Loader=_UniqueKeyLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:  # the edit produced YAML that does not parse: a bug, never written
        raise WatchListError(f"internal error: the edited watch list would not parse ({exc})", path) from None
    wl = validate_located(_Doc(path, data, root), WatchList, WatchListError)
    atomic_write_text(path, text)
    return wl


def add_items(path: str | Path, items: Iterable[WatchedItem], *, name: str | None = None,
              description: str = "") -> AddResult:
    """Append items whose URL is not in the list yet; create the list if the file does not exist."""
    path = Path(path)
    result = AddResult(path)
    wanted: list[WatchedItem] = []
    seen: set[str] = set()
    for item in items:
        if item.url not in seen:
            seen.add(item.url)
            wanted.append(item)
    if not path.exists():
        result.created = True
        list_name = name or path.stem
        result.added = wanted
        head = [f"name: {json.dumps(list_name, ensure_ascii=False)}"]
        if description:
            head.append(f"description: {json.dumps(description, ensure_ascii=False)}")
        lines = [*head, "items:" if wanted else "items: []", *(_flow_line(i, "  ") for i in wanted)]
        _check_and_write(path, "\n".join(lines) + "\n")
        return result
    loaded = load_watch_list(path)
    present = {i.url for i in loaded.watch_list.items}
    result.already = [i.url for i in wanted if i.url in present]
    result.added = [i for i in wanted if i.url not in present]
    if not result.added:
        return result
    text = read_text(path, WatchListError)
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines()
    key, node = _items_node(_compose(text, path))
    if key is None or node is None:
        lines = [*lines, "items:", *(_flow_line(i, "  ") for i in result.added)]
    elif isinstance(node, yaml.SequenceNode) and not node.flow_style and node.value:
        first = node.value[0]
        indent = " " * max(0, first.start_mark.column - 2)
        at = _last_item_line(lines, node) + 1
        lines[at:at] = [_flow_line(i, indent) for i in result.added]
    elif (isinstance(node, yaml.SequenceNode) and not node.value) or (
            isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null")):
        # `items: []` or `items:` with nothing under it: the key's line becomes a block
        row = key.start_mark.line
        indent = " " * (key.start_mark.column + 2)
        lines[row] = lines[row][:key.start_mark.column] + "items:"
        lines[row + 1:row + 1] = [_flow_line(i, indent) for i in result.added]
    else:  # a non-empty flow sequence: rewrite the document (comments inside that sequence are lost)
        wl = loaded.watch_list.model_copy(update={"items": [*loaded.watch_list.items, *result.added]})
        _check_and_write(path, render_watch_list(wl))
        return result
    _check_and_write(path, newline.join(lines) + newline)
    return result


def _last_item_line(lines: list[str], node: yaml.SequenceNode) -> int:
    """0-based index of the last line that belongs to the sequence's last item (not trailing comments)."""
    last = node.value[-1]
    end = last.end_mark.line if last.end_mark.column > 0 else last.end_mark.line - 1
    end = max(end, last.start_mark.line)
    while end > last.start_mark.line and (not lines[end].strip() or lines[end].lstrip().startswith("#")):
        end -= 1
    return min(end, len(lines) - 1)


def remove_items(path: str | Path, urls: Iterable[str]) -> tuple[list[str], list[str]]:
    """Remove the items with these URLs (normalised as in the list); returns (removed, not found)."""
    path = Path(path)
    loaded = load_watch_list(path)
    wanted: list[str] = []
    for u in urls:
        try:
            wanted.append(normalise_item_url(u))
        except ValueError as exc:
            raise WatchListError(f"{u!r}: {exc}") from None
    index = {item.url: i for i, item in enumerate(loaded.watch_list.items)}
    removed = [u for u in dict.fromkeys(wanted) if u in index]
    missing = [u for u in dict.fromkeys(wanted) if u not in index]
    if not removed:
        return removed, missing
    text = read_text(path, WatchListError)
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines()
    key, node = _items_node(_compose(text, path))
    drop = {index[u] for u in removed}
    if key is not None and isinstance(node, yaml.SequenceNode) and not node.flow_style:
        doomed: set[int] = set()
        for i in sorted(drop):
            start = node.value[i].start_mark.line
            stop = (node.value[i + 1].start_mark.line - 1) if i + 1 < len(node.value) else _last_item_line(lines, node)
            doomed.update(range(start, stop + 1))
        if len(drop) == len(node.value):  # nothing left: keep a valid, empty list
            row = key.start_mark.line
            lines[row] = lines[row][:key.start_mark.column] + "items: []"
        kept = [line for n, line in enumerate(lines) if n not in doomed]
        _check_and_write(path, newline.join(kept) + newline)
    else:
        wl = loaded.watch_list.model_copy(update={"items": [it for i, it in enumerate(loaded.watch_list.items)
                                                            if i not in drop]})
        _check_and_write(path, render_watch_list(wl))
    return removed, missing


def render_watch_list(wl: WatchList, header_comments: Iterable[str] = ()) -> str:
    lines = [f"# {c}" for c in header_comments]
    lines.append(f"name: {json.dumps(wl.name, ensure_ascii=False)}")
    for key in ("description", "source", "licence"):
        value = getattr(wl, key)
        if value and not (key == "source" and value == "curated"):
            lines.append(f"{key}: {json.dumps(value, ensure_ascii=False)}")
    lines.append("items:" if wl.items else "items: []")
    lines.extend(_flow_line(i, "  ") for i in wl.items)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- import


def _item(data: Any, where: str, path: Path, line: int | None) -> WatchedItem:
    from pydantic import ValidationError

    from ..yamlio import _describe

    try:
        return WatchedItem.model_validate(data)
    except ValidationError as exc:
        raise WatchListError(f"{where}{_describe(exc.errors()[0])}", path, line) from None


def items_from_file(path: str | Path, *, defaults: dict[str, Any] | None = None) -> list[WatchedItem]:
    """Items from a file: a watch list (YAML), a JSON array (URLs or objects), a CSV with a ``url``
    column (other columns named after item fields), or plain text with one URL per line
    (``#`` starts a comment). ``defaults`` fill fields an entry leaves empty (e.g. ``why``, ``tags``)."""
    path = Path(path)
    text = read_text(path, WatchListError)
    extra = {k: v for k, v in (defaults or {}).items() if v not in (None, "", [])}

    def build(data: Any, where: str, line: int | None) -> WatchedItem:
        if isinstance(data, str):
            data = {"url": data}
        if isinstance(data, dict):
            data = {**extra, **{k: v for k, v in data.items() if v not in (None, "")}}
        return _item(data, where, path, line)

    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return list(load_watch_list(path).watch_list.items)
    if suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise WatchListError(f"invalid JSON: {exc}", path) from None
        if isinstance(data, dict) and isinstance(data.get("items"), list):
            data = data["items"]
        if not isinstance(data, list):
            raise WatchListError("expected a JSON array of URLs or item objects", path, 1)
        return [build(d, f"item {i}: ", None) for i, d in enumerate(data)]
    if suffix == ".csv":
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "url" not in [f.strip() for f in reader.fieldnames]:
            raise WatchListError("a CSV of items needs a 'url' column", path, 1)
        out = []
        for row in reader:
            data: dict[str, Any] = {}
            for k, v in row.items():
                k = (k or "").strip()
                if k in ITEM_FIELDS and v is not None and v.strip():
                    data[k] = [t.strip() for t in v.split(";") if t.strip()] if k == "tags" else v.strip()
            if "control" in data:
                data["control"] = str(data["control"]).lower() in ("1", "true", "yes")
            out.append(build(data, "", reader.line_num))
        return out
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip() if raw.lstrip().startswith("#") or " #" in raw else raw.strip()
        if line:
            out.append(build(line, "", n))
    return out


def today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()
