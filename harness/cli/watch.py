"""``harness watch add | import | list | remove | specs``: watch lists of items whose removal is followed."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from ..errors import InputError, NotFoundError, WatchListError
from ..models import WatchedItem
from ..platforms.items import ItemRegistry, describe_signals
from ..watch.lists import (
    add_items,
    default_watch_dirs,
    find_watch_list,
    items_from_file,
    load_watch_list,
    remove_items,
    today,
    watch_list_path,
)
from ..yamlio import _describe
from ._app import app
from ._common import JsonOption, console, err_console, esc, print_json
from ._output import Col, Format, FormatOption, choose_format, emit, note

watch_app = typer.Typer(help="Watched items (WeChat articles, Weibo posts ...): add, import, list, remove; item specs.",
                        no_args_is_help=True)
app.add_typer(watch_app, name="watch")

ListOption = typer.Option("watched", "--list", "-l", help="watch list name (in ./watch) or path [default: watched]")
PlatformsOption = typer.Option([], "--specs", metavar="DIR", help="extra folder of specs (item specs in its items/ subfolder)")


def _registry(platforms: list[Path]) -> ItemRegistry:
    for d in platforms:
        if not d.is_dir():
            raise NotFoundError(f"platforms directory not found: {d}")
    return ItemRegistry.default(platforms)


def _with_platforms(items: list[WatchedItem], registry: ItemRegistry, where: str) -> list[WatchedItem]:
    """Each item with its platform (from the item spec that reads it); an unreadable URL is an error."""
    out = []
    for item in items:
        spec = registry.spec_for(item.url)
        if spec is None:
            raise InputError(f"{where}no item spec reads {item.url} (item specs: {', '.join(registry.names())}; "
                             f"`harness watch specs` lists the URL forms they read)")
        if item.platform is not None and item.platform != spec.platform:
            raise InputError(f"{where}{item.url} is a {spec.platform} item ({spec.name}), not {item.platform}")
        out.append(item.model_copy(update={"platform": spec.platform, "date_added": item.date_added or today()}))
    return out


def _report_add(result, as_json: bool) -> None:
    if as_json:
        print_json({"list": str(result.path), "created": result.created,
                    "added": [i.url for i in result.added], "already": result.already})
        return
    verb = "created" if result.created else "updated"
    console.print(f"{esc(result.path)} {verb}: {len(result.added)} added, {len(result.already)} already watched")


@watch_app.command("add")
def add_cmd(
    urls: list[str] = typer.Argument(..., help="item URLs (mp.weixin.qq.com/s/..., weibo.com/UID/BID, ...)"),
    list_name: str = ListOption,
    title: str | None = typer.Option(None, "--title", help="the item's title, as you know it"),
    author: str | None = typer.Option(None, "--author", help="who published the item"),
    why: str | None = typer.Option(None, "--why", help="why it is watched"),
    category: str = typer.Option("", "--category", help="category code from the codebook"),
    tag: list[str] = typer.Option([], "--tag", help="repeatable"),
    source: str | None = typer.Option(None, "--source", help="where the URL came from"),
    control: bool = typer.Option(False, "--control", help="a known-available item: the platform's control"),
    platforms: list[Path] = PlatformsOption,
    as_json: bool = JsonOption,
) -> None:
    """Add items to a watch list (created if needed). Each URL must be one an item spec reads."""
    items = []
    for n, url in enumerate(urls, 1):
        try:
            items.append(WatchedItem(url=url, title=title, author=author, why=why, category=category, tags=tag,
                                     source=source, control=control))
        except ValidationError as exc:
            raise InputError(f"URL {n} ({url!r}): {_describe(exc.errors()[0]).removeprefix('url: ')}") from None
    items = _with_platforms(items, _registry(platforms), "")
    path = watch_list_path(list_name, default_watch_dirs())
    _report_add(add_items(path, items), as_json)


@watch_app.command("import")
def import_cmd(
    file: Path = typer.Argument(..., help="a watch list (YAML), a JSON array, a CSV with a 'url' column, or one URL per line"),
    list_name: str = ListOption,
    why: str | None = typer.Option(None, "--why", help="for items that do not say"),
    category: str = typer.Option("", "--category", help="for items that do not say"),
    tag: list[str] = typer.Option([], "--tag", help="for items that do not say (repeatable)"),
    source: str | None = typer.Option(None, "--source", help="for items that do not say (default: the file's name)"),
    platforms: list[Path] = PlatformsOption,
    as_json: bool = JsonOption,
) -> None:
    """Add every item of a file to a watch list, skipping URLs already there. All or nothing: a bad entry
    stops the import with FILE:LINE and the list is left as it was."""
    items = items_from_file(file, defaults={"why": why, "category": category, "tags": tag,
                                            "source": source or file.name})
    if not items:
        raise WatchListError("no item URL in the file", file)
    items = _with_platforms(items, _registry(platforms), f"{file}: ")
    path = watch_list_path(list_name, default_watch_dirs())
    _report_add(add_items(path, items), as_json)


@watch_app.command("remove")
def remove_cmd(
    urls: list[str] = typer.Argument(..., help="item URLs to stop watching"),
    list_name: str = ListOption,
    as_json: bool = JsonOption,
) -> None:
    """Remove items from a watch list (their measurements stay in the store). Exit 2 if a URL is not in it."""
    path = find_watch_list(list_name, default_watch_dirs())
    removed, missing = remove_items(path, urls)
    if as_json:
        print_json({"list": str(path), "removed": removed, "not_found": missing})
    else:
        console.print(f"{esc(path)}: {len(removed)} removed")
        for url in missing:
            err_console.print(f"not in the list: {esc(url)}", soft_wrap=True)
    if missing:
        raise typer.Exit(2)


@watch_app.command("list")
def list_cmd(
    list_name: str | None = typer.Option(None, "--list", "-l", help="one watch list (default: every list in ./watch)"),
    platform: str | None = typer.Option(None, "--platform", "-p", help="only this platform"),
    platforms: list[Path] = PlatformsOption,
    fmt: Format | None = FormatOption,
    as_json: bool = JsonOption,
) -> None:
    """The watched items, with the item spec that reads each (validates the lists on the way)."""
    out = choose_format(fmt, as_json)
    if list_name:
        paths = [find_watch_list(list_name, default_watch_dirs())]
    else:
        folder = Path.cwd() / "watch"
        paths = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]) if folder.is_dir() else []
        if not paths:
            raise NotFoundError("no watch lists in ./watch (harness watch add URL creates watch/watched.yaml)")
    registry = _registry(platforms)
    rows = []
    for path in paths:
        loaded = load_watch_list(path)
        for item in loaded.watch_list.items:
            spec = registry.spec_for(item.url)
            plat = item.platform or (spec.platform if spec else None)
            if platform and plat != platform:
                continue
            rows.append({"list": loaded.name, "file": str(path), "url": item.url, "platform": plat,
                         "spec": spec.name if spec else None, "title": item.title, "category": item.category,
                         "tags": item.tags, "control": item.control, "why": item.why,
                         "date_added": item.date_added.isoformat() if item.date_added else None})
    table = [(r["list"], r["platform"] or "-", r["url"], " ".join(t for t in ("[control]" if r["control"] else "", r["title"] or "") if t),
              r["category"], ", ".join(r["tags"]), r["spec"] or "none reads it") for r in rows]
    emit(out, WATCH_COLS, table, title="watched items", records=rows)
    note(out, f"{len(rows)} items in {len(paths)} list(s)")


WATCH_COLS = [Col("list", key=True), Col("platform"), Col("url", key=True), Col("title"), Col("category"), Col("tags"),
              Col("spec")]
SPEC_COLS = [Col("name", key=True), Col("platform"), Col("reads"), Col("states it can tell"),
             Col("undocumented / unverified")]


@watch_app.command("specs")
def specs_cmd(platforms: list[Path] = PlatformsOption, fmt: Format | None = FormatOption,
              as_json: bool = JsonOption) -> None:
    """The item specs: which URLs each reads, its signals, and what is unverified."""
    out = choose_format(fmt, as_json)
    registry = _registry(platforms)
    data = []
    for spec in registry.all():
        data.append({"name": spec.name, "platform": spec.platform, "default": spec.default, "kind": spec.kind,
                     "transport": spec.transport, "urls": [u.pattern for u in spec.urls],
                     "signals": describe_signals(spec), "undocumented": spec.undocumented,
                     "control": spec.control, "origin": str(registry.origin(spec.name))})
    rows = []
    for d in data:
        states = [k for k in d["signals"] if k.startswith("removed_") or k == "available"]
        notes = list(d["undocumented"]) + ([f"needs a {d['transport']} transport"] if d["transport"] != "http" else [])
        rows.append((d["name"] + (" (default)" if d["default"] else ""), d["platform"], " ".join(d["urls"]),
                     ", ".join(states), ", ".join(notes) or "-"))
    emit(out, SPEC_COLS, rows, title="item specs", records=data)
