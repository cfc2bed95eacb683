"""Hostile or sloppy input gets a clear answer, never silence or a crash (issue 13 item 12): unreadable stdio
lines are answered, huge offsets are validation errors, unknown arguments are refused by name, and long
choice lists are checked before anything is sent."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

import pytest
from mcp import Client

from databar_mcp.app.stdio_guard import top_level_id
from databar_mcp.sandbox import SandboxServer
from tests.conftest import BULK_ARGS, error_body, structured, text_of

pytestmark = pytest.mark.anyio

RUN_500 = "POST /v1/enrichments/{enrichment_id}/bulk-run"


def _line(stream: IO[bytes], timeout: float = 60.0) -> dict[str, Any]:  # a start on a busy machine
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "no reply within the timeout"
    return json.loads(stream.readline())


def sandboxed_stdio_server(tmp_path: Path) -> subprocess.Popen[bytes]:
    """Our server over stdio on its own sandbox, its stdin and stdout piped to the test."""
    env = {**os.environ, "DATABAR_MCP_STATE_DIR": str(tmp_path / "state")}
    return subprocess.Popen(
        [sys.executable, "-m", "databar_mcp", "--sandbox"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )


def test_unreadable_stdio_lines_are_answered_with_their_id(tmp_path: Path) -> None:
    proc = sandboxed_stdio_server(tmp_path)
    assert proc.stdin is not None and proc.stdout is not None
    try:

        def send(text: str) -> None:
            assert proc.stdin is not None
            proc.stdin.write(text.encode() + b"\n")
            proc.stdin.flush()

        init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init}))
        assert _line(proc.stdout)["id"] == 1
        send(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        call = '{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":"get_task","arguments":%s}}'
        send(call % ('"lone"', '{"task_id":"\\ud800"}'))
        surrogate = _line(proc.stdout)
        assert surrogate["id"] == "lone" and surrogate["error"]["code"] == -32700
        assert "surrogate" in surrogate["error"]["message"]
        send(call % ("7", '{"task_id":' + "[" * 5_000 + "]" * 5_000 + "}"))
        deep = _line(proc.stdout)
        assert deep["id"] == 7 and deep["error"]["code"] == -32700
        send("this is not json at all")
        garbage = _line(proc.stdout)
        assert garbage["id"] is None and garbage["error"]["code"] == -32700
        send(json.dumps({"jsonrpc": "2.0", "id": 9, "method": "ping"}))
        assert _line(proc.stdout) == {"jsonrpc": "2.0", "id": 9, "result": {}}  # the session lives on
    finally:
        proc.stdin.close()
        proc.wait(timeout=20)
        proc.stdout.close()


def _wire_fds(pid: int, pipe: int) -> list[int]:
    """The server's descriptors open on the same pipe as our descriptor `pipe`."""
    inode = os.fstat(pipe).st_ino
    fds = [int(fd) for fd in os.listdir(f"/proc/{pid}/fd")]
    return [fd for fd in fds if os.readlink(f"/proc/{pid}/fd/{fd}") == f"pipe:[{inode}]"]


def _nonblocking(pid: int, fd: int) -> bool:
    flags = next(line for line in Path(f"/proc/{pid}/fdinfo/{fd}").read_text().splitlines() if line.startswith("flags"))
    return bool(int(flags.split()[1], 8) & os.O_NONBLOCK)


@pytest.mark.skipif(not Path("/proc/self/fdinfo").is_dir(), reason="reads the server's descriptors from /proc")
def test_stdio_pipes_are_served_on_the_loop_and_a_long_line_is_answered(tmp_path: Path) -> None:
    """Regression (issue 28): stdin and stdout were read and written through worker threads (a thread hop per
    line, write and flush: a third of a warm call's server CPU). Piped, they are served on the event loop
    (non-blocking private descriptors), while fd 0 and 1 no longer reach the client, and a request line far
    over asyncio's 64 KiB default is read whole."""
    proc = sandboxed_stdio_server(tmp_path)
    assert proc.stdin is not None and proc.stdout is not None
    try:
        init = {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init}).encode())
        proc.stdin.write(b"\n")
        proc.stdin.flush()
        assert _line(proc.stdout)["id"] == 1
        reads, writes = _wire_fds(proc.pid, proc.stdin.fileno()), _wire_fds(proc.pid, proc.stdout.fileno())
        assert 0 not in reads and 1 not in writes  # a stray print or a child never reaches the wire
        assert reads and all(_nonblocking(proc.pid, fd) for fd in reads), reads
        assert writes and all(_nonblocking(proc.pid, fd) for fd in writes), writes
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}).encode() + b"\n")
        long_id = "t" * 200_000
        call = {"name": "get_task", "arguments": {"task_id": long_id}}
        proc.stdin.write(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call}).encode())
        proc.stdin.write(b"\n")
        proc.stdin.flush()
        answer = _line(proc.stdout)
        assert answer["id"] == 2 and answer["result"]["isError"] is True
        assert answer["result"]["content"][0]["text"].startswith("Error [validation_error]")
    finally:
        proc.stdin.close()
        proc.wait(timeout=20)
        proc.stdout.close()


def test_top_level_id_ignores_nested_ids_and_survives_any_nesting() -> None:
    assert top_level_id('{"params": {"id": 5}, "id": "x"}') == "x"
    assert top_level_id('{"a": "id", "b": ["id"], "id" : 12}') == 12
    assert top_level_id('{"id": true}') is None
    assert top_level_id("[" * 100_000) is None
    assert top_level_id('{"x": "\\"id\\"", "id": 3}') == 3


async def test_a_huge_offset_is_a_validation_error(mcp: Client) -> None:
    for tool, args in (("list_recent_tasks", {"offset": 2**63}), ("get_task", {"task_id": "t1", "offset": 2**63})):
        result = await mcp.call_tool(tool, args)
        assert result.is_error
        assert "validation_error" in text_of(result) and "offset" in text_of(result)


async def test_unknown_arguments_are_refused_by_name(mcp: Client, sandbox: SandboxServer) -> None:
    result = await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "forse": True, "x" * 10_000: 1})
    assert result.is_error
    text = text_of(result)
    body = error_body(result)
    assert body["code"] == "validation_error" and "Nothing was sent" in body["message"]
    assert {"field": "forse", "problem": "unknown argument; did you mean 'force'?"} in body["fields"]
    assert len(text) < 3_000
    assert not any(key.startswith("POST") for key in sandbox.state.counts)


async def test_choice_lists_of_ten_or_more_are_checked_before_sending(mcp: Client, sandbox: SandboxServer) -> None:
    refused = await mcp.call_tool("run_bulk_enrichment", {"enrichment_id": 500, "params": [{"country": "Atlantis"}]})
    assert refused.is_error
    assert "'Atlantis' is not one of" in text_of(refused) and "get_param_choices" in text_of(refused)
    assert sandbox.state.counts.get(RUN_500, 0) == 0
    accepted = await mcp.call_tool(
        "run_bulk_enrichment", {"enrichment_id": 500, "params": [{"job_title": "CEO", "country": "Vietnam"}]}
    )
    assert not accepted.is_error, text_of(accepted)  # past the ten shown inline, still allowed
    assert structured(accepted)["task_id"]
