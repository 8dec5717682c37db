"""Keyword lists: the curated terms a probe set sends (stage 1 of the pipeline).

- :mod:`harness.keywords.lists`: load, validate, edit, search, export and select entries of
  ``keywords/*.yaml`` (:class:`harness.models.KeywordList`);
- :mod:`harness.keywords.importers`: read the shapes researchers have lists in (Citizen Lab CSVs, text);
- :mod:`harness.keywords.variants`: written variants (Traditional/Simplified, width, pinyin ...);
- :mod:`harness.keywords.categories`: the categories codebook.

Depends on :mod:`harness.models`, :mod:`harness.errors` and :mod:`harness.yamlio` only.
"""

from .lists import (
    LoadedList,
    ValidationReport,
    default_search_dirs,
    entry_key,
    find_list,
    load_keyword_list,
    search_lists,
    select_entries,
    validate_lists,
    variant_key,
)

__all__ = [
    "LoadedList",
    "ValidationReport",
    "default_search_dirs",
    "entry_key",
    "find_list",
    "load_keyword_list",
    "search_lists",
    "select_entries",
    "validate_lists",
    "variant_key",
]
