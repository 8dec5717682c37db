"""Alerts after a run (a probe set's ``notify:``): a webhook and/or a command, fired when the
run's diff with the previous run of the same probe set and vantage has changes of the chosen kinds.

What is sent is the diff itself (:class:`harness.analysis.diff.DiffResult` as JSON, its
``changes`` narrowed to those that fired the alert), under ``{"event": "harness.changes", ...}``:
no cookie, proxy, token, host name or local path is added. The webhook is a POST with
``Content-Type: application/json`` sent directly (no proxy from the environment); the command
gets the same JSON on standard input. A failing alert is logged and reported, never fails the run.
"""

from __future__ import annotations

import json
import logging
import subprocess
from typing import Any

from ..analysis.diff import NOT_CONFIRMABLE, Transition, default_pair, diff_runs
from ..errors import NotFoundError, ProbeSetError
from ..models import Notify
from ..store.sqlite import Store
from .logs import event, get_logger

log = get_logger("notify")

TRANSITIONS = {t.value for t in Transition}


def check_notify(notify: Notify) -> None:
    unknown = [t for t in notify.changes if t not in TRANSITIONS]
    if unknown:
        raise ProbeSetError(f"notify.changes: unknown change kind(s) {', '.join(unknown)} (known: {', '.join(sorted(TRANSITIONS))})")
    if not notify.webhook and not notify.command:
        raise ProbeSetError("notify: give a webhook URL, a command, or both")


def payload_for(store: Store, run_id: str, notify: Notify) -> dict[str, Any] | None:
    """The alert's JSON for this run, or None when nothing of the chosen kinds changed."""
    try:
        run_a, run_b = default_pair(store, None, run_id)
    except NotFoundError:
        return None
    result = diff_runs(store, run_a.run_id, run_b.run_id)
    wanted = set(notify.changes)
    changes = [c for c in result.changes if c.transition.value in wanted
               and (not notify.confirmed_only or c.transition in NOT_CONFIRMABLE or c.confirmed is True)]
    if not changes:
        return None
    data = result.model_dump(mode="json")
    data["changes"] = [c.model_dump(mode="json") for c in changes]
    data["alert_counts"] = {k: sum(1 for c in changes if c.transition.value == k) for k in sorted(wanted)}
    return {"event": "harness.changes", **data}


def fire(notify: Notify, payload: dict[str, Any]) -> list[dict[str, Any]]:
    """Send the payload to the webhook and/or the command; one outcome per target."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    outcomes: list[dict[str, Any]] = []
    if notify.webhook:
        import httpx

        try:
            with httpx.Client(trust_env=False, timeout=notify.timeout_s, follow_redirects=False) as client:
                r = client.post(notify.webhook, content=body, headers={"Content-Type": "application/json",
                                                                       "User-Agent": "censorship-harness"})
            outcomes.append({"target": "webhook", "ok": 200 <= r.status_code < 300, "status": r.status_code})
        except httpx.HTTPError as exc:
            outcomes.append({"target": "webhook", "ok": False, "error": type(exc).__name__})
    if notify.command:
        try:
            p = subprocess.run(notify.command, input=body, capture_output=True, timeout=notify.timeout_s, check=False)
            outcomes.append({"target": "command", "ok": p.returncode == 0, "exit_code": p.returncode})
        except (OSError, subprocess.TimeoutExpired) as exc:
            outcomes.append({"target": "command", "ok": False, "error": type(exc).__name__})
    return outcomes


def notify_after_run(store: Store, run_id: str, notify: Notify, probe_set: str) -> list[dict[str, Any]]:
    payload = payload_for(store, run_id, notify)
    if payload is None:
        return []
    outcomes = fire(notify, payload)
    for o in outcomes:
        level = logging.INFO if o["ok"] else logging.WARNING
        event(log, "notified" if o["ok"] else "notify_failed",
              f"{o['target']} alert for run {run_id}: {'sent' if o['ok'] else 'failed'}", level,
              probe_set=probe_set, run_id=run_id, changes=len(payload["changes"]),
              **{k: v for k, v in o.items() if k not in ("ok",)})
    return outcomes
