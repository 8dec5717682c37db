"""Scheduled runs: when is a probe set due, a scheduler loop, and crontab/systemd output.

The decision is a pure function of the schedule, the latest run and the time
(:func:`next_due`, :func:`decide`, :func:`due_probe_sets`), so it is tested with fake
clocks; the :class:`Scheduler` loop around it only reads the store, launches runs and
logs.

Rules:

* A probe set that has never run is due at the first slot after its schedule appeared
  (the file's modification time), so adding a file does not fire it on the spot.
* Otherwise it is due at the first cron slot after its latest run *started* (in the
  schedule's timezone), plus a jitter in ``[0, jitter_s)`` that is derived from the probe
  set's name and the slot, so every process computes the same moment.
* Missed slots (machine off, scheduler stopped) are caught up **once**: the catch-up run
  starts now, and the next slot is counted from its start, so the slots in between are
  not replayed one by one.
* A run that was interrupted (killed, rebooted) is resumed at once; if its next slot has
  already passed, a fresh run starts instead and the stale one stays interrupted.
* A probe set whose lock is held (a run in progress, by this scheduler or anyone else)
  is never started a second time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import zoneinfo
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from croniter import croniter

from ..errors import InputError
from ..exitcodes import ExitCode
from ..measure.plan import load_probe_set
from ..models import ProbeSet, Run, Schedule
from ..store.base import Store, utcnow
from ..store.locking import current_holder, effective_status
from ..store.target import StoreTarget, is_postgres, normalize, redact, secrets_of
from .logs import event, get_logger

log = get_logger("schedule")

Reason = Literal["first_run", "scheduled", "catch_up", "resume", "waiting", "running", "backoff"]


# --------------------------------------------------------------------------- the decision (pure)


def _aware(ts: dt.datetime) -> dt.datetime:
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=dt.timezone.utc)


def slot_after(schedule: Schedule, after: dt.datetime) -> dt.datetime:
    """The first cron slot strictly after ``after``, evaluated in the schedule's timezone (returned in UTC)."""
    tz = zoneinfo.ZoneInfo(schedule.timezone)
    it = croniter(schedule.cron, _aware(after).astimezone(tz))
    return it.get_next(dt.datetime).astimezone(dt.timezone.utc)


def jitter_offset(schedule: Schedule, name: str, slot: dt.datetime) -> dt.timedelta:
    """A delay in ``[0, jitter_s)`` fixed by (probe set, slot): the same in every process and every tick."""
    if not schedule.jitter_s:
        return dt.timedelta(0)
    digest = hashlib.sha256(f"{name}\x1f{slot.astimezone(dt.timezone.utc).isoformat()}".encode()).digest()
    fraction = int.from_bytes(digest[:8], "big") / 2**64
    return dt.timedelta(seconds=fraction * schedule.jitter_s)


def next_due(schedule: Schedule, last_run_started: dt.datetime | None, now: dt.datetime, name: str = "", *,
             since: dt.datetime | None = None) -> dt.datetime:
    """When the probe set should next start; a time ≤ ``now`` means it is due.

    Counted from the latest run's start; a probe set that never ran counts from ``since``
    (when its schedule appeared, e.g. the file's modification time) or is due ``now``.
    """
    reference = last_run_started if last_run_started is not None else since
    if reference is None:
        return _aware(now)
    slot = slot_after(schedule, reference)
    return slot + jitter_offset(schedule, name, slot)


@dataclass(frozen=True)
class LastRun:
    """What the decision needs to know about a probe set's latest run."""

    run_id: str
    started_at: dt.datetime
    status: str  # effective: running | interrupted | complete

    @classmethod
    def of(cls, run: Run, store_path: StoreTarget | Store) -> "LastRun":
        return cls(run.run_id, run.started_at, effective_status(run, store_path))


@dataclass(frozen=True)
class Decision:
    name: str
    due: bool
    due_at: dt.datetime | None
    reason: Reason
    new_run: bool = False
    """start afresh (``--new``) rather than resume the latest, interrupted run"""
    last: LastRun | None = None
    missed_slots: int = 0


def _count_slots(schedule: Schedule, after: dt.datetime, until: dt.datetime, cap: int = 1000) -> int:
    tz = zoneinfo.ZoneInfo(schedule.timezone)
    it = croniter(schedule.cron, _aware(after).astimezone(tz))
    n = 0
    while n < cap and it.get_next(dt.datetime).astimezone(dt.timezone.utc) <= until:
        n += 1
    return n


def decide(name: str, schedule: Schedule, last: LastRun | None, now: dt.datetime, *, busy: bool = False,
           not_before: dt.datetime | None = None, since: dt.datetime | None = None) -> Decision:
    """Whether ``name`` should start now, and why (see the module's rules).

    ``since`` (for a probe set that never ran): when its schedule appeared; the first run
    is then the first slot after it, not an immediate one.
    """
    now = _aware(now)
    if busy or (last is not None and last.status == "running"):
        return Decision(name, False, None, "running", last=last)
    if not_before is not None and now < not_before:
        return Decision(name, False, not_before, "backoff", last=last)
    if last is None:
        first = next_due(schedule, None, now, name, since=since)
        return Decision(name, first <= now, first, "first_run" if first <= now else "waiting")
    due_at = next_due(schedule, last.started_at, now, name)
    missed = _count_slots(schedule, last.started_at, now) if due_at <= now else 0
    if last.status == "interrupted":
        if due_at > now:
            return Decision(name, True, now, "resume", last=last)
        return Decision(name, True, due_at, "catch_up" if missed > 1 else "scheduled", new_run=True, last=last,
                        missed_slots=missed)
    if due_at > now:
        return Decision(name, False, due_at, "waiting", last=last)
    return Decision(name, True, due_at, "catch_up" if missed > 1 else "scheduled", last=last, missed_slots=missed)


@dataclass(frozen=True)
class ScheduledProbeSet:
    name: str
    path: Path
    schedule: Schedule
    probe_set: ProbeSet
    since: dt.datetime | None = None
    """when the schedule appeared (the file's modification time): a never-run set first runs at the next slot after it"""


def due_probe_sets(entries: Iterable[ScheduledProbeSet], last_runs: dict[str, LastRun | None], now: dt.datetime, *,
                   busy: Iterable[str] = (), not_before: dict[str, dt.datetime] | None = None) -> list[Decision]:
    """The decisions for every scheduled probe set that should start now, earliest due first."""
    busy_set = set(busy)
    out = []
    for e in entries:
        d = decide(e.name, e.schedule, last_runs.get(e.name), now, busy=e.name in busy_set,
                   not_before=(not_before or {}).get(e.name), since=e.since)
        if d.due:
            out.append(d)
    return sorted(out, key=lambda d: (d.due_at or now, d.name))


# --------------------------------------------------------------------------- probe set discovery


def load_schedules(folder: Path) -> tuple[list[ScheduledProbeSet], list[str]]:
    """Scheduled probe sets in ``folder`` (``*.yaml``, ``*.yml``) and the problems of the files that failed."""
    entries: list[ScheduledProbeSet] = []
    problems: list[str] = []
    if not folder.is_dir():
        raise InputError("not a folder of probe sets", folder)
    seen: dict[str, Path] = {}
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        try:
            ps, _ = load_probe_set(path)
        except InputError as exc:
            problems.append(str(exc))
            continue
        if ps.schedule is None:
            continue
        if ps.name in seen:
            problems.append(f"{path}: probe set name {ps.name!r} is also used by {seen[ps.name]}; skipped")
            continue
        seen[ps.name] = path
        mtime = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.timezone.utc)
        entries.append(ScheduledProbeSet(ps.name, path, ps.schedule, ps, mtime))
    return entries, problems


def _store_exists(target: StoreTarget) -> bool:
    return is_postgres(target) or Path(target).exists()


def latest_runs(store_path: StoreTarget, names: Iterable[str], vantage: str | None = None) -> dict[str, LastRun | None]:
    """The latest run of each probe set (at ``vantage``, when given: a shared store holds other vantages' too)."""
    if not _store_exists(store_path):
        return {n: None for n in names}
    with Store(store_path) as store:
        out: dict[str, LastRun | None] = {}
        for n in names:
            runs = store.list_runs(n, limit=1, vantage=vantage)
            out[n] = LastRun.of(runs[0], store) if runs else None
    return out


# --------------------------------------------------------------------------- running


@dataclass
class RunResult:
    name: str
    exit_code: int
    summary: dict | None = None
    error: str | None = None


Runner = Callable[[ScheduledProbeSet, Decision], RunResult]


@dataclass
class SubprocessRunner:
    """Runs ``harness run`` for a probe set in a child process (a crash there cannot take the scheduler down).

    The child takes the probe set's lock, resumes or starts the run, logs it and exits 0
    (fine), 3 (too many failures) or 2 (refused or bad input). The store reaches it through
    ``$HARNESS_STORE``, not its command line, where any user of the machine could read a
    password in a ``postgresql://`` URL.
    """

    store_path: StoreTarget
    config_path: Path | None = None
    base_urls: dict[str, str] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()
    _children: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def command(self, entry: ScheduledProbeSet, decision: Decision) -> list[str]:
        cmd = [sys.executable, "-m", "harness", "run", str(entry.path), "--json"]
        if self.config_path is not None:
            cmd += ["--config", str(self.config_path)]
        for k, v in self.base_urls.items():
            cmd += ["--base-url", f"{k}={v}"]
        if decision.new_run:
            cmd.append("--new")
        return cmd + list(self.extra_args)

    def __call__(self, entry: ScheduledProbeSet, decision: Decision) -> RunResult:
        proc = subprocess.Popen(self.command(entry, decision), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1", "HARNESS_STORE": str(self.store_path)})
        with self._lock:
            self._children[entry.name] = proc
        try:
            out, err = proc.communicate()
        finally:
            with self._lock:
                self._children.pop(entry.name, None)
        summary = None
        try:
            summary = json.loads(out) if out.strip() else None
        except ValueError:
            pass
        error = err.strip().splitlines()[-1] if proc.returncode not in (0, 3) and err.strip() else None
        return RunResult(entry.name, proc.returncode, summary, error)

    def terminate_all(self) -> None:
        """Ask every child to stop (they record their run as interrupted and exit)."""
        with self._lock:
            for proc in self._children.values():
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)


class Scheduler:
    """Looks at a folder of probe sets every ``tick_s`` and starts the due ones.

    ``clock`` and ``runner`` are injectable: tests pass a fake clock and a fake or
    in-process runner.
    """

    def __init__(self, folder: Path, store_path: StoreTarget, runner: Runner, *, clock: Callable[[], dt.datetime] = utcnow,
                 parallel: int = 1, keep_evidence: dt.timedelta | None = None, retry_backoff: dt.timedelta = dt.timedelta(minutes=10),
                 vantage: str = ""):
        self.folder = Path(folder)
        self.store_path = normalize(store_path)
        self.vantage = vantage  # this scheduler's vantage label: its runs, and its locks, in a shared store
        self.runner = runner
        self.clock = clock
        self.keep_evidence = keep_evidence
        self.retry_backoff = retry_backoff
        self.pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="harness-run")
        self.in_flight: dict[str, Future[RunResult]] = {}
        self.not_before: dict[str, dt.datetime] = {}
        self.results: list[RunResult] = []
        self._reported: set[str] = set()
        self._last_prune: dt.datetime | None = None
        self._stop = threading.Event()

    # -- one look

    def _entries(self) -> list[ScheduledProbeSet]:
        entries, problems = load_schedules(self.folder)
        for p in problems:
            if p not in self._reported:
                self._reported.add(p)
                event(log, "probe_set_invalid", f"skipping a probe set: {p}", logging.ERROR, problem=p)
        return entries

    def decisions(self, now: dt.datetime | None = None) -> list[tuple[ScheduledProbeSet, Decision]]:
        """Every scheduled probe set with its current decision (due or not): what ``schedule status`` shows."""
        now = now or self.clock()
        entries = self._entries()
        last = latest_runs(self.store_path, [e.name for e in entries], self.vantage)
        out = []
        for e in entries:
            busy = e.name in self.in_flight or current_holder(self.store_path, e.name, self.vantage) is not None
            out.append((e, decide(e.name, e.schedule, last.get(e.name), now, busy=busy,
                                  not_before=self.not_before.get(e.name), since=e.since)))
        return out

    def _reap(self) -> None:
        for name, fut in list(self.in_flight.items()):
            if not fut.done():
                continue
            del self.in_flight[name]
            try:
                result = fut.result()
            except Exception as exc:  # a bug in a runner: log it, keep scheduling the others
                result = RunResult(name, ExitCode.INTERNAL_ERROR, error=f"{type(exc).__name__}: {exc}")
            self.results.append(result)
            summary = result.summary or {}
            ok = result.exit_code in (ExitCode.OK, ExitCode.PLATFORM_GIVEN_UP)
            if not ok:
                self.not_before[name] = self.clock() + self.retry_backoff
            else:
                self.not_before.pop(name, None)
            event(log, "scheduled_run_done", f"{name}: exit {result.exit_code}"
                  + (f", run {summary.get('run_id')} {summary.get('status')}" if summary else "")
                  + (f" ({result.error})" if result.error else ""),
                  logging.INFO if result.exit_code == 0 else logging.WARNING,
                  probe_set=name, exit_code=result.exit_code, run_id=summary.get("run_id"),
                  status=summary.get("status"), error=result.error)

    def tick(self, now: dt.datetime | None = None, *, wait: bool = False) -> list[Decision]:
        """Start every due probe set (not already running); with ``wait``, until they finish."""
        self._reap()
        now = now or self.clock()
        started = []
        for entry, d in self.decisions(now):
            if not d.due or entry.name in self.in_flight:
                continue
            event(log, "scheduled_run_start", f"{entry.name}: {d.reason}"
                  + (f" ({d.missed_slots} slots missed, run once)" if d.missed_slots > 1 else ""),
                  probe_set=entry.name, reason=d.reason, due_at=d.due_at.isoformat() if d.due_at else None,
                  missed_slots=d.missed_slots, new_run=d.new_run)
            self.in_flight[entry.name] = self.pool.submit(self.runner, entry, d)
            started.append(d)
        if wait:
            for fut in list(self.in_flight.values()):
                try:
                    fut.result()
                except Exception:  # noqa: BLE001 - reported by _reap
                    pass
            self._reap()
        self._maybe_prune(now)
        return started

    def _maybe_prune(self, now: dt.datetime) -> None:
        if self.keep_evidence is None or self.in_flight or not _store_exists(self.store_path):
            return
        if self._last_prune is not None and now - self._last_prune < dt.timedelta(days=1):
            return
        from ..store.upkeep import prune_evidence

        with Store(self.store_path) as store:
            report = prune_evidence(store, self.keep_evidence, now=now)
        self._last_prune = now
        event(log, "evidence_pruned", f"pruned {report.bodies_deleted} bodies older than {report.cutoff.isoformat()}",
              bodies_deleted=report.bodies_deleted, bytes_freed=report.compressed_bytes_freed,
              cutoff=report.cutoff.isoformat())

    # -- the loop

    def stop(self) -> None:
        self._stop.set()

    def run_forever(self, tick_s: float) -> None:
        event(log, "scheduler_started", f"scheduler watching {self.folder} (every {tick_s:g} s)",
              folder=str(self.folder), store=redact(self.store_path), tick_s=tick_s)
        try:
            while not self._stop.is_set():
                self.tick()
                self._stop.wait(tick_s)
        finally:
            terminate = getattr(self.runner, "terminate_all", None)
            if terminate is not None and self.in_flight:
                terminate()
            self.pool.shutdown(wait=True)
            self._reap()
            event(log, "scheduler_stopped", "scheduler stopped")

    def close(self) -> None:
        self.pool.shutdown(wait=True)


# --------------------------------------------------------------------------- crontab and systemd


CRON_MARK = "censorship-harness"


def harness_command() -> list[str]:
    """How a cron job or a unit starts this very harness (this interpreter, so the virtualenv is kept)."""
    return [sys.executable, "-m", "harness"]


def _store_arg(store: StoreTarget) -> str:
    """``--store`` as a crontab line or a unit file may carry it: an absolute path, or a URL without a password."""
    if is_postgres(store):
        # what the URL carries, not whether its masked form differs: redact() also re-encodes the
        # query (options=-csearch_path%3Ds), which is no password
        if secrets_of(store) or redact(store) == "postgresql://***":
            raise InputError("the store URL carries a password, which would be written into the crontab or unit file: "
                             "give it through ~/.pgpass or $PGPASSWORD instead (see docs/deploy.md)")
        return str(store).strip()
    return str(Path(store).resolve())


def crontab_block(workdir: Path, folder: Path, *, config: Path | None = None, store: StoreTarget | None = None,
                  every_minutes: int = 5, log_file: Path | None = None, extra: list[str] | None = None) -> str:
    """The crontab lines: a tick every few minutes; the harness applies each probe set's own schedule."""
    if not 1 <= every_minutes <= 59:
        raise InputError(f"--every must be between 1 and 59 minutes, got {every_minutes}")
    workdir = workdir.resolve()
    cmd = harness_command() + ["schedule", "run", str(folder.resolve()), "--once", "--quiet"]
    if config is not None:
        cmd += ["--config", str(config.resolve())]
    if store is not None:
        cmd += ["--store", _store_arg(store)]
    cmd += list(extra or [])
    line = f"cd {shlex.quote(str(workdir))} && " + " ".join(shlex.quote(c) for c in cmd)
    if log_file is not None:
        line += f" 2>>{shlex.quote(str(log_file))}"
    minute = "*" if every_minutes == 1 else f"*/{every_minutes}"
    return (f"# BEGIN {CRON_MARK} {workdir}\n"
            f"# runs due probe sets of {workdir}; quiet unless something is wrong (exit 3: too many failures)\n"
            f"{minute} * * * * {line}\n"
            f"# END {CRON_MARK} {workdir}\n")


def merge_crontab(existing: str, block: str) -> str:
    """``existing`` crontab with ``block`` replacing the previous block of the same folder (or appended)."""
    begin = block.splitlines()[0]
    end = begin.replace("# BEGIN ", "# END ", 1)
    lines = existing.splitlines()
    out: list[str] = []
    skipping = False
    for ln in lines:
        if ln.strip() == begin:
            skipping = True
            continue
        if skipping:
            if ln.strip() == end:
                skipping = False
            continue
        out.append(ln)
    text = "\n".join(out).rstrip("\n")
    return (text + "\n" if text else "") + block


_DOW_NAMES = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
_MONTHS = {m: i for i, m in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}
_DOWS = {d.lower(): i for i, d in enumerate(_DOW_NAMES)}
_RANGES = {"minute": (0, 59), "hour": (0, 23), "dom": (1, 31), "month": (1, 12), "dow": (0, 7)}


def _value(tok: str, kind: str) -> int:
    t = tok.lower()
    if kind == "month" and t in _MONTHS:
        return _MONTHS[t]
    if kind == "dow" and t in _DOWS:
        return _DOWS[t]
    return int(t)


def _expand(item: str, kind: str) -> list[int]:
    lo, hi = _RANGES[kind]
    body, _, step_s = item.partition("/")
    step = int(step_s) if step_s else 1
    if body == "*":
        a, b = lo, hi
    elif "-" in body:
        a_s, b_s = body.split("-", 1)
        a, b = _value(a_s, kind), _value(b_s, kind)
    else:
        a = _value(body, kind)
        b = hi if step_s else a
    return list(range(a, b + 1, step))


def _field_to_systemd(expr: str, kind: str) -> str:
    """One cron field → the matching systemd calendar component."""
    if expr == "*":
        return "*"
    parts = []
    for item in expr.split(","):
        body, _, step = item.partition("/")
        if kind == "dow":
            days = sorted({v % 7 for v in _expand(item, kind)})
            parts.extend(_DOW_NAMES[d] for d in days)
            continue
        lo = _RANGES[kind][0]
        if body == "*" and step:
            parts.append(f"{lo}/{int(step)}")
        elif step or "-" in body:
            values = _expand(item, kind)
            if not step and len(values) > 1:
                parts.append(f"{values[0]}..{values[-1]}")
            else:
                parts.extend(str(v) for v in values)
        else:
            parts.append(str(_value(body, kind)))
    if kind == "dow":
        ordered = sorted(set(parts), key=lambda d: (_DOW_NAMES.index(d) - 1) % 7)  # Mon first, as systemd prints
        return ",".join(ordered)
    return ",".join(parts)


def cron_to_oncalendar(schedule: Schedule) -> list[str]:
    """systemd ``OnCalendar=`` values equivalent to the cron expression (two when cron ORs day-of-month and weekday)."""
    minute, hour, dom, month, dow = schedule.cron.split()
    m, h = _field_to_systemd(minute, "minute"), _field_to_systemd(hour, "hour")
    mo = _field_to_systemd(month, "month")
    time_part = f"{h if h != '*' else '*'}:{m}:00"
    tz = schedule.timezone
    dom_star, dow_star = dom.startswith("*"), dow.startswith("*")
    d_dom = _field_to_systemd(dom, "dom")
    d_dow = _field_to_systemd(dow, "dow")

    def spec(weekday: str, day: str) -> str:
        prefix = f"{weekday} " if weekday != "*" else ""
        return f"{prefix}*-{mo}-{day} {time_part} {tz}"

    if not dom_star and not dow_star:
        return [spec("*", d_dom), spec(d_dow, "*")]  # cron: either matches
    return [spec(d_dow, d_dom)]


def unit_name(probe_set: str) -> str:
    return "harness-" + re.sub(r"[^A-Za-z0-9_.-]", "_", probe_set)


@dataclass(frozen=True)
class SystemdUnits:
    name: str
    service: str
    timer: str


def systemd_units(entry: ScheduledProbeSet, workdir: Path, *, config: Path | None = None,
                  store: StoreTarget | None = None, extra: list[str] | None = None) -> SystemdUnits:
    """A user service (one run of the probe set) and its timer (the schedule, jitter, catch-up)."""
    workdir = workdir.resolve()
    name = unit_name(entry.name)
    cmd = harness_command() + ["run", str(entry.path.resolve()), "--quiet"]
    if config is not None:
        cmd += ["--config", str(config.resolve())]
    if store is not None:
        cmd += ["--store", _store_arg(store)]
    cmd += list(extra or [])
    exec_start = " ".join(_systemd_quote(c) for c in cmd)
    service = (
        "[Unit]\n"
        f"Description=censorship-harness: one run of probe set {entry.name.replace('%', '%%')}\n"
        "Documentation=file://" + str(workdir / "docs" / "operations.md") + "\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        f"WorkingDirectory={str(workdir).replace('%', '%%')}\n"
        f"ExecStart={exec_start}\n"
        "Environment=PYTHONUNBUFFERED=1\n"
        "# exit 3: the share of failures passed the threshold; exit 2: refused (already running) or bad input\n"
        "KillSignal=SIGTERM\n"
        "TimeoutStopSec=60\n"
        "Nice=10\n"
    )
    calendars = cron_to_oncalendar(entry.schedule)
    timer = (
        "[Unit]\n"
        f"Description=censorship-harness schedule of probe set {entry.name.replace('%', '%%')} "
        f"(cron {entry.schedule.cron} {entry.schedule.timezone})\n"
        "\n"
        "[Timer]\n"
        + "".join(f"OnCalendar={c}\n" for c in calendars)
        + f"RandomizedDelaySec={int(round(entry.schedule.jitter_s))}\n"
        "Persistent=true\n"
        "AccuracySec=1min\n"
        f"Unit={name}.service\n"
        "\n"
        "[Install]\n"
        "WantedBy=timers.target\n"
    )
    return SystemdUnits(name, service, timer)


def _systemd_quote(arg: str) -> str:
    arg = arg.replace("%", "%%")  # systemd expands %-specifiers in ExecStart=
    if re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def user_unit_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"
