"""A platform's health during a run: when to give it up, and the lines a person reads.

Bookkeeping only, no I/O: the engine (:mod:`harness.measure.engine`) reports every answer
and every truism to a :class:`PlatformHealth`, which decides

- **unreachable**: the truism has had no results for ``controls.give_up_after_s`` since
  its first failure (the engine backs off in between and sends nothing else);
- **layout changed**: ``controls.drift_after`` pages in a row, or :data:`DRIFT_SHARE` of
  the last :data:`DRIFT_WINDOW`, matched none of the spec's markers, or the truism's pages
  did on every attempt of a control window;
- **login wall**: the truism answered ``session_required`` (no amount of waiting helps);

and writes the one line that says so (``baidu: unreachable since 12:03 (dns_error); 48
probes not sent, run resumes them``). What reaches the person running the harness is a
:class:`Notice`. Positive-control results of a run are summarised by
:func:`positive_control_summary`.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

from ..models import Verdict
from ..store.sqlite import Store

DRIFT_WINDOW = 10  # the layout check looks at this many recent pages ...
DRIFT_SHARE = 8  # ... and stops the platform when this many of them matched no marker
POSITIVE_MISSED = "positive_control_missed"
"""Signal of a positive control (a term known to be censored there) not detected while the truism works."""


@dataclass
class Notice:
    """Something about a platform the person running the harness must hear, said once."""

    platform: str
    kind: str  # session_required | unhealthy | recovered | unreachable | layout_changed | positive_control_missed
    message: str
    fields: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"platform": self.platform, "kind": self.kind, "message": self.message, **self.fields}


NoticeCallback = Callable[[Notice], None]


def duration(seconds: float) -> str:
    """``0.5 s``, ``30 s``, ``5 min``, ``2.5 h``."""
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} s" if seconds % 1 else f"{seconds:.0f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def session_help(platform: str, has_cookies: bool) -> str:
    """How to give a walled platform a logged-in session (said with every login-wall notice)."""
    if has_cookies:
        return (f"the cookies given for {platform} did not get past it (expired, or a visitor session?): export "
                f"fresh ones from a browser logged in to {platform}")
    return (f"give it cookies from a browser logged in to {platform}: harness run PROBESET --cookies "
            f"{platform}=cookies.txt (Netscape cookies.txt or a JSON export), or options: {{cookies_file: FILE}} "
            f"under the platform in the probe set (docs/platform-specs.md, Sessions); use an account not tied "
            f"to a person at risk")


class PlatformHealth:
    """What one platform's answers say about it in this run."""

    def __init__(self, platform: str, *, give_up_after_s: float, drift_after: int, control_attempts: int):
        self.platform = platform
        self.give_up_after_s = give_up_after_s
        self.drift_after = drift_after
        self.control_attempts = control_attempts
        self.stopped: str | None = None  # the line saying why the platform was given up
        self.unhealthy_since: float | None = None  # monotonic time of the first failed truism of a streak
        self.unhealthy_wall: float | None = None
        self.failed_truisms = 0  # in the current streak: the back-off grows with it
        self.recent_pages: deque[bool] = deque(maxlen=DRIFT_WINDOW)  # True: the page matched no marker
        self.unexpected_run = 0  # consecutive pages that matched no marker

    # ---------------------------------------------------------------- pages

    def page(self, unexpected: bool) -> str | None:
        """Note a page (an answer with HTTP 2xx); the reason to stop when the layout has probably changed."""
        self.recent_pages.append(unexpected)
        self.unexpected_run = self.unexpected_run + 1 if unexpected else 0
        if not unexpected:
            return None
        if self.unexpected_run >= self.drift_after:
            n, of = self.unexpected_run, self.unexpected_run
        elif sum(self.recent_pages) >= DRIFT_SHARE:
            n, of = sum(self.recent_pages), len(self.recent_pages)
        else:
            return None
        return (f"{n} of the last {of} pages matched none of the spec's markers: the page layout has probably "
                f"changed (check: harness platforms check {self.platform}; after repairing the spec, "
                f"harness reclassify RUN)")

    # ---------------------------------------------------------------- the truism

    def truism_ok(self, now: float | None = None) -> float | None:
        """The truism has results; how long it had not (seconds), if it had failed before."""
        down = None
        if self.unhealthy_since is not None:
            down = (time.monotonic() if now is None else now) - self.unhealthy_since
        self.unhealthy_since = self.unhealthy_wall = None
        self.failed_truisms = 0
        return down

    def truism_failed(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        if self.unhealthy_since is None:
            self.unhealthy_since, self.unhealthy_wall = now, time.time()
        self.failed_truisms += 1

    @property
    def since(self) -> str:
        """Local clock time of the streak's first failure (``12:03``)."""
        return time.strftime("%H:%M", time.localtime(self.unhealthy_wall or time.time()))

    def elapsed(self, now: float | None = None) -> float:
        if self.unhealthy_since is None:
            return 0.0
        return (time.monotonic() if now is None else now) - self.unhealthy_since

    def truism_unreadable(self) -> str | None:
        """The reason to stop when the truism's page matched no marker on every attempt of a window."""
        if self.failed_truisms >= self.control_attempts:
            return (f"the truism's last {self.failed_truisms} pages matched none of the spec's markers: the page "
                    f"layout has probably changed (check: harness platforms check {self.platform})")
        return None

    # ---------------------------------------------------------------- giving up

    def stop_line(self, why: str, not_sent: int) -> str:
        """``baidu: unreachable since 12:03 (dns_error); 48 probes not sent, run resumes them``."""
        line = f"{self.platform}: {why}; {not_sent} probe{'s' if not_sent != 1 else ''} not sent, run resumes them"
        self.stopped = line
        return line


def positive_control_summary(store: Store, run_id: str) -> dict[str, dict[str, Any]]:
    """platform -> the run's positive controls: how many were sent, how many detected (hard or
    soft), which were missed while the truism worked, how many failed, and the detection rate
    (detected / answered; None when none answered)."""
    out: dict[str, dict[str, Any]] = {}
    for m in store.measurements(run_id, role="positive_control"):
        row = out.setdefault(m.platform, {"sent": 0, "detected": 0, "missed": [], "failed": 0, "rate": None})
        row["sent"] += 1
        if m.verdict in (Verdict.hard, Verdict.soft):
            row["detected"] += 1
        elif m.verdict is Verdict.failure:
            row["failed"] += 1
        elif POSITIVE_MISSED in m.test_keys.signals:
            row["missed"].append(m.input)
    for row in out.values():
        answered = row["sent"] - row["failed"]
        row["rate"] = round(row["detected"] / answered, 4) if answered else None
    return out
