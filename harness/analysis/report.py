"""Reports: one self-contained HTML file (inline CSS and SVG, no script, no external asset) and Markdown.

Everything that came from a platform or a keyword list (terms, platform and list names,
signals, URLs, body excerpts) goes through :func:`h` (``html.escape`` with quotes) before it
reaches the page; attribute values are built only from escaped text; links are emitted only
for ``http``/``https`` URLs. A Content-Security-Policy meta tag forbids scripts and remote
loads as a second line of defence.
"""

from __future__ import annotations

import datetime as dt
import html
from collections import defaultdict
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from ..errors import NotFoundError
from ..models import Run, is_isolation_run
from ..store.sqlite import Store, utcnow
from .diff import NOT_CONFIRMABLE, UNKNOWN, DiffResult, Transition, default_pair, diff_runs, md_escape

VERDICT_COLOURS = {
    "hard": "#b2182b", "soft": "#ef8a62", "not_censored": "#67a9cf", "no_results": "#d1e5f0",
    UNKNOWN: "#bbbbbb", "absent": "#ffffff",
}
PLATFORM_COLOURS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
                    "#1f78b4", "#b15928"]
EXCERPT_CHARS = 600


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


class ReportData(BaseModel):
    title: str
    generated_at: dt.datetime
    store: str
    probe_set: str
    vantage: str
    runs: list[Run]
    run_counts: dict[str, dict[str, int]] = Field(default_factory=dict, description="run id → verdict → count")
    platform_censored: dict[str, dict[str, int]] = Field(default_factory=dict, description="platform → run → censored keys")
    heat_rows: list[tuple[str, str]] = Field(default_factory=list, description="(platform, term)")
    heat: dict[str, dict[str, str]] = Field(default_factory=dict, description="'platform\\x1fterm' → run → state")
    diff: DiffResult | None = None
    evidence: dict[str, Evidence] = Field(default_factory=dict)


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
    if m.evidence.body_sha256:
        try:
            excerpt = _excerpt(store.get_body(m.evidence.body_sha256))
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
    for run_id, verdict, n in store.conn.execute(
        f"SELECT run_id, verdict, COUNT(*) FROM measurements WHERE run_id IN ({marks}) AND role='probe'"
        f" GROUP BY run_id, verdict", ids):
        run_counts[run_id][verdict] = n
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
    return ReportData(title=title or f"Censorship report: {ps}", generated_at=utcnow(), store=str(store.path),
                      probe_set=ps, vantage=vt, runs=runs, run_counts=run_counts,
                      platform_censored=dict(sorted(platform_censored.items())), heat_rows=chosen, heat=heat,
                      diff=diff, evidence=evidence)


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC",sans-serif;margin:2rem;color:#222;max-width:1200px}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9rem}td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f5f5}.num{text-align:right}.muted{color:#777}.unconfirmed{color:#b35806}
pre{white-space:pre-wrap;word-break:break-all;background:#f8f8f8;padding:.5rem;max-height:16rem;overflow:auto;font-size:.8rem}
details{margin:.5rem 0}.legend span{display:inline-block;width:.9rem;height:.9rem;margin:0 .3rem 0 1rem;vertical-align:middle}
svg text{font-size:11px;font-family:inherit}
"""
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _line_chart(data: ReportData) -> str:
    runs = data.runs
    width, height, left, bottom, top, right = 760, 260, 50, 40, 10, 160
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([1] + [n for series in data.platform_censored.values() for n in series.values()])
    n = len(runs)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: int) -> float:
        return top + plot_h - plot_h * v / peak

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="censored terms per platform and run" id="chart-censored">']
    parts.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>')
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#999"/>')
    for frac in (0, 0.5, 1):
        v = round(peak * frac)
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v}</text>')
    for i, r in enumerate(runs):
        if n <= 12 or i % max(1, n // 8) == 0 or i == n - 1:
            parts.append(f'<text x="{x(i):.1f}" y="{top + plot_h + 16}" text-anchor="middle">'
                         f'{h(r.started_at.strftime("%m-%d %H:%M"))}</text>')
    for j, (platform, series) in enumerate(data.platform_censored.items()):
        colour = PLATFORM_COLOURS[j % len(PLATFORM_COLOURS)]
        pts = [(x(i), y(series.get(r.run_id, 0))) for i, r in enumerate(runs)]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
        parts.append(f'<polyline class="series" fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        for (px, py), r in zip(pts, runs):
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"><title>{h(platform)} · '
                         f'{h(r.run_id)}: {series.get(r.run_id, 0)} censored</title></circle>')
        ly = top + 14 * j + 8
        parts.append(f'<rect x="{left + plot_w + 12}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text x="{left + plot_w + 26}" y="{ly + 1}">{h(platform)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _heatmap(data: ReportData) -> str:
    runs = data.runs
    cell, label_w, top = 18, 260, 80
    width = label_w + cell * len(runs) + 10
    height = top + cell * len(data.heat_rows) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="terms by runs heatmap" id="heatmap">']
    step = max(1, len(runs) // 12)
    for i, r in enumerate(runs):
        if i % step and i != len(runs) - 1:
            continue
        cx = label_w + cell * i + cell / 2
        parts.append(f'<text transform="translate({cx:.1f},{top - 6}) rotate(-60)">'
                     f'{h(r.started_at.strftime("%m-%d %H:%M"))}<title>{h(r.run_id)}</title></text>')
    multi_platform = len({p for p, _ in data.heat_rows}) > 1
    for j, (platform, term) in enumerate(data.heat_rows):
        cy = top + cell * j
        label = f"{platform} · {term}" if multi_platform else term
        short = label if len(label) <= 36 else label[:35] + "…"
        parts.append(f'<text class="term" x="{label_w - 6}" y="{cy + cell - 4}" text-anchor="end">{h(short)}</text>')
        states = data.heat.get(f"{platform}\x1f{term}", {})
        for i, r in enumerate(runs):
            state = states.get(r.run_id, "absent")
            parts.append(f'<rect class="cell" x="{label_w + cell * i}" y="{cy}" width="{cell - 1}" height="{cell - 1}" '
                         f'fill="{VERDICT_COLOURS.get(state, "#000")}" stroke="#eee"><title>{h(term)} on {h(platform)}, '
                         f'run {h(r.run_id)}: {h(state)}</title></rect>')
    parts.append("</svg>")
    return "".join(parts)


def _evidence_html(ev: Evidence | None, label: str) -> str:
    if ev is None:
        return f'<p class="muted">{h(label)}: no measurement</p>'
    rows = [
        ("measurement", f"<code>{h(ev.measurement_id)}</code>"),
        ("query sent", h(ev.query)),
        ("HTTP status", h(ev.status_code if ev.status_code is not None else "–")),
        ("failure", h(ev.failure or "–")),
        ("signals", h(", ".join(ev.signals) or "–")),
        ("retest", h({True: "confirmed", False: "not confirmed", None: "not retested"}[ev.confirmed])),
        ("final URL", safe_link(ev.final_url) or "–"),
        ("body SHA-256", f"<code>{h(ev.body_sha256 or '–')}</code>" + (f" ({ev.body_size} bytes)" if ev.body_size else "")),
    ]
    body = "".join(f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows)
    excerpt = (f"<details><summary>stored body (first {EXCERPT_CHARS} characters, escaped)</summary>"
               f"<pre>{h(ev.excerpt)}</pre></details>") if ev.excerpt is not None else ""
    return f"<h4>{h(label)}</h4><table>{body}</table>{excerpt}"


def render_html(data: ReportData) -> str:
    latest = data.runs[-1]
    lc = data.run_counts.get(latest.run_id, {})
    censored_now = lc.get("hard", 0) + lc.get("soft", 0)
    out: list[str] = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{h(_CSP)}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{h(data.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{h(data.title)}</h1>",
        f'<p class="muted">Generated {h(data.generated_at.strftime("%Y-%m-%d %H:%M UTC"))} from <code>{h(data.store)}</code>'
        f" by censorship-harness.</p>",
        '<h2 id="summary">Summary</h2><table>',
        f"<tr><th>probe set</th><td>{h(data.probe_set)}</td></tr>",
        f"<tr><th>vantage point</th><td>{h(data.vantage or '(unlabelled)')}</td></tr>",
        f"<tr><th>runs shown</th><td>{len(data.runs)} (from {h(data.runs[0].started_at.strftime('%Y-%m-%d %H:%M'))}"
        f" to {h(latest.started_at.strftime('%Y-%m-%d %H:%M'))} UTC)</td></tr>",
        f"<tr><th>latest run</th><td><code>{h(latest.run_id)}</code> ({h(latest.status)})</td></tr>",
        f"<tr><th>censored in the latest run</th><td>{censored_now} "
        f"(hard {lc.get('hard', 0)}, soft {lc.get('soft', 0)}; not censored {lc.get('not_censored', 0)}, "
        f"no results {lc.get('no_results', 0)}, failures {lc.get('failure', 0)})</td></tr>",
    ]
    if data.diff is not None:
        summary = ", ".join(f"{h(k)} {v}" for k, v in data.diff.counts.items()) or "none"
        notes = "".join(f"<br><em>note: {h(n)}</em>" for n in data.diff.notes)
        out.append(f"<tr><th>changes since the previous run</th><td>{summary}{notes}</td></tr>")
    out.append("</table>")
    out.append('<h2 id="over-time">Censored terms per platform over time</h2>')
    out.append(_line_chart(data))
    out.append('<h2 id="runs">Runs</h2><table><tr><th>run</th><th>started (UTC)</th><th>status</th>'
               '<th class="num">hard</th><th class="num">soft</th><th class="num">not censored</th>'
               '<th class="num">no results</th><th class="num">failures</th></tr>')
    for r in reversed(data.runs):
        c = data.run_counts.get(r.run_id, {})
        out.append(f"<tr><td><code>{h(r.run_id)}</code></td><td>{h(r.started_at.strftime('%Y-%m-%d %H:%M'))}</td>"
                   f"<td>{h(r.status)}</td>" + "".join(
                       f'<td class="num">{c.get(v, 0)}</td>' for v in ("hard", "soft", "not_censored", "no_results", "failure"))
                   + "</tr>")
    out.append("</table>")
    out.append('<h2 id="heatmap-title">Terms × runs</h2><p class="legend">' + "".join(
        f'<span style="background:{colour}"></span>{h(name)}' for name, colour in VERDICT_COLOURS.items()) + "</p>")
    out.append(_heatmap(data))
    out.append('<h2 id="changes">Changes since the previous run</h2>')
    d = data.diff
    if d is None:
        out.append("<p>Only one run: nothing to compare yet.</p>")
    elif not d.changes:
        out.append(f"<p>No changes between <code>{h(d.run_a)}</code> and <code>{h(d.run_b)}</code> "
                   f"({d.compared} terms compared).</p>")
    else:
        out.append(f"<p><code>{h(d.run_a)}</code> → <code>{h(d.run_b)}</code>; {d.compared} terms compared. "
                   "Unconfirmed changes were neither confirmed by the same-run retest nor by a later run.</p>")
        out.append("<table><tr><th>change</th><th>platform</th><th>term</th><th>list / category</th><th>before</th>"
                   "<th>after</th><th>confirmation</th></tr>")
        for c in d.changes:
            conf = "–" if c.transition in NOT_CONFIRMABLE else ("confirmed" + (
                f" ({h(c.confirmed_by)})" if c.confirmed_by else "")) if c.confirmed else (
                '<span class="unconfirmed">not confirmed</span>' if c.confirmed is False
                else '<span class="unconfirmed">unconfirmed</span>')
            after = h(c.after or "–")
            if c.transition is Transition.results_dropped and c.drop is not None:
                after += f" (−{c.drop:.0%} results)"
            if c.last_known:
                after += f" (still {h(c.last_known)}, {c.stale_days} d old)"
            out.append(f"<tr><td>{h(c.transition.value)}</td><td>{h(c.platform)}</td><td>{h(c.term)}</td>"
                       f"<td>{h(c.list_name or '–')} / {h(c.category or '–')}</td><td>{h(c.before or '–')}</td>"
                       f"<td>{after}</td><td>{conf}</td></tr>")
        out.append("</table>")
        out.append('<h2 id="evidence">Evidence per change</h2>')
        for c in d.changes[:200]:
            out.append(f'<section class="change"><h3>{h(c.term)} on {h(c.platform)}: {h(c.transition.value)}</h3>')
            out.append(_evidence_html(data.evidence.get(c.before_measurement_id or ""), f"before ({c.before or '–'})"))
            out.append(_evidence_html(data.evidence.get(c.measurement_id or ""), f"after ({c.after or '–'})"))
            out.append("</section>")
        if len(d.changes) > 200:
            out.append(f"<p>{len(d.changes) - 200} more changes: see <code>harness diff --json</code>.</p>")
    out.append("</body></html>")
    return "\n".join(out)


def render_markdown(data: ReportData) -> str:
    latest = data.runs[-1]
    lc = data.run_counts.get(latest.run_id, {})
    lines = [f"# {md_escape(data.title)}", "",
             f"Probe set **{md_escape(data.probe_set)}**, vantage point {md_escape(data.vantage or '(unlabelled)')}, "
             f"{len(data.runs)} runs from {data.runs[0].started_at:%Y-%m-%d} to {latest.started_at:%Y-%m-%d} (UTC). "
             f"Latest run {md_escape(latest.run_id)}: hard {lc.get('hard', 0)}, soft {lc.get('soft', 0)}, "
             f"not censored {lc.get('not_censored', 0)}, no results {lc.get('no_results', 0)}, "
             f"failures {lc.get('failure', 0)}.", "",
             "## Censored terms per platform", "",
             "| run | started (UTC) | " + " | ".join(md_escape(p) for p in data.platform_censored) + " |",
             "| --- | --- |" + " --- |" * len(data.platform_censored)]
    for r in data.runs:
        lines.append(f"| {md_escape(r.run_id)} | {r.started_at:%Y-%m-%d %H:%M} | "
                     + " | ".join(str(s.get(r.run_id, 0)) for s in data.platform_censored.values()) + " |")
    lines += ["", "## Changes since the previous run", ""]
    d = data.diff
    if d is None:
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
    return "\n".join(lines) + "\n"


def build_report(store: Store, **kw: Any) -> tuple[str, str]:
    """(HTML, Markdown) of one probe set's report."""
    data = collect(store, **kw)
    return render_html(data), render_markdown(data)
