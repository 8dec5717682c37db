"""The fast path for large keyword lists gives exactly what Pydantic gives.

``harness.models.keywords_from_plain_json`` builds the entries of a list in the harness's own
layout in plain Python; anything unusual (and every error) goes to Pydantic. These tests compare
the two on generated entries (valid and invalid: odd unicode, whitespace to strip, combinations,
variants, dates, missing fields, wrong types, unknown keys), on list files through
``load_keyword_list`` / ``validate_lists``, and through the CLI.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import re
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from harness.errors import KeywordListError
from harness.keywords import lists
from harness.keywords.lists import (
    _entries_from_json,
    _gc_paused,
    _json_yaml_differ,
    json_line,
    load_keyword_list,
    read_list_document,
    validate_lists,
)
from harness.models import (
    _PLAIN_KEYWORD_FIELDS,
    Keyword,
    _fast_path_matches_model,
    keywords_from_plain_json,
)

from .conftest import run_cli

SLOW = TypeAdapter(list[Keyword])

# --------------------------------------------------------------------------- generated entries

_FRAGMENTS = st.sampled_from([
    "六四", "習近平", "习近平", "ＸＪＰ", "xjp", "Tank Man", " + ", "+", " ", "\u3000", "\u00a0", "\t", "\n",
    "\x07", "\x1c", "\x85", "\u2028", "\u200b", "ǅ", "ﬁ", "①", "é", "e\u0301", "😀", "\\", '"', "/", "",
])
_text = st.one_of(
    st.lists(_FRAGMENTS, max_size=4).map("".join),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=8),
    st.sampled_from(["长" * 500, "长" * 501, "a + b + c + d + e + f + g", "a +  + b"]),
)
_plain_text = st.one_of(
    st.text(st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp")), min_size=1,
            max_size=8),  # printable, nothing to strip
    st.sampled_from(["Tank Man", "六 四", "习近平 + 六四", "a + b + c"]))
_plain_text = st.one_of(_plain_text, _plain_text.map(lambda s: f" {s}\u3000"))  # valid, to strip: the model alone
_dates = st.one_of(st.dates().map(dt.date.isoformat),
                   st.sampled_from(["2024-02-30", "2024-1-1", "2024-01-01T00:00:00", "20240101", " 2024-01-01",
                                    "0000-01-01", "2024-13-01", "２０２４-01-01"]))
_value = st.one_of(_text, st.lists(_text, max_size=7), st.none(), st.integers(), st.booleans(),
                   st.floats(allow_nan=False), _dates, st.dictionaries(st.text(max_size=3), _text, max_size=2))
_keys = st.sampled_from([*_PLAIN_KEYWORD_FIELDS, "colour", "Term", ""])
_entry = st.one_of(
    st.dictionaries(_keys, _value, max_size=6),
    st.fixed_dictionaries({"term": _text}, optional={
        "components": st.lists(_text, max_size=7), "category": _text, "tags": st.lists(_text, max_size=3),
        "variants": st.lists(_text, max_size=3), "date_added": st.one_of(st.none(), _dates),
        "notes": st.one_of(st.none(), _text), "script": st.one_of(st.none(), _text)}),
    _text,  # a plain string entry: the model accepts it, the fast path leaves it to the model
    st.integers(), st.lists(_text, max_size=2),
)
_plain_optional = {
    "category": _plain_text, "tags": st.lists(_plain_text, max_size=3),
    "variants": st.lists(_plain_text, max_size=3), "date_added": st.one_of(st.none(), st.dates().map(dt.date.isoformat)),
    "notes": st.one_of(st.none(), _plain_text), "script": st.one_of(st.none(), _plain_text),
    "language": st.one_of(st.none(), _plain_text), "translation": st.one_of(st.none(), _plain_text),
    "source": st.one_of(st.none(), _plain_text),
}
_plain_entry = st.one_of(
    st.fixed_dictionaries({"term": _plain_text}, optional=_plain_optional),
    st.fixed_dictionaries({"components": st.lists(_plain_text, min_size=1, max_size=6)},
                          optional={"term": _plain_text, **_plain_optional}))


def _state(k: Keyword) -> Any:
    """Everything of a model instance: type, field order, values with their types, fields set, extras."""
    return (type(k), [(name, type(v), v, [type(x) for x in v] if isinstance(v, list) else None)
                      for name, v in k.__dict__.items()],
            k.__pydantic_fields_set__, k.__pydantic_extra__, k.__pydantic_private__, repr(k), k.model_dump_json())


def _slow(text: str) -> list[Keyword] | list[tuple[Any, ...]]:
    """Pydantic's result, or its errors (type, location, message) when it refuses."""
    try:
        return SLOW.validate_json(text)
    except ValidationError as exc:
        return [(e["type"], e["loc"], e["msg"]) for e in exc.errors()]


def _fast(text: str) -> list[Keyword] | list[tuple[Any, ...]]:
    try:
        return _entries_from_json(text)
    except ValidationError as exc:
        return [(e["type"], e["loc"], e["msg"]) for e in exc.errors()]


def _same(a: list[Any], b: list[Any]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert (_state(x) if isinstance(x, Keyword) else x) == (_state(y) if isinstance(y, Keyword) else y)


# --------------------------------------------------------------------------- the function itself


def test_the_fast_path_is_on_and_turns_off_when_the_model_changes(monkeypatch):
    assert _fast_path_matches_model()
    monkeypatch.setitem(_PLAIN_KEYWORD_FIELDS, "colour", 0)  # a field the model does not have
    assert not _fast_path_matches_model()


@settings(max_examples=400, deadline=None)
@given(st.lists(_entry, min_size=1, max_size=4), st.booleans())
@example([{"term": " 六四"}], False)  # whitespace to strip: the model strips it, the fast path declines
@example([{"term": "六四\x1c"}], False)  # str.strip() strips U+001C, pydantic does not: declined
@example([{"term": "x", "tags": ["a "]}], False)  # a tag to strip (no later check strips tags)
@example([{"term": "x", "category": "\u3000c"}], False)
@example([{"components": ["a\u00a0", "b"]}], False)
@example([{"term": "x", "notes": "n\n"}], False)
@example([{"term": "a + b", "components": ["a", "b"]}], False)
@example([{"components": ["a", "b"], "variants": ["A + B"]}], True)
@example([{"term": "x", "date_added": "2024-02-30"}], False)
@example([{"term": "x", "date_added": "2024-02-29"}], False)
@example([{"term": "x", "tags": None}], False)
@example(["六四"], False)
@example([{"term": "x", "colour": "red"}], False)
def test_fast_path_gives_exactly_what_pydantic_gives(entries, ascii_only):
    text = json.dumps(entries, ensure_ascii=ascii_only)
    slow = _slow(text)
    fast = keywords_from_plain_json(json.loads(text))
    if fast is not None:  # taken only when Pydantic accepts, with the very same objects
        assert slow and isinstance(slow[0], Keyword)
        _same(fast, slow)
    _same(_fast(text), slow)  # what the loader uses: objects or errors, identical


@settings(max_examples=200, deadline=None)
@given(st.lists(_plain_entry, min_size=1, max_size=5))
@example([{"term": "a + b"}])
@example([{"components": ["習近平", "六四"], "term": "x"}])
def test_plain_entries_take_the_fast_path(entries):
    text = json.dumps(entries, ensure_ascii=False)
    slow = _slow(text)
    fast = keywords_from_plain_json(json.loads(text))
    if slow and isinstance(slow[0], Keyword):
        assert fast is not None, "a plain valid entry must not need Pydantic"
        _same(fast, slow)
    else:  # e.g. more than 6 components after splitting the term: the error is Pydantic's
        assert fast is None


# --------------------------------------------------------------------------- list files


def _outcome(path: Path) -> tuple[Any, ...]:
    try:
        loaded = load_keyword_list(path)
        entries: Any = [_state(e) for e in loaded.keyword_list.entries]
        lines: Any = loaded.entry_lines
    except KeywordListError as exc:
        entries, lines = (exc.message, exc.line, exc.path), None
    report = validate_lists([path])
    return entries, lines, [str(p) for p in report.problems], [vars(s) for s in report.lists]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(_plain_entry, _entry), min_size=1, max_size=6))
@example([{"term": "六四"}, {"term": "六四"}])  # a duplicate: found after loading, same line either way
@example([{"term": "a"}, {"term": "b", "category": 5}])
@example([{"term": "x", "variants": ["a + b + c + d + e + f + g"]}])  # found here: was an internal error
def test_list_files_load_and_validate_the_same_with_and_without_the_fast_path(tmp_path_factory, entries):
    text = "name: gen\nentries:\n" + "".join(f"  - {json_line(e)}\n" for e in entries)
    path = tmp_path_factory.mktemp("fp") / "gen.yaml"
    path.write_text(text, encoding="utf-8")
    with_fast = _outcome(path)
    with mock.patch.object(lists, "keywords_from_plain_json", lambda objs: None):
        without = _outcome(path)
    assert with_fast == without


def test_cli_reports_the_same_line_for_a_bad_entry_in_a_large_list(tmp_path):
    rows = [{"term": f"词{i}", "category": "other", "tags": ["t"]} for i in range(3000)]
    rows[1234] = {"term": "词1234", "tags": "not a list"}  # line 3 + 1234
    rows[2500] = {"term": "   "}
    path = tmp_path / "big.yaml"
    path.write_text("name: big\nentries:\n" + "".join(f"  - {json_line(r)}\n" for r in rows), encoding="utf-8")
    assert read_list_document(path).entries_json is not None  # the harness layout: the fast reader's case
    with mock.patch.object(lists, "keywords_from_plain_json", lambda objs: None):
        expected = [str(p) for p in validate_lists([path]).problems]
    res = run_cli("keywords", "validate", str(path))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    got = [line for line in res.stderr.splitlines() if ": error: " in line]
    assert got == expected
    assert got[0].startswith(f"{path}:1237: error: ") and "tags" in got[0]
    assert got[1].startswith(f"{path}:2503: error: ") and "empty or whitespace" in got[1]


# --------------------------------------------------------------------------- helpers of the reader


_OLD_ESCAPES = re.compile(r"(?<!\\)(?:\\\\)*\\(?:/|u[dD][89a-fA-F])")
_OLD_CHARS = re.compile("[\t\u2028\u2029\x85]")


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from(["\\", "/", "u", "d", "D", "8", "a", "F", "0", "x", '"', "\t", "\u2028", "\x85"]),
               max_size=14))
@example("\\\\/")
@example("\\\\\\/")
@example("\\\\ud800")
@example("\\\\\\uDbff")
def test_json_yaml_differ_matches_the_regex_it_replaces(block):
    assert _json_yaml_differ(block) == bool(_OLD_CHARS.search(block) or _OLD_ESCAPES.search(block))


def test_gc_paused_restores_the_collector_state():
    seen = []
    paused = _gc_paused(lambda: seen.append(gc.isenabled()) or 7)
    assert gc.isenabled()
    assert paused() == 7 and seen == [False] and gc.isenabled()
    failing = _gc_paused(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing()
    assert gc.isenabled()
    gc.disable()
    try:
        paused()
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_a_header_list_in_the_items_indentation_is_not_taken_for_entries(tmp_path, newline):
    # the header's block list uses the same "\n  - " the fast reader splits the entries on
    text = newline.join(["name: h", "categories:", "  - june4", "  - leaders", "entries:",
                         '  - {"term": "六四", "category": "june4"}', '  - {"term": "习近平", "category": "leaders"}', ""])
    path = tmp_path / "h.yaml"
    path.write_bytes(text.encode())
    doc = read_list_document(path)
    assert doc.entries_json is not None
    loaded = load_keyword_list(path)
    assert [e.term for e in loaded.keyword_list.entries] == ["六四", "习近平"]
    assert loaded.keyword_list.categories == ["june4", "leaders"]
    assert loaded.entry_lines == (6, 7)


def test_an_unusual_valid_entry_goes_through_the_model_alone_and_the_rest_stays_fast():
    objs = [{"term": "六四"}, {"term": " 习近平 ", "tags": ["a "]}, {"components": ["新疆", "集中营"]}]
    text = json.dumps(objs, ensure_ascii=False)
    with mock.patch.object(Keyword, "model_validate_json", wraps=Keyword.model_validate_json) as alone:
        fast = keywords_from_plain_json(json.loads(text))
    assert alone.call_count == 1  # only the entry with whitespace to strip
    assert fast is not None and fast[1].term == "习近平" and fast[1].tags == ["a"]
    _same(fast, SLOW.validate_json(text))
    # an invalid entry anywhere: None, and the loader reports Pydantic's errors for the whole block
    bad = json.dumps([*objs, {"term": " ", "tags": [" "]}])
    assert keywords_from_plain_json(json.loads(bad)) is None
    _same(_fast(bad), _slow(bad))
