from pathlib import Path

import pytest

from harness.errors import KeywordListError, NotFoundError
from harness.keywords.lists import find_list, load_keyword_list, select_entries
from harness.models import KeywordSelection

from .conftest import FIXTURES, run_cli


def write(tmp_path: Path, text: str | bytes, name: str = "lst.yaml") -> Path:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


GOOD = """name: lst
entries:
  - {term: 六四, category: june4}
  - {components: [新疆, 集中营], category: xinjiang}
"""


def test_a_good_list_loads():
    loaded = load_keyword_list(FIXTURES / "keywords" / "mini.yaml")
    assert loaded.name == "mini"
    assert len(loaded.keyword_list.entries) == 12


def test_error_names_file_and_line_for_malformed_yaml(tmp_path):
    p = write(tmp_path, "name: lst\nentries:\n  - {term: 六四\n  - oops: [\n")
    with pytest.raises(KeywordListError) as exc:
        load_keyword_list(p)
    assert str(p) in str(exc.value)
    assert exc.value.line is not None
    assert "invalid YAML" in str(exc.value)


def test_unknown_field_is_reported_with_its_line(tmp_path):
    p = write(tmp_path, GOOD + "  - {term: 法轮功, colour: red}\n")
    with pytest.raises(KeywordListError) as exc:
        load_keyword_list(p)
    assert exc.value.line == 5
    assert "unknown field" in str(exc.value)


def test_whitespace_only_term_is_reported_with_its_line(tmp_path):
    p = write(tmp_path, GOOD + "  - {term: '   '}\n")
    with pytest.raises(KeywordListError) as exc:
        load_keyword_list(p)
    assert exc.value.line == 5
    assert "empty" in str(exc.value)


def test_duplicate_terms_are_reported_with_both_lines(tmp_path):
    p = write(tmp_path, GOOD + "  - {term: 六四}\n")
    with pytest.raises(KeywordListError) as exc:
        load_keyword_list(p)
    assert exc.value.line == 5
    assert "duplicate term" in str(exc.value) and "line 3" in str(exc.value)


def test_duplicate_combination_in_another_order_is_a_duplicate(tmp_path):
    p = write(tmp_path, GOOD + "  - {term: 集中营 + 新疆}\n")
    with pytest.raises(KeywordListError, match="duplicate"):
        load_keyword_list(p)


def test_duplicate_yaml_keys_are_refused(tmp_path):
    p = write(tmp_path, "name: a\nname: b\nentries: []\n")
    with pytest.raises(KeywordListError, match="duplicate key") as exc:
        load_keyword_list(p)
    assert exc.value.line == 2


def test_not_utf8_is_reported(tmp_path):
    p = write(tmp_path, "name: lst\nentries:\n  - 六四\n".encode("gbk"))
    with pytest.raises(KeywordListError, match="not valid UTF-8") as exc:
        load_keyword_list(p)
    assert exc.value.line == 3


def test_empty_file_and_wrong_top_level(tmp_path):
    with pytest.raises(KeywordListError, match="empty"):
        load_keyword_list(write(tmp_path, ""))
    with pytest.raises(KeywordListError, match="mapping"):
        load_keyword_list(write(tmp_path, "- a\n- b\n"))


def test_utf8_bom_and_crlf_are_accepted(tmp_path):
    p = write(tmp_path, ("\ufeff" + GOOD).replace("\n", "\r\n").encode("utf-8"))
    assert len(load_keyword_list(p).keyword_list.entries) == 2


def test_unknown_list_name_is_not_found(tmp_path):
    with pytest.raises(NotFoundError, match="unknown keyword list 'nope'"):
        find_list("nope", [tmp_path])


def test_selection_filters_by_category_and_tag():
    loaded = load_keyword_list(FIXTURES / "keywords" / "mini.yaml")
    sel = KeywordSelection.model_validate({"list": "mini", "categories": ["xinjiang"]})
    assert [e.term for e in select_entries(loaded, sel)] == ["新疆 + 集中营", "新疆 + 再教育"]
    sel = KeywordSelection.model_validate({"list": "mini", "exclude_tags": ["benign"], "limit": 2})
    assert [e.term for e in select_entries(loaded, sel)] == ["六四", "天安门 + 坦克"]


def test_cli_validate_reports_file_line_and_exits_2(tmp_path):
    p = write(tmp_path, GOOD + "  - {term: 六四}\n")
    res = run_cli("keywords", "validate", str(p))
    assert res.returncode == 2
    assert f"{p}:5" in res.stderr.replace("\n", "")
    assert "Traceback" not in res.stderr


def test_project_keyword_lists_are_valid_and_curated():
    from harness.keywords.lists import iter_list_files

    total = 0
    for f in iter_list_files(Path(__file__).resolve().parent.parent / "keywords"):
        loaded = load_keyword_list(f)
        for e in loaded.keyword_list.entries:
            assert e.category, f"{f}: {e.term} has no category"
            assert e.source or loaded.keyword_list.source, f"{f}: {e.term} has no source"
        total += len(loaded.keyword_list.entries)
    assert total >= 150


def test_atomic_writes_keep_permissions_and_give_new_files_the_usual_ones(tmp_path):
    import os
    import stat

    from harness.yamlio import atomic_write_text

    old = os.umask(0o022)
    try:
        fresh = tmp_path / "new.yaml"
        atomic_write_text(fresh, "a: 1\n")
        assert stat.S_IMODE(fresh.stat().st_mode) == 0o644
        kept = tmp_path / "kept.yaml"
        kept.write_text("a: 0\n")
        kept.chmod(0o640)
        atomic_write_text(kept, "a: 2\n")
        assert stat.S_IMODE(kept.stat().st_mode) == 0o640 and kept.read_text() == "a: 2\n"
    finally:
        os.umask(old)
