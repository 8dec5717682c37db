"""A throwaway PostgreSQL server for the tests and benchmarks: Debian's binaries, a temporary
data directory, a unix socket in that directory (no TCP port to collide on), stopped at the end.

``initdb`` and ``pg_ctl`` refuse to run as root: as root they run as the ``postgres`` user
(``runuser -u postgres --``). The binaries are looked up in ``/usr/lib/postgresql/<version>/bin``
(newest first), then on ``PATH``; nothing relies on a symlink a machine happens to have.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path


def find_bindir() -> Path | None:
    def version(p: str) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", Path(p).parent.parent.name)) or (0,)

    for initdb in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version, reverse=True):
        if os.access(initdb, os.X_OK):
            return Path(initdb).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def unavailable_reason() -> str | None:
    """Why no server can be started here (None: one can)."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install -e '.[test]')"
    if find_bindir() is None:
        return "PostgreSQL server binaries not found (apt-get install postgresql)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run initdb as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


@dataclass
class PgServer:
    base: Path
    bindir: Path
    prefix: list[str]
    port: int = 5432

    def url(self, database: str = "harness", user: str = "postgres", password: str | None = None,
            schema: str | None = None) -> str:
        cred = f"{user}:{password}@" if password else f"{user}@"
        url = f"postgresql://{cred}/{database}?host={self.base}&port={self.port}"
        if schema:
            url += f"&options=-csearch_path%3D{schema}"
        return url

    def new_schema(self, database: str = "harness", **kw: str) -> str:
        """A fresh, empty schema: a store of its own (tests run in parallel in one database)."""
        import psycopg

        name = "s_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(database), autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return self.url(database, schema=name, **kw)

    def new_database(self) -> str:
        import psycopg

        name = "d_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return name

    def stop(self) -> None:
        subprocess.run([*self.prefix, str(self.bindir / "pg_ctl"), "-D", str(self.base / "data"), "-m", "immediate",
                        "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.base, ignore_errors=True)


def start(*, settings: dict[str, str] | None = None) -> PgServer:
    """initdb + pg_ctl start; raises RuntimeError saying why when it cannot."""
    why = unavailable_reason()
    if why:
        raise RuntimeError(why)
    bindir = find_bindir()
    assert bindir is not None
    base = Path(tempfile.mkdtemp(prefix="hpg-", dir="/tmp"))  # short: a unix socket path has ~100 bytes
    prefix: list[str] = []
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(base, pw.pw_uid, pw.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    opts = {"listen_addresses": "''", "unix_socket_directories": f"'{base}'", "fsync": "off",
            "synchronous_commit": "off", "full_page_writes": "off", "max_connections": "100"}
    opts.update(settings or {})
    try:
        subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(base / "data"), "-U", "postgres", "-A", "trust",
                        "-E", "UTF8", "--no-locale", "--no-sync"], check=True, capture_output=True, timeout=120)
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(base / "data"), "-l", str(base / "log"), "-w",
                        "-t", "60", "-o", " ".join(f"-c {k}={v}" for k, v in opts.items()), "start"],
                       check=True, capture_output=True, timeout=120)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        log = (base / "log").read_text(errors="replace")[-500:] if (base / "log").exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        raise RuntimeError(f"cannot start PostgreSQL: {exc}: {detail.decode(errors='replace')[-300:]} {log}") from None
    server = PgServer(base, bindir, prefix)
    import psycopg

    with psycopg.connect(server.url("postgres"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE harness")
    return server
