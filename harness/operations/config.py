"""Operator configuration: one ``harness.toml`` plus ``HARNESS_*`` environment variables.

Precedence, highest first: command-line flags, environment variables, the TOML file,
built-in defaults. The file is ``--config PATH``, else ``$HARNESS_CONFIG``, else the
workspace's ``harness.toml``: the nearest one from the working directory up
(:mod:`harness.operations.workspace`). Relative paths in the file are relative to its folder,
and with a file the default store is ``results/harness.db`` beside it. :func:`value_sources`
says where each effective value came from (``harness config show``). Environment variables use the ``HARNESS_`` prefix
and ``__`` for nesting: ``HARNESS_STORE``, ``HARNESS_VANTAGE__PROBE_CC``,
``HARNESS_PROXY``, ``HARNESS_FAILURE_THRESHOLD``.

Secrets (proxy credentials, cookie files) live here and nowhere else: :func:`masked`
is what ``harness config show`` prints, cookie files are read only to build a
request header, and none of it is passed to the store or the logs.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from ..errors import InputError
from ..safeio import MAX_SMALL_INPUT, check_depth, read_input_bytes, too_deep
from ..models import RateLimit
from ..store.base import DEFAULT_STORE_PATH
from ..store.target import StoreTarget, is_postgres, normalize, redact

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    try:
        import tomli as tomllib  # type: ignore[no-redef]
    except ModuleNotFoundError:
        tomllib = None  # type: ignore[assignment]

CONFIG_FILE_NAME = "harness.toml"
ENV_PREFIX = "HARNESS_"


class ConfigError(InputError):
    pass


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> dt.timedelta:
    """``90d``, ``12h``, ``2w``, ``30m`` (minutes), ``45s`` → a timedelta."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", str(text).lower())
    if not m:
        raise ValueError(f"invalid duration {text!r}: use a number and a unit s, m, h, d or w (e.g. 90d)")
    seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    if seconds <= 0:
        raise ValueError(f"invalid duration {text!r}: must be more than zero")
    if seconds > 100 * 365 * 86400:
        raise ValueError(f"invalid duration {str(text)[:40]!r}: more than a hundred years")
    return dt.timedelta(seconds=seconds)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VantageConfig(_Section):
    probe_cc: str = Field(default="ZZ", description="country code of this vantage point (ZZ: unknown)")
    probe_asn: str = Field(default="AS0", description="ASN of this vantage point (AS0: unknown)")
    label: str = Field(default="", description="a label for this vantage point")

    @field_validator("probe_cc")
    @classmethod
    def _cc(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z]{2}", v):
            raise ValueError(f"probe_cc must be a two-letter country code, got {v!r}")
        return v.upper()

    @field_validator("probe_asn")
    @classmethod
    def _asn(cls, v: str) -> str:
        if not re.fullmatch(r"(?i)(AS)?\d+", v):
            raise ValueError(f"probe_asn must look like AS4134, got {v!r}")
        return "AS" + re.sub(r"(?i)^AS", "", v)


class LogConfig(_Section):
    file: Path | None = Field(default=None, description="log file (default: logs/harness.jsonl next to the store)")
    format: Literal["json", "text"] = "json"
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class ScheduleConfig(_Section):
    probes_dir: Path = Path("probes")
    tick_s: float = Field(default=30.0, gt=0, description="how often the foreground scheduler looks for due runs")
    parallel: int = Field(default=1, ge=1, le=16, description="probe sets run at the same time (each keeps its own rate limit)")


class HarnessConfig(BaseSettings):
    """The effective configuration of one harness invocation."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", validate_default=True,
    )

    store: str = Field(default=str(DEFAULT_STORE_PATH),
                       description="SQLite file, or postgresql://user@host/db (password: $PGPASSWORD or ~/.pgpass)")
    vantage: VantageConfig = Field(default_factory=VantageConfig)
    proxy: str | None = Field(default=None, description="proxy URL for every request, e.g. socks5://user:pass@host:1080")
    cookie_files: dict[str, Path] = Field(default_factory=dict, description="platform → cookies.txt (Netscape) or a Cookie header file")
    account_identifiers: dict[str, list[str]] = Field(
        default_factory=dict, description="platform (or '*') → the account's own identifiers (uid, nickname, phone) "
                                          "that logged-in pages embed: replaced by REDACTED before a body is stored")
    rate_limit: RateLimit | None = Field(default=None, description="default pace for platforms a probe set gives none")
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict, description="per-platform default pace")
    base_urls: dict[str, str] = Field(default_factory=dict, description="platform → base URL override")
    failure_threshold: float = Field(default=0.5, ge=0, le=1, description="exit 3 when the share of failures is above this")
    retry_backoff_s: float | None = Field(default=None, ge=0, le=3600,
                                          description="first wait before retrying a failed request, doubled each retry "
                                                      "(default: the probe set's retry_backoff_s, else 5)")
    keep_evidence: str | None = Field(default=None, description="evidence retention, e.g. 90d (none: keep forever)")
    log: LogConfig = Field(default_factory=LogConfig)
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig)

    _source_file: Path | None = PrivateAttr(default=None)
    _sources: dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def source_file(self) -> Path | None:
        """The TOML file the configuration was read from, if any."""
        return self._source_file

    @field_validator("store", mode="before")
    @classmethod
    def _store(cls, v: Any) -> str:
        return str(v).strip() if v is not None else v

    @property
    def store_target(self) -> StoreTarget:
        """The store as :class:`~harness.store.base.Store` opens it: a ``Path`` or a ``postgresql://`` URL."""
        return normalize(self.store)

    @field_validator("keep_evidence")
    @classmethod
    def _duration(cls, v: str | None) -> str | None:
        if v is not None:
            parse_duration(v)
        return v

    @field_validator("proxy")
    @classmethod
    def _proxy(cls, v: str | None) -> str | None:
        if v in (None, ""):
            return None
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https", "socks5", "socks5h") or not parts.hostname:
            raise ValueError("proxy must be a URL like http://host:3128 or socks5://user:pass@host:1080")
        return v

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileSource(settings_cls))

    @property
    def keep_evidence_delta(self) -> dt.timedelta | None:
        return parse_duration(self.keep_evidence) if self.keep_evidence else None

    @property
    def log_file(self) -> Path:
        if self.log.file is not None:
            return self.log.file
        base = Path(".") if is_postgres(self.store) else Path(self.store).parent  # a team store: logs stay local
        return base / "logs" / "harness.jsonl"

    def cookie_header(self, platform: str, url: str) -> str | None:
        path = self.cookie_files.get(platform)
        return load_cookie_header(path, url) if path is not None else None


_FILE_DATA: ContextVar[dict[str, Any] | None] = ContextVar("harness_config_file_data", default=None)


class _FileSource(PydanticBaseSettingsSource):
    """The TOML file's data, parsed by :func:`load_config` before the settings are built."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return (_FILE_DATA.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_FILE_DATA.get() or {})


def find_config_file(explicit: Path | None) -> Path | None:
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError("configuration file not found", explicit)
        return explicit
    env = os.environ.get(ENV_PREFIX + "CONFIG")
    if env:
        p = Path(env)
        if not p.is_file():
            raise ConfigError(f"configuration file not found (from ${ENV_PREFIX}CONFIG)", p)
        return p
    from .workspace import find_workspace

    ws = find_workspace()
    return ws / CONFIG_FILE_NAME if ws is not None else None


def _toml_line(text: str, loc: tuple[Any, ...]) -> int | None:
    """Best-effort line of a key path in a TOML text (table headers, dotted keys, plain keys)."""
    keys = [str(p) for p in loc if isinstance(p, str)]
    if not keys:
        return None
    table: list[str] = []
    best = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        header = re.fullmatch(r"\[\s*([^\[\]]+?)\s*\]", line)
        if header:
            table = [k.strip().strip('"') for k in header.group(1).split(".")]
            if table == keys:
                return n
            continue
        m = re.match(r'([A-Za-z0-9_."\- ]+?)\s*=', line)
        if m:
            path = table + [k.strip().strip('"') for k in m.group(1).split(".")]
            if path == keys[: len(path)] and path:
                best = n
                if path == keys:
                    return n
    return best


def _describe(err: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err.get("loc", ()))
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if err.get("type") == "extra_forbidden":
        msg = "unknown setting"
    return f"{loc}: {msg}" if loc else msg


def load_config(path: Path | None = None, **overrides: Any) -> HarnessConfig:
    """Build the effective configuration. ``overrides`` are command-line values (None: not given)."""
    file = find_config_file(path)
    text = ""
    data: dict[str, Any] = {}
    if file is not None:
        if tomllib is None:
            raise ConfigError("reading harness.toml needs Python 3.11+ or the tomli package", file)
        try:
            text = read_input_bytes(file, ConfigError, MAX_SMALL_INPUT).decode("utf-8")
            data = tomllib.loads(text)
            check_depth(data, file, ConfigError)
        except UnicodeDecodeError:
            raise ConfigError("not valid UTF-8", file) from None
        except RecursionError:
            raise too_deep(file, ConfigError) from None
        except tomllib.TOMLDecodeError as exc:
            m = re.search(r"\(at line (\d+), column \d+\)", str(exc))
            msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
            raise ConfigError(f"invalid TOML: {msg}", file, int(m.group(1)) if m else None) from None
    init = _nest({k: v for k, v in overrides.items() if v is not None})
    token = _FILE_DATA.set(data)
    try:
        cfg = HarnessConfig(**init)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(first.get("loc", ()))
        top = str(loc[0]) if loc else ""
        env_name = ENV_PREFIX + "__".join(str(p) for p in loc).upper()
        if top in init:
            raise ConfigError(_describe(first)) from None
        if file is not None and top in data and env_name not in os.environ and (ENV_PREFIX + top.upper()) not in os.environ:
            raise ConfigError(_describe(first), file, _toml_line(text, loc)) from None
        var = env_name if env_name in os.environ else ENV_PREFIX + top.upper()
        raise ConfigError(f"environment: {_describe(first)} (check ${var})") from None
    finally:
        _FILE_DATA.reset(token)
    cfg._source_file = file
    cfg._sources = _sources(file, text, data, init)
    cfg._sources["config_file"] = ("command line" if path is not None else "environment $HARNESS_CONFIG"
                                   if os.environ.get(ENV_PREFIX + "CONFIG") else
                                   "workspace (nearest harness.toml from here up)" if file is not None else "none found")
    if file is not None:
        base = file.resolve().parent
        for dotted in _FILE_PATHS:
            if cfg._sources.get(dotted, "").startswith(("default", str(file))):
                _rebase(cfg, dotted, base)
    return cfg


_FILE_PATHS = ("store", "log.file", "schedule.probes_dir")
"""Paths read relative to the configuration file's folder when they come from it (or are defaults)."""


def _rebase(cfg: HarnessConfig, dotted: str, base: Path) -> None:
    *parents, leaf = dotted.split(".")
    obj: Any = cfg
    for p in parents:
        obj = getattr(obj, p)
    value = getattr(obj, leaf)
    if value is None or "://" in str(value) or Path(value).is_absolute():
        return
    rebased = base / value
    setattr(obj, leaf, str(rebased) if isinstance(value, str) else rebased)  # keep the field's type (store is a str)


def _flat_keys(data: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in data.items():
        if isinstance(v, dict) and k not in _MAP_FIELDS:
            out.extend(_flat_keys(v, f"{prefix}{k}."))
        else:
            out.append(prefix + k)
    return out


_MAP_FIELDS = ("cookie_files", "base_urls", "rate_limits", "rate_limit")


def _sources(file: Path | None, text: str, data: dict[str, Any], init: dict[str, Any]) -> dict[str, str]:
    """Where each setting's effective value came from: command line, environment, file:line, or default."""
    out: dict[str, str] = {}
    defaults = HarnessConfig.model_construct().model_dump(mode="json")
    defaults["vantage"] = VantageConfig().model_dump(mode="json")
    defaults["log"] = LogConfig().model_dump(mode="json")
    defaults["schedule"] = ScheduleConfig().model_dump(mode="json")
    for key in _flat_keys(defaults):
        parts = key.split(".")
        env_names = [ENV_PREFIX + "__".join(parts[: i + 1]).upper() for i in range(len(parts))]

        def has(d: dict[str, Any]) -> bool:
            cur: Any = d
            for p in parts:
                if not isinstance(cur, dict) or p not in cur:
                    return False
                cur = cur[p]
            return True

        if has(init):
            out[key] = "command line"
        elif any(n in os.environ for n in env_names):
            out[key] = "environment $" + next(n for n in reversed(env_names) if n in os.environ)
        elif file is not None and has(data):
            line = _toml_line(text, tuple(parts))
            out[key] = f"{file}:{line}" if line else str(file)
        elif file is not None and key in _FILE_PATHS:
            out[key] = f"default (beside {file})"
        else:
            out[key] = "default"
    return out


def value_sources(cfg: HarnessConfig) -> dict[str, str]:
    """Dotted setting name → where its value came from (``command line``, ``environment $X``, ``FILE:LINE``, ``default``)."""
    return dict(cfg._sources)


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """``{"vantage.probe_cc": "CN"}`` → ``{"vantage": {"probe_cc": "CN"}}``."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        parts = key.split(".")
        cur = out
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = value
    return out


# --------------------------------------------------------------------------- secrets


def mask_url(url: str) -> str:
    """Hide the password (and any token-like query) of a URL: ``http://u:***@host:3128``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    if parts.password is None and not parts.query:
        return url
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    if parts.username is not None:
        netloc = f"{parts.username}:***@{netloc}" if parts.password is not None else f"{parts.username}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, "***" if parts.query else "", ""))


def masked(cfg: HarnessConfig) -> dict[str, Any]:
    """The configuration as ``config show`` prints it: secrets masked, cookie files described."""
    data = cfg.model_dump(mode="json")
    data["store"] = redact(cfg.store)
    if data.get("proxy"):
        data["proxy"] = mask_url(data["proxy"])
    data["base_urls"] = {k: mask_url(v) for k, v in data["base_urls"].items()}
    cookies = {}
    for platform, path in cfg.cookie_files.items():
        state = "present" if Path(path).is_file() else "MISSING"
        cookies[platform] = f"{path} ({state}; contents not shown)"
    data["cookie_files"] = cookies
    data["account_identifiers"] = {k: f"{len(v)} identifier(s), not shown" for k, v in cfg.account_identifiers.items()}
    data["log"]["file"] = str(cfg.log_file)
    data["config_file"] = str(cfg.source_file) if cfg.source_file else None
    return data


def load_cookie_header(path: Path, url: str) -> str:
    """A ``Cookie`` header value for ``url`` from a cookies file (Netscape cookies.txt, JSON or a header line)."""
    from ..errors import InputError
    from ..measure.sessions import cookie_header, load_cookies

    try:
        return cookie_header(load_cookies(path), url) or ""
    except ConfigError:
        raise
    except InputError as exc:
        raise ConfigError(exc.message, exc.path, exc.line) from None
