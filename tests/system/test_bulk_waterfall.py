"""run_bulk_waterfall and get_task end to end: MCP client -> our server -> HTTP -> sandbox."""

from __future__ import annotations

import sys

import pytest
from mcp import Client, StdioServerParameters

from databar_mcp.config import Settings
from databar_mcp.sandbox import SandboxServer
from tests.conftest import BULK_ARGS, LEADS, lead, structured, text_of

pytestmark = pytest.mark.anyio


async def test_bulk_waterfall_returns_rows_aligned_to_inputs(mcp: Client, sandbox: SandboxServer) -> None:
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    result = await mcp.call_tool(
        "run_bulk_waterfall", {**BULK_ARGS, "email_verifier": 10}, progress_callback=on_progress
    )

    assert not result.is_error, text_of(result)
    out = structured(result)
    assert out["status"] == "completed" and out["done"] is True
    assert [row["index"] for row in out["rows"]] == [0, 1, 2, 3]
    assert out["rows"][0]["data"]["email"] == "john.doe@example.com"
    assert out["rows"][2]["data"]["email"] == "mary.major@example.com"
    assert out["rows"][1]["data"] is None and out["rows"][3]["data"] is None
    assert out["rows_total"] == 4 and out["rows_with_data"] == 2
    assert out.get("next_call") is None
    assert out["credits_spent"] > 0
    assert out["estimated_credits"] == 4 * (1.0 + 2.0 + 0.5)
    assert out["credits_spent"] <= out["estimated_credits"]
    assert seen and seen[-1][0] == seen[-1][1] == 4
    assert sandbox.state.counts["POST /v1/waterfalls/{identifier}/bulk-run"] == 1
    assert "john.doe@example.com" in text_of(result)


async def test_bulk_waterfall_charges_the_sandbox_balance(mcp: Client, sandbox: SandboxServer) -> None:
    before = sandbox.state.balance
    result = await mcp.call_tool("run_bulk_waterfall", BULK_ARGS)
    spent = structured(result)["credits_spent"]
    assert sandbox.state.balance == before - spent
    account = structured(await mcp.call_tool("get_account", {}))
    assert account["balance"] == before - spent


async def test_run_longer_than_wait_returns_a_handle_then_get_task_has_the_data(
    mcp: Client, sandbox: SandboxServer
) -> None:
    sandbox.state.config.task_base_seconds = 1.0
    first = await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 0.2})

    out = structured(first)
    assert not first.is_error and out["done"] is False
    assert out["status"] == "processing"
    task_id = out["task_id"]
    assert out["next_call"] == f'get_task(task_id="{task_id}", limit=10, wait_seconds=25)'

    final = structured(await mcp.call_tool("get_task", {"task_id": task_id, "wait_seconds": 10}))
    assert final["status"] == "completed"
    assert [r["data"] is not None for r in final["rows"]] == [True, False, True, False]
    assert sandbox.state.counts["POST /v1/waterfalls/{identifier}/bulk-run"] == 1


async def test_get_task_with_zero_wait_reports_progress_without_waiting(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.config.row_seconds = 3600  # still running however slow the machine
    handle = structured(await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 0}))
    polls_before = sandbox.state.counts["GET /v1/tasks/{task_id}"]

    now = structured(await mcp.call_tool("get_task", {"task_id": handle["task_id"], "wait_seconds": 0}))

    assert now["done"] is False and now["progress"]["total"] == 4
    assert sandbox.state.counts["GET /v1/tasks/{task_id}"] == polls_before + 1


async def test_bulk_waterfall_over_stdio(sandbox: SandboxServer, tmp_path: object) -> None:
    """The installed entry point, launched as Claude Desktop would, against the sandbox over HTTP."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "databar_mcp"],
        env={
            "DATABAR_API_KEY": sandbox.api_key,
            "DATABAR_BASE_URL": sandbox.base_url,
            "DATABAR_MCP_STATE_DIR": str(tmp_path),
            "PATH": "/usr/bin:/bin",
        },
    )
    async with Client(params) as client:
        names = {tool.name for tool in (await client.list_tools()).tools}
        assert "run_bulk_waterfall" in names
        result = await client.call_tool(
            "run_bulk_waterfall",
            {"waterfall": "email_getter", "params": [*LEADS, lead("Zed", "Zulu", "example.com")], "enrichments": [833]},
        )
    out = structured(result)
    assert out["status"] == "completed"
    assert [r["data"] is not None for r in out["rows"]] == [True, False, True, False, True]
    assert sandbox.state.counts["POST /v1/waterfalls/{identifier}/bulk-run"] == 1


CANCEL = "POST /v1/tasks/{task_id}/cancel"


async def test_stop_on_a_run_call_cancels_the_databar_run_and_keeps_its_rows(
    settings: Settings, sandbox: SandboxServer
) -> None:
    """Regression (issue 23, section 5): the user's Stop (the client cancels the call: notifications/cancelled)
    ended the wait but the Databar run went on billing. Now the run is cancelled too, and what it had is kept."""
    import anyio

    from databar_mcp.app.server import build_server

    sandbox.state.config.task_base_seconds = 0.0
    sandbox.state.config.row_seconds = 0.5  # 20 rows: about 10 s, far longer than the wait below
    rows = [lead(f"F{i}", "Doe", "example.com") for i in range(20)]
    async with Client(build_server(settings), mode="legacy") as mcp:  # 2025-11-25: notifications/cancelled
        async with anyio.create_task_group() as tg:
            tg.start_soon(mcp.call_tool, "run_bulk_waterfall", {**BULK_ARGS, "params": rows, "wait_seconds": 25})
            while not sandbox.state.tasks:  # the run was sent; its call is waiting now
                await anyio.sleep(0.02)
            tg.cancel_scope.cancel()  # the user presses Stop
        (task_id,) = list(sandbox.state.tasks)
        while sandbox.state.counts.get(CANCEL, 0) == 0:  # the server cancels it at Databar (a process, not a clock)
            await anyio.sleep(0.02)
        seen = await mcp.call_tool("get_task", {"task_id": task_id, "wait_seconds": 0})
    text = text_of(seen)
    assert sandbox.state.counts[CANCEL] == 1
    assert text.startswith(f"Task {task_id} cancelled") and "1 with data" in text  # the finished row is kept


async def test_our_own_deadline_is_not_a_stop(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.config.task_base_seconds = 30.0
    out = structured(await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 0.2}))
    assert out["status"] == "processing"
    assert sandbox.state.counts.get(CANCEL, 0) == 0  # the run goes on and the handle comes back
