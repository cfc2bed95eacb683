"""Logging: one structured line per event on stderr, secrets masked, never stdout.

On the stdio transport stdout carries the MCP protocol, so every handler this module installs writes to
stderr, and any handler that writes to stdout is removed. Two formats:

- `text` (default), logfmt: `ts=2025-01-01T12:00:00.123Z level=info logger=databar_mcp.api msg="GET /v1/..."`
- `json`: one JSON object per line with the same keys (`DATABAR_MCP_LOG_FORMAT=json`, `--log-format json`).

Fields passed with `extra={...}` are added as further keys; a traceback is folded into one `exc` field.
The level applies to our own loggers (`databar_mcp.*`); third-party libraries stay at INFO or above even at
DEBUG, because httpcore and the MCP SDK log headers and message bodies at DEBUG. Secrets registered with
`setup_logging(secrets=...)` (the Databar API key, the HTTP bearer token) are replaced by `[REDACTED]` in
the final line, whatever part of the record they came from.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterable
from typing import Any, Final, Literal, TextIO

from databar_mcp.config import MIN_SECRET_LEN

LogFormat = Literal["text", "json"]

LEVELS: Final = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
FORMATS: Final = ("text", "json")
MASK: Final = "[REDACTED]"
# Shorter strings are not masked: masking a 3-letter word everywhere would garble every line.

# Libraries that log request/response headers or JSON-RPC bodies at DEBUG: never below INFO.
QUIET_AT_DEBUG: Final = ("mcp", "httpcore", "httpcore2", "uvicorn", "sse_starlette", "starlette", "anyio", "asyncio")
# Libraries whose INFO lines duplicate ours (our API client logs every upstream request): WARNING and above.
QUIET_AT_INFO: Final = ("httpx", "httpx2")

# Attributes every LogRecord has; anything else on a record came from `extra=` and is logged as a field.
_STANDARD_ATTRS: Final = frozenset(
    vars(logging.LogRecord("x", logging.INFO, __file__, 0, "", None, None)).keys()
    | {"message", "asctime", "color_message"}  # uvicorn's ANSI-coloured copy of msg
)
_MARK: Final = "_databar_mcp_handler"


class Redactor:
    """Replaces each registered secret with MASK."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: list[str] = []
        self.add(*secrets)

    def add(self, *secrets: str | None) -> None:
        for secret in secrets:
            if secret and len(secret) >= MIN_SECRET_LEN and secret not in self._secrets:
                self._secrets.append(secret)
        self._secrets.sort(key=len, reverse=True)  # a secret containing another is masked whole

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def __repr__(self) -> str:
        return f"Redactor({len(self._secrets)} secret(s))"


def _timestamp(created: float) -> str:
    millis = int((created - int(created)) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{millis:03d}Z"


def _logfmt_value(value: object) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, int | float):
        text = str(value)
    else:
        text = repr(value)
    if text and not any(c in text for c in ' ="\\') and text.isprintable():
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
    escaped = "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in escaped)
    return f'"{escaped}"'


class StructuredFormatter(logging.Formatter):
    """One line per record, logfmt or JSON, secrets masked in the finished line."""

    def __init__(self, fmt: LogFormat = "text", redactor: Redactor | None = None) -> None:
        super().__init__()
        self.kind: LogFormat = fmt
        self.redactor = redactor or Redactor()

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRS and not key.startswith("_") and key not in out:
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return out

    def format(self, record: logging.LogRecord) -> str:
        fields = self.fields(record)
        if self.kind == "json":
            line = json.dumps(fields, default=repr, ensure_ascii=False)
        else:
            line = " ".join(f"{key}={_logfmt_value(value)}" for key, value in fields.items())
        return self.redactor(line)


def _writes_to_std_stream(handler: logging.Handler) -> bool:
    stream: object = getattr(handler, "stream", None)
    return stream is not None and stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)


def parse_level(level: str | int | None, default: str = "WARNING") -> int:
    """A level name (any case) or number; ValueError names the accepted ones."""
    if level is None or level == "":
        level = default
    if isinstance(level, int):
        return level
    name = level.strip().upper()
    if name == "WARN":
        name = "WARNING"
    if name not in LEVELS:
        raise ValueError(f"unknown log level {level!r}: use one of {', '.join(LEVELS)}")
    return logging.getLevelNamesMapping()[name]


def parse_format(fmt: str | None) -> LogFormat:
    name = (fmt or "text").strip().lower()
    if name == "json":
        return "json"
    if name in ("text", "logfmt"):
        return "text"
    raise ValueError(f"unknown log format {fmt!r}: use text or json")


def setup_logging(
    level: str | int | None = "WARNING",
    *,
    fmt: str | None = "text",
    secrets: Iterable[str | None] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Route every log record to one stderr handler with our format; return that handler.

    Replaces handlers installed by an earlier call and any root handler writing to stdout or stderr
    (e.g. from `logging.basicConfig`); handlers writing elsewhere (a test's capture handler) are kept.
    """
    numeric = parse_level(level)
    formatter = StructuredFormatter(parse_format(fmt), Redactor(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _MARK, False) or _writes_to_std_stream(old):
            root.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setLevel(numeric)  # MCP clients may lower our loggers' level (logging/setLevel); stderr keeps this one
    handler.setFormatter(formatter)
    setattr(handler, _MARK, True)
    root.addHandler(handler)
    root.setLevel(numeric)
    logging.getLogger("databar_mcp").setLevel(numeric)
    _apply_library_levels(numeric)
    reclaim_library_loggers()
    return handler


def _apply_library_levels(numeric: int) -> None:
    for name in QUIET_AT_DEBUG:
        logging.getLogger(name).setLevel(max(numeric, logging.INFO))
    for name in QUIET_AT_INFO:
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))


def reclaim_library_loggers() -> None:
    """Undo uvicorn's own logging config (its handlers write to stdout and skip our format and masking).

    Every `uvicorn.Config(...)` with its default log_config installs handlers on the `uvicorn*` loggers and
    stops them propagating; the in-process sandbox makes one. Call this after such a server is created.
    """
    root = logging.getLogger()
    if not any(getattr(h, _MARK, False) for h in root.handlers):
        return
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
    _apply_library_levels(logging.getLogger("databar_mcp").getEffectiveLevel())


def installed_redactor() -> Redactor | None:
    """The Redactor of the handler installed by setup_logging, so other log outputs mask the same secrets."""
    for handler in logging.getLogger().handlers:
        formatter = handler.formatter
        if getattr(handler, _MARK, False) and isinstance(formatter, StructuredFormatter):
            return formatter.redactor
    return None


def add_secrets(*secrets: str | None) -> None:
    """Mask more secrets in the lines of the handler installed by setup_logging (if any)."""
    for handler in logging.getLogger().handlers:
        formatter = handler.formatter
        if getattr(handler, _MARK, False) and isinstance(formatter, StructuredFormatter):
            formatter.redactor.add(*secrets)
