"""Fixture folders: saved answers of a platform, and the verdict each must give. No network.

A folder (``tests/fixtures/platforms/<name>/``, or one written by ``harness platforms
record``) holds pages, ``NAME.response.yaml`` (the HTTP status and headers a page came with),
``NAME.redirect.yaml`` (a redirect answer: ``{status, location}``) and ``expected.yaml``, a
list of :class:`FixtureCase`. :func:`check_folder` classifies every case with a spec exactly
as the engine would (a redirect through the spec's ``location`` signals, a page through its
page signals, then the truism method and the soft test) and says where the verdict differs
from the expected one, so a researcher can refresh a spec when a site changes and keep the
pages as a regression test (``harness platforms check NAME --fixtures DIR``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InputError
from ..failures import FailureCode
from ..models import Verdict
from .classification import Classification, failure
from .classify import apply_soft_test, apply_truism_method, classify_http, classify_redirect
from .spec import PlatformSpec

EXPECTED = "expected.yaml"
UNVERIFIED = "unverified.yaml"


class FixtureCase(BaseModel):
    """One saved answer and what the spec must conclude from it."""

    model_config = ConfigDict(extra="forbid")

    file: str
    verdict: Verdict | None = Field(default=None, description="the expected verdict (None: only print it)")
    failure: str | None = None
    signals: list[str] = Field(default_factory=list, description="signals that must be among the recorded ones")
    result_items: int | None = None
    result_count: int | None = None
    sent_with_truism: bool = Field(default=False, description="the page answered term + truism (hard_needs_truism)")
    after: str | None = Field(default=None, description="this file answered the soft probe that followed AFTER")
    status: int | None = Field(default=None, description="the HTTP status, when no .response.yaml says it")
    run: str | None = Field(default=None, description="what `harness run` concludes when it differs (VERDICT or failure:CODE)")
    then_truism: str | None = Field(default=None, description="in a run, the closing truism right after gets this file")
    query: str | None = Field(default=None, description="the query that was sent (recorded folders)")
    role: str | None = Field(default=None, description="truism, control, no_results or term (recorded folders)")
    note: str | None = None


class CaseResult(BaseModel):
    case: FixtureCase
    verdict: str
    failure: str | None = None
    signals: list[str] = Field(default_factory=list)
    result_items: int | None = None
    result_count: int | None = None
    problems: list[str] = Field(default_factory=list, description="how the outcome differs from the expected one")

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def outcome(self) -> str:
        return self.verdict if self.failure is None else f"failure:{self.failure}"


def _yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("file not found", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {type(exc).__name__}", path) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise InputError("invalid YAML", path, mark.line + 1 if mark else None) from None


def load_cases(folder: Path) -> list[FixtureCase]:
    """The cases of ``folder/expected.yaml`` (one line naming the file and the problem when it is bad)."""
    path = folder / EXPECTED
    doc = _yaml(path)
    if not isinstance(doc, list):
        raise InputError("expected.yaml is a list of cases ({file: ..., verdict: ...})", path)
    cases = []
    for i, item in enumerate(doc):
        try:
            case = FixtureCase.model_validate(item)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"]) or "case"
            raise InputError(f"case #{i + 1} ({where}): {err['msg']}", path) from None
        for name in (case.file, case.after, case.then_truism):
            if name is not None and (Path(name).name != name or not (folder / name).is_file()):
                raise InputError(f"case #{i + 1}: no file {name!r} in {folder}", path)
        cases.append(case)
    return cases


def load_unverified(folder: Path) -> dict[str, str]:
    """``unverified.yaml``: outcome -> why no saved answer shows it."""
    path = folder / UNVERIFIED
    if not path.exists():
        return {}
    doc = _yaml(path)
    if not isinstance(doc, dict):
        raise InputError("unverified.yaml maps an outcome to why no page shows it", path)
    return {str(k): str(v) for k, v in doc.items()}


def _meta(path: Path) -> dict[str, Any]:
    meta = path.with_name(path.name.rsplit(".", 1)[0] + ".response.yaml")
    if not meta.exists():
        return {}
    doc = _yaml(meta)
    return doc if isinstance(doc, dict) else {}


def answer_of(path: Path) -> tuple[int, dict[str, str], bytes]:
    """A saved answer as a server would send it: (status, headers, body); a redirect has an empty body."""
    if path.name.endswith(".redirect.yaml"):
        doc = _yaml(path)
        if not isinstance(doc, dict) or "location" not in doc:
            raise InputError("a .redirect.yaml has status and location", path)
        return int(doc.get("status", 302)), {"location": str(doc["location"]), "content-type": "text/html"}, b""
    meta = _meta(path)
    headers = {str(k).lower(): str(v) for k, v in (meta.get("headers") or {}).items()}
    if "content-type" not in headers:
        # a JSON API's answer says so; a page's own <meta charset> decides, as on GBK sites
        headers["content-type"] = "application/json; charset=utf-8" if path.suffix == ".json" else "text/html"
    return int(meta.get("status", 200)), headers, path.read_bytes()


def classify_file(spec: PlatformSpec, path: Path, status: int | None = None) -> Classification:
    """One saved answer as the engine reads it: a redirect through the spec's ``location``
    signals (never followed), anything else as an HTTP answer."""
    code, headers, body = answer_of(path)
    if path.name.endswith(".redirect.yaml"):
        target = headers["location"]
        decided = classify_redirect(spec, code, target)
        if decided is not None:
            return decided
        # no signal explains it: the engine follows it on the spec's origin, else redirect_offsite
        return failure(FailureCode.redirect_offsite, f"location:{urlsplit(target).hostname}")
    return classify_http(spec, status if status is not None and not _meta(path).get("status") else code,
                         headers, body)


def classify_case(spec: PlatformSpec, folder: Path, case: FixtureCase) -> Classification:
    c = classify_file(spec, folder / case.file, case.status)
    c = apply_truism_method(spec, c, sent_with_truism=case.sent_with_truism, control_ok=True)
    if case.after is not None:
        c = apply_soft_test(classify_file(spec, folder / case.after), c)
    return c


def check_case(spec: PlatformSpec, folder: Path, case: FixtureCase) -> CaseResult:
    c = classify_case(spec, folder, case)
    res = CaseResult(case=case, verdict=c.verdict.value, failure=c.failure, signals=list(c.signals),
                     result_items=c.result_items, result_count=c.result_count)
    if case.verdict is not None:
        if c.verdict is not case.verdict or c.failure != case.failure:
            want = case.verdict.value if case.failure is None else f"failure:{case.failure}"
            res.problems.append(f"expected {want}, got {res.outcome}")
        missing = [s for s in case.signals if s not in c.signals]
        if missing:
            res.problems.append(f"signals not seen: {', '.join(missing)}")
        if case.result_items is not None and c.result_items != case.result_items:
            res.problems.append(f"expected {case.result_items} result items, got {c.result_items}")
        if case.result_count is not None and c.result_count != case.result_count:
            res.problems.append(f"expected result count {case.result_count}, got {c.result_count}")
    return res


def check_folder(spec: PlatformSpec, folder: Path) -> list[CaseResult]:
    """Every case of the folder, classified with ``spec`` and compared with what was expected."""
    if not folder.is_dir():
        raise InputError("not a folder of saved answers (expected.yaml and pages)", folder)
    return [check_case(spec, folder, case) for case in load_cases(folder)]


def covered_outcomes(spec: PlatformSpec, folder: Path) -> set[str]:
    """The outcomes (verdicts, ``failure:CODE``) the folder's cases give with ``spec``."""
    out = set()
    for case in load_cases(folder):
        c = classify_case(spec, folder, case)
        out.add(f"failure:{c.failure}" if c.verdict is Verdict.failure else c.verdict.value)
    return out
