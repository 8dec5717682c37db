"""One run of a probe set per vantage point at a time, and whether a run is alive.

The lock is per (probe set, vantage label): two vantage points may run the same probe set
into one store at once, and a run killed at one never blocks, nor is taken over by, another.
On a PostgreSQL store it is an advisory lock (:class:`harness.store.postgres.PgRunLock`),
which holds across machines; :func:`run_lock`, :func:`current_holder`, :func:`all_holders`
and :func:`effective_status` pick the right one from the store's target.

On SQLite it is an ``flock`` on a lock file next to the store
(``harness.db.locks/NAME.lock``, or ``NAME@VANTAGE.lock`` for a labelled vantage point).

The kernel releases an ``flock`` when its holder dies (even by SIGKILL), so a lock
can never outlive its process; the JSON the holder writes into the file (pid, host,
run id, start time) only serves to name it in the refusal message. A file that still
holds a dead holder's details when the lock is free is a stale lock: it is taken over
and reported as such.

:func:`effective_status` says whether a run marked ``running`` really is: only while its
process holds the lock.

The lock is per host: ``flock`` on network file systems is not reliable, and the store
itself (SQLite in WAL mode) must live on a local disk anyway.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import socket
import time
from pathlib import Path
from typing import Any, Protocol

from ..errors import RunLockedError
from ..models import Run
from .base import Store
from .holder import LockHolder
from .target import StoreTarget, is_postgres


def lock_dir_for(store_path: Path) -> Path:
    """``results/harness.db`` → ``results/harness.db.locks/``."""
    return store_path.parent / (store_path.name + ".locks")


def _safe_name(probe_set: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", probe_set) or "_"


def lock_file_for(store_path: Path, probe_set: str, vantage: str = "") -> Path:
    """The lock file of (probe set, vantage); the unlabelled vantage keeps the old ``NAME.lock``."""
    name = _safe_name(probe_set) + (f"@{_safe_name(vantage)}" if vantage else "")
    return lock_dir_for(Path(store_path)) / f"{name}.lock"


def pid_alive(pid: int | None) -> bool:
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ProbeSetLock:
    """An exclusive, non-blocking lock on one probe set at one vantage point of one SQLite store.

    ``acquire()`` raises :class:`RunLockedError` naming the holder when another process
    has it. Use as a context manager.
    """

    def __init__(self, store_path: Path, probe_set: str, vantage: str = ""):
        self.probe_set = probe_set
        self.vantage = vantage
        self.path = lock_file_for(Path(store_path), probe_set, vantage)
        self._fd: int | None = None
        self.took_over: LockHolder | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "ProbeSetLock":
        if self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        for attempt in range(5):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = LockHolder.parse(_read_fd(fd))
                if holder is None and attempt < 4:
                    time.sleep(0.02)  # an empty file: most likely a status check holding it for a moment
                    continue
                os.close(fd)
                who = holder.describe() if holder else "another process"
                at = f" at vantage {self.vantage!r}" if self.vantage else ""
                raise RunLockedError(
                    f"probe set {self.probe_set!r}{at} is already running ({who}); lock file {self.path}"
                ) from None
        previous = LockHolder.parse(_read_fd(fd))
        if previous is not None and not (previous.pid == os.getpid() and previous.host == socket.gethostname()):
            self.took_over = previous
        self._fd = fd
        self._write({})
        return self

    def update(self, **info: Any) -> None:
        """Add details (e.g. the run id once it is known) to what the lock file says."""
        if self._fd is not None:
            self._write(info)

    def _write(self, extra: dict[str, Any]) -> None:
        assert self._fd is not None
        current = LockHolder.parse(_read_fd(self._fd)) if extra else None
        data = {
            "pid": os.getpid(), "host": socket.gethostname(), "probe_set": self.probe_set, "vantage": self.vantage,
            "since": current.since if current and current.since else dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "run_id": current.run_id if current else None,
        }
        data.update(extra)
        raw = json.dumps(data).encode()
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, raw, 0)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "ProbeSetLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_fd(fd: int) -> str:
    try:
        return os.pread(fd, 4096, 0).decode("utf-8", "replace")
    except OSError:
        return ""


class RunLock(Protocol):
    """What :func:`run_lock` returns, whatever the backend."""

    probe_set: str
    took_over: LockHolder | None

    @property
    def held(self) -> bool: ...

    def acquire(self) -> "RunLock": ...

    def update(self, **info: Any) -> None: ...

    def release(self) -> None: ...

    def __enter__(self) -> "RunLock": ...

    def __exit__(self, *exc: object) -> None: ...


def _target(store: StoreTarget | Store) -> StoreTarget:
    return store.target if isinstance(store, Store) else store


def run_lock(store: StoreTarget | Store, probe_set: str, vantage: str = "") -> RunLock:
    """The run lock of (probe set, vantage) for this store (not yet acquired)."""
    target = _target(store)
    if is_postgres(target):
        from .postgres import PgRunLock

        return PgRunLock(target, probe_set, vantage)
    return ProbeSetLock(Path(target), probe_set, vantage)


def _with_pg(store: StoreTarget | Store, fn: Any) -> Any:
    if isinstance(store, Store):
        return fn(store)
    with Store(store, readonly=True) as st:
        return fn(st)


def current_holder(store: StoreTarget | Store, probe_set: str, vantage: str = "") -> LockHolder | None:
    """Who holds the lock of (probe set, vantage) right now (None when nobody does). Does not keep the lock."""
    target = _target(store)
    if is_postgres(target):
        return _with_pg(store, lambda st: st.lock_holder(probe_set, vantage))
    path = lock_file_for(Path(target), probe_set, vantage)
    if not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return LockHolder.parse(_read_fd(fd)) or LockHolder(0, "?", probe_set, vantage=vantage)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def all_holders(store: StoreTarget | Store) -> list[LockHolder]:
    """Every run lock currently held on this store."""
    target = _target(store)
    if is_postgres(target):
        return _with_pg(store, lambda st: st.lock_holders())
    d = lock_dir_for(Path(target))
    out = []
    if d.is_dir():
        for f in sorted(d.glob("*.lock")):
            fd = os.open(f, os.O_RDONLY)
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                except BlockingIOError:
                    out.append(LockHolder.parse(_read_fd(fd)) or LockHolder(0, "?", f.stem))
                    continue
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
    return out


def effective_status(run: Run, store: StoreTarget | Store) -> str:
    """The run's status as it really is: ``running`` only while its process holds the lock of
    the run's (probe set, vantage)."""
    if run.status != "running":
        return run.status
    holder = current_holder(store, run.probe_set, run.vantage)
    if holder is not None:
        alive = holder.pid == run.pid and holder.host == run.hostname
        return "running" if alive else "interrupted"
    target = _target(store)
    if is_postgres(target):
        return "interrupted"
    locked_before = lock_dir_for(Path(target)).is_dir()  # exists once any run of this store took a lock
    if not locked_before and run.hostname == socket.gethostname() and pid_alive(run.pid):
        return "running"  # a store written without locks (library use): trust a live pid on this host
    return "interrupted"
