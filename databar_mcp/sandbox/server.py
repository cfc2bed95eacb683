"""Serving the sandbox over real HTTP: in a background thread (tests, --sandbox) or in the foreground (CLI)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from pathlib import Path
from types import TracebackType

import uvicorn

from databar_mcp.sandbox.app import create_app
from databar_mcp.sandbox.config import SandboxConfig
from databar_mcp.sandbox.middleware import InjectedDisconnect
from databar_mcp.sandbox.state import SandboxState

_START_TIMEOUT = 10.0


class _HideInjectedDisconnects(logging.Filter):
    """uvicorn logs every app exception; an injected dropped connection is not a bug."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], InjectedDisconnect))


def _uvicorn_server(state: SandboxState) -> uvicorn.Server:
    config = uvicorn.Config(create_app(state), log_level="warning", access_log=False, lifespan="off")
    error_logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _HideInjectedDisconnects) for f in error_logger.filters):
        error_logger.addFilter(_HideInjectedDisconnects())
    return uvicorn.Server(config)


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
        self._server: uvicorn.Server | None = None
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
            self._server.should_exit = True
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
