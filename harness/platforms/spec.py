"""Declarative platform specs: how to query a search platform and read its answers.

A spec is YAML validated by :class:`PlatformSpec`. Researchers add or repair a
platform by editing YAML, not Python (see ``docs/platform-specs.md``).

Placeholders in the request template: ``{query}`` (the query, percent-encoded in the
URL path, raw in parameters and bodies), ``{base_url}``, ``{truism}`` and
``{env:NAME}`` (a secret such as a token, read from the environment at run time and
never stored: it is scrubbed from every URL kept as evidence).
"""

from __future__ import annotations

import codecs
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..models import RateLimit

ENV_PLACEHOLDER_RE = re.compile(r"\{env:([A-Za-z_][A-Za-z0-9_]*)\}")

SIGNAL_KINDS = ("captcha", "rate_limited", "session_invalid", "login_wall", "query_truncated", "hard", "soft",
                "no_results", "page_ok", "shell")
FAILURE_KINDS = {"captcha": "captcha", "rate_limited": "rate_limited", "session_invalid": "session_invalid",
                 "login_wall": "session_required", "query_truncated": "query_too_long"}
"""Signal kinds that make an answer a failure before anything else is read, and the failure code each gives."""
EXTRACTOR_KINDS = ("result_item", "result_count", "result_domain", "result_url")
UNDOCUMENTED_KEYS = frozenset({*SIGNAL_KINDS, *EXTRACTOR_KINDS, "transport", "truism", "soft_test", "request", "combination_separator",
                               "query_encoding", "authorized_domains"})


class StrictModel(BaseModel):
    """Spec models keep whitespace as written: a separator may be a single space."""

    model_config = ConfigDict(extra="forbid")


def _check_regex(pattern: str | None) -> str | None:
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None
    return pattern


_JSON_PATH_RE = re.compile(r"[^()|]+|(?:[^()|]*\.)?\([^()|]+(?:\|[^()|]+)+\)")


def _check_json_path(path: str | None) -> str | None:
    if path is not None and not _JSON_PATH_RE.fullmatch(path):
        raise ValueError(f"invalid json path {path!r}: a dotted path, optionally ending in "
                         "(one|or.another) alternatives")
    return path


def _check_css(selector: str | None) -> str | None:
    if selector is not None:
        import soupsieve

        try:
            soupsieve.compile(selector)
        except Exception as exc:  # soupsieve raises SelectorSyntaxError (a ValueError subclass) and others
            raise ValueError(f"invalid CSS selector {selector!r}: {exc}") from None
    return selector


def check_slug(v: str, what: str = "a name") -> str:
    """A spec's name (platform and item specs): lower-case letters, digits, '_', '-', '.'."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", v):
        raise ValueError(f"{what} is lower-case letters, digits, '_', '-', '.'")
    return v


def check_base_url(v: str) -> str:
    """A spec's ``base_url``: http(s) and a host; kept without its trailing slash."""
    if not re.match(r"https?://[^/\s]+", v):
        raise ValueError("base_url must start with http:// or https:// and name a host")
    return v.rstrip("/")


def check_undocumented(v: list[str], known: frozenset[str]) -> list[str]:
    """A spec's ``undocumented`` list names only parts the spec has."""
    unknown = [k for k in v if k not in known]
    if unknown:
        raise ValueError(f"undocumented names unknown parts {unknown}; use: {', '.join(sorted(known))}")
    return v


class _CheckedPatterns(StrictModel):
    """Refuse a broken regex or CSS selector when the spec loads, not on the first page of a run."""

    @field_validator("regex", check_fields=False)
    @classmethod
    def _regex_ok(cls, v: str | None) -> str | None:
        return _check_regex(v)

    @field_validator("css", check_fields=False)
    @classmethod
    def _css_ok(cls, v: str | None) -> str | None:
        return _check_css(v)

    @field_validator("json_path", check_fields=False)
    @classmethod
    def _json_ok(cls, v: str | None) -> str | None:
        return _check_json_path(v)


class Matcher(_CheckedPatterns):
    """One way of recognising a signal in an answer. At most one of text/regex/css/json/location.

    - ``text``: the decoded body contains this string.
    - ``regex``: the body matches this regular expression (``re.search``).
    - ``css``: the HTML has an element matching this selector (whose text contains ``contains``, if given).
    - ``json``: the JSON body has a value at this dotted path (``a.b.0.c``, ``*`` for every item);
      with ``values``, the value must be one of them. With ``within: CSS`` on an HTML page, the
      path is read in the JSON text of every element the selector matches (a
      ``<script type="application/json">`` payload), and the matcher matches when any one does.
      A string that holds JSON is read into when the path goes on (``data.decision_conf.type``).
    - ``location``: the answer is a redirect whose target (the ``Location`` header made absolute
      against the request URL, scheme included) matches this regular expression (``re.search``).
      Checked before the redirect is followed, on the spec's own origin or elsewhere.

    ``status`` (a list of HTTP status codes) narrows any of them to answers with one of those
    codes; a matcher with only ``status`` matches on the code alone. Without ``status``, body
    matchers look at 2xx answers only (other codes are failures before the page is read) and
    ``location`` matchers at every redirect.
    """

    text: str | None = None
    regex: str | None = None
    css: str | None = None
    json_path: str | None = Field(default=None, alias="json")
    location: str | None = Field(default=None, description="regular expression over a redirect's absolute target URL")
    status: list[int] | None = Field(default=None, description="HTTP status codes this matcher applies to")
    values: list[Any] | None = None
    contains: str | None = None
    within: str | None = Field(default=None, description="CSS selector of elements whose text is the JSON to read")
    name: str | None = Field(default=None, description="signal name recorded in evidence")

    @field_validator("location")
    @classmethod
    def _location_ok(cls, v: str | None) -> str | None:
        return _check_regex(v)

    @field_validator("status")
    @classmethod
    def _status_ok(cls, v: list[int] | None) -> list[int] | None:
        if v is not None:
            if not v:
                raise ValueError("`status` lists at least one HTTP status code")
            bad = [c for c in v if not 100 <= c <= 599]
            if bad:
                raise ValueError(f"`status` takes HTTP status codes (100-599), not {bad}")
        return v

    model_config = StrictModel.model_config | {"populate_by_name": True}

    @model_validator(mode="before")
    @classmethod
    def _plain_string_is_text(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"text": data}
        return data

    @model_validator(mode="after")
    def _exactly_one(self) -> "Matcher":
        given = [k for k in ("text", "regex", "css", "json_path", "location") if getattr(self, k) is not None]
        if len(given) > 1 or (not given and self.status is None):
            raise ValueError("a matcher needs exactly one of text, regex, css, json, location (or only status)")
        if self.location is not None and self.status is not None and not all(300 <= c < 400 for c in self.status):
            raise ValueError("a `location` matcher applies to redirects: its `status` codes must be 3xx")
        if self.values is not None and self.json_path is None:
            raise ValueError("`values` only goes with `json`")
        if self.contains is not None and self.css is None:
            raise ValueError("`contains` only goes with `css`")
        if self.within is not None and self.json_path is None:
            raise ValueError("`within` only goes with `json`")
        _check_css(self.within)
        return self

    @property
    def on_redirect(self) -> bool:
        """Whether this matcher reads a redirect's target rather than a page."""
        return self.location is not None

    def applies_to_status(self, status: int) -> bool:
        """Whether this (page) matcher looks at an answer with HTTP ``status``."""
        if self.status is not None:
            return status in self.status
        return 200 <= status < 300

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        if self.location is not None:
            return f"location:{self.location}"
        if self.text is None and self.regex is None and self.css is None and self.json_path is None:
            return "status:" + "|".join(map(str, self.status or []))
        if self.text is not None:
            return f"text:{self.text}"
        if self.regex is not None:
            return f"regex:{self.regex}"
        if self.css is not None:
            return f"css:{self.css}"
        vals = "" if self.values is None else "=" + "|".join(map(str, self.values))
        return f"json:{self.json_path}{vals}"


class Extractor(_CheckedPatterns):
    """Pull values out of a page. Exactly one of regex/css/json.

    - ``regex``: every match (``group`` selects the group).
    - ``css``: every element matching the selector; its ``attr`` or its text.
    - ``json``: the value(s) at a dotted path; ``*`` walks every item of a list
      (``data.result.*.arcurl``); ``data.*.(url|info.url)`` takes, for every node the part
      before the parenthesis reaches, the first alternative that has a value there. With ``within: CSS`` (HTML pages), the path is read in the JSON text of every
      element the selector matches (one value per element and alternative, as above).

    ``exclude`` drops values (e.g. the ``template_key`` of page furniture that is not a result).
    """

    regex: str | None = None
    group: int | str = 0
    css: str | None = None
    attr: str | None = None
    json_path: str | None = Field(default=None, alias="json")
    within: str | None = Field(default=None, description="CSS selector of elements whose text is the JSON to read")
    exclude: list[Any] = Field(default_factory=list, description="values that are not items (dropped)")

    model_config = StrictModel.model_config | {"populate_by_name": True}

    @model_validator(mode="after")
    def _exactly_one(self) -> "Extractor":
        given = [k for k in ("regex", "css", "json_path") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("an extractor needs exactly one of regex, css, json")
        if self.attr is not None and self.css is None:
            raise ValueError("`attr` only goes with `css`")
        if self.within is not None and self.json_path is None:
            raise ValueError("`within` only goes with `json`")
        _check_css(self.within)
        if self.regex is not None:
            pattern = re.compile(self.regex, re.S)
            known = isinstance(self.group, int) and 0 <= self.group <= pattern.groups
            if not (known or (isinstance(self.group, str) and self.group in pattern.groupindex)):
                raise ValueError(f"group {self.group!r} is not a group of the regular expression {self.regex!r}")
        return self


class Signals(StrictModel):
    """What an answer can show.

    Checked in this order: captcha, rate_limited, session_invalid, login_wall (all failures),
    hard, soft, results, no_results / page_ok. A page with none of these markers is
    ``failure: unexpected_page``, or ``failure: empty_shell`` (retried) when it shows one of
    the ``shell`` markers: the platform's page skeleton served without its content. A
    redirect none of them explains is followed on the spec's origin and is
    ``failure: redirect_offsite`` elsewhere.
    """

    captcha: list[Matcher] = Field(default_factory=list, description="verification / CAPTCHA / anti-bot pages")
    rate_limited: list[Matcher] = Field(default_factory=list, description="throttling pages served with HTTP 200")
    session_invalid: list[Matcher] = Field(
        default_factory=list, description="the platform rejected the session it was given (expired cookies, a bad signature)")
    login_wall: list[Matcher] = Field(
        default_factory=list, description="a login or visitor wall: the platform needs a logged-in session "
                                          "(failure session_required, not retried)")
    query_truncated: list[Matcher] = Field(
        default_factory=list, description="the page says the query was cut (it answers a shorter query than was "
                                          "sent): failure query_too_long, never a verdict")
    hard: list[Matcher] = Field(default_factory=list, description="censorship notices: verdict hard")
    soft: list[Matcher] = Field(
        default_factory=list,
        description="notices that some results were withheld: soft when results remain, hard when none do")
    no_results: list[Matcher] = Field(default_factory=list, description="a genuine 'nothing found' page")
    result_item: Extractor | None = None
    result_count: Extractor | None = None
    result_domain: Extractor | None = None
    result_url: Extractor | None = Field(
        default=None, description="the link of each result, in page order (kept for terms a probe set enrols: watch_results)")
    page_ok: list[Matcher] = Field(
        default_factory=list, description="markers of a normal results page (any one) when results may be empty"
    )
    shell: list[Matcher] = Field(
        default_factory=list, description="markers of the page skeleton served without content (an intermittent "
        "empty bootstrap shell); read only when nothing else matched: failure empty_shell, retried")

    @model_validator(mode="after")
    def _something_to_recognise(self) -> "Signals":
        if self.result_item is None:
            raise ValueError("signals need a result_item extractor (how to count results)")
        if not (self.no_results or self.page_ok or self.hard or self.soft):
            raise ValueError("signals need at least one of no_results, page_ok, hard, soft: "
                             "otherwise an empty page cannot be told from a changed layout")
        return self


class RequestTemplate(StrictModel):
    """The HTTP request for one query."""

    method: Literal["GET", "POST"] = "GET"
    url: str = "{base_url}/search"
    params: dict[str, str] = Field(default_factory=dict, description="query-string parameters, in this order")
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: dict[str, Any] | None = Field(default=None, description="a JSON body (POST APIs)")
    form: dict[str, str] | None = Field(default=None, description="a form-encoded body")
    query_encoding: str = Field(default="utf-8", description="charset used to percent-encode the query (utf-8, gbk ...)")
    space: Literal["%20", "+"] = Field(default="%20", description="how a space is written in the query string")
    max_query_chars: int | None = Field(default=None, ge=1, description="the longest query the platform takes whole "
                                        "(characters); a longer one is not sent (failure query_too_long)")

    @field_validator("query_encoding")
    @classmethod
    def _known_charset(cls, v: str) -> str:
        try:
            codecs.lookup(v)
        except LookupError:
            raise ValueError(f"unknown charset {v!r}") from None
        return v

    @model_validator(mode="after")
    def _uses_the_query(self) -> "RequestTemplate":
        import json

        text = self.url + json.dumps(self.params) + json.dumps(self.json_body) + json.dumps(self.form)
        if "{query}" not in text:
            raise ValueError("the request never uses {query} (in url, params, json_body or form)")
        if self.json_body is not None and self.form is not None:
            raise ValueError("a request has json_body or form, not both")
        if self.method == "GET" and (self.json_body is not None or self.form is not None):
            raise ValueError("a GET request has no body: use method: POST")
        return self

    def env_names(self) -> list[str]:
        import json

        text = self.url + json.dumps([self.params, self.headers, self.json_body, self.form], ensure_ascii=False)
        return sorted(set(ENV_PLACEHOLDER_RE.findall(text)))


class SoftTest(StrictModel):
    """The restricted-truism method for soft censorship.

    ``control`` (truism restricted to a non-authorized domain) must have results; if
    ``probe`` (term + truism restricted to the same domain) has none, results were
    withheld for the term: soft censorship. ``profile_domains`` are the domains the
    optional authorized-domain profile checks one by one for soft-censored terms.
    """

    probe: str = "{query} {truism} site:{domain}"
    control: str = "{truism} site:{domain}"
    domains: list[str] = Field(min_length=1, description="non-authorized domains with results for the truism")
    profile_domains: list[str] = Field(default_factory=list, description="domains for the authorized-domain profile")

    @model_validator(mode="after")
    def _placeholders(self) -> "SoftTest":
        for field_name, needed in (("probe", ("{query}", "{domain}")), ("control", ("{domain}",))):
            value = getattr(self, field_name)
            for ph in needed:
                if ph not in value:
                    raise ValueError(f"soft_test.{field_name} must contain {ph}")
        return self


class BrowserOptions(StrictModel):
    """How the browser transport reads a page (``transport: browser``)."""

    capture: str | None = Field(default=None, description="regular expression on the URL of the response to keep "
                                "as the answer (the search API the page calls); without it, the rendered DOM")
    wait_for: str | None = Field(default=None, description="CSS selector present once the page has rendered "
                                 "(DOM answers)")

    @field_validator("capture")
    @classmethod
    def _regex_ok(cls, v: str | None) -> str | None:
        return _check_regex(v)

    @field_validator("wait_for")
    @classmethod
    def _css_ok(cls, v: str | None) -> str | None:
        return _check_css(v)


class PlatformSpec(StrictModel):
    name: str
    display_name: str = ""
    description: str = ""
    homepage: str | None = None
    kind: Literal["web_search", "social", "video", "qa", "ecommerce", "sandbox", "other"] = "web_search"
    base_url: str
    request: RequestTemplate = Field(default_factory=lambda: RequestTemplate(params={"q": "{query}"}))
    response_format: Literal["html", "json"] = "html"
    page_encoding: str | None = Field(default=None, description="charset when the server does not say; else utf-8")
    combination_separator: str = Field(default=" ", min_length=1)
    truism: str = Field(min_length=1, description="a control query expected always to return results")
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
    transport: Literal["http", "browser"] = Field(
        default="http", description="http: a plain HTTP client; browser: a headless Chromium loads the page "
        "(for sites whose page computes a token in JavaScript), see harness/measure/browser.py")
    browser: BrowserOptions | None = None
    adapter: str | None = Field(default=None, description="a built-in adapter, or an entry point in group "
                                "harness.platforms, for what YAML cannot express (signing, session priming)")
    adapter_options: dict[str, str] = Field(default_factory=dict, description="settings the adapter reads "
                                            "(e.g. URLs, with {base_url} filled in)")

    @field_validator("name")
    @classmethod
    def _slug(cls, v: str) -> str:
        return check_slug(v, "a platform name")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        return check_base_url(v)

    @field_validator("undocumented")
    @classmethod
    def _known_keys(cls, v: list[str]) -> list[str]:
        return check_undocumented(v, UNDOCUMENTED_KEYS)

    @model_validator(mode="after")
    def _transport_is_sound(self) -> "PlatformSpec":
        if self.transport == "browser":
            if self.request.method != "GET" or self.request.json_body is not None or self.request.form is not None:
                raise ValueError("transport: browser loads a page: the request is a GET without a body")
            if self.adapter is not None:
                raise ValueError("transport: browser does not take an adapter (the page signs its own requests)")
            if (self.browser is None or self.browser.capture is None) and self.response_format != "html":
                raise ValueError("transport: browser without browser.capture reads the rendered DOM: "
                                 "response_format must be html")
        elif self.browser is not None:
            raise ValueError("`browser` options only go with transport: browser")
        return self

    @model_validator(mode="after")
    def _method_is_sound(self) -> "PlatformSpec":
        if "hard" in self.undocumented and not self.hard_needs_truism:
            raise ValueError("the hard notice is undocumented: set hard_needs_truism: true so verdicts rely on the truism method")
        if self.response_format == "json":
            for kind in SIGNAL_KINDS:
                for m in getattr(self.signals, kind):
                    if m.css is not None or m.within is not None:
                        raise ValueError(f"signals.{kind}: a JSON platform cannot use css matchers or `within`")
        for m in self.signals.page_ok:
            if m.on_redirect:
                raise ValueError("signals.page_ok: a redirect is not a results page; use no_results or a failure kind")
        return self

    def possible_outcomes(self) -> set[str]:
        """The verdicts (and failure codes, as ``failure:CODE``) this spec's signals can give."""
        out = {"not_censored", "failure:unexpected_page"}
        sig = self.signals
        if sig.hard or self.hard_needs_truism or sig.soft:
            out.add("hard")
        if self.soft_test is not None or any(not m.on_redirect for m in sig.soft):
            out.add("soft")
        if sig.no_results or sig.page_ok:
            out.add("no_results")
        for kind, code in FAILURE_KINDS.items():
            if getattr(sig, kind):
                out.add(f"failure:{code}")
        if sig.shell:
            out.add("failure:empty_shell")
        return out
