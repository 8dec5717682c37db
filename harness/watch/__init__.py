"""Watched items: the watch lists (``watch/*.yaml``) a probe set's ``items`` come from.

- :mod:`harness.watch.lists`: load, validate, select, add, remove and import watch lists.

Which item spec reads an item, and what a fetched page means, is
:mod:`harness.platforms.items`; fetching is :mod:`harness.measure`'s job.
"""

from .lists import (
    LoadedWatchList,
    add_items,
    default_watch_dirs,
    find_watch_list,
    items_from_file,
    load_watch_list,
    remove_items,
    select_items,
)

__all__ = [
    "LoadedWatchList",
    "add_items",
    "default_watch_dirs",
    "find_watch_list",
    "items_from_file",
    "load_watch_list",
    "remove_items",
    "select_items",
]
