"""Who holds a run lock: what a refusal message and ``runs list`` name (both backends)."""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class LockHolder:
    pid: int
    host: str
    probe_set: str
    run_id: str | None = None
    since: str | None = None
    vantage: str = ""

    def describe(self) -> str:
        run = f" as run {self.run_id}" if self.run_id else ""
        since = f" since {self.since}" if self.since else ""
        return f"pid {self.pid} on {self.host}{run}{since}"

    @classmethod
    def parse(cls, text: str) -> "LockHolder | None":
        try:
            data = json.loads(text)
            return cls(int(data["pid"]), str(data["host"]), str(data["probe_set"]), data.get("run_id"), data.get("since"),
                       str(data.get("vantage") or ""))
        except (ValueError, KeyError, TypeError):
            return None
