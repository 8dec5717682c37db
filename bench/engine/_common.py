"""Shared helpers of the engine benchmarks: a sandbox in its own process, generated probe sets."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx
import yaml

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def sandbox_process(extra: tuple[str, ...] = ()) -> Iterator[str]:
    """`harness sandbox serve` in a separate process (no GIL shared with the client being measured)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "harness", "sandbox", "serve", "--port", str(port), *extra],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                httpx.get(url + "/healthz", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def term(i: int) -> str:
    if i % 37 == 0:
        return f"六四{i}"  # hard
    if i % 53 == 0:
        return f"zzqxw{i}"  # no results
    return f"测试词{i}"


def write_probe_set(folder: Path, n_terms: int, *, concurrency: int = 8, soft: bool = False,
                    controls: bool = False, repeats: int = 1, name: str = "bench") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    kw = folder / f"{name}-terms.yaml"
    kw.write_text(yaml.safe_dump({"name": f"{name}-terms", "entries": [{"term": term(i)} for i in range(n_terms)]},
                                 allow_unicode=True), encoding="utf-8")
    ps = {
        "name": name,
        "keywords": [{"list": str(kw)}],
        "platforms": [{"name": "sandbox", "soft_test": soft,
                       "rate_limit": {"interval_s": 0, "jitter": 0, "concurrency": concurrency}}],
        "controls": {"truism": True, "every": 100, "lists": []} if controls else {"truism": False, "lists": []},
        "timeout_s": 30,
        "retries": 1,
        "repeats": repeats,
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(ps, allow_unicode=True), encoding="utf-8")
    return path


def rss_mb(pid: int | None = None) -> float:
    with open(f"/proc/{pid or os.getpid()}/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def machine() -> str:
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu}, Python {sys.version.split()[0]}, load {os.getloadavg()[0]:.1f}"
