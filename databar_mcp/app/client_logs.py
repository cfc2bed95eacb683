"""MCP logging for the 2025 protocol versions: our log records, secrets masked, sent to each client that asks.

A client that sends `logging/setLevel` receives every `databar_mcp.*` record at that level and above as a
`notifications/message` (MCP levels debug … emergency; Python's NOTSET..CRITICAL map onto them). Records
are masked by the same Redactor as the stderr lines, and queued: a record logged on any thread never waits
for a client, and when a slow client lets the queue fill, further records are dropped, never blocking the
server. A client's level applies to its own connection only; our stderr handler keeps its own level.

The 2026 protocol removed `logging/setLevel` (log delivery is a per-request `_meta` opt-in there); the SDK
routes the method only for the connections that negotiated a 2025 version.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Mapping
from typing import Any, Final, get_args

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.types import EmptyResult, LoggingLevel, SetLevelRequestParams

from databar_mcp import config
from databar_mcp.core.logs import Redactor, StructuredFormatter
from databar_mcp.tools.kit.sdk_private import session_connection

OUR_LOGGER: Final = "databar_mcp"
# The lowest Python level each MCP level lets through ("notice" sits between INFO and WARNING).
THRESHOLDS: Final[Mapping[str, int]] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO + 5,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "alert": logging.CRITICAL + 5,
    "emergency": logging.CRITICAL + 10,
}
assert set(THRESHOLDS) == set(get_args(LoggingLevel))


def mcp_level(levelno: int) -> LoggingLevel:
    """The MCP level of a Python record: the highest MCP level whose threshold it reaches."""
    if levelno >= logging.CRITICAL:
        return "critical"
    if levelno >= logging.ERROR:
        return "error"
    if levelno >= logging.WARNING:
        return "warning"
    return "info" if levelno >= logging.INFO else "debug"


Delivery = tuple["weakref.ReferenceType[Connection]", dict[str, Any]]


class ClientLogRelay(logging.Handler):
    """A logging handler on `databar_mcp` that forwards records to the connections that asked for them."""

    def __init__(self, redactor: Redactor, *, buffer: int = config.CLIENT_LOG_BUFFER) -> None:
        super().__init__(level=logging.NOTSET)
        self.redactor = redactor
        self._fields = StructuredFormatter("json", redactor)
        self._subscribers: dict[int, tuple[weakref.ReferenceType[Connection], int]] = {}
        self._lock = threading.Lock()
        self._send: MemoryObjectSendStream[Delivery]
        self._receive: MemoryObjectReceiveStream[Delivery]
        self._send, self._receive = anyio.create_memory_object_stream[Delivery](buffer)
        self._loop_thread: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._own_level: int | None = None  # the logger's level before any client widened it (restored at the end)
        self._base_level = logging.NOTSET
        self.dropped = 0

    # ---- the logging/setLevel handler ----------------------------------------------------------------

    async def set_level(self, ctx: ServerRequestContext[Any, Any], params: SetLevelRequestParams) -> EmptyResult:
        """Send this connection our records at `params.level` and above, from now on."""
        # The session object is per request; its connection is what lives as long as the client does.
        connection = session_connection(ctx.session)
        if connection is not None:
            self.subscribe(connection, params.level)
        return EmptyResult()

    def subscribe(self, connection: Connection, level: str) -> None:
        key = id(connection)
        with self._lock:
            self._subscribers[key] = (weakref.ref(connection, lambda _: self._forget(key)), THRESHOLDS[level])
        self._widen_logger()

    def _forget(self, key: int) -> None:
        with self._lock:
            self._subscribers.pop(key, None)

    def _widen_logger(self) -> None:
        """Let our logger create records down to the lowest level any client asked for (never above its own)."""
        logger = logging.getLogger(OUR_LOGGER)
        if self._own_level is None:
            self._own_level, self._base_level = logger.level, logger.getEffectiveLevel()
        with self._lock:
            lowest = min((t for _, t in self._subscribers.values()), default=self._base_level)
        logger.setLevel(min(lowest, self._base_level))

    # ---- lifecycle: installed for the server's lifespan -----------------------------------------------

    def install(self) -> None:
        logging.getLogger(OUR_LOGGER).addHandler(self)

    def uninstall(self) -> None:
        logging.getLogger(OUR_LOGGER).removeHandler(self)
        if self._own_level is not None:
            logging.getLogger(OUR_LOGGER).setLevel(self._own_level)
        self._send.close()

    async def pump(self) -> None:
        """Deliver queued records in order until the server stops (run in the lifespan's task group)."""
        self._loop_thread = threading.get_ident()
        self._loop = asyncio.get_running_loop()  # the SDK serves on asyncio
        try:
            async with self._receive:
                async for ref, params in self._receive:
                    connection = ref()
                    if connection is not None:
                        await connection.notify("notifications/message", params)
        finally:
            self._loop = None
            self._loop_thread = None

    # ---- logging.Handler --------------------------------------------------------------------------------

    def emit(self, record: logging.LogRecord) -> None:
        with self._lock:
            targets = [ref for ref, threshold in self._subscribers.values() if record.levelno >= threshold]
        if not targets:
            return
        try:
            params = {"level": mcp_level(record.levelno), "logger": record.name, "data": self.data(record)}
            for ref in targets:
                self._offer((ref, params))
        except Exception:  # a log line must never break the code that logged it
            self.handleError(record)

    def data(self, record: logging.LogRecord) -> dict[str, Any]:
        """The record's fields (as on stderr, minus what the notification says itself), every value masked."""
        fields = self._fields.fields(record)
        fields.pop("level", None)
        fields.pop("logger", None)
        return {key: self._masked(value) for key, value in fields.items()}

    def _masked(self, value: object) -> object:
        if isinstance(value, str):
            return self.redactor(value)
        if isinstance(value, bool | int | float) or value is None:
            return value
        return self.redactor(repr(value))

    def _offer(self, delivery: Delivery) -> None:
        if self._loop_thread is None:
            return  # not serving yet, or stopped
        loop = self._loop
        if threading.get_ident() == self._loop_thread:
            self._send_now(delivery)
        elif loop is not None:
            try:
                loop.call_soon_threadsafe(self._send_now, delivery)  # never waits for the loop
            except RuntimeError:
                return  # the loop closed meanwhile: the server is stopping

    def _send_now(self, delivery: Delivery) -> None:
        try:
            self._send.send_nowait(delivery)
        except anyio.WouldBlock:
            self.dropped += 1
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return
