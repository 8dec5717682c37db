"""Ad-hoc input: ``harness run --platform baidu --input 六四 --input-file terms.txt`` without YAML.

The terms become a keyword list and a probe set written under ``<store folder>/adhoc/<name>/``
(``keywords/<name>.yaml``, ``probes/<name>.yaml``), so the run is an ordinary run of an ordinary
probe set: stored, resumable and diffable like any other. The name is ``adhoc-<platforms>-<hash>``
where the hash covers the sorted terms, so the same terms on the same platforms make the same
probe set and two such runs diff against each other.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import yaml
from pydantic import ValidationError

from ..errors import InputError
from ..models import Keyword
from ..yamlio import atomic_write_text

ADHOC_PREFIX = "adhoc-"


def read_terms(inputs: list[str], files: list[Path]) -> list[str]:
    """Terms from ``--input`` values and ``--input-file`` files (one a line; blank lines and ``#`` comments skipped).

    Each term is checked as a keyword entry here, so a bad one is reported where the user wrote
    it (``terms.txt:3: ...`` or ``--input 2: ...``), before anything is written."""
    terms: list[tuple[str, str, int | None]] = []  # (term, where, line)
    for i, t in enumerate(inputs, 1):
        if t.strip():
            terms.append((t.strip(), f"--input {i}" if len(inputs) > 1 else "--input", None))
    for f in files:
        try:
            text = f.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise InputError("input file not found", f) from None
        except UnicodeDecodeError:
            raise InputError("not valid UTF-8", f) from None
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror}", f) from None
        for number, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if line and not line.startswith("#"):
                terms.append((line, str(f), number))
    seen: set[str] = set()
    out: list[str] = []
    for term, where, number in terms:
        if term in seen:
            continue
        seen.add(term)
        try:
            Keyword(term=term, source="command line")
        except ValidationError as exc:
            raise InputError(exc.errors()[0]["msg"].removeprefix("Value error, "), where, number) from None
        out.append(term)
    if not out:
        raise InputError("no terms: give --input TERM or --input-file FILE (one term a line)")
    return out


def adhoc_name(terms: list[str], platforms: list[str]) -> str:
    digest = hashlib.sha256("\n".join(sorted(terms)).encode()).hexdigest()[:8]
    plats = "-".join(re.sub(r"[^A-Za-z0-9_]+", "_", p) for p in sorted(platforms))
    return f"{ADHOC_PREFIX}{plats}-{digest}"


def write_adhoc_probe_set(terms: list[str], platforms: list[str], folder: Path) -> Path:
    """Write the keyword list and probe set for these terms under ``folder``; returns the probe set path."""
    if not platforms:
        raise InputError("ad-hoc input needs --platform NAME (repeatable)")
    name = adhoc_name(terms, platforms)
    root = folder / name
    keyword_list = {"name": name, "description": "ad-hoc input from the command line",
                    "entries": [{"term": t, "source": "command line"} for t in terms]}
    probe_set = {"name": name, "description": f"ad-hoc input: {len(terms)} terms",
                 "keywords": [{"list": name}], "platforms": [{"name": p} for p in platforms]}
    atomic_write_text(root / "keywords" / f"{name}.yaml", yaml.safe_dump(keyword_list, allow_unicode=True, sort_keys=False))
    path = root / "probes" / f"{name}.yaml"
    atomic_write_text(path, yaml.safe_dump(probe_set, allow_unicode=True, sort_keys=False))
    return path
