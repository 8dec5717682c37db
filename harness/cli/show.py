"""``harness show``: the evidence behind one verdict (a measurement, or a term in a run).

Prints the verdict, the failure code and its meaning, the matched signals, the retest, the
HTTP status, the final URL, the stored headers and the stored page, decompressed and
neutralised for the terminal (every control character shown as an escape; Rich markup
escaped). ``--save FILE`` writes the page's bytes as they were stored, to open in a browser
or an editor; ``--format json`` prints the whole measurement with the page as text.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ..analysis.diff import resolve_run
from ..errors import InputError, NotFoundError
from ..failures import describe
from ..models import Measurement
from ..store.sqlite import Store
from ._app import app
from ._common import JsonOption, StoreOption, console, esc, print_json, store_path
from ._output import Format, FormatOption, choose_format

DEFAULT_CHARS = 2000


def find_measurements(st: Store, ref: str, run: str | None, platform: str | None, role: str | None) -> list[Measurement]:
    """A measurement id (or unique prefix), else the term ``ref`` in ``run`` (default: the latest run)."""
    if run is None:
        rows = st.conn.execute("SELECT doc FROM measurements WHERE measurement_id LIKE ? ESCAPE '\\' LIMIT 2",
                               (ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%",)).fetchall()
        if len(rows) == 1:
            return [Measurement.model_validate_json(rows[0][0])]
        if len(rows) > 1:
            raise InputError(f"{ref!r} is the prefix of more than one measurement id: give more of it")
    run_id = resolve_run(st, run or "latest").run_id
    sql = "SELECT doc FROM measurements WHERE run_id=? AND input=?"
    args: list[str] = [run_id, ref]
    if platform:
        sql += " AND platform=?"
        args.append(platform)
    if role:
        sql += " AND role=?"
        args.append(role)
    found = [Measurement.model_validate_json(d) for (d,) in st.conn.execute(sql + " ORDER BY measurement_start_time", args)]
    if not found:
        raise NotFoundError(f"no measurement {ref!r}: neither a measurement id nor a term of run {run_id}"
                            + (f" on {platform}" if platform else ""))
    return found


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file whole or not at all (a reader never sees half of it)."""
    import os
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _page(st: Store, m: Measurement) -> bytes | None:
    key = m.evidence.stored_key
    if not key:
        return None
    try:
        return st.get_body(key)
    except NotFoundError:
        return None


def _text(body: bytes, headers: dict[str, str]) -> str:
    ctype = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    charset = ctype.lower().split("charset=", 1)[1].split(";")[0].strip() if "charset=" in ctype.lower() else "utf-8"
    try:
        return body.decode(charset, errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


@app.command("show")
def show_cmd(
    ref: str = typer.Argument(..., metavar="MEASUREMENT_OR_TERM",
                              help="a measurement id (or a unique prefix), or a term as written in its list"),
    run: str | None = typer.Option(None, "--run", "-r", metavar="RUN",
                                   help="with a term: the run (a run reference; default: latest)"),
    platform: str | None = typer.Option(None, "--platform", "-p", metavar="NAME", help="with a term: only this platform"),
    role: str | None = typer.Option("probe", "--role", metavar="ROLE",
                                    help="with a term: probe (default), control, truism or isolation"),
    chars: int = typer.Option(DEFAULT_CHARS, "--chars", min=0, help="characters of the page to print (0: none)"),
    whole: bool = typer.Option(False, "--whole", help="print the whole page"),
    save: Path | None = typer.Option(None, "--save", metavar="FILE",
                                     help="write the stored page's bytes to FILE (to open in a browser or an editor)"),
    store: str | None = StoreOption,
    fmt: Format | None = FormatOption,
    as_json: bool = JsonOption,
) -> None:
    """The evidence behind a verdict: verdict, signals, headers and the stored page."""
    with Store(store_path(store), readonly=True) as st:
        found = find_measurements(st, ref, run, platform, role)
        pages = [_page(st, m) for m in found]
    if save is not None:
        if len(found) != 1:
            raise InputError(f"{len(found)} measurements match; --save needs one (add --platform or give its id)")
        if pages[0] is None:
            raise NotFoundError(f"measurement {found[0].measurement_id} has no stored page")
        atomic_write_bytes(save, pages[0])
    out = choose_format(fmt, as_json)
    if fmt in (Format.csv, Format.tsv):
        raise InputError("show prints text or JSON (--format json)")
    if out is Format.json:
        print_json([{**m.model_dump(mode="json"), "page": _text(p, m.evidence.headers) if p is not None else None}
                    for m, p in zip(found, pages)])
        return
    for m, page in zip(found, pages):
        ev, tk = m.evidence, m.test_keys
        console.print(f"[bold]{esc(m.input)}[/] on [bold]{esc(m.platform)}[/]: [bold]{m.verdict.value}[/]"
                      + (f" — failure {esc(m.failure)}: {esc(describe(m.failure))}" if m.failure else ""), soft_wrap=True)
        lines = [("measurement", m.measurement_id), ("run", f"{m.run_id} ({m.probe_set})"),
                 ("measured", m.measurement_start_time.strftime("%Y-%m-%d %H:%M:%S UTC")),
                 ("vantage", f"{m.probe_cc} {m.probe_asn} {m.vantage}".strip()), ("role", m.role),
                 ("query sent", m.query), ("variant", m.variant or "-"),
                 ("signals", ", ".join(tk.signals) or "-"),
                 ("results", "-" if tk.result_items is None else f"{tk.result_items} items"
                  + (f", about {tk.result_count:,}" if tk.result_count is not None else "")),
                 ("retest", {True: "confirmed", False: "not confirmed", None: "not retested"}[tk.confirmed]),
                 ("HTTP status", "-" if ev.status_code is None else str(ev.status_code)),
                 ("final URL", ev.final_url or "-"),
                 ("page", f"{ev.body_size} bytes, SHA-256 {ev.body_sha256}" if ev.body_sha256 else "none stored")]
        for k, v in lines:
            console.print(f"  {k}: {esc(v)}", soft_wrap=True, highlight=False)
        if ev.headers:
            console.print("  headers:")
            for k, v in ev.headers.items():
                console.print(f"    {esc(k)}: {esc(v)}", soft_wrap=True, highlight=False)
        if page is None:
            console.print("  (no stored page" + (": pruned by retention)" if ev.body_sha256 else ")"))
        elif save is not None:
            console.print(f"  page saved to {esc(save)}")
        elif chars or whole:
            text = _text(page, ev.headers)
            shown = text if whole else text[:chars]
            console.print(f"  page ({'whole' if whole or len(shown) == len(text) else f'first {len(shown)} of {len(text)} characters; --whole, or --save FILE'}):")
            console.print(esc(shown), soft_wrap=True, highlight=False, markup=True)
        console.print()
