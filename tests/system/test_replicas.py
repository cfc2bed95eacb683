"""Replicas: three server processes on one PostgreSQL ledger behind haproxy from Debian, one killed mid-run.

The full figures (50 agents, 60 s) come from `python -m bench.replicas` (bench/results/replicas.md); this is
the same harness, smaller. Also: /readyz, and a SIGTERM that hands back in-flight waits' task ids.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.lowlevel
import httpx2
import psycopg
import pytest

from bench.big_ledger import BuildStalled, Samples, Template, build_postgres, create_schema
from bench.replicas import (
    Replica,
    free_port,
    haproxy_binary,
    measure,
    overdue,
    run_input,
    sandbox_config,
    tracker_caught_up,
)
from databar_mcp.app.http_app import HttpOptions, SecurityMiddleware
from databar_mcp.core.ledger.postgres import PostgresBackend
from databar_mcp.core.ledger.store import Ledger
from databar_mcp.sandbox import SandboxServer
from tests.locks import debian_installs
from tests.postgres_server import PostgresServer

pytestmark = pytest.mark.anyio


@pytest.fixture
def haproxy() -> str:
    with debian_installs():
        found = haproxy_binary()
    if found is None:
        reason = "haproxy is not installed (apt-get install haproxy, as root, brings it)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the replica test: {reason}")
        pytest.skip(reason)
    return found


@pytest.fixture
def bench_sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(sandbox_config()) as sandbox:
        yield sandbox


async def test_three_replicas_one_killed_bill_once_lose_nothing_and_all_read_everything(
    postgres: PostgresServer, bench_sandbox: SandboxServer, haproxy: str, tmp_path: Path
) -> None:
    figures = await measure(
        bench_sandbox,
        tmp_path,
        backend="postgresql",
        replicas=3,
        agents=12,
        seconds=10,
        database_url=postgres.new_database(),
        haproxy=haproxy,
    )
    assert figures.double_billings == 0
    assert figures.lost_task_ids == 0
    # how many tasks fit in the 10 s follows the machine's load (16 at load 19): any number proves the point
    assert figures.unreadable_tasks == 0 and figures.tasks_checked > 0
    # every billed submission is a task read back; a POST refused (429) or cut by the kill billed nothing
    assert figures.reused > 0 and figures.submissions_billed == figures.tasks_checked
    assert figures.submissions_sent >= figures.submissions_billed
    # only calls in flight on the killed replica fail (at most one per agent), and the agents went on
    assert figures.errors <= 12 and figures.calls > figures.errors
    # every replica's log and the errors (none unexpected beyond the kill) are kept for investigation
    assert all((tmp_path / f"replica{i}.stderr").exists() for i in range(3))
    errors = (tmp_path / "errors.log").read_text()
    assert errors.count("\n--- ") + errors.startswith("--- ") == figures.errors - sum(
        n for kind, n in figures.error_kinds.items() if kind.startswith("Error [")
    )
    assert figures.load_during_max >= 0 and figures.logs == str(tmp_path)


async def test_readyz_is_503_until_the_ledger_answers() -> None:
    app = SecurityMiddleware(lambda scope, receive, send: anyio.lowlevel.checkpoint(), HttpOptions())  # type: ignore[arg-type]
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as http:
        starting = await http.get("/readyz")
        app.drain()
        draining = await http.get("/readyz")
    assert starting.status_code == 503 and starting.json()["reason"] == "starting"
    assert draining.status_code == 503 and draining.json()["reason"] == "draining"


def lone_replica(sandbox: SandboxServer, tmp_path: Path, **extra: str) -> Replica:
    """One server process on the sandbox, its state and stderr in `tmp_path`, the tracker idle."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "DATABAR_API_KEY": sandbox.api_key,
        "DATABAR_BASE_URL": sandbox.base_url,
        "DATABAR_MCP_STATE_DIR": str(tmp_path / "state"),
        "DATABAR_MCP_TRACKER_INTERVAL": "3600",
        **extra,
    }
    return Replica(free_port(), env, tmp_path / "replica.stderr")


async def test_sigterm_hands_back_a_waiting_calls_task_id_and_exits_cleanly(
    bench_sandbox: SandboxServer, tmp_path: Path
) -> None:
    bench_sandbox.state.config.task_base_seconds = 30.0  # the task outlives the server
    replica = lone_replica(bench_sandbox, tmp_path, DATABAR_MCP_HTTP_STATELESS="1")
    replica.start()
    try:
        answers: list[dict[str, object]] = []

        async def waiting_call() -> None:
            # One JSON-RPC POST (stateless: no session), read to its end: the MCP client would also open a
            # background stream that fails once the server is gone, hiding the answer this test is about.
            call = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "run_bulk_waterfall", "arguments": {**run_input("sigterm"), "wait_seconds": 20}},
            }
            headers = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18"}
            async with httpx2.AsyncClient(timeout=30) as http:
                reply = await http.post(replica.url, json=call, headers=headers)
            for line in reply.text.splitlines():
                if line.startswith("data:") and '"result"' in line:
                    answers.append(json.loads(line[5:])["result"]["structuredContent"])

        stopped = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(waiting_call)
            while bench_sandbox.state.counts["POST /v1/waterfalls/{identifier}/bulk-run"] == 0:
                await anyio.sleep(0.02)
            await anyio.sleep(0.3)  # the call is waiting now
            assert replica.proc is not None
            replica.proc.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
        returned_after = time.monotonic() - stopped
        code = await anyio.to_thread.run_sync(lambda: replica.proc.wait(timeout=20) if replica.proc else None)
    finally:
        replica.stop()
    assert answers and answers[0].get("task_id") and answers[0].get("done") is False
    assert returned_after < 5  # not the 20 s it asked to wait
    assert code == 0


async def test_sigterm_ends_an_open_event_stream_once_calls_have_answered(
    bench_sandbox: SandboxServer, tmp_path: Path
) -> None:
    """A session's idle GET stream is ended by the drain itself, not cut by uvicorn's graceful timeout."""
    replica = lone_replica(bench_sandbox, tmp_path)
    replica.start()
    headers = {"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18"}
    hello = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    stream_ended = anyio.Event()
    try:
        async with httpx2.AsyncClient(timeout=30) as http:
            opened = await http.post(
                replica.url, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": hello}, headers=headers
            )
            session = {**headers, "mcp-session-id": opened.headers["mcp-session-id"]}
            await http.post(
                replica.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=session
            )

            async def listen() -> None:
                async with http.stream("GET", replica.url, headers=session) as stream:
                    assert stream.status_code == 200
                    with contextlib.suppress(httpx2.TransportError):
                        async for _ in stream.aiter_bytes():
                            pass
                stream_ended.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(listen)
                await anyio.sleep(0.3)  # the stream is open
                assert replica.proc is not None
                replica.proc.send_signal(signal.SIGTERM)
                await stream_ended.wait()
        code = await anyio.to_thread.run_sync(lambda: replica.proc.wait(timeout=20) if replica.proc else None)
    finally:
        replica.stop()
    log = (tmp_path / "replica.stderr").read_text()
    assert code == 0
    assert "graceful shutdown exceeded" not in log, log


def test_a_ledger_build_waiting_on_a_lock_fails_naming_the_blocking_query(postgres: PostgresServer) -> None:
    """The 1M-run bench's build never sits silent behind another session: past its patience it fails, and the
    message carries the session holding the lock and that session's query."""
    url = postgres.new_database()
    anyio.run(create_schema, Ledger(PostgresBackend(url)))
    data = b'[{"email": "a@example.com"}]'
    template = Template("run_bulk_waterfall", "waterfalls/x/bulk-run", "{}", 1, 1.0, None, 1.0, 1, 1,
                        zlib.compress(data), len(data))  # fmt: skip
    samples = Samples([template], json_bytes=len(data), zlib_bytes=len(zlib.compress(data)))
    with psycopg.connect(url) as holder:  # a transaction left open over the table (a live replica's)
        holder.execute("SELECT count(*) FROM tasks /* the replica's read */").fetchone()
        holder_pid = holder.info.backend_pid
        with pytest.raises(BuildStalled) as stalled:
            build_postgres(url, 10, samples, time.time(), lock_patience_s=0.5)
    message = str(stalled.value)
    assert "AccessExclusiveLock" in message or "relation" in message
    assert "the replica's read" in message and f"pid {holder_pid}" in message


async def test_the_big_ledger_phase_waits_for_the_tracker_to_take_the_backlog(tmp_path: Path) -> None:
    """The 1M phase's load starts once the tracker has taken the runs the ledger came with still processing:
    the backlog the bench waits on is what the tracker's own pass takes."""
    state = tmp_path / "state"
    ledger = Ledger(state / "ledger.sqlite3")
    claim = await ledger.claim(
        tool="run_bulk_waterfall", endpoint="waterfalls/x/bulk-run", fingerprint="f" * 64, request={},
        rows=1, estimated_credits=1.0, window_s=60, force=False,
    )  # fmt: skip
    assert claim.submission_id is not None
    await ledger.accepted(claim.submission_id, "task-left-processing", "processing")
    assert overdue(None, state) == 1
    await ledger.due(limit=50, next_in_s=60)  # the tracker's pass takes it
    assert overdue(None, state) == 0
    assert await tracker_caught_up(None, state) < 5
    await ledger.aclose()
