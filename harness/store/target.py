"""Where a store lives: a SQLite file path, or a PostgreSQL connection URL.

``--store``, ``$HARNESS_STORE`` and ``store`` in ``harness.toml`` all take either form:

- a path (``results/harness.db``): the embedded SQLite store;
- ``postgresql://[user@]host[:port]/dbname[?options]`` (or ``postgres://``): a team store on a
  PostgreSQL server. Give the password through ``$PGPASSWORD`` or a ``~/.pgpass`` file, not in
  the URL; if the URL does carry one, :func:`redact` is what every message, log and stored
  record shows instead.

A PostgreSQL store is one *schema* of one database (``current_schema``, normally ``public``);
``?options=-csearch_path%3Dteam2`` selects another, so one server can hold several stores.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Union
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

StoreTarget = Union[str, Path]
"""A store's location as the user gave it: a path or a ``postgresql://`` URL."""

_SCHEMES = ("postgresql://", "postgres://")


def is_postgres(target: StoreTarget | None) -> bool:
    return isinstance(target, str) and target.strip().lower().startswith(_SCHEMES)


def normalize(target: StoreTarget) -> StoreTarget:
    """A URL stays a string (a ``Path`` would fold its ``//``); anything else becomes a ``Path``."""
    if isinstance(target, Path):
        return target
    return target.strip() if is_postgres(target) else Path(target)


_SECRET_PARAMS = {"password", "passfile", "sslpassword", "sslkey"}


def redact(target: StoreTarget) -> str:
    """The store's location with any password replaced by ``***`` (safe to print, log or store)."""
    if not is_postgres(target):
        return str(target)
    text = str(target).strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return "postgresql://***"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, sep, _pw = userinfo.partition(":")
        netloc = f"{user}{':***' if sep else ''}@{hostport}"
    query = parts.query
    if query:
        pairs = [(k, "***" if k.lower() in _SECRET_PARAMS else v) for k, v in parse_qsl(query, keep_blank_values=True)]
        query = urlencode(pairs, safe="*/:=%", quote_via=quote)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def secrets_of(target: StoreTarget) -> list[str]:
    """The secret strings a URL carries (its password, ``password=``), to scrub from error messages."""
    if not is_postgres(target):
        return []
    out: list[str] = []
    try:
        parts = urlsplit(str(target).strip())
        if parts.password:
            out.append(parts.password)
            out.append(quote(parts.password, safe=""))
        for k, v in parse_qsl(parts.query, keep_blank_values=True):
            if k.lower() in _SECRET_PARAMS and v:
                out.append(v)
    except ValueError:
        pass
    return sorted({s for s in out if s}, key=len, reverse=True)


def scrub(text: str, target: StoreTarget) -> str:
    """``text`` (an error message, say) with the target's secrets replaced by ``***``."""
    for secret in secrets_of(target):
        text = text.replace(secret, "***")
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", text, flags=re.I)
