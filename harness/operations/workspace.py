"""Where the harness finds its files: the bundled data, the workspace, and ``harness init``.

**Bundled data.** The curated keyword lists (``keywords/``), the probe sets (``probes/``,
with the demo's) and the watch lists (``watch/``) are edited in one place, the repository's
top-level folders. A build copies
them into the package (``harness/bundled/``, see ``setup.py``); an editable install or a
source checkout reads them where they are. :func:`bundled_dir` finds either.

**The workspace** is the nearest folder, from the working directory up, that holds a
``harness.toml``. The configuration file is ``--config``, else ``$HARNESS_CONFIG``, else that
``harness.toml``. A relative path in it (``store``, ``log.file``, ``schedule.probes_dir``) is
read relative to the file's folder, so a scheduled run finds the same store from any folder.
Without a workspace, paths are relative to the working directory (``results/harness.db``).

``harness init [DIR]`` makes a workspace: ``keywords/``, ``probes/`` and ``watch/`` copied from the
bundled data, a commented ``harness.toml`` and an empty ``results/``. Existing files are kept.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import NotFoundError

CONFIG_FILE_NAME = "harness.toml"
BUNDLED = ("keywords", "probes", "watch")

_PACKAGE = Path(__file__).resolve().parents[1]


def bundled_dir(name: str) -> Path:
    """The bundled ``keywords`` or ``probes`` folder: inside the installed package, else the source tree's."""
    if name not in BUNDLED:
        raise ValueError(f"no bundled folder {name!r}")
    inside = _PACKAGE / "bundled" / name
    if inside.is_dir():
        return inside
    source = _PACKAGE.parent / name
    if source.is_dir() and (_PACKAGE.parent / "pyproject.toml").is_file():
        return source
    raise NotFoundError(f"the bundled {name}/ folder is missing from this installation (reinstall the harness)")


def find_workspace(start: Path | None = None) -> Path | None:
    """The nearest folder from ``start`` (default: the working directory) up that holds a harness.toml."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / CONFIG_FILE_NAME).is_file():
            return folder
    return None


def workspace_path(relative: str | Path) -> Path:
    """``relative`` inside the workspace when there is one, else as given (relative to the working directory)."""
    ws = find_workspace()
    p = Path(relative)
    return p if ws is None or p.is_absolute() else ws / p


CONFIG_TEMPLATE = """\
# harness.toml: this workspace's configuration (`harness config show` prints the effective
# values and where each came from). Precedence: command-line flags, then HARNESS_* environment
# variables, then this file, then defaults. Relative paths are relative to this file's folder.

store = "results/harness.db"

[vantage]
# Say where you measure from; it is stored with every measurement.
probe_cc = "ZZ"     # two-letter country code (ZZ: unknown)
probe_asn = "AS0"   # autonomous system (AS0: unknown)
label = ""          # a name for this vantage point, e.g. "bj-1"

# proxy = "socks5://127.0.0.1:1080"
# keep_evidence = "180d"

# [cookie_files]
# weibo = "secrets/weibo-cookies.txt"   # Netscape cookies.txt; never stored or exported

# retry_backoff_s = 5.0   # first wait before retrying a failed request (doubles each retry)

[schedule]
probes_dir = "probes"
"""


@dataclass
class InitReport:
    root: Path
    created: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)


def init_workspace(root: Path) -> InitReport:
    """Make a workspace in ``root`` (created if needed); files already there are kept, never overwritten.

    Raises :class:`~harness.errors.OutputError` (one line) when ``root`` is not a folder or cannot be written."""
    from ..errors import OutputError

    if root.exists() and not root.is_dir():
        raise OutputError(f"{root}: is not a folder; give a new or existing folder for the workspace")
    report = InitReport(root)
    try:
        _fill_workspace(root, report)
    except OSError as exc:
        done = f"; {len(report.created)} files were made before it stopped (run it again to finish)" if report.created else ""
        raise OutputError(f"{exc.filename or root}: cannot make the workspace: "
                          f"{exc.strerror or exc}{done}") from None
    return report


def _fill_workspace(root: Path, report: InitReport) -> None:
    from ..yamlio import atomic_write_text

    root.mkdir(parents=True, exist_ok=True)
    for name in BUNDLED:
        src = bundled_dir(name)
        for f in sorted(src.rglob("*")):
            if not f.is_file() or "__pycache__" in f.parts:
                continue
            dst = root / name / f.relative_to(src)
            if dst.exists():
                report.kept.append(dst)
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, dst)
            report.created.append(dst)
    cfg = root / CONFIG_FILE_NAME
    if cfg.exists():
        report.kept.append(cfg)
    else:
        atomic_write_text(cfg, CONFIG_TEMPLATE)
        report.created.append(cfg)
    results = root / "results"
    if not results.is_dir():
        results.mkdir(parents=True)
        report.created.append(results)
