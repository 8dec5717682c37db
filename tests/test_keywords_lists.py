"""Keyword lists: validate (all problems, file:line), the fast loader, `add` in place, search, stats, export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from harness.errors import KeywordListError
from harness.keywords.lists import (
    add_entry,
    bulk_keys,
    entry_key,
    load_keyword_list,
    read_list_document,
    render_list_yaml,
    search_lists,
    validate_lists,
    variant_key,
)
from harness.models import Keyword, KeywordList

from .conftest import FIXTURES, REPO, run_cli
from .test_import import cli

COMMENTED = FIXTURES / "import" / "commented_list.yaml"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- validate


def test_validate_reports_every_problem_with_file_and_line(tmp_path):
    a = write(tmp_path / "a.yaml", "\n".join([
        "name: a",
        "entries:",
        "  - {term: 六四, category: june4}",
        "  - {term: 法轮功, category: nonsense}",
        "  - {term: '   '}",
        "  - {term: \"坦克\\u0007\"}",
        "  - {term: " + "长" * 501 + "}",
        "  - {term: 六四}",
        "",
    ]))
    b = write(tmp_path / "b.yaml", "name: b\nentries:\n  - {term: 天安门}\n  - {term: 六四, category: june4}\n")
    report = validate_lists([a, b], REPO / "keywords" / "categories.yaml")
    got = {(Path(p.path).name, p.line, p.code) for p in report.problems}
    assert ("a.yaml", 5, "schema") in got  # whitespace-only term
    assert ("a.yaml", 6, "schema") in got  # control character
    assert ("a.yaml", 7, "schema") in got  # overlong
    messages = " | ".join(str(p) for p in report.problems)
    assert "empty or whitespace" in messages and "U+0007" in messages and "longer than 500" in messages
    # a file with schema errors is not checked further; b is
    assert ("b.yaml", 4, "duplicate_across") not in got
    report2 = validate_lists([write(tmp_path / "a2.yaml", "name: a2\nentries:\n  - {term: 六四, category: june4}\n"
                                    "  - {term: 法轮功, category: nonsense}\n  - {term: 六四}\n"), b],
                             REPO / "keywords" / "categories.yaml")
    got2 = {(Path(p.path).name, p.line, p.code) for p in report2.problems}
    assert got2 == {("a2.yaml", 4, "unknown_category"), ("a2.yaml", 5, "duplicate"), ("b.yaml", 4, "duplicate_across")}
    across = next(p for p in report2.problems if p.code == "duplicate_across")
    assert "a2.yaml:3" in across.message


def test_traditional_and_simplified_forms_are_info_not_errors(tmp_path):
    p = write(tmp_path / "l.yaml", "name: l\nentries:\n  - {term: 习近平}\n  - {term: 習近平}\n  - {term: ＸＪＰ}\n"
                                   "  - {term: xjp}\n")
    report = validate_lists([p])
    assert [(x.level, x.line) for x in report.problems if x.code == "written_variant"] == [("info", 4)]
    # full-width vs ASCII is the same term after NFKC: that is a duplicate, an error
    assert [(x.level, x.line) for x in report.problems if x.code == "duplicate"] == [("error", 6)]


def test_declared_variants_must_not_repeat_entries(tmp_path):
    p = write(tmp_path / "l.yaml", "name: l\nentries:\n  - {term: 习近平, variants: [習近平]}\n  - {term: 習近平}\n"
                                   "  - {term: 六四, variants: [六四]}\n  - {term: 法轮功, variants: [法輪功, ＦＬＧ]}\n")
    report = validate_lists([p])
    errs = sorted((x.line, x.message) for x in report.errors)
    assert errs[0][0] == 3 and "is also an entry (line 4)" in errs[0][1]
    assert errs[1][0] == 5 and "repeats the entry itself" in errs[1][1]
    assert len(errs) == 2


def test_cli_validate_exit_codes_and_json(tmp_path):
    good = write(tmp_path / "good.yaml", "name: good\nentries:\n  - {term: 习近平}\n  - {term: 習近平}\n")
    res = cli("keywords", "validate", str(good), "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["errors"] == 0 and data["problems"][0]["level"] == "info"
    bad = write(tmp_path / "bad.yaml", "name: bad\nentries:\n  - {term: 六四, category: nope}\n")
    res = run_cli("keywords", "validate", str(good), str(bad))
    assert res.returncode == 2
    assert f"{bad}:3: error: unknown category 'nope'" in res.stderr.replace("\n", "")
    assert "Traceback" not in res.stderr


def test_project_lists_validate_cleanly():
    res = cli("keywords", "validate", str(REPO / "keywords"), "--json")
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert data["errors"] == 0 and len(data["lists"]) >= 8
    # 习近平 / 習近平 in leaders.yaml are one entry in two written forms: info only
    assert any(p["code"] == "written_variant" and "習近平" in p["message"] for p in data["problems"])


def test_bad_yaml_and_duplicate_keys_in_the_fast_layout(tmp_path):
    p = write(tmp_path / "l.yaml", 'name: l\nentries:\n  - {"term": "a"}\n  - {"term": "b", "term": "c"}\n')
    with pytest.raises(KeywordListError, match="duplicate key") as exc:
        load_keyword_list(p)
    assert exc.value.line == 4
    p = write(tmp_path / "m.yaml", 'name: m\nentries:\n  - {"term": "a"}\n  - {"term": "b"\n')
    with pytest.raises(KeywordListError, match="invalid YAML") as exc:
        load_keyword_list(p)
    assert exc.value.line is not None


def test_schema_errors_in_the_fast_layout_name_the_entry_line(tmp_path):
    kl = KeywordList(name="big", entries=[Keyword(term=f"词{i}") for i in range(50)])
    text = render_list_yaml(kl, header_comments=["generated"]).replace('{"term": "词30"}', '{"term": "词30", "colour": "red"}')
    p = write(tmp_path / "big.yaml", text)
    with pytest.raises(KeywordListError, match="unknown field") as exc:
        load_keyword_list(p)
    assert exc.value.line == text.splitlines().index('  - {"term": "词30", "colour": "red"}') + 1


_tricky = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12).filter(
    lambda s: s.strip() and " + " not in s and s == s.strip())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(_tricky, st.one_of(st.none(), _tricky)), min_size=1, max_size=6,
                unique_by=lambda t: entry_key(Keyword(term=t[0]))))  # 'O' and 'o' are one term: a duplicate
@example(items=[("\\/", None)])  # a backslash then a slash: once mistaken for JSON's "\/" escape
@example(items=[("\\ud83d", "/")])
def test_fast_loader_reads_exactly_what_yaml_reads(tmp_path_factory, items):
    kl = KeywordList(name="p", entries=[Keyword(term=t, notes=n) for t, n in items])
    text = render_list_yaml(kl)
    path = tmp_path_factory.mktemp("fast") / "p.yaml"
    path.write_text(text, encoding="utf-8")
    doc = read_list_document(path)
    assert doc.entries_json is not None  # the fast path was taken
    fast = load_keyword_list(path).keyword_list
    slow = KeywordList.model_validate(yaml.safe_load(text))
    assert fast == slow


def test_block_layout_gives_entry_lines(tmp_path):
    loaded = load_keyword_list(COMMENTED)
    assert [loaded.line_of_entry(i) for i in range(3)] == [10, 14, 20]


def test_bulk_keys_match_single_keys():
    entries = [Keyword(term="習近平"), Keyword(components=["新疆", "集中營"]), Keyword(term="ＸＪＰ"), Keyword(term="Ab")]
    keys, vkeys = bulk_keys(entries)
    assert keys == [entry_key(e) for e in entries]
    assert vkeys == [variant_key(e.components) for e in entries]
    assert vkeys[0] == ("习近平",) and vkeys[1] == ("新疆", "集中营") and keys[2] == ("xjp",)


# --------------------------------------------------------------------------- add


def _added_lines(before: str, after: str) -> list[str]:
    """The lines `after` has in addition to `before`, asserting that no existing line changed."""
    b, a = before.splitlines(keepends=True), after.splitlines(keepends=True)
    i = 0
    while i < len(b) and b[i] == a[i]:
        i += 1
    j = 0
    while j < len(b) - i and b[len(b) - 1 - j] == a[len(a) - 1 - j]:
        j += 1
    assert i + j == len(b), f"existing lines changed: {b[i:len(b) - j]}"
    return a[i:len(a) - j]


def test_add_round_trips_a_commented_file_unchanged_apart_from_the_new_entry(tmp_path):
    p = tmp_path / "commented.yaml"
    shutil.copy(COMMENTED, p)
    before = p.read_bytes()
    result = add_entry(p, Keyword(term="法轮功", category="religion", tags=["falun gong"], notes="added"))
    after = p.read_bytes()
    added = _added_lines(before.decode(), after.decode())
    assert added == ['  - term: "法轮功"\n', '    category: "religion"\n', '    tags: ["falun gong"]\n',
                     '    notes: "added"\n']
    assert after.endswith(b"# a comment at the very end\n")
    loaded = load_keyword_list(p)
    assert loaded.keyword_list.entries[-1].term == "法轮功"
    assert result.line == loaded.line_of_entry(3) == 23


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_add_keeps_crlf_bom_and_flow_layout(tmp_path, newline):
    text = "# kept\nname: f\nentries:\n  - {term: 六四, category: june4}  # note\n  - {term: 天安门}\n\n# end\n"
    p = tmp_path / "f.yaml"
    p.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", newline).encode())
    add_entry(p, Keyword(components=["新疆", "集中营"], category="xinjiang"))
    raw = p.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    added = _added_lines(text.replace("\n", newline), raw.decode("utf-8-sig"))
    assert added == ['  - {"components": ["新疆", "集中营"], "category": "xinjiang"}' + newline]


def test_add_after_a_block_scalar_and_without_final_newline(tmp_path):
    p = write(tmp_path / "b.yaml", "name: b\nentries:\n  - term: 六四\n    notes: |\n      two\n      lines\n")
    add_entry(p, Keyword(term="天安门"))
    assert p.read_text(encoding="utf-8").endswith('      lines\n  - term: "天安门"\n')
    q = write(tmp_path / "c.yaml", "name: c\nentries:\n  - 六四")
    add_entry(q, Keyword(term="天安门"))
    assert q.read_text(encoding="utf-8") == 'name: c\nentries:\n  - 六四\n  - {"term": "天安门"}'
    r = write(tmp_path / "d.yaml", "name: d  # x\nentries: []  # none yet\n")
    add_entry(r, Keyword(term="天安门"))
    assert load_keyword_list(r).keyword_list.entries[0].term == "天安门"


def test_add_refuses_duplicates_and_leaves_the_file_alone(tmp_path):
    p = tmp_path / "commented.yaml"
    shutil.copy(COMMENTED, p)
    before = p.read_bytes()
    with pytest.raises(KeywordListError, match="already in the list"):
        add_entry(p, Keyword(components=["下台", "习近平"]))
    assert p.read_bytes() == before
    res = add_entry(p, Keyword(term="天安門"))
    assert res.notes and "another written form of '天安门'" in res.notes[0]


def test_cli_add(tmp_path):
    p = tmp_path / "commented.yaml"
    shutil.copy(COMMENTED, p)
    res = cli("keywords", "add", str(p), "白纸运动", "--category", "collective_action", "--tags", "a,b",
                  "--source", "curated", "--notes", "2022", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["line"] == 23
    e = load_keyword_list(p).keyword_list.entries[-1]
    assert (e.term, e.category, e.tags, e.source, e.notes) == ("白纸运动", "collective_action", ["a", "b"], "curated", "2022")
    res = cli("keywords", "add", str(p), "--components", "新疆,再教育", "--category", "xinjiang")
    assert res.returncode == 0, res.stderr
    assert load_keyword_list(p).keyword_list.entries[-1].components == ["新疆", "再教育"]
    before = p.read_bytes()
    for args in (["白纸运动"], ["x", "--category", "nope"], ["   "], ["a\tb"]):
        res = cli("keywords", "add", str(p), *args)
        assert res.returncode == 2, args
        assert "Traceback" not in res.stderr and res.stderr.startswith("error:")
    assert p.read_bytes() == before


# --------------------------------------------------------------------------- search, stats, export


def test_search_finds_terms_components_and_variants(tmp_path):
    p = write(tmp_path / "l.yaml", "name: l\nentries:\n  - {term: 习近平}\n  - {components: [習近平, 下台]}\n"
                                   "  - {term: 六四, variants: [陆肆]}\n  - {components: [新疆, 集中营]}\n")
    lists = [load_keyword_list(p)]
    hits = {(h.line, h.match) for h in search_lists("习近平", lists)}
    assert hits == {(3, "term"), (4, "variant_component")}
    assert {(h.line, h.match) for h in search_lists("習近平", lists)} == {(3, "variant"), (4, "component")}
    assert [(h.line, h.match) for h in search_lists("陆肆", lists)] == [(5, "variant")]
    assert [(h.line, h.match) for h in search_lists("集中营 + 新疆", lists)] == [(6, "term")]
    assert search_lists("法轮功", lists) == []
    res = cli("keywords", "search", "新疆", str(p), "--json")
    assert res.returncode == 0 and json.loads(res.stdout)[0]["match"] == "component"


def test_stats_and_export_csv(tmp_path):
    res = cli("keywords", "stats", str(REPO / "keywords"), "--json")
    assert res.returncode == 0, res.stderr
    stats = {s["name"]: s for s in json.loads(res.stdout)}
    assert stats["leaders"]["entries"] == 50 and stats["leaders"]["combinations"] >= 5
    out = tmp_path / "all.csv"
    res = cli("keywords", "export", "--csv", str(REPO / "keywords" / "leaders.yaml"), "--out", str(out))
    assert res.returncode == 0, res.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("keyword,category_code,category_description,date_added,source,notes,script,language")
    assert any(ln.startswith("习近平 + 三连任,leaders,Leaders,") for ln in lines)


def test_a_declared_variant_that_is_no_valid_keyword_is_one_clear_error(tmp_path):
    # a declared form is probed as a keyword of its own: 7 components or an empty component used
    # to pass the schema and then fail inside validate (and run) as an internal error, exit 70
    p = write(tmp_path / "v.yaml", 'name: v\nentries:\n  - {"term": "x"}\n'
                                   '  - {"term": "y", "variants": ["a + b + c + d + e + f + g"]}\n'
                                   '  - term: z\n    variants: ["a + \\u3000 + b"]\n')
    res = run_cli("keywords", "validate", str(p))
    assert res.returncode == 2 and "internal error" not in res.stderr and "Traceback" not in res.stderr
    errors = [line for line in res.stderr.splitlines() if ": error: " in line]
    assert errors[0].startswith(f"{p}:4: error: ") and "at most 6 components" in errors[0]
    assert errors[1].startswith(f"{p}:5: error: ") and "a component of a variant is empty" in errors[1]
    assert len(errors) == 2
