"""Serving the sandbox over real HTTP: in a background thread (tests, --sandbox) or in the foreground (CLI)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from pathlib import Path
from types import FrameType, TracebackType

import uvicorn

from databar_mcp.sandbox.app import create_app
from databar_mcp.sandbox.config import SandboxConfig
from databar_mcp.sandbox.middleware import InjectedDisconnect
from databar_mcp.sandbox.state import SandboxState

_START_TIMEOUT = 10.0
_DRAIN_TIMEOUT = 5.0  # requests still in flight by then are cancelled
_TICK_S = 1.0  # uvicorn's per-second work (the Date header) between wake-ups


class _HideInjectedDisconnects(logging.Filter):
    """uvicorn logs every app exception; an injected dropped connection is not a bug."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], InjectedDisconnect))


class _PromptServer(uvicorn.Server):
    """uvicorn, stopping as soon as asked: a sandbox per test (and the demo's own) spent ~0.2 s of wall time
    stopping in uvicorn's 0.1 s polling and settling sleeps, which over the suite was minutes of waiting."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def request_exit(self) -> None:
        """Ask the server to stop, from any thread (or a signal handler)."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: it stopped already
                loop.call_soon_threadsafe(wake.set)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self.request_exit()

    async def main_loop(self) -> None:
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()  # set second: request_exit finding the loop finds the event
        counter = 0
        while not await self.on_tick(counter):
            counter += 10  # uvicorn refreshes the Date header on every tenth tick
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), _TICK_S)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's shutdown without its fixed sleeps: stop accepting, close idle connections, let requests in
        flight finish (cancelled after _DRAIN_TIMEOUT), then wait for the listeners to close."""
        for server in self.servers:
            server.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        deadline = time.monotonic() + _DRAIN_TIMEOUT
        # uvicorn keeps plain sets of both, with no event to await
        while (self.server_state.connections or self.server_state.tasks) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.005)
        for task in self.server_state.tasks:
            task.cancel(msg="the sandbox is stopping")
        for server in self.servers:
            await server.wait_closed()


def _uvicorn_server(state: SandboxState) -> _PromptServer:
    config = uvicorn.Config(create_app(state), log_level="warning", access_log=False, lifespan="off")
    error_logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideInjectedDisconnects) for f in error_logger.filters):
        error_logger.addFilter(_HideInjectedDisconnects())
    return _PromptServer(config)


def _bind(host: str, port: int) -> socket.socket:
    # IPPROTO_TCP explicitly: asyncio turns on TCP_NODELAY only for sockets that say they are TCP, and without
    # it every request on a kept-alive connection waits ~40 ms for a delayed ACK.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class SandboxServer:
    """A sandbox API on a loopback port, served by uvicorn in a daemon thread with its own event loop."""

    def __init__(
        self,
        config: SandboxConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        persist_path: Path | None = None,
    ) -> None:
        """`persist_path`: keep the state in this file across restarts (see persistence.py)."""
        self.state = SandboxState(config, persist_path)
        self.host = host
        self.port = port
        self._server: _PromptServer | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def api_key(self) -> str:
        return self.state.config.api_key

    def start(self) -> SandboxServer:
        """Bind, start serving and return once the server accepts connections."""
        if self._thread is not None:
            return self
        self._socket = _bind(self.host, self.port)
        self.port = int(self._socket.getsockname()[1])
        server = _uvicorn_server(self.state)
        sockets = [self._socket]
        self._server = server
        self._thread = threading.Thread(
            target=lambda: server.run(sockets=sockets), name=f"databar-sandbox-{self.port}", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the sandbox server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving, join the thread and release the port."""
        if self._server is not None:
            self._server.request_exit()
        if self._thread is not None:
            self._thread.join(timeout=_START_TIMEOUT)
        if self._socket is not None:
            self._socket.close()
        if self._thread is not None:
            self.state.save()
        self._server = self._thread = self._socket = None

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def run_sandbox(host: str, port: int, api_key: str) -> None:
    """Serve the sandbox in the foreground until Ctrl-C (the `databar-mcp sandbox` command)."""
    state = SandboxState(SandboxConfig(api_key=api_key))
    sock = _bind(host, port)
    bound_port = int(sock.getsockname()[1])
    print(f"Databar sandbox API at http://{host}:{bound_port}/v1 (accepted key: {api_key}; Ctrl-C to stop)", flush=True)
    try:
        _uvicorn_server(state).run(sockets=[sock])
    finally:
        sock.close()
