"""The schedule decision (pure, fake clock), the scheduler loop, crontab and systemd output."""

import configparser
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from croniter import croniter

from harness.errors import ProbeSetError
from harness.measure.plan import load_probe_set
from harness.models import Run, Schedule
from harness.operations.schedule import (
    Decision,
    LastRun,
    RunResult,
    ScheduledProbeSet,
    Scheduler,
    cron_to_oncalendar,
    crontab_block,
    decide,
    due_probe_sets,
    jitter_offset,
    load_schedules,
    merge_crontab,
    next_due,
    systemd_units,
)
from harness.store.locking import ProbeSetLock
from harness.store.sqlite import Store

from .conftest import FIXTURES
from .test_schedule_support import cli_inprocess

UTC = dt.timezone.utc
MINI_LIST = FIXTURES / "keywords" / "mini.yaml"


def t(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s).replace(tzinfo=UTC)


def probe_set_text(name: str = "sched", cron: str = "0 */6 * * *", tz: str = "UTC", jitter: float = 0,
                   extra: str = "") -> str:
    return (f"name: {name}\nkeywords:\n  - list: {MINI_LIST}\nplatforms:\n  - name: sandbox\n"
            f"    rate_limit: {{interval_s: 0, jitter: 0, concurrency: 4}}\n{extra}"
            f"controls: {{every: 5, lists: [{FIXTURES / 'keywords' / 'controls.yaml'}]}}\ntimeout_s: 5\nretries: 1\n"
            f"schedule: {{cron: \"{cron}\", timezone: {tz}, jitter_s: {jitter}}}\n")


# --------------------------------------------------------------------------- validation at load time


@pytest.mark.parametrize("schedule,needle", [
    ('{cron: "61 * * * *"}', "invalid cron expression"),
    ('{cron: "0 */6 * *"}', "must have 5 fields"),
    ('{cron: "0 0 * * * *"}', "must have 5 fields"),
    ('{cron: "0 6 * * *", timezone: Mars/Olympus}', "unknown timezone 'Mars/Olympus'"),
    ('{cron: "0 6 * * *", jitter_s: -5}', "jitter_s"),
    ('{cron: "0 6 L * *"}', "not standard cron syntax"),
    ('{cron: "0 6 * * 5#2"}', "not standard cron syntax"),
    ('{cron: "0 9-5 * * *"}', "runs backwards"),
])
def test_a_bad_schedule_is_refused_with_file_and_line(tmp_path, schedule, needle):
    p = tmp_path / "ps.yaml"
    p.write_text(f"name: x\nkeywords:\n  - list: {MINI_LIST}\nplatforms:\n  - name: sandbox\nschedule: {schedule}\n")
    with pytest.raises(ProbeSetError) as exc:
        load_probe_set(p)
    assert needle in str(exc.value)
    assert str(exc.value).startswith(f"{p}:6:")


def test_bad_schedule_through_the_cli_is_one_line_and_exit_2(tmp_path, capsys):
    p = tmp_path / "ps.yaml"
    p.write_text(probe_set_text(cron="0 25 * * *"))
    res = cli_inprocess(capsys, "run", str(p), "--store", str(tmp_path / "s.db"))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert f"{p}:" in res.stderr and "invalid cron expression" in res.stderr


def test_cron_macros_and_spacing_are_normalised():
    assert Schedule(cron="@daily").cron == "0 0 * * *"
    assert Schedule(cron=" 0   */6 * * * ").cron == "0 */6 * * *"


# --------------------------------------------------------------------------- the decision


SIX_HOURLY = Schedule(cron="0 */6 * * *")


def test_next_due_is_the_slot_after_the_last_start_in_the_schedules_timezone():
    assert next_due(SIX_HOURLY, t("2026-03-01T06:00:05"), t("2026-03-01T07:00")) == t("2026-03-01T12:00")
    shanghai = Schedule(cron="0 9 * * *", timezone="Asia/Shanghai")  # 09:00 in Shanghai is 01:00 UTC
    assert next_due(shanghai, t("2026-03-01T02:00"), t("2026-03-01T02:00")) == t("2026-03-02T01:00")
    ny = Schedule(cron="0 9 * * *", timezone="America/New_York")  # DST starts 2026-03-08: 14:00 → 13:00 UTC
    assert next_due(ny, t("2026-03-07T15:00"), t("2026-03-07T15:00")) == t("2026-03-08T13:00")
    assert next_due(SIX_HOURLY, None, t("2026-03-01T07:00")) == t("2026-03-01T07:00")


def test_jitter_is_within_bounds_and_the_same_in_every_process():
    s = Schedule(cron="0 */6 * * *", jitter_s=600)
    offsets = [jitter_offset(s, "ps", t("2026-03-01T00:00") + dt.timedelta(hours=6 * i)) for i in range(200)]
    assert all(dt.timedelta(0) <= o < dt.timedelta(seconds=600) for o in offsets)
    assert len(set(offsets)) > 150  # spread, not constant
    assert jitter_offset(s, "ps", t("2026-03-01T06:00")) == jitter_offset(s, "ps", t("2026-03-01T06:00"))
    assert jitter_offset(s, "other", t("2026-03-01T06:00")) != jitter_offset(s, "ps", t("2026-03-01T06:00"))
    due = next_due(s, t("2026-03-01T00:03"), t("2026-03-01T00:03"), "ps")
    assert t("2026-03-01T06:00") <= due < t("2026-03-01T06:10")


def simulate(schedule: Schedule, start: dt.datetime, end: dt.datetime, step: dt.timedelta,
             off: tuple[dt.datetime, dt.datetime] | None = None) -> list[tuple[dt.datetime, Decision]]:
    """Drive the decision with a fake clock; each run starts at the tick and completes before the next."""
    last: LastRun | None = LastRun("r0", start, "complete")
    runs = []
    now = start
    while now < end:
        if not (off and off[0] <= now < off[1]):
            d = decide("ps", schedule, last, now)
            if d.due:
                runs.append((now, d))
                last = LastRun(f"r{len(runs)}", now, "complete")
        now += step
    return runs


def test_a_machine_that_was_off_catches_up_once_not_once_per_missed_slot():
    start = t("2026-03-01T00:00")
    runs = simulate(SIX_HOURLY, start, start + dt.timedelta(days=7), dt.timedelta(minutes=5),
                    off=(t("2026-03-02T01:00"), t("2026-03-04T15:30")))  # 10 slots missed
    at = [r[0] for r in runs]
    assert t("2026-03-04T15:30") in at
    catch_up = dict(runs)[t("2026-03-04T15:30")]
    assert catch_up.reason == "catch_up" and catch_up.missed_slots == 10
    # nothing else between the catch-up and the next regular slot
    assert [a for a in at if t("2026-03-04T15:30") < a < t("2026-03-04T18:00")] == []
    assert t("2026-03-04T18:00") in at
    # every slot while the machine was on ran exactly once; the gap produced one run
    expected_on = [start + dt.timedelta(hours=6 * i) for i in range(1, 28)
                   if not (t("2026-03-02T01:00") <= start + dt.timedelta(hours=6 * i) < t("2026-03-04T15:30"))]
    assert sorted(at) == sorted(expected_on + [t("2026-03-04T15:30")])
    assert sum(1 for _, d in runs if d.reason == "catch_up") == 1


def test_a_missed_single_slot_is_scheduled_not_catch_up():
    d = decide("ps", SIX_HOURLY, LastRun("r", t("2026-03-01T00:00"), "complete"), t("2026-03-01T06:20"))
    assert d.due and d.reason == "scheduled" and d.missed_slots == 1


def test_interrupted_runs_resume_at_once_unless_their_slot_has_passed():
    last = LastRun("r", t("2026-03-01T00:00"), "interrupted")
    d = decide("ps", SIX_HOURLY, last, t("2026-03-01T01:00"))
    assert d.due and d.reason == "resume" and not d.new_run
    d = decide("ps", SIX_HOURLY, last, t("2026-03-01T13:00"))
    assert d.due and d.new_run and d.reason == "catch_up"


def test_a_running_probe_set_is_never_started_again():
    late = t("2026-03-05T00:00")
    assert decide("ps", SIX_HOURLY, LastRun("r", t("2026-03-01T00:00"), "running"), late).reason == "running"
    d = decide("ps", SIX_HOURLY, LastRun("r", t("2026-03-01T00:00"), "complete"), late, busy=True)
    assert not d.due and d.reason == "running"


def test_a_new_probe_set_waits_for_its_first_slot():
    d = decide("ps", SIX_HOURLY, None, t("2026-03-01T07:00"), since=t("2026-03-01T06:30"))
    assert not d.due and d.due_at == t("2026-03-01T12:00") and d.reason == "waiting"
    d = decide("ps", SIX_HOURLY, None, t("2026-03-01T12:00"), since=t("2026-03-01T06:30"))
    assert d.due and d.reason == "first_run"


def test_due_probe_sets_orders_by_due_time_and_skips_busy_ones():
    mk = lambda n, cron: ScheduledProbeSet(n, Path(f"{n}.yaml"), Schedule(cron=cron), None)  # noqa: E731
    entries = [mk("a", "0 * * * *"), mk("b", "30 * * * *"), mk("c", "0 * * * *")]
    last = {n: LastRun(n, t("2026-03-01T00:10"), "complete") for n in "abc"}
    due = due_probe_sets(entries, last, t("2026-03-01T01:05"), busy={"c"})
    assert [d.name for d in due] == ["b", "a"]


# --------------------------------------------------------------------------- the loop


def make_folder(tmp_path: Path, **kw) -> Path:
    folder = tmp_path / "probes"
    folder.mkdir()
    (folder / "sched.yaml").write_text(probe_set_text(**kw))
    (folder / "unscheduled.yaml").write_text(probe_set_text(name="unscheduled").split("schedule:")[0])
    return folder


class FakeRunner:
    """Records a complete run in the store at the fake clock's time, like a real run would."""

    def __init__(self, store_path: Path, clock):
        self.store_path = store_path
        self.clock = clock
        self.calls: list[tuple[str, Decision]] = []

    def __call__(self, entry, decision):
        self.calls.append((entry.name, decision))
        with Store(self.store_path) as st:
            st.create_run(Run(run_id=f"r{len(self.calls)}", probe_set=entry.name, started_at=self.clock(),
                              status="complete"))
        return RunResult(entry.name, 0, {"run_id": f"r{len(self.calls)}", "status": "complete"})


def test_scheduler_ticks_with_a_fake_clock(tmp_path, store_path):
    folder = make_folder(tmp_path)
    os.utime(folder / "sched.yaml", (t("2026-03-01T00:30").timestamp(),) * 2)
    clock = {"now": t("2026-03-01T05:00")}
    runner = FakeRunner(store_path, lambda: clock["now"])
    sched = Scheduler(folder, store_path, runner, clock=lambda: clock["now"])
    try:
        assert sched.tick(wait=True) == []  # the new probe set waits for 06:00
        clock["now"] = t("2026-03-01T06:00:30")
        [d] = sched.tick(wait=True)
        assert d.name == "sched" and d.reason == "first_run"
        assert sched.tick(wait=True) == []  # just ran
        clock["now"] = t("2026-03-03T09:00")  # scheduler was stopped for two days
        [d] = sched.tick(wait=True)
        assert d.reason == "catch_up" and d.missed_slots == 8
        assert sched.tick(wait=True) == []
        assert [c[0] for c in runner.calls] == ["sched", "sched"]
        statuses = {e.name: d for e, d in sched.decisions()}
        assert statuses["sched"].due_at == t("2026-03-03T12:00") and "unscheduled" not in statuses
    finally:
        sched.close()


def test_scheduler_does_not_start_a_probe_set_whose_lock_is_held(tmp_path, store_path):
    folder = make_folder(tmp_path)
    os.utime(folder / "sched.yaml", (t("2026-03-01T00:30").timestamp(),) * 2)
    now = t("2026-03-01T07:00")
    runner = FakeRunner(store_path, lambda: now)
    sched = Scheduler(folder, store_path, runner, clock=lambda: now)
    try:
        with ProbeSetLock(store_path, "sched"):
            assert sched.tick(wait=True) == []
            [(entry, d)] = sched.decisions()
            assert d.reason == "running"
        assert len(sched.tick(wait=True)) == 1
    finally:
        sched.close()


def test_invalid_files_in_the_folder_are_reported_and_skipped(tmp_path):
    folder = make_folder(tmp_path)
    (folder / "broken.yaml").write_text(probe_set_text(name="broken", cron="0 0 32 * *"))
    entries, problems = load_schedules(folder)
    assert [e.name for e in entries] == ["sched"]
    assert len(problems) == 1 and "broken.yaml:" in problems[0] and "invalid cron" in problems[0]


def test_schedule_status_and_once_through_the_cli(sandbox, tmp_path, store_path, capsys):
    folder = make_folder(tmp_path)
    os.utime(folder / "sched.yaml", (t("2020-01-01T00:00").timestamp(),) * 2)
    res = cli_inprocess(capsys, "schedule", "run", str(folder), "--once", "--quiet", "--store", str(store_path),
                  "--base-url", f"sandbox={sandbox.url}")
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""  # quiet: nothing to say when all is well (cron mails output)
    with Store(store_path, readonly=True) as st:
        [run] = st.list_runs()
        assert run.probe_set == "sched" and run.status == "complete"
        assert st.platform_counts(run.run_id)["sandbox"]["hard"] == 5
    events = [json.loads(line) for line in (store_path.parent / "logs" / "harness.jsonl").read_text().splitlines()]
    names = [e["event"] for e in events]
    assert names.index("scheduled_run_start") < names.index("run_started") < names.index("run_finished")
    assert next(e for e in events if e["event"] == "scheduled_run_start")["reason"] == "first_run"
    res = cli_inprocess(capsys, "schedule", "status", str(folder), "--store", str(store_path), "--json")
    assert res.returncode == 0, res.stderr
    [row] = json.loads(res.stdout)["probe_sets"]
    assert row["last_status"] == "complete" and row["due_now"] is False
    assert dt.datetime.fromisoformat(row["next_due"]) > dt.datetime.fromisoformat(row["last_started"])


def test_the_foreground_scheduler_runs_logs_and_stops_cleanly_on_sigterm(sandbox, tmp_path, store_path):
    folder = make_folder(tmp_path)
    os.utime(folder / "sched.yaml", (t("2020-01-01T00:00").timestamp(),) * 2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HARNESS_")}
    proc = subprocess.Popen([sys.executable, "-m", "harness", "schedule", "run", str(folder), "--tick", "1",
                             "--store", str(store_path), "--base-url", f"sandbox={sandbox.url}"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = store_path.parent / "logs" / "harness.jsonl"
    deadline = time.monotonic() + 90
    try:
        while '"scheduled_run_done"' not in (log.read_text() if log.exists() else ""):
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "no scheduled run finished"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in log.read_text().splitlines()]
    names = [e["event"] for e in events]
    assert names.count("scheduled_run_start") == 1  # ticks every second, but the slot is hours away
    assert names.index("scheduler_started") < names.index("scheduled_run_start") < names.index("run_finished")
    assert names[-1] == "scheduler_stopped"
    done = next(e for e in events if e["event"] == "scheduled_run_done")
    assert done["exit_code"] == 0 and done["status"] == "complete"


# --------------------------------------------------------------------------- crontab


def test_crontab_block_is_a_valid_five_field_line_and_merges_idempotently(tmp_path):
    block = crontab_block(tmp_path, tmp_path / "probes", every_minutes=5)
    jobs = [ln for ln in block.splitlines() if ln and not ln.startswith("#")]
    assert len(jobs) == 1
    fields = jobs[0].split(None, 5)
    assert croniter.is_valid(" ".join(fields[:5])) and fields[:5] == ["*/5", "*", "*", "*", "*"]
    assert "schedule run" in fields[5] and "--once" in fields[5] and "--quiet" in fields[5]
    mine = "MAILTO=me@example.org\n0 3 * * * backup\n"
    once = merge_crontab(mine, block)
    twice = merge_crontab(once, crontab_block(tmp_path, tmp_path / "probes", every_minutes=10))
    assert once.startswith(mine) and twice.startswith(mine)
    assert twice.count("# BEGIN censorship-harness") == 1 and "*/10 * * * *" in twice and "*/5 * * * *" not in twice
    with pytest.raises(Exception, match="between 1 and 59"):
        crontab_block(tmp_path, tmp_path, every_minutes=0)


def test_install_crontab_write_merges_into_the_users_crontab(tmp_path, capsys, monkeypatch):
    folder = make_folder(tmp_path)
    saved = tmp_path / "crontab.txt"
    saved.write_text("0 3 * * * backup\n")
    fake = tmp_path / "fake-crontab"
    fake.write_text(f'#!/bin/sh\nif [ "$1" = "-l" ]; then cat {saved}; else cat > {saved}; fi\n')
    fake.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("harness.cli.schedule._crontab_cmd", lambda: [str(fake)])
    for _ in range(2):  # twice: the block is replaced, not added again
        res = cli_inprocess(capsys, "schedule", "install", str(folder), "--crontab", "--write")
        assert res.returncode == 0, res.stderr
    text = saved.read_text()
    assert text.startswith("0 3 * * * backup\n") and text.count("# BEGIN censorship-harness") == 1


# --------------------------------------------------------------------------- systemd


def unit_sections(text: str) -> configparser.ConfigParser:
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # systemd keys are case-sensitive
    cp.read_string(text)
    return cp


def scheduled(tmp_path: Path, cron: str, tz: str = "UTC", jitter: float = 0) -> ScheduledProbeSet:
    p = tmp_path / "ps.yaml"
    p.write_text(probe_set_text(cron=cron, tz=tz, jitter=jitter))
    ps, _ = load_probe_set(p)
    return ScheduledProbeSet(ps.name, p, ps.schedule, ps)


def test_systemd_units_have_the_required_keys(tmp_path):
    units = systemd_units(scheduled(tmp_path, "0 */6 * * *", "Asia/Shanghai", 600), tmp_path)
    svc, tmr = unit_sections(units.service), unit_sections(units.timer)
    assert svc["Service"]["Type"] == "oneshot"
    assert svc["Service"]["ExecStart"].split()[1:4] == ["-m", "harness", "run"]
    assert Path(svc["Service"]["ExecStart"].split()[0]).exists()
    assert tmr["Timer"]["OnCalendar"] == "*-*-* 0/6:0:00 Asia/Shanghai"
    assert tmr["Timer"]["RandomizedDelaySec"] == "600"
    assert tmr["Timer"]["Persistent"] == "true"
    assert tmr["Timer"]["Unit"] == f"{units.name}.service"
    assert tmr["Install"]["WantedBy"] == "timers.target"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verifies_the_units(tmp_path):
    units = systemd_units(scheduled(tmp_path, "30 2 * * 1-5", "Europe/Berlin", 900), tmp_path)
    d = tmp_path / "units"
    d.mkdir()
    (d / f"{units.name}.service").write_text(units.service)
    (d / f"{units.name}.timer").write_text(units.timer)
    res = subprocess.run(["systemd-analyze", "verify", "--man=no", str(d / f"{units.name}.timer"),
                          str(d / f"{units.name}.service")], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "Unknown" not in res.stderr and "ignoring" not in res.stderr and "Failed" not in res.stderr, res.stderr


CRON_CASES = [
    ("0 */6 * * *", "Asia/Shanghai"), ("30 2 * * 1-5", "Europe/Berlin"), ("*/20 9-17 * * mon-fri", "UTC"),
    ("15 3 1,15 * *", "UTC"), ("0 12 * jan,jul sun", "UTC"), ("5 4 13 * 5", "UTC"), ("0 0 */10 * *", "UTC"),
    ("0 9 * * 7", "America/New_York"), ("10-40/15 1 * * *", "UTC"),
]


def systemd_elapses(spec: str, base: dt.datetime, n: int) -> list[dt.datetime]:
    res = subprocess.run(["systemd-analyze", "calendar", f"--iterations={n}",
                          f"--base-time={base.strftime('%Y-%m-%d %H:%M:%S')} UTC", spec],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "TZ": "UTC"})
    assert res.returncode == 0, (spec, res.stderr)
    out = []
    for line in res.stdout.splitlines():
        line = line.strip()
        if line.startswith(("Next elapse:", "Iter. #")):
            stamp = line.split(":", 1)[1].strip()  # "Thu 2026-01-01 04:00:00 UTC"
            out.append(dt.datetime.strptime(stamp.split(" ", 1)[1], "%Y-%m-%d %H:%M:%S %Z").replace(tzinfo=UTC))
    return out


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize("cron,tz", CRON_CASES)
def test_the_timer_fires_exactly_when_the_cron_expression_does(cron, tz):
    s = Schedule(cron=cron, timezone=tz)
    base = t("2026-02-25T00:00")
    n = 25
    fired: set[dt.datetime] = set()
    for spec in cron_to_oncalendar(s):
        fired.update(systemd_elapses(spec, base, n))
    systemd = sorted(fired)[:n]
    it = croniter(s.cron, base.astimezone(__import__("zoneinfo").ZoneInfo(tz)))
    cron_times = [it.get_next(dt.datetime).astimezone(UTC) for _ in range(n)]
    assert systemd == cron_times


def test_install_systemd_write_puts_units_in_the_unit_folder(tmp_path, capsys, monkeypatch):
    folder = make_folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    res = cli_inprocess(capsys, "schedule", "install", str(folder), "--systemd", "--write", "--unit-dir",
                        str(tmp_path / "units"))
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in (tmp_path / "units").iterdir()) == ["harness-sched.service", "harness-sched.timer"]
    assert "systemctl --user enable --now harness-sched.timer" in " ".join(res.stdout.split())
    res = cli_inprocess(capsys, "schedule", "install", str(folder))
    assert res.returncode == 2 and "choose one of --crontab or --systemd" in res.stderr
