"""Reports: one self-contained HTML file (inline CSS and SVG, no script, no external asset) and Markdown.

The HTML comes from the Jinja2 template ``harness/analysis/templates/report.html.j2`` with
autoescaping on: everything that came from a platform or a keyword list (terms, platform and
list names, signals, URLs, body excerpts) is escaped by :func:`h` (``html.escape`` with quotes)
before it reaches the page; only Markup this module builds (:func:`safe_link`, the CSS) passes
as is; links are emitted only for ``http``/``https`` URLs. This module computes what the page
shows (counts, chart and heatmap coordinates); the template lays it out, one ``{% block %}``
per section. A Content-Security-Policy meta tag forbids scripts and remote loads as a second
line of defence. The report is meant to be shared: it names no local path, host or process.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

import jinja2
from markupsafe import Markup
from pydantic import BaseModel, Field

from ..errors import NotFoundError
from ..models import Run, is_isolation_run
from ..store.sqlite import Store, utcnow
from .diff import NOT_CONFIRMABLE, UNKNOWN, DiffResult, Transition, cross_diff, default_pair, diff_runs, md_escape
from .items import ITEM_STATES, SURVIVAL_HOURS, ItemDiff, Survival, SurvivalCurve, diff_items, runs_with_items, survival

VERDICT_COLOURS = {
    "hard": "#b2182b", "soft": "#ef8a62", "not_censored": "#67a9cf", "no_results": "#d1e5f0",
    UNKNOWN: "#bbbbbb", "absent": "#ffffff",
}
PLATFORM_COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
                    "#1f78b4", "#b15928"]
EXCERPT_CHARS = 600
MAX_EVIDENCE = 200


def h(value: object) -> str:
    """Escape anything for HTML text or a quoted attribute value."""
    return html.escape("" if value is None else str(value), quote=True)


def safe_link(url: str | None, label: str | None = None) -> str:
    """An ``<a>`` for http(s) URLs only; anything else (``javascript:``, ``data:``) is shown as text."""
    if not url:
        return ""
    text = h(label if label is not None else url)
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return text
    if scheme in ("http", "https") and not any(ch in url for ch in "\x00\r\n\t"):
        return f'<a href="{h(url.strip())}" rel="noopener noreferrer nofollow">{text}</a>'
    return f"<code>{text}</code>"


class Evidence(BaseModel):
    measurement_id: str
    status_code: int | None = None
    final_url: str | None = None
    signals: list[str] = Field(default_factory=list)
    body_sha256: str | None = None
    body_size: int | None = None
    excerpt: str | None = None
    query: str | None = None
    failure: str | None = None
    confirmed: bool | None = None


class VantagePoint(BaseModel):
    """One vantage point's latest complete run of the probe set, as the report's vantage sees it."""

    vantage: str
    run_id: str
    started_at: dt.datetime
    probe_cc: str
    probe_asn: str
    counts: dict[str, int] = Field(default_factory=dict, description="probe verdicts")
    differences: dict[str, int] | None = Field(default=None, description="cross-vantage differences against the "
                                                                          "report's vantage (None: it is that vantage)")


class ReportData(BaseModel):
    title: str
    generated_at: dt.datetime
    store: str = Field(description="where the data came from (never printed in the report: it is a local path)")
    probe_set: str
    vantage: str
    runs: list[Run]
    run_counts: dict[str, dict[str, int]] = Field(default_factory=dict, description="run id → verdict → count")
    positive_controls: dict[str, dict[str, dict[str, Any]]] = Field(
        default_factory=dict, description="run id → platform → {detected, answered, missed: [terms]}: terms known "
                                          "to be censored there, and how many the run detected")
    platform_censored: dict[str, dict[str, int]] = Field(default_factory=dict, description="platform → run → censored keys")
    heat_rows: list[tuple[str, str]] = Field(default_factory=list, description="(platform, term)")
    heat: dict[str, dict[str, str]] = Field(default_factory=dict, description="'platform\\x1fterm' → run → state")
    diff: DiffResult | None = None
    evidence: dict[str, Evidence] = Field(default_factory=dict)
    vantages: list[VantagePoint] = Field(default_factory=list, description="every vantage point of the probe set in "
                                                                           "the store (a team store holds them all)")
    has_search: bool = True
    item_counts: dict[str, dict[str, int]] = Field(default_factory=dict, description="run id → item state → count")
    item_diff: ItemDiff | None = None
    survival: Survival | None = None
    survival_runs: int = Field(default=0, description="runs with watched items the survival figures come from")


def _excerpt(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace")
    return text[:EXCERPT_CHARS] + ("…" if len(text) > EXCERPT_CHARS else "")


def _evidence(store: Store, measurement_id: str) -> Evidence | None:
    from ..models import Measurement

    row = store.conn.execute("SELECT doc FROM measurements WHERE measurement_id=?", (measurement_id,)).fetchone()
    if row is None:
        return None
    m = Measurement.model_validate_json(row[0])
    excerpt = None
    key = m.evidence.stored_key  # the stored form: a capped prefix or a copy with secrets replaced
    if key:
        try:
            excerpt = _excerpt(store.get_body(key))
        except NotFoundError:
            excerpt = None
    return Evidence(measurement_id=m.measurement_id, status_code=m.evidence.status_code, final_url=m.evidence.final_url,
                    signals=m.test_keys.signals, body_sha256=m.evidence.body_sha256, body_size=m.evidence.body_size,
                    excerpt=excerpt, query=m.query, failure=m.failure, confirmed=m.test_keys.confirmed)


def collect(store: Store, *, probe_set: str | None = None, vantage: str | None = None, max_runs: int = 30,
            max_terms: int = 60, title: str | None = None) -> ReportData:
    """Gather what a report shows: runs of one probe set at one vantage point, oldest first."""
    latest_all = [r for r in store.list_runs(probe_set) if probe_set or not is_isolation_run(r.probe_set)][:1]
    if not latest_all:
        raise NotFoundError(f"no runs in {store.path}" + (f" of probe set {probe_set!r}" if probe_set else ""))
    ps = probe_set or latest_all[0].probe_set
    runs = [r for r in store.list_runs(ps) if vantage is None or r.vantage == vantage]
    if not runs:
        raise NotFoundError(f"no runs of probe set {ps!r} at vantage {vantage!r}")
    vt = runs[0].vantage if vantage is None else vantage
    runs = [r for r in runs if r.vantage == vt][:max_runs][::-1]
    ids = [r.run_id for r in runs]
    marks = ",".join("?" * len(ids))
    run_counts: dict[str, dict[str, int]] = {r: {} for r in ids}
    item_counts: dict[str, dict[str, int]] = {r: {} for r in ids}
    for run_id, role, verdict, n in store.conn.execute(
        f"SELECT run_id, role, verdict, COUNT(*) FROM measurements WHERE run_id IN ({marks}) AND role IN ('probe', 'item')"
        f" GROUP BY run_id, role, verdict", ids):
        (run_counts if role == "probe" else item_counts)[run_id][verdict] = n
    has_search = any(run_counts[r] for r in ids)
    positive: dict[str, dict[str, dict[str, Any]]] = {r: {} for r in ids}
    for run_id, platform, term, verdict in store.conn.execute(
            f"SELECT run_id, platform, input, verdict FROM measurements WHERE run_id IN ({marks})"
            f" AND role='positive_control' ORDER BY platform, input", ids):
        row = positive[run_id].setdefault(platform, {"detected": 0, "answered": 0, "missed": []})
        if verdict == "failure":
            continue  # unknown: neither detected nor missed
        row["answered"] += 1
        if verdict in ("hard", "soft"):
            row["detected"] += 1
        else:
            row["missed"].append(term)
    platform_censored: dict[str, dict[str, int]] = defaultdict(dict)
    for run_id, platform, n in store.conn.execute(
        f"SELECT run_id, platform, COUNT(DISTINCT input) FROM measurements WHERE run_id IN ({marks})"
        f" AND role='probe' AND verdict IN ('hard','soft') GROUP BY run_id, platform", ids):
        platform_censored[platform][run_id] = n
    for platform in [p for (p,) in store.conn.execute(
            f"SELECT DISTINCT platform FROM measurements WHERE run_id IN ({marks}) AND role='probe'", ids)]:
        platform_censored.setdefault(platform, {})

    diff = None
    evidence: dict[str, Evidence] = {}
    if len(runs) >= 2:
        a, b = default_pair(store, runs[-2].run_id, runs[-1].run_id)
        diff = diff_runs(store, a.run_id, b.run_id)
        for c in diff.changes[:200]:
            for mid in (c.measurement_id, c.before_measurement_id):
                if mid and mid not in evidence:
                    ev = _evidence(store, mid)
                    if ev is not None:
                        evidence[mid] = ev

    # heatmap rows: what changed first, then what is censored now, then the rest (capped)
    chosen: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()

    def take(key: tuple[str, str]) -> None:
        if key not in seen and len(chosen) < max_terms:
            seen.add(key)
            chosen.append(key)

    if diff is not None:
        for c in diff.changes:
            take((c.platform, c.term))
    for platform, term in store.conn.execute(
        "SELECT platform, input FROM measurements WHERE run_id=? AND role='probe' AND vantage=?"
        " ORDER BY verdict IN ('hard','soft') DESC, platform, input LIMIT ?", (ids[-1], vt, max_terms * 4)):
        take((platform, term))
    heat: dict[str, dict[str, str]] = {}
    run_set = set(ids)
    for platform, term in chosen:
        states: dict[str, tuple[str, str]] = {}
        for run_id, verdict, ts in store.conn.execute(
            "SELECT run_id, verdict, measurement_start_time FROM measurements INDEXED BY measurements_by_input"
            " WHERE input=? AND platform=? AND vantage=? AND role='probe'", (term, platform, vt)):
            if run_id not in run_set:
                continue
            prev = states.get(run_id)
            state = UNKNOWN if verdict == "failure" else verdict
            if prev is None or (state != UNKNOWN and (prev[0] == UNKNOWN or ts > prev[1])) or (
                    state == UNKNOWN and prev[0] == UNKNOWN and ts > prev[1]):
                states[run_id] = (state, ts)
        heat[f"{platform}\x1f{term}"] = {r: s for r, (s, _) in states.items()}
    item_diff = None
    surv = None
    item_runs: list[str] = []
    if any(item_counts[r] for r in ids):
        all_runs = [r for r in store.list_runs(ps) if r.vantage == vt]  # every run: an item's first sighting may be old
        item_runs = runs_with_items(store, all_runs)
        surv = survival(store, item_runs, vt)
        with_items = [r for r in runs if item_counts[r.run_id]]
        if len(with_items) >= 2:
            item_diff = diff_items(store, with_items[-2].run_id, with_items[-1].run_id)
            for c in item_diff.changes[:200]:
                for mid in (c.measurement_id, c.before_measurement_id):
                    if mid and mid not in evidence:
                        ev = _evidence(store, mid)
                        if ev is not None:
                            evidence[mid] = ev
    return ReportData(title=title or f"Censorship report: {ps}", generated_at=utcnow(), store=store.location,
                      probe_set=ps, vantage=vt, runs=runs, run_counts=run_counts, positive_controls=positive,
                      platform_censored=dict(sorted(platform_censored.items())), heat_rows=chosen, heat=heat,
                      diff=diff, evidence=evidence, has_search=has_search, item_counts=item_counts,
                      item_diff=item_diff, survival=surv, survival_runs=len(item_runs),
                      vantages=_vantage_points(store, ps, vt))


def _vantage_points(store: Store, probe_set: str, vantage: str) -> list[VantagePoint]:
    """The latest complete run of each vantage point of the probe set, with its differences from
    ``vantage``'s (by ``cross_diff``); empty when the store holds one vantage point only."""
    latest: dict[str, Run] = {}
    for r in store.list_runs(probe_set):
        if r.status == "complete" and r.vantage not in latest:
            latest[r.vantage] = r
    if len(latest) < 2:
        return []
    base = latest.get(vantage)
    out = []
    for v, r in sorted(latest.items()):
        counts = {row[0]: row[1] for row in store.conn.execute(
            "SELECT verdict, COUNT(*) FROM measurements WHERE run_id=? AND role='probe' GROUP BY verdict", (r.run_id,))}
        differences = None
        if v != vantage:
            differences = cross_diff(store, "vantage", base.run_id, r.run_id).counts if base is not None else {}
        out.append(VantagePoint(vantage=v, run_id=r.run_id, started_at=r.started_at, probe_cc=r.probe_cc,
                                probe_asn=r.probe_asn, counts=counts, differences=differences))
    return out


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC",sans-serif;margin:2rem;color:#222;max-width:1200px}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9rem}td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f5f5}.num{text-align:right}.muted{color:#777}.unconfirmed{color:#b35806}
pre{white-space:pre-wrap;word-break:break-all;background:#f8f8f8;padding:.5rem;max-height:16rem;overflow:auto;font-size:.8rem}
details{margin:.5rem 0}.legend span{display:inline-block;width:.9rem;height:.9rem;margin:0 .3rem 0 1rem;vertical-align:middle}
svg text{font-size:11px;font-family:inherit}.missed{color:#b00020;font-weight:600}
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _line_chart(data: ReportData) -> dict[str, Any]:
    """Coordinates of the censored-terms-over-time chart (the template draws them)."""
    runs = data.runs
    width, height, left, bottom, top, right = 760, 260, 50, 40, 10, 160
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([1] + [n for series in data.platform_censored.values() for n in series.values()])
    n = len(runs)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: int) -> float:
        return top + plot_h - plot_h * v / peak

    y_ticks = [{"y": f"{y(round(peak * f)) + 4:.1f}", "label": round(peak * f)} for f in (0, 0.5, 1)]
    x_ticks = [{"x": f"{x(i):.1f}", "label": r.started_at.strftime("%m-%d %H:%M")} for i, r in enumerate(runs)
               if n <= 12 or i % max(1, n // 8) == 0 or i == n - 1]
    series = []
    for j, (platform, values) in enumerate(data.platform_censored.items()):
        pts = [(x(i), y(values.get(r.run_id, 0))) for i, r in enumerate(runs)]
        series.append({
            "platform": platform, "colour": PLATFORM_COLOURS[j % len(PLATFORM_COLOURS)],
            "points": " ".join(f"{px:.1f},{py:.1f}" for px, py in pts), "legend_y": top + 14 * j + 8,
            "dots": [{"x": f"{px:.1f}", "y": f"{py:.1f}", "run_id": r.run_id, "value": values.get(r.run_id, 0)}
                     for (px, py), r in zip(pts, runs)],
        })
    return {"width": width, "height": height, "left": left, "top": top, "bottom_y": top + plot_h,
            "right_x": left + plot_w, "y_ticks": y_ticks, "x_ticks": x_ticks, "series": series}


def _heatmap(data: ReportData) -> dict[str, Any]:
    """Coordinates of the terms x runs heatmap (the template draws them)."""
    runs = data.runs
    cell, label_w, top = 18, 260, 80
    step = max(1, len(runs) // 12)
    columns = [{"x": f"{label_w + cell * i + cell / 2:.1f}", "label": r.started_at.strftime("%m-%d %H:%M"),
                "run_id": r.run_id} for i, r in enumerate(runs) if not (i % step and i != len(runs) - 1)]
    multi_platform = len({p for p, _ in data.heat_rows}) > 1
    rows = []
    for j, (platform, term) in enumerate(data.heat_rows):
        label = f"{platform} · {term}" if multi_platform else term
        states = data.heat.get(f"{platform}\x1f{term}", {})
        cells = []
        for i, r in enumerate(runs):
            state = states.get(r.run_id, "absent")
            cells.append({"x": label_w + cell * i, "run_id": r.run_id, "state": state,
                          "colour": VERDICT_COLOURS.get(state, "#000")})
        rows.append({"y": top + cell * j, "platform": platform, "term": term,
                     "label": label if len(label) <= 36 else label[:35] + "…", "cells": cells})
    return {"width": label_w + cell * len(runs) + 10, "height": top + cell * len(data.heat_rows) + 10,
            "cell": cell, "label_w": label_w, "top": top, "columns": columns, "rows": rows}


def _after_note(c: Any) -> str:
    note = ""
    if c.transition is Transition.results_dropped and c.drop is not None:
        note += f" (−{c.drop:.0%} results)"
    if c.last_known:
        note += f" (still {c.last_known}, {c.stale_days} d old)"
    return note


def _fmt_hours(v: float) -> str:
    if v == 0:
        return "0"
    return f"{v:.3g}" if v < 10 else f"{v:.0f}"


def _survival_chart(curves: list[SurvivalCurve]) -> dict[str, Any]:
    """Coordinates of the survival chart (share of items still available N hours after first seen), one
    step line per platform. Every Kaplan-Meier point becomes a ``circle.km`` carrying the figures of
    :func:`harness.analysis.items.survival` (``data-hours``, ``data-share``), so a reader or a test in a
    real browser can check the chart against the store."""
    width, height, left, bottom, top, right = 760, 260, 50, 40, 10, 160
    plot_w, plot_h = width - left - right, height - top - bottom
    span = max([c.followed_hours for c in curves] + [p.hours for c in curves for p in c.points] + [0.0]) or 1.0

    def x(hours: float) -> float:
        return round(left + plot_w * hours / span, 1)

    def y(share: float) -> float:
        return round(top + plot_h - plot_h * share, 1)

    series = []
    for j, c in enumerate(curves):
        steps: list[tuple[float, float]] = []
        for i, p in enumerate(c.points):
            if i:
                steps.append((x(p.hours), y(c.points[i - 1].share)))
            steps.append((x(p.hours), y(p.share)))
        if c.points:
            steps.append((x(max(c.followed_hours, c.points[-1].hours)), y(c.points[-1].share)))
        series.append({
            "group": c.group, "colour": PLATFORM_COLOURS[j % len(PLATFORM_COLOURS)], "legend_y": top + 14 * j + 8,
            "points": " ".join(f"{px:.1f},{py:.1f}" for px, py in steps),
            "dots": [{"x": x(p.hours), "y": y(p.share), "hours": repr(p.hours), "share": repr(p.share),
                      "text": f"{c.group}: {p.share:.1%} still available {_fmt_hours(p.hours)} h after first seen "
                              f"({p.at_risk} followed, {p.removed} removed then)"} for p in c.points]})
    return {"width": width, "height": height, "left": left, "top": top, "bottom_y": top + plot_h,
            "right_x": left + plot_w, "y_ticks": [{"y": round(y(f) + 4, 1), "label": f"{f:.0%}"} for f in (0, 0.5, 1)],
            "x_ticks": [{"x": x(span * f), "label": f"{_fmt_hours(span * f)} h"} for f in (0, 0.25, 0.5, 0.75, 1)],
            "series": series}


def _survival_rows(curves: list[SurvivalCurve]) -> list[dict[str, Any]]:
    return [{"group": c.group, "n_items": c.items, "removed": c.removed,
             "by": ", ".join(f"{k} {v}" for k, v in c.removed_by.items()) or "–",
             "first_seen_removed": c.first_seen_removed,
             "median": "not reached" if c.median_hours is None else _fmt_hours(c.median_hours),
             "followed": _fmt_hours(c.followed_hours),
             "at": ["–" if v is None else f"{v:.0%}" for v in c.at_hours.values()]} for c in curves]


def _item_window(c: Any) -> str:
    fmt = "%Y-%m-%d %H:%M:%S"
    if c.window_start is not None:
        return f"{c.window_start.strftime(fmt)} – {c.window_end.strftime(fmt) if c.window_end else '–'}"
    return f"first seen {c.window_end.strftime(fmt)}" if c.window_end is not None else "–"


def items_markdown(d: ItemDiff) -> str:
    """Item changes as a Markdown table (``harness diff --markdown``, the report)."""
    lines = [f"Watched items, {md_escape(d.run_a)} → {md_escape(d.run_b)}: "
             + (", ".join(f"{k} {v}" for k, v in d.counts.items()) or "no changes") + ".", ""]
    if d.changes:
        lines += ["| change | platform | item | before | after | between (UTC) | notice |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for c in d.changes:
            lines.append(f"| {c.transition.value} | {md_escape(c.platform)} | {md_escape(c.url)} | {c.before or '–'} | "
                         f"{c.after or '–'} | {_item_window(c)} | "
                         f"{md_escape(', '.join(x for x in c.signals if not x.startswith('title:')) or '–')} |")
    return "\n".join(lines) + "\n"


def _finalize(value: object) -> object:
    """Every ``{{ value }}`` of the template: Markup passes, anything else is escaped by :func:`h`
    (``html.escape`` with quotes, so ``"`` is ``&quot;`` as in the pre-template report)."""
    if isinstance(value, Markup):
        return value
    return Markup(h(value))


@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("harness.analysis", "templates"),
        autoescape=True, finalize=_finalize, undefined=jinja2.StrictUndefined,
        trim_blocks=False, lstrip_blocks=False, keep_trailing_newline=False,
    )
    env.globals.update(safe_link=lambda url, label=None: Markup(safe_link(url, label)))
    return env


def render_html(data: ReportData, template: str = "report.html.j2") -> str:
    """The report page, from the Jinja2 template (autoescaped) in ``harness/analysis/templates``."""
    latest = data.runs[-1]
    return _environment().get_template(template).render(
        data=data, latest=latest, lc=data.run_counts.get(latest.run_id, {}), css=Markup(_CSS), csp=_CSP,
        chart=_line_chart(data), heat=_heatmap(data), verdict_colours=VERDICT_COLOURS,
        not_confirmable=NOT_CONFIRMABLE, after_note=_after_note, excerpt_chars=EXCERPT_CHARS, max_evidence=MAX_EVIDENCE,
        item_states=(*ITEM_STATES, "failure"), survival_hours=SURVIVAL_HOURS, item_window=_item_window,
        notice=lambda signals: ", ".join(x for x in signals if not x.startswith("title:")) or "–",
        survival_chart=_survival_chart(data.survival.by_platform) if data.survival is not None else None,
        survival_platforms=_survival_rows(data.survival.by_platform) if data.survival is not None else [],
        survival_categories=_survival_rows(data.survival.by_category) if data.survival is not None else [],
    )


def render_markdown(data: ReportData) -> str:
    latest = data.runs[-1]
    lc = data.run_counts.get(latest.run_id, {})
    lines = [f"# {md_escape(data.title)}", "",
             f"Probe set **{md_escape(data.probe_set)}**, vantage point {md_escape(data.vantage or '(unlabelled)')}, "
             f"{len(data.runs)} runs from {data.runs[0].started_at:%Y-%m-%d} to {latest.started_at:%Y-%m-%d} (UTC)."]
    if data.has_search:
        lines[-1] += (f" Latest run {md_escape(latest.run_id)}: hard {lc.get('hard', 0)}, soft {lc.get('soft', 0)}, "
                      f"not censored {lc.get('not_censored', 0)}, no results {lc.get('no_results', 0)}, "
                      f"failures {lc.get('failure', 0)}.")
        lines += ["", "## Censored terms per platform", "",
                  "| run | started (UTC) | " + " | ".join(md_escape(p) for p in data.platform_censored) + " |",
                  "| --- | --- |" + " --- |" * len(data.platform_censored)]
        for r in data.runs:
            lines.append(f"| {md_escape(r.run_id)} | {r.started_at:%Y-%m-%d %H:%M} | "
                         + " | ".join(str(s.get(r.run_id, 0)) for s in data.platform_censored.values()) + " |")
        pc_platforms = sorted({p for per in data.positive_controls.values() for p in per})
        if pc_platforms:
            lines += ["", "## Positive controls", "",
                      "Terms known to be censored on each platform, probed every run: the share detected (hard or soft). "
                      "A drop while the truism works means the platform lifted a term, or the spec no longer sees its "
                      "notice.", "",
                      "| run | " + " | ".join(md_escape(p) for p in pc_platforms) + " |",
                      "| --- |" + " --- |" * len(pc_platforms)]
            for r in data.runs:
                cells = []
                for p in pc_platforms:
                    row = data.positive_controls.get(r.run_id, {}).get(p)
                    if not row or not row["answered"]:
                        cells.append("–")
                        continue
                    cell = f"{row['detected']}/{row['answered']} ({row['detected'] / row['answered']:.0%})"
                    if row["missed"]:
                        cell += " missed: " + ", ".join(md_escape(t) for t in row["missed"])
                    cells.append(cell)
                lines.append(f"| {md_escape(r.run_id)} | " + " | ".join(cells) + " |")
        if data.vantages:
            lines += ["", f"## Vantage points (latest complete run of each; differences from {md_escape(data.vantage or '(unlabelled)')})",
                      "", "| vantage | run | started (UTC) | hard | soft | failures | differences |", "| --- | --- | --- | --- | --- | --- | --- |"]
            for vp in data.vantages:
                diffs = ("(this report)" if vp.differences is None else
                         ", ".join(f"{k} {n}" for k, n in vp.differences.items()) or "none")
                lines.append(f"| {md_escape(vp.vantage or '(unlabelled)')} {md_escape(vp.probe_cc)} {md_escape(vp.probe_asn)} | "
                             f"{md_escape(vp.run_id)} | {vp.started_at:%Y-%m-%d %H:%M} | {vp.counts.get('hard', 0)} | "
                             f"{vp.counts.get('soft', 0)} | {vp.counts.get('failure', 0)} | {md_escape(diffs)} |")
        lines += ["", "## Changes since the previous run", ""]
    d = data.diff if data.has_search else None
    if not data.has_search:
        pass
    elif d is None:
        lines.append("Only one run: nothing to compare yet.")
    else:
        from .diff import to_markdown

        lines.append(to_markdown(d))
        if d.changes:
            lines += ["### Evidence", ""]
            for c in d.changes[:200]:
                ev = data.evidence.get(c.measurement_id or "")
                if ev is None:
                    continue
                lines.append(f"- {md_escape(c.term)} on {md_escape(c.platform)} ({c.transition.value}): HTTP "
                             f"{ev.status_code if ev.status_code is not None else '–'}, signals "
                             f"{md_escape(', '.join(ev.signals) or '–')}, body SHA-256 {md_escape(ev.body_sha256 or '–')}, "
                             f"measurement {md_escape(ev.measurement_id)}")
    if data.survival is not None:
        lines += ["", "## Watched items: time to removal", "",
                  "Share of items still available N hours after first seen (Kaplan-Meier; a removal is dated by the "
                  "first measurement that showed it).", "",
                  "| platform / category | items | removed | first seen removed | median hours | "
                  + " | ".join(f"{n} h" for n in SURVIVAL_HOURS) + " |",
                  "| --- | --- | --- | --- | --- |" + " --- |" * len(SURVIVAL_HOURS)]
        for c in [*data.survival.by_platform, *data.survival.by_category]:
            median = "not reached" if c.median_hours is None else _fmt_hours(c.median_hours)
            lines.append(f"| {md_escape(c.group)} | {c.items} | {c.removed} | {c.first_seen_removed} | {median} | "
                         + " | ".join("–" if v is None else f"{v:.0%}" for v in c.at_hours.values()) + " |")
    if data.item_diff is not None:
        lines += ["", "## Item changes since the previous run", "", items_markdown(data.item_diff).rstrip("\n")]
    return "\n".join(lines) + "\n"


def build_report(store: Store, **kw: Any) -> tuple[str, str]:
    """(HTML, Markdown) of one probe set's report."""
    data = collect(store, **kw)
    return render_html(data), render_markdown(data)
