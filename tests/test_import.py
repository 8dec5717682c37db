"""`harness keywords import`: every shape of the Citizen Lab data, with small fixtures written here."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import subprocess

import pytest

from harness.cli import main
from harness.errors import KeywordListError
from harness.keywords.importers import import_file, write_import
from harness.keywords.lists import export_csv, load_keyword_list, validate_lists

from .conftest import FIXTURES, run_cli

IMPORT = FIXTURES / "import"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the harness CLI in this process (much faster than a subprocess); same result shape as run_cli."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def by_term(result):
    return {e.term: e for e in result.keyword_list.entries}


def skipped(result) -> dict[str, int]:
    return {k: t.count for k, t in result.report.skipped.items()}


def flagged(result) -> dict[str, int]:
    return {k: t.count for k, t in result.report.flags.items()}


def adds_up(result) -> bool:
    r = result.report
    return r.rows == r.imported + r.merged + r.skipped_total


def test_search_rules_with_spaced_plus():
    res = import_file(IMPORT / "rules.txt")
    assert res.report.format == "rules"
    terms = by_term(res)
    assert set(terms) == {"六四", "64 + 事件", "习近平", "Falun Gong"}
    assert terms["64 + 事件"].components == ["64", "事件"]
    assert terms["Falun Gong"].components == ["Falun Gong"]  # a phrase, not a combination
    # other written forms are kept as declared variants of the first form
    assert terms["习近平"].variants == ["習近平"]
    assert terms["64 + 事件"].variants == ["６４ + 事件"]
    assert skipped(res) == {"duplicate": 2, "too_many_components": 1, "empty_component": 1, "control_character": 1}
    assert res.report.merged == 2 and adds_up(res)
    dup_examples = [text for _, text in res.report.skipped["duplicate"].examples]
    assert any("事件 + 64" in t and "first at line 2" in t for t in dup_examples)
    assert res.report.skipped["control_character"].examples[0] == (12, "法轮\\x02功")


def test_wechat_qqmail_bare_plus():
    res = import_file(IMPORT / "qqmail.txt")
    assert res.report.format == "plus"
    terms = by_term(res)
    assert terms["刘晓波 + 诺贝尔 + 和平奖"].components == ["刘晓波", "诺贝尔", "和平奖"]
    assert "六四" in terms and "天安门" in terms
    assert skipped(res) == {"duplicate": 1}  # 集中营+新疆 is 新疆+集中营
    assert adds_up(res)


def test_yy_list_with_bom_crlf_comments_ampersand_wildcards_and_regexes():
    res = import_file(IMPORT / "yy_hlist.plain")
    assert res.report.format == "lines"
    terms = by_term(res)
    assert terms["平反 + 六四"].components == ["平反", "六四"]
    assert "63+1六月四号" in terms and "非常6+4" in terms  # '+' too rare here to be a syntax
    assert "64学潮" in terms  # surrounding spaces trimmed, CR removed
    assert terms["自由门"].variants == ["自由門"]
    assert skipped(res) == {"comment": 2, "wildcard": 1, "regular_expression": 1, "match_pattern": 2}
    assert flagged(res)["ampersand_combination"] == 1
    assert flagged(res)["literal_plus_kept"] == 2
    assert not any(t.startswith("\ufeff") for t in terms)
    assert adds_up(res)


def test_space_joined_words_are_inferred_combinations_and_flagged():
    res = import_file(IMPORT / "tomskype.plain")
    terms = by_term(res)
    inferred = terms["先帝 + 病危"]
    assert inferred.components == ["先帝", "病危"]
    assert "inferred-combination" in inferred.tags and "inferred" in (inferred.notes or "")
    assert terms["德江 + 723 + 下令"].is_combination
    assert terms["FlexiSpy PRO"].components == ["FlexiSpy PRO"]  # Latin phrase stays a phrase
    assert flagged(res)["inferred_combination"] == 3
    assert "胡 + 锦涛" in terms  # a different entry from 胡锦涛: reported, not merged silently
    assert terms["共 产 党"].components == ["共 产 党"]  # spaced-out characters: an evasion spelling
    assert flagged(res)["spaced_characters_kept"] == 1


def test_sina_show_level_prefix_is_removed():
    res = import_file(IMPORT / "sinashow.plain")
    terms = by_term(res)
    assert {"六四", "天安门", "达赖"} <= set(terms)
    assert flagged(res)["numbered_prefix_removed"] == 5
    assert skipped(res)["wildcard"] == 1
    assert "校花&#8658;" in terms  # an HTML entity is debris, not an & combination


def test_citizenlab_csv_with_translations_dates_languages():
    res = import_file(IMPORT / "wechat_709.csv")
    assert res.report.format == "csv" and "'Keyword'" in res.report.detail
    terms = by_term(res)
    e = terms["709 + 律师 + 抓捕"]
    assert e.translation == "709 + lawyers + arrest"
    assert e.date_added == dt.date(2017, 3, 1)
    assert e.language == "Simplified Chinese"
    assert e.variants == ["709 + 律師 + 抓捕"]
    assert flagged(res)["component_count_mismatch"] == 1  # 王全璋+妻子 says 3 components
    assert skipped(res) == {"empty": 1}
    assert adds_up(res)


def test_wechat_combo_rows_split_on_spaces_and_on_x():
    res = import_file(IMPORT / "wechat_oats.csv")
    terms = by_term(res)
    assert terms["法轮功 + 真相"].components == ["法轮功", "真相"]
    assert "inferred-combination" not in terms["法轮功 + 真相"].tags  # declared by the Keyword Type column
    assert terms["15日实行 + 全市大罢工 + 灌云 + 连云港"].is_combination
    assert terms["六四事件"].components == ["六四事件"]
    assert "theme:Religion" in terms["法轮功 + 真相"].tags
    assert "Note: a note, with a comma" in (terms["法轮功 + 真相"].notes or "")


def test_ongoing_csv_with_bom_multiline_field_and_dates():
    res = import_file(IMPORT / "ongoing.csv")
    terms = by_term(res)
    assert terms["习近平 + 独裁"].date_added == dt.date(2023, 1, 2)
    assert "Source: https://example.org/a" in (terms["习近平 + 独裁"].notes or "")
    assert skipped(res)["control_character"] == 1  # the quoted field holds a newline
    assert skipped(res)["duplicate"] == 1
    assert res.report.skipped["control_character"].examples[0][0] == 5


def test_project_csv_round_trips_through_export(tmp_path):
    res = import_file(IMPORT / "home.csv")
    assert res.report.detail.startswith("project CSV")
    terms = by_term(res)
    assert terms["六四"].tags == ["date", "evasion"] and terms["六四"].source == "Citizen Lab, Missing Links (2023)"
    assert terms["习近平"].variants == ["習近平"]
    out = tmp_path / "mine.yaml"
    write_import(res, out)
    loaded = load_keyword_list(out)
    csv_text = export_csv([loaded])
    again = tmp_path / "again.csv"
    again.write_text(csv_text, encoding="utf-8")
    res2 = import_file(again)
    assert [e.model_dump() for e in res2.keyword_list.entries] == [e.model_dump() for e in res.keyword_list.entries]


def test_wrong_column_count_names_file_and_line(tmp_path):
    with pytest.raises(KeywordListError, match="wrong number of columns: 4 instead of 2") as exc:
        import_file(IMPORT / "ragged.csv")
    assert exc.value.line == 3
    out = tmp_path / "x.yaml"
    res = run_cli("keywords", "import", str(IMPORT / "ragged.csv"), "--out", str(out))
    assert res.returncode == 2
    assert "ragged.csv:3: wrong number of columns" in res.stderr
    assert "Traceback" not in res.stderr
    assert not out.exists() and not list(tmp_path.iterdir())


def test_undecodable_bytes_name_file_and_line(tmp_path):
    res = run_cli("keywords", "import", str(IMPORT / "gbk.txt"), "--out", str(tmp_path / "x.yaml"))
    assert res.returncode == 2
    assert "gbk.txt:3: not valid UTF-8" in res.stderr
    assert "Traceback" not in res.stderr
    assert not list(tmp_path.iterdir())


def test_a_csv_without_a_keyword_column_is_refused():
    with pytest.raises(KeywordListError, match="no keyword column") as exc:
        import_file(IMPORT / "timeline.csv")
    assert exc.value.line == 1


def test_cli_import_writes_a_valid_list_with_provenance(tmp_path):
    out = tmp_path / "rules.yaml"
    res = cli("keywords", "import", str(IMPORT / "rules.txt"), "--out", str(out), "--name", "cl-rules",
                  "--source", "Citizen Lab, Missing Links (2023)", "--licence", "CC-BY-NC-SA-4.0",
                  "--attribution", "Data from Citizen Lab, github.com/citizenlab/chat-censorship",
                  "--category", "june4", "--json")
    assert res.returncode == 0, res.stderr
    loaded = load_keyword_list(out)
    kl = loaded.keyword_list
    assert kl.name == "cl-rules" and kl.licence == "CC-BY-NC-SA-4.0"
    assert kl.source == "Citizen Lab, Missing Links (2023)" and "citizenlab" in (kl.attribution or "")
    assert {e.category for e in kl.entries} == {"june4"}
    assert out.read_text(encoding="utf-8").startswith("# Imported by `harness keywords import` from rules.txt")
    assert validate_lists([out]).errors == []
    import json

    report = json.loads(res.stdout)
    assert report["imported"] == 4 and report["skipped"] == 5 and report["merged_as_variants"] == 2
    assert report["skipped_by_reason"]["too_many_components"]["examples"][0]["line"] == 8
    # an existing file is not overwritten without --force
    again = cli("keywords", "import", str(IMPORT / "rules.txt"), "--out", str(out))
    assert again.returncode == 2 and "exists" in again.stderr


def test_cli_import_refuses_an_unknown_category(tmp_path):
    res = cli("keywords", "import", str(IMPORT / "rules.txt"), "--out", str(tmp_path / "x.yaml"),
                  "--category", "nope")
    assert res.returncode == 2 and "unknown category 'nope'" in res.stderr
    assert not list(tmp_path.iterdir())


def test_explicit_format_overrides_detection():
    res = import_file(IMPORT / "qqmail.txt", fmt="lines")
    assert "法轮功+真相" in by_term(res)
    with pytest.raises(KeywordListError, match="unknown format"):
        import_file(IMPORT / "qqmail.txt", fmt="nope")
