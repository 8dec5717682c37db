"""Declarative platform specs: how to query a search platform and read its answers.

A spec is YAML validated by :class:`PlatformSpec`. Researchers add or repair a
platform by editing YAML, not Python.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, model_validator

from pydantic import BaseModel, ConfigDict

from ..models import RateLimit


class StrictModel(BaseModel):
    """Spec models keep whitespace as written: a separator may be a single space."""

    model_config = ConfigDict(extra="forbid")


def _check_pattern(regex: str | None, css: str | None) -> "re.Pattern[str] | None":
    """Refuse a broken regex or CSS selector when the spec loads, not on the first page of a run."""
    if css is not None:
        import soupsieve

        try:
            soupsieve.compile(css)
        except Exception as exc:  # soupsieve.SelectorSyntaxError derives from Exception only
            raise ValueError(f"invalid CSS selector {css!r}: {str(exc).splitlines()[0]}") from None
    if regex is not None:
        try:
            return re.compile(regex, re.S)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {regex!r}: {exc}") from None
    return None


class Matcher(StrictModel):
    """One way of recognising a signal on a page. Exactly one of text/regex/css/json.

    - ``text``: the decoded body contains this string.
    - ``regex``: the body matches this regular expression (``re.search``).
    - ``css``: the HTML has an element matching this selector (whose text contains ``contains``, if given).
    - ``json``: the JSON body has a value at this dotted path (``a.b.0.c``); with ``values``,
      the value must be one of them.
    """

    text: str | None = None
    regex: str | None = None
    css: str | None = None
    json_path: str | None = Field(default=None, alias="json")
    values: list[Any] | None = None
    contains: str | None = None
    name: str | None = Field(default=None, description="signal name recorded in evidence")

    model_config = StrictModel.model_config | {"populate_by_name": True}

    @model_validator(mode="before")
    @classmethod
    def _plain_string_is_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"text": data}
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> "Matcher":
        given = [k for k in ("text", "regex", "css", "json_path") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a matcher needs exactly one of text, regex, css, json")
        _check_pattern(self.regex, self.css)
        return self

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.text is not None:
            return f"text:{self.text}"
        if self.regex is not None:
            return f"regex:{self.regex}"
        if self.css is not None:
            return f"css:{self.css}"
        vals = "" if self.values is None else "=" + "|".join(map(str, self.values))
        return f"json:{self.json_path}{vals}"


class Extractor(StrictModel):
    """Pull values out of a page. Exactly one of regex/css/json.

    - ``regex``: every match (``group`` selects the group).
    - ``css``: every element matching the selector; its ``attr`` or its text.
    - ``json``: the value(s) at a dotted path; ``*`` walks every item of a list
      (``data.result.*.arcurl``).
    """

    regex: str | None = None
    group: int | str = 0
    css: str | None = None
    attr: str | None = None
    json_path: str | None = Field(default=None, alias="json")

    model_config = StrictModel.model_config | {"populate_by_name": True}

    @model_validator(mode="after")
    def _exactly_one(self) -> "Extractor":
        given = [k for k in ("regex", "css", "json_path") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("an extractor needs exactly one of regex, css, json")
        pattern = _check_pattern(self.regex, self.css)
        if pattern is not None:
            known = isinstance(self.group, int) and 0 <= self.group <= pattern.groups
            if not (known or (isinstance(self.group, str) and self.group in pattern.groupindex)):
                raise ValueError(f"group {self.group!r} is not a group of the regular expression {self.regex!r}")
        return self


class Signals(StrictModel):
    """What a page can show. Checked in this order: captcha, rate_limited, hard, results, no_results."""

    captcha: list[Matcher] = Field(default_factory=list)
    rate_limited: list[Matcher] = Field(default_factory=list)
    hard: list[Matcher] = Field(default_factory=list, description="censorship notices")
    no_results: list[Matcher] = Field(default_factory=list)
    result_item: Extractor | None = None
    result_count: Extractor | None = None
    result_domain: Extractor | None = None
    page_ok: list[Matcher] = Field(
        default_factory=list, description="markers of a normal results page (any one) when results may be empty"
    )


class RequestTemplate(StrictModel):
    """The HTTP request for one query. ``{query}`` and ``{base_url}`` are substituted."""

    method: Literal["GET", "POST"] = "GET"
    url: str = "{base_url}/search"
    params: dict[str, str] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: dict[str, Any] | None = None
    form: dict[str, str] | None = None
    query_encoding: str = Field(default="utf-8", description="charset used to percent-encode the query")


class SoftTest(StrictModel):
    """The restricted-truism method for soft censorship.

    ``control`` (truism restricted to a non-authorized domain) must have results; if
    ``probe`` (term + truism restricted to the same domain) has none, results were
    withheld for the term: soft censorship.
    """

    probe: str = "{query} {truism} site:{domain}"
    control: str = "{truism} site:{domain}"
    domains: list[str] = Field(min_length=1, description="non-authorized domains with results for the truism")


class PlatformSpec(StrictModel):
    name: str
    display_name: str = ""
    description: str = ""
    homepage: str | None = None
    kind: Literal["web_search", "social", "video", "qa", "ecommerce", "sandbox", "other"] = "web_search"
    base_url: str
    request: RequestTemplate = Field(default_factory=RequestTemplate)
    response_format: Literal["html", "json"] = "html"
    page_encoding: str | None = Field(default=None, description="charset when the server does not say; else utf-8")
    combination_separator: str = " "
    truism: str = Field(description="a control query expected always to return results")
    hard_needs_truism: bool = Field(
        default=False, description="send term + truism, for platforms that censor silently (empty results)"
    )
    soft_test: SoftTest | None = None
    authorized_domains: list[str] = Field(default_factory=list, description="state media and other allowed sources")
    signals: Signals
    rate_limit: RateLimit = Field(default_factory=RateLimit)
    max_body_bytes: int = Field(default=5_000_000, ge=1024)
    undocumented: list[str] = Field(
        default_factory=list,
        description="signals NOT publicly documented; the spec relies on the truism method for these",
    )
    notes: str = ""
    sources: list[str] = Field(default_factory=list)
    adapter: str | None = Field(default=None, description="entry point in group harness.platforms for a Python adapter")
