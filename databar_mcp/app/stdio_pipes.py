"""stdin and stdout read and written on the event loop when they are pipes, instead of through worker threads.

The SDK's stdio transport wraps stdin and stdout in anyio's thread-backed files: every line read, every write and
every flush is a hop to a worker thread and back (three to four per tool call, a third of the server's CPU for a
warm get_task, and the wake-ups besides). An MCP client launches a stdio server with pipes, which the event loop
reads and writes itself; so when both ends are pipes (or sockets), the server is handed these loop-native files
and the SDK's stdio_server frames messages as before. Anything else (a regular file, a terminal, stdout sharing
its pipe with stderr, a loop other than asyncio, Windows) keeps the SDK's threads.

Like the SDK's transport, the wire is kept on private descriptors while serving: fd 0 reads the null device and
fd 1 writes to stderr, so a stray print or a child process never writes into the protocol; both are restored
(and made blocking again) on exit.
"""

from __future__ import annotations

import asyncio
import os
import stat
import sys
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager, suppress
from typing import Self

LINE_LIMIT = 2**31  # a request line has no size limit here: the SDK's reader had none either


def pipe_like(fd: int) -> bool:
    """Whether the event loop can read or write `fd` itself: a pipe or a socket."""
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def _same_file(a: int, b: int) -> bool:
    try:
        sa, sb = os.fstat(a), os.fstat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def usable() -> bool:
    """Whether this process's stdio can be served on the loop: both ends pipes, stdout not stderr's pipe (its
    non-blocking mode would reach every stderr write), on asyncio, off Windows."""
    if sys.platform == "win32":
        return False
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # not on asyncio
        return False
    return pipe_like(0) and pipe_like(1) and not _same_file(1, 2)


class LineReader:
    """stdin as the SDK's stdio_server iterates it: text lines, undecodable bytes replaced (as its reader did)."""

    def __init__(self, reader: asyncio.StreamReader) -> None:
        self._reader = reader

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> str:
        line = await self._reader.readline()
        if not line:
            raise StopAsyncIteration
        return line.decode("utf-8", errors="replace")


class WireOut(asyncio.Protocol):
    """The write end's flow control: the transport pauses it while the pipe is full and resumes it once emptied."""

    def __init__(self) -> None:
        self._writable = asyncio.Event()
        self._writable.set()
        self._lost: BaseException | None = None

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or BrokenPipeError("stdout closed")
        self._writable.set()

    async def written(self) -> None:
        """Wait until everything written is in the pipe (the transport keeps no buffer: see loop_stdio)."""
        await self._writable.wait()
        if self._lost is not None:
            raise self._lost


class LineWriter:
    """stdout as the SDK's stdio_server writes it: `write` returns once the text is in the pipe, as its
    thread-backed write and flush did."""

    def __init__(self, transport: asyncio.WriteTransport, protocol: WireOut) -> None:
        self._transport = transport
        self._protocol = protocol

    async def write(self, text: str) -> None:
        self._transport.write(text.encode("utf-8"))
        await self._protocol.written()

    async def flush(self) -> None:
        """Nothing is held back: `write` already waited for the pipe."""


def _claim(fd: int, diversion: int) -> int:
    """A private, close-on-exec copy of `fd` for the wire; `fd` itself then points at `diversion`."""
    import fcntl

    private = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.dup2(diversion, fd)
    return private


def _restore(fd: int, private: int) -> None:
    with suppress(OSError):
        os.set_blocking(private, True)
        os.dup2(private, fd)


@asynccontextmanager
async def loop_stdio() -> AsyncGenerator[tuple[LineReader, LineWriter]]:
    """stdin and stdout served on the running asyncio loop (check `usable()` first)."""
    loop = asyncio.get_running_loop()
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        wire_in = _claim(0, null)
    finally:
        os.close(null)
    try:
        wire_out = _claim(1, 2)
    except OSError:
        _restore(0, wire_in)
        os.close(wire_in)
        raise
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    in_file = os.fdopen(wire_in, "rb", buffering=0, closefd=False)
    out_file = os.fdopen(wire_out, "wb", buffering=0, closefd=False)
    read_transport: asyncio.BaseTransport | None = None
    write_transport: asyncio.WriteTransport | None = None
    try:
        read_transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), in_file)
        write_transport, wire = await loop.connect_write_pipe(WireOut, out_file)
        write_transport.set_write_buffer_limits(high=0)  # a write the pipe cannot take at once pauses the writer
        yield LineReader(reader), LineWriter(write_transport, wire)
    finally:
        for transport in (read_transport, write_transport):
            if transport is not None:
                transport.close()
        _restore(0, wire_in)
        _restore(1, wire_out)
        os.close(wire_in)
        os.close(wire_out)
