"""Requests a ~20 s bulk run costs when the client drives it as an MCP task versus with get_task loops.

    .venv/bin/python -m bench.mcp_tasks_requests

Counts MCP requests the client sent and GETs our server sent to the (sandbox) Databar API, for: one blocking
call, an agent looping get_task(wait_seconds=5), a 2025-11-25 task (tasks/get at the server's pollInterval,
then tasks/result), a 2026-07-28 task (tasks/get at pollIntervalMs until the inlined result) and a 2026-07-28
task followed over one subscriptions/listen stream (the final notification carries the result).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from mcp.client import advertise
from pydantic import SecretStr

from databar_mcp.app.server import build_server
from databar_mcp.config import Settings
from databar_mcp.sandbox import SandboxConfig, SandboxServer
from tests.tasks_client import EXT, TaskNotes, listen, raw

ROWS = [{"first_name": f"F{i}", "last_name": f"L{i}", "company": "example.com"} for i in range(20)]
POLL = "GET /v1/tasks/{task_id}"


def args(tag: str) -> dict[str, Any]:
    return {
        "waterfall": "email_getter",
        "params": [{**r, "last_name": r["last_name"] + tag} for r in ROWS],
        "enrichments": [833],
    }


async def blocking(client: Client) -> int:
    await client.call_tool("run_bulk_waterfall", {**args("a"), "wait_seconds": 25})
    return 1


async def get_task_loop(client: Client) -> int:
    first = await client.call_tool("run_bulk_waterfall", {**args("b"), "wait_seconds": 0})
    task_id = (first.structured_content or {})["task_id"]
    calls = 1
    while True:
        calls += 1
        got = await client.call_tool("get_task", {"task_id": task_id, "wait_seconds": 5})
        if (got.structured_content or {}).get("done"):
            return calls


async def legacy_task(client: Client) -> int:
    created = await raw(client, "tools/call", {"name": "run_bulk_waterfall", "arguments": args("c"), "task": {}})
    task_id, calls = created["task"]["taskId"], 1
    while True:
        calls += 1
        got = await raw(client, "tasks/get", {"taskId": task_id})
        if got["status"] in ("completed", "failed", "cancelled"):
            await raw(client, "tasks/result", {"taskId": task_id})
            return calls + 1
        await anyio.sleep(got.get("pollInterval", 1000) / 1000)


async def modern_task(client: Client) -> int:
    created = await raw(client, "tools/call", {"name": "run_bulk_waterfall", "arguments": args("d")})
    task_id, calls = created["taskId"], 1
    while True:
        calls += 1
        got = await raw(client, "tasks/get", {"taskId": task_id})
        if got["status"] in ("completed", "failed", "cancelled"):
            return calls
        await anyio.sleep(got.get("pollIntervalMs", 1000) / 1000)


NOTES = TaskNotes()


async def listened_task(client: Client) -> int:
    created = await raw(client, "tools/call", {"name": "run_bulk_waterfall", "arguments": args("e")})
    await listen(client, [created["taskId"]])  # returns when the task has ended
    final = NOTES.tasks[-1]
    if final["status"] != "completed" or "result" not in final:
        raise RuntimeError(f"the last notification is not the result: {final['status']}")
    return 2


async def measure(name: str, run: Callable[[Client], Awaitable[int]], mode: str, sandbox: SandboxServer) -> None:
    with tempfile.TemporaryDirectory() as state:
        settings = Settings(base_url=sandbox.base_url, api_key=SecretStr(sandbox.api_key), state_dir=Path(state))
        extensions = [advertise(EXT, {}), NOTES] if mode == "modern" else None
        client_mode = "legacy" if mode == "legacy" else "auto"
        async with Client(
            build_server(settings), mode=client_mode, extensions=extensions, message_handler=NOTES.on_message
        ) as client:
            sandbox.state.reset_counts()
            started = time.monotonic()
            calls = await run(client)
            took = time.monotonic() - started
            polls = sandbox.state.counts[POLL]
    print(f"| {name} | {took:5.1f} s | {calls} | {polls} |")


async def main() -> None:
    config = SandboxConfig(api_key="bench-key-0123456789", task_base_seconds=2.0, row_seconds=0.9)
    with SandboxServer(config) as sandbox:
        print("| driven by | wall time | MCP requests | Databar GETs |\n|---|---|---|---|")
        await measure("one blocking call (wait 25 s)", blocking, "plain", sandbox)
        await measure("get_task loop (wait 5 s)", get_task_loop, "plain", sandbox)
        await measure("2025-11-25 task", legacy_task, "legacy", sandbox)
        await measure("2026-07-28 task", modern_task, "modern", sandbox)
        await measure("2026-07-28 task + subscriptions/listen", listened_task, "modern", sandbox)


if __name__ == "__main__":
    anyio.run(main)
