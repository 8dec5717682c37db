"""Structured logs: one JSON object per line (or plain text) in a file next to the store.

Events are logged with :func:`event`, which puts the event name and its fields in the
record; the JSON formatter writes ``{"ts", "level", "logger", "event", "msg", ...fields}``.
A filter masks anything that looks like a secret (URL credentials, cookie or token
values) in every record, so a careless caller cannot leak one into the file.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import socket
from pathlib import Path
from typing import Any

from ..errors import OutputError

LOGGER_NAME = "harness"
_HANDLER_MARK = "_harness_handler"

_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]+):(?P<pw>[^@/\s]+)@", re.I)
_SECRET_PAIRS = re.compile(r"(?i)\b(cookie|set-cookie|authorization|token|password|passwd|secret|session(?:id)?|sid)\b(\s*[=:]\s*)([^\s,;&\"']+)")


def redact(text: str) -> str:
    text = _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
    return _SECRET_PAIRS.sub(lambda m: f"{m.group(1)}{m.group(2)}***", text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: ("***" if str(k).lower() in ("cookie", "cookies", "proxy_password", "authorization") else _redact_value(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_redact_value(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            record.fields = _redact_value(fields)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", None),
            "msg": record.getMessage(),
            "pid": record.process,
            "host": _HOST,
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for k, v in fields.items():
                doc.setdefault(k, v)
        if record.exc_info:
            doc["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(doc, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = dt.datetime.fromtimestamp(record.created, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        fields = getattr(record, "fields", None) or {}
        extra = " ".join(f"{k}={v}" for k, v in fields.items())
        return f"{ts} {record.levelname.lower():7} {record.getMessage()}" + (f" [{extra}]" if extra else "")


_HOST = socket.gethostname()
logging.getLogger(LOGGER_NAME).addHandler(logging.NullHandler())  # a library logs nothing until told where


def get_logger(name: str = "") -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


def event(logger: logging.Logger, name: str, msg: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event with structured fields (never pass secrets; they would be masked anyway)."""
    logger.log(level, msg, extra={"event": name, "fields": fields})


class _QuietFileHandler(logging.FileHandler):
    """A log file that never prints a traceback: a log line that cannot be written (a full disk)
    is dropped, and the run goes on (the store, not the log, holds the measurements)."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        pass


def setup_logging(file: Path | None, fmt: str = "json", level: str = "INFO", *, console: bool = False) -> logging.Logger:
    """Send the ``harness`` loggers to ``file`` (appending; created with its folder) and optionally stderr.

    Calling it again replaces the handlers it installed before, so tests and
    long-lived processes can reconfigure it.
    """
    root = logging.getLogger(LOGGER_NAME)
    for h in list(root.handlers):
        if getattr(h, _HANDLER_MARK, False):
            root.removeHandler(h)
            h.close()
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    root.propagate = file is None and not console  # our own handlers: do not also print through the root logger
    redactor = RedactingFilter()
    if file is not None:
        file = Path(file)
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"{file.parent}: cannot create the log folder: {exc.strerror or exc} (a run or a "
                              f"prune writes its log beside the store; read-only commands need no log)") from None
        if not os.access(file.parent, os.W_OK):
            raise OutputError(f"{file.parent}: cannot write the log: the folder is read-only (a run or a prune "
                              f"writes its log beside the store; read-only commands need no log)")
        handler: logging.Handler = _QuietFileHandler(file, encoding="utf-8", delay=True)
        handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
        handler.addFilter(redactor)
        setattr(handler, _HANDLER_MARK, True)
        root.addHandler(handler)
    if console:
        stream = logging.StreamHandler()
        stream.setFormatter(TextFormatter())
        stream.addFilter(redactor)
        setattr(stream, _HANDLER_MARK, True)
        root.addHandler(stream)
    return root
