"""Kill -9 the server mid-wait, start it again on the same state dir: nothing is lost, nothing billed twice."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters

from databar_mcp.core.ledger.store import Ledger
from databar_mcp.sandbox import SandboxServer
from tests.conftest import BULK_ARGS, structured

pytestmark = pytest.mark.anyio

BULK_RUN = "POST /v1/waterfalls/{identifier}/bulk-run"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def server_process(
    sandbox: SandboxServer, state_dir: Path, database_url: str | None = None, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Our server as its own process over streamable HTTP, as a team would run it (its ledger in the state
    dir, or in PostgreSQL at `database_url`)."""
    port = free_port()
    env = {
        **(extra_env or {}),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABAR_API_KEY": sandbox.api_key,
        "DATABAR_BASE_URL": sandbox.base_url,
        "DATABAR_MCP_STATE_DIR": str(state_dir),
        "DATABAR_MCP_TRACKER_INTERVAL": "3600",
    }
    if database_url is not None:
        env["DATABAR_MCP_DATABASE_URL"] = database_url
    proc = subprocess.Popen(  # noqa: S603 (our own entry point)
        [sys.executable, "-m", "databar_mcp", "--transport", "http", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        for _ in range(200):
            try:
                httpx2.get(url, timeout=0.5)
                break
            except httpx2.TransportError:
                if proc.poll() is not None:
                    raise RuntimeError("server exited at start") from None
                time.sleep(0.05)
        yield proc, url
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def stdio_params(sandbox: SandboxServer, state_dir: Path) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "databar_mcp"],
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "DATABAR_API_KEY": sandbox.api_key,
            "DATABAR_BASE_URL": sandbox.base_url,
            "DATABAR_MCP_STATE_DIR": str(state_dir),
            "DATABAR_MCP_TRACKER_INTERVAL": "3600",
        },
    )


def our_child_server(state_dir: Path) -> int | None:
    """The pid of the stdio server this test process spawned for `state_dir` (Linux /proc)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and f"DATABAR_MCP_STATE_DIR={state_dir}".encode() in environ:
            return int(entry.name)
    return None


async def test_stdio_server_killed_mid_wait_then_restarted_loses_nothing(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """What Claude Desktop does on a crash: a new stdio process on the same state dir."""
    sandbox.state.config.task_base_seconds = 2.0
    state_dir = tmp_path / "state"
    ledger = Ledger(state_dir / "ledger.sqlite3")
    killed: list[int] = []

    async def doomed_call() -> None:
        try:
            async with Client(stdio_params(sandbox, state_dir)) as client:
                await client.call_tool("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 20})
        except Exception:  # the server dies under it; that is the point  # noqa: S110
            pass

    async with anyio.create_task_group() as tg:
        tg.start_soon(doomed_call)
        while not (await ledger.recent(limit=1, offset=0))[0]:
            await anyio.sleep(0.02)
        pid = our_child_server(state_dir)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)
        tg.cancel_scope.cancel()

    records, _ = await ledger.recent(limit=5, offset=0)
    assert killed and len(records) == 1 and not records[0].has_result
    task_id = records[0].task_id

    async with Client(stdio_params(sandbox, state_dir)) as client:
        listed = structured(await client.call_tool("list_recent_tasks", {}))
        done = structured(await client.call_tool("get_task", {"task_id": task_id, "wait_seconds": 20}))

    assert [t["task_id"] for t in listed["tasks"]] == [task_id]
    assert done["status"] == "completed" and done["rows_total"] == 4
    assert sandbox.state.counts[BULK_RUN] == 1


async def test_http_server_killed_mid_wait_then_restarted_loses_nothing(
    sandbox: SandboxServer, tmp_path: Path, database_url: str | None, make_ledger: Callable[[], Ledger]
) -> None:
    sandbox.state.config.task_base_seconds = 2.0
    state_dir = tmp_path / "state"
    ledger = make_ledger()

    with server_process(sandbox, state_dir, database_url) as (proc, url):
        async with anyio.create_task_group() as tg:

            async def doomed_call() -> None:
                try:
                    async with Client(url) as client:
                        await client.call_tool("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 20})
                except Exception:  # the server dies under it; that is the point  # noqa: S110
                    pass

            tg.start_soon(doomed_call)
            while not (await ledger.recent(limit=1, offset=0))[0]:
                await anyio.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            tg.cancel_scope.cancel()

    records, _ = await ledger.recent(limit=5, offset=0)
    assert len(records) == 1 and not records[0].has_result  # the task id landed before the wait began
    task_id = records[0].task_id

    with server_process(sandbox, state_dir, database_url) as (_, url):
        async with Client(url) as client:
            listed = structured(await client.call_tool("list_recent_tasks", {}))
            assert [t["task_id"] for t in listed["tasks"]] == [task_id]
            done = structured(await client.call_tool("get_task", {"task_id": task_id, "wait_seconds": 20}))
            again = structured(await client.call_tool("run_bulk_waterfall", BULK_ARGS))

    assert done["status"] == "completed" and done["rows_total"] == 4
    assert again["task_id"] == task_id and again["reused"] is True
    assert sandbox.state.counts[BULK_RUN] == 1
    assert len(sandbox.state.tasks) == 1
