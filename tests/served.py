"""Our server as a subprocess over streamable HTTP on a loopback port: for the tests (and judges) that need
a real socket. Up when /healthz answers; stopped (terminated, then killed) afterwards.

The wait follows the process, not a clock: it ends when /healthz answers or the process exits (a server that
hangs on the way up is caught by the test's own timeout). On a busy machine a start takes what it takes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without our settings (nor XDG dirs), plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABAR_", "XDG_"))}
    env.update(extra)
    return env


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    base: str
    port: int
    stderr: Path

    @property
    def url(self) -> str:
        return self.base + "/mcp"


PORT_ATTEMPTS = 5


def _started(env: dict[str, str], stderr_path: Path, port: int, args: Sequence[str]) -> subprocess.Popen[bytes] | None:
    """The server, once it answers /healthz on `port`; None when it exited because the port was taken."""
    with stderr_path.open("wb") as err:
        proc = subprocess.Popen(  # noqa: S603 (our own entry point)
            [sys.executable, "-m", "databar_mcp", *args, "--transport", "http", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    while True:
        try:
            if httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                return proc
        except httpx2.TransportError:
            pass
        if proc.poll() is not None:
            said = stderr_path.read_text(errors="replace")
            if "cannot listen on" in said:
                return None
            raise RuntimeError(f"server exited while starting: {said[-2000:]}")
        time.sleep(0.05)


@contextmanager
def http_process(
    env: dict[str, str], stderr_path: Path, *, port: int | None = None, args: Sequence[str] = ()
) -> Iterator[ServerProcess]:
    """`python -m databar_mcp [args] --transport http` with exactly `env`, its stderr in `stderr_path`.

    A port chosen here is free when chosen, not necessarily when the server binds it: another process took
    one in between in a suite run. The server then exits saying so, and another port is tried."""
    proc, bound = None, 0
    for _ in range(PORT_ATTEMPTS if port is None else 1):
        bound = free_port() if port is None else port
        if (proc := _started(env, stderr_path, bound, args)) is not None:
            break
    if proc is None:
        raise RuntimeError(f"server exited while starting: {stderr_path.read_text(errors='replace')[-2000:]}")
    try:
        yield ServerProcess(proc, f"http://127.0.0.1:{bound}", bound, stderr_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
