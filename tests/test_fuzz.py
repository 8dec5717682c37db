"""Bad input, generated: every input yields a valid result or one clear HarnessError, never a traceback.

Keyword lists, probe sets, platform specs and pages are generated with hypothesis; files go
through the same loaders the CLI uses, and a sample of rejected inputs goes through the CLI
itself (in-process) to check the one-line error and exit code 2. Example counts stay modest
to keep the suite fast; the `slow` test runs more.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.cli import main as cli_main
from harness.errors import HarnessError, InputError
from harness.failures import FailureCode
from harness.keywords.lists import load_keyword_list
from harness.models import Verdict
from harness.operations.runs import RunRequest, prepare
from harness.platforms.classification import Classification
from harness.platforms.classify import classify_http
from harness.platforms.registry import PlatformRegistry, load_spec
from harness.platforms.spec import PlatformSpec

from .conftest import FIXTURES

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                derandomize=True)
BUILTIN = PlatformRegistry.default(())
SANDBOX_SPEC_DOC = yaml.safe_load((Path(__file__).resolve().parents[1] / "harness/platforms/builtin/sandbox.yaml")
                                  .read_text(encoding="utf-8"))

# --------------------------------------------------------------------------- strategies

nasty_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "\x00", "\t\n", "六四", "天安门 + 坦克", "a" * 600, "<script>alert(1)</script>",
                     "{query}", "{base_url}", "%s", "../../etc/passwd", "\u202e", "\ufeff", "😀", "\r\n\r\n"]),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True), nasty_text)
json_like = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(nasty_text, inner, max_size=4)),
                         max_leaves=12)


def _mutate(text: str, data: st.DataObject) -> str:
    """Sometimes break the YAML itself: cut it, or splice in characters."""
    how = data.draw(st.sampled_from(["keep", "keep", "cut", "splice"]))
    # positions are drawn as fractions so that the draws never depend on the text's length
    if how == "cut" and text:
        return text[: int(len(text) * data.draw(st.floats(0, 1)))]
    if how == "splice":
        at = int(len(text) * data.draw(st.floats(0, 1)))
        return text[:at] + data.draw(st.sampled_from([":", "- ", "\t", "{", "]", "'", "&a", "*b", "!!python/object:os.system ''", "\x00"])) + text[at:]
    return text


def _write(path: Path, text: str, data: st.DataObject) -> None:
    if data.draw(st.integers(0, 9)) == 0:  # now and then, bytes that are not UTF-8 at all
        path.write_bytes(text.encode("utf-8") + b"\xff\xfe\xc3(")
    else:
        path.write_text(text, encoding="utf-8")


def _dump(doc: object) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


entry = st.one_of(
    nasty_text,
    st.fixed_dictionaries({"term": nasty_text}, optional={"category": nasty_text, "tags": st.lists(nasty_text, max_size=3),
                                                          "date_added": st.one_of(nasty_text, st.just("2024-02-30"))}),
    st.fixed_dictionaries({"components": st.lists(nasty_text, max_size=4)}, optional={"term": nasty_text}),
    json_like,
)
keyword_doc = st.one_of(
    st.fixed_dictionaries({"name": st.one_of(nasty_text, scalars), "entries": st.lists(entry, max_size=8)},
                          optional={"description": nasty_text, "unknown_field": scalars}),
    json_like,
)


def _cli(*argv: str) -> tuple[int, str]:
    """Run the CLI in-process; (exit code, stderr)."""
    err = io.StringIO()
    code = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            cli_main(list(argv))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, err.getvalue()


def _assert_clear(exc: HarnessError, path: Path) -> None:
    text = str(exc)
    assert text and "Traceback" not in text
    if isinstance(exc, InputError):
        assert str(path) in text  # names the file


# --------------------------------------------------------------------------- keyword lists


@FAST
@given(doc=keyword_doc, data=st.data())
def test_keyword_lists_load_or_fail_clearly(tmp_path_factory, doc, data):
    path = tmp_path_factory.mktemp("kw") / "list.yaml"
    _write(path, _mutate(_dump(doc), data), data)
    try:
        loaded = load_keyword_list(path)
    except HarnessError as exc:
        _assert_clear(exc, path)
        if data.draw(st.integers(0, 3)) == 0:  # a sample goes through the CLI too
            code, err = _cli("keywords", "validate", str(path))
            assert code == 2 and "Traceback" not in err and str(path) in err, err
        return
    for e in loaded.keyword_list.entries:
        assert e.term.strip() and not any(ord(c) < 32 for c in e.term)


# --------------------------------------------------------------------------- probe sets

probe_doc = st.fixed_dictionaries(
    {
        "name": st.one_of(st.just("fuzz"), nasty_text, scalars),
        "keywords": st.one_of(
            st.lists(st.fixed_dictionaries({"list": st.one_of(st.just(str(FIXTURES / "keywords" / "mini.yaml")),
                                                              st.just("mini"), nasty_text)},
                                           optional={"limit": scalars, "categories": st.lists(nasty_text, max_size=2),
                                                     "tags": scalars}), max_size=3),
            json_like),
        "platforms": st.one_of(
            st.lists(st.fixed_dictionaries({"name": st.one_of(st.just("sandbox"), st.just("baidu"), nasty_text)},
                                           optional={"rate_limit": json_like, "soft_test": scalars,
                                                     "spec": st.one_of(nasty_text, st.just("missing.yaml")),
                                                     "base_url": nasty_text}), max_size=3),
            json_like),
    },
    optional={
        "controls": st.one_of(json_like, st.fixed_dictionaries({"every": scalars, "lists": st.lists(nasty_text, max_size=2)})),
        "repeats": scalars,
        "timeout_s": scalars,
        "retries": scalars,
        "rate_limit": json_like,
        "variants": json_like,
        "schedule": json_like,
    },
)


@FAST
@given(doc=st.one_of(probe_doc, json_like), data=st.data())
def test_probe_sets_plan_or_fail_clearly_without_writing(tmp_path_factory, doc, data):
    folder = tmp_path_factory.mktemp("ps")
    path = folder / "probe.yaml"
    _write(path, _mutate(_dump(doc), data), data)
    store = folder / "store.db"
    try:
        plan = prepare(RunRequest(path, store, keyword_dirs=(FIXTURES / "keywords",)))
    except HarnessError as exc:
        _assert_clear(exc, path)
        if data.draw(st.integers(0, 3)) == 0:  # a sample goes through the CLI too
            code, err = _cli("run", str(path), "--store", str(store), "-q")
            assert code == 2, err
            assert "Traceback" not in err and err.startswith("error: ") and err.count("\n") <= 2, err
        assert not store.exists()  # nothing written half-way
        return
    assert plan.tasks and all(t.keyword.term for t in plan.tasks)
    assert not store.exists()


# --------------------------------------------------------------------------- platform specs

spec_values = st.one_of(json_like, st.sampled_from([
    {"regex": "("}, {"regex": "a", "group": 3}, {"regex": "(?P<n>a)", "group": "m"}, {"css": "div[["},
    {"css": "div.result"}, {"json": "a.*.b"}, {"text": "x"}, {"css": ":has("}, {"regex": "a{2,1}"},
]))


@FAST
@given(data=st.data())
def test_platform_specs_load_or_fail_clearly(tmp_path_factory, data):
    doc = json.loads(json.dumps(SANDBOX_SPEC_DOC))
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.sampled_from(["top", "signals", "signals_list", "request"]))
        if where == "top":
            doc[data.draw(st.sampled_from(sorted(doc) + ["bogus"]))] = data.draw(spec_values)
        elif where == "request":
            doc["request"][data.draw(st.sampled_from(["url", "params", "method", "headers", "query_encoding"]))] = \
                data.draw(spec_values)
        elif where == "signals":
            doc["signals"][data.draw(st.sampled_from(["result_item", "result_count", "result_domain"]))] = \
                data.draw(spec_values)
        else:
            doc["signals"][data.draw(st.sampled_from(["captcha", "hard", "no_results", "page_ok"]))] = \
                data.draw(st.lists(spec_values, max_size=2))
    path = tmp_path_factory.mktemp("spec") / "sandbox.yaml"
    _write(path, _mutate(_dump(doc), data), data)
    try:
        spec = load_spec(path)
    except HarnessError as exc:
        _assert_clear(exc, path)
        return
    # a spec that loads must be usable: classifying any page yields a Classification, never an exception
    for body in (b"", b"<div class='result'>x</div>", "根据相关法律法规和政策".encode(), b'{"a": [{"b": 1}]}'):
        assert isinstance(classify_http(spec, 200, {"content-type": "text/html; charset=utf-8"}, body), Classification)


# --------------------------------------------------------------------------- pages

JSON_SPEC = PlatformSpec.model_validate({
    "name": "jsonfuzz", "base_url": "http://127.0.0.1:1", "truism": "的", "response_format": "json",
    "signals": {"hard": [{"json": "data.notice"}], "no_results": [{"json": "data.total", "values": [0]}],
                "captcha": [{"json": "verify", "values": [True]}],
                "result_item": {"json": "data.items.*"}, "result_domain": {"json": "data.items.*.domain"},
                "result_count": {"json": "data.total"}},
})
SPECS = [BUILTIN.get("sandbox"), BUILTIN.get("baidu"), BUILTIN.get("toutiao"), JSON_SPEC]
FAILURES = {c.value for c in FailureCode}

html_fragment = st.lists(st.one_of(
    st.sampled_from(['<div class="result" data-domain="a.com">', "</div>", '<div class="nums">约1,234个</div>',
                     "根据相关法律法规和政策", "抱歉，没有找到", "请完成安全验证", "访问过于频繁", "<!--", "<script>",
                     '<meta charset="gbk">', "<div class=result-content>", '<a class="cs-source-content" href="//x.com/">',
                     "<", ">", "&#0;", "&amp", "\x00", "]]>", "<![CDATA[", "<table>", "<p>"]),
    st.text(max_size=20)), max_size=30).map("".join)
bodies = st.one_of(
    html_fragment.map(lambda t: t.encode("utf-8")),
    html_fragment.map(lambda t: t.encode("gbk", "replace")),
    st.binary(max_size=300),
    json_like.map(lambda d: json.dumps(d, ensure_ascii=False).encode()),
)
headers = st.fixed_dictionaries({}, optional={
    "content-type": st.sampled_from(["text/html", "text/html; charset=utf-8", "text/html; charset=gbk",
                                     "text/html; charset=bogus-42", "application/json", "text/html; charset=",
                                     "text/html; charset=utf-32"]),
    "retry-after": nasty_text,
})


@settings(max_examples=150, deadline=None, derandomize=True)
@given(spec_index=st.integers(0, len(SPECS) - 1), status=st.sampled_from([200, 200, 200, 204, 301, 403, 429, 500, 599]),
       hdrs=headers, body=bodies)
def test_any_page_classifies_to_a_verdict_or_a_named_failure(spec_index, status, hdrs, body):
    c = classify_http(SPECS[spec_index], status, hdrs, body)
    assert isinstance(c.verdict, Verdict)
    if c.verdict is Verdict.failure:
        assert c.failure in FAILURES
    else:
        assert c.failure is None
        assert status < 300  # only a 2xx answer can carry a verdict
    if c.verdict.is_censored:
        assert c.verdict is Verdict.hard  # pages alone never say soft: that takes the restricted-truism test
    if "请完成安全验证".encode() in body and SPECS[spec_index].name == "sandbox":
        assert c.verdict is not Verdict.hard  # a CAPTCHA page is never read as censorship
