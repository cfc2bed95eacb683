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


@contextmanager
def http_process(
    env: dict[str, str], stderr_path: Path, *, port: int | None = None, args: Sequence[str] = ()
) -> Iterator[ServerProcess]:
    """`python -m databar_mcp [args] --transport http` with exactly `env`, its stderr in `stderr_path`."""
    port = free_port() if port is None else port
    base = f"http://127.0.0.1:{port}"
    with stderr_path.open("wb") as err:
        proc = subprocess.Popen(  # noqa: S603 (our own entry point)
            [sys.executable, "-m", "databar_mcp", *args, "--transport", "http", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        while True:
            try:
                if httpx2.get(base + "/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"server exited while starting: {stderr_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        yield ServerProcess(proc, base, port, stderr_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
