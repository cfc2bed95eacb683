"""Bulk flows and table runs as MCP tasks, both generations, through the official Python client.

A bulk flow is a Databar task like a waterfall run; a table run has no Databar task id, so its handle follows
the table's rows. Either way the task ends with the result the tool itself returns when the run is done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.client import advertise
from mcp.shared.exceptions import MCPError
from mcp.types import ElicitRequestParams, ElicitResult

from databar_mcp.app.server import build_server
from databar_mcp.config import Settings
from databar_mcp.sandbox import SandboxServer
from tests.conftest import make_settings, structured
from tests.e2e.test_mcp_tasks import CANCEL, TERMINAL, handle_rows, slow
from tests.e2e.test_table_admin_flows import EMAIL_FLOW
from tests.e2e.test_table_enrich import RUN, table_with_waterfall
from tests.system.test_crash_recovery import server_process
from tests.tasks_client import EXT, poll_until, raw

pytestmark = pytest.mark.anyio

BULK_FLOW = "POST /v1/flows/{flow_id}/bulk-run"
PEOPLE = [
    {"first_name": f"F{i}", "last_name": "Doe", "domain": "example.com" if i % 2 else "x.invalid"} for i in range(6)
]
FLOW_ARGS: dict[str, Any] = {"flow_id": EMAIL_FLOW, "inputs": PEOPLE}
NO_CANCEL = "Databar has no cancel for a table run"


def all_tools(sandbox: SandboxServer, tmp_path: Path, **overrides: Any) -> Settings:
    return make_settings(sandbox, tmp_path, toolsets="all", **overrides)


async def table_run(client: Client, sandbox: SandboxServer, rows: int = 40) -> dict[str, Any]:
    sandbox.state.balance = 10_000
    sandbox.state.config.table_row_seconds = 0.02
    table, enrichment = await table_with_waterfall(client, rows)
    sandbox.state.reset_counts()
    return {"table_uuid": table, "enrichment_id": enrichment}


# ---- bulk flows ------------------------------------------------------------------------------------------


async def test_bulk_flow_as_a_task_in_both_generations_ends_with_the_tools_result(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    slow(sandbox)
    settings = all_tools(sandbox, tmp_path)
    async with Client(build_server(settings), mode="legacy") as legacy:
        tools = {t.name: t for t in (await legacy.list_tools()).tools}
        marked = {n for n, t in tools.items() if t.execution and t.execution.task_support == "optional"}
        created = await raw(legacy, "tools/call", {"name": "run_bulk_flow", "arguments": FLOW_ARGS, "task": {}})
        final, _ = await poll_until(legacy, created["task"]["taskId"], TERMINAL)
        result = await raw(legacy, "tasks/result", {"taskId": created["task"]["taskId"]})
        plain = await legacy.call_tool("get_task", {"task_id": final["_meta"]["io.databar/task_id"]})
    async with Client(build_server(settings), extensions=[advertise(EXT, {})]) as modern:
        handle = await raw(modern, "tools/call", {"name": "run_bulk_flow", "arguments": {**FLOW_ARGS, "force": True}})
        done, _ = await poll_until(modern, handle["taskId"], TERMINAL)

    assert {"run_bulk_flow", "run_table_enrichment", "wait_table_enrichment"} <= marked
    assert created["task"]["status"] == "working" and final["status"] == "completed"
    assert result["structuredContent"]["rows"] == structured(plain)["rows"]
    assert (
        result["structuredContent"]["rows_total"] == len(PEOPLE) and result["structuredContent"]["rows_with_data"] == 3
    )
    assert handle["resultType"] == "task" and done["status"] == "completed"
    assert done["result"]["structuredContent"]["rows"] == structured(plain)["rows"]
    assert sandbox.state.counts[BULK_FLOW] == 2


async def test_bulk_flow_task_cancel_cancels_at_databar(sandbox: SandboxServer, tmp_path: Path) -> None:
    slow(sandbox, base=30.0)
    settings = all_tools(sandbox, tmp_path)
    async with Client(build_server(settings), mode="legacy") as legacy:
        created = await raw(legacy, "tools/call", {"name": "run_bulk_flow", "arguments": FLOW_ARGS, "task": {}})
        cancelled = await raw(legacy, "tasks/cancel", {"taskId": created["task"]["taskId"]})
    async with Client(build_server(settings), extensions=[advertise(EXT, {})]) as modern:
        handle = await raw(modern, "tools/call", {"name": "run_bulk_flow", "arguments": {**FLOW_ARGS, "force": True}})
        ack = await raw(modern, "tasks/cancel", {"taskId": handle["taskId"]})
        after = await raw(modern, "tasks/get", {"taskId": handle["taskId"]})

    assert cancelled["status"] == "cancelled"
    assert ack == {"resultType": "complete"} and after["status"] == "cancelled"
    assert sandbox.state.counts[CANCEL] == 2 and sandbox.state.counts[BULK_FLOW] == 2
    assert [r["state"] for r in handle_rows(settings.state_dir)] == ["cancelled", "cancelled"]


# ---- table runs ------------------------------------------------------------------------------------------


async def test_legacy_table_run_task_follows_the_rows_and_refuses_a_cancel(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = all_tools(sandbox, tmp_path)
    async with Client(build_server(settings), mode="legacy") as client:
        args = await table_run(client, sandbox)
        created = await raw(client, "tools/call", {"name": "run_table_enrichment", "arguments": args, "task": {}})
        task_id = created["task"]["taskId"]
        with pytest.raises(MCPError) as refused:
            await raw(client, "tasks/cancel", {"taskId": task_id})
        after_cancel = await raw(client, "tasks/get", {"taskId": task_id})
        final, seen = await poll_until(client, task_id, TERMINAL)
        result = await raw(client, "tasks/result", {"taskId": task_id})
        waited = structured(await client.call_tool("wait_table_enrichment", args))

    assert created["task"]["status"] == "working" and "io.databar/task_id" not in created.get("_meta", {})
    assert refused.value.error.code == -32602 and NO_CANCEL in refused.value.error.message
    assert after_cancel["status"] == "working" and NO_CANCEL in after_cancel["statusMessage"]
    assert final["status"] == "completed" and NO_CANCEL in final["statusMessage"]
    assert any(s.get("_meta", {}).get("io.databar/progress", {}).get("total") == 40 for s in seen)
    view = result["structuredContent"]
    assert view["done"] is True and view["rows_done"] == 40 and view["still_processing"] == 0
    assert view["found"] + view["no_data"] == 40 and view["found"] == waited["found"]
    assert view["estimated_credits"] == waited["estimated_credits"] == 120
    assert sandbox.state.counts[RUN] == 1


async def test_modern_table_run_asks_the_spend_through_the_task_then_reports_the_run(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    async def elicit(context: Any, params: ElicitRequestParams) -> ElicitResult:
        raise AssertionError("the question must travel through the task, not block the call")

    settings = all_tools(sandbox, tmp_path, confirm_above=5)
    async with Client(build_server(settings), extensions=[advertise(EXT, {})], elicitation_callback=elicit) as client:
        args = await table_run(client, sandbox)
        created = await raw(client, "tools/call", {"name": "run_table_enrichment", "arguments": args})
        asked = await raw(client, "tasks/get", {"taskId": created["taskId"]})
        assert sandbox.state.counts[RUN] == 0  # nothing is sent before the user answers
        ((key, question),) = asked["inputRequests"].items()
        await raw(
            client,
            "tasks/update",
            {"taskId": created["taskId"], "inputResponses": {key: {"action": "accept", "content": {"confirm": True}}}},
        )
        working = await raw(client, "tasks/get", {"taskId": created["taskId"]})
        ack = await raw(client, "tasks/cancel", {"taskId": created["taskId"]})
        after_cancel = await raw(client, "tasks/get", {"taskId": created["taskId"]})
        final, _ = await poll_until(client, created["taskId"], TERMINAL)
        again = await raw(client, "tools/call", {"name": "run_table_enrichment", "arguments": args})

    assert created["status"] == "input_required" and "120 credits" in question["params"]["message"]
    assert working["status"] in ("working", "completed")
    assert ack == {"resultType": "complete"} and NO_CANCEL in after_cancel["statusMessage"]
    assert after_cancel["status"] in ("working", "completed")
    assert final["status"] == "completed" and final["result"]["structuredContent"]["rows_done"] == 40
    assert final["result"]["structuredContent"]["reused"] is False
    # the identical call returns the finished run at once: its plain result, no task (the server decides)
    assert again.get("resultType") != "task" and again["structuredContent"]["reused"] is True
    assert sandbox.state.counts[RUN] == 1


async def test_a_table_run_task_survives_a_restart_and_wait_table_enrichment_is_a_task_too(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = all_tools(sandbox, tmp_path)
    async with Client(build_server(settings), extensions=[advertise(EXT, {})]) as client:
        args = await table_run(client, sandbox, rows=60)
        sandbox.state.config.table_row_seconds = 0.03
        created = await raw(client, "tools/call", {"name": "run_table_enrichment", "arguments": args})
    assert [r["state"] for r in handle_rows(settings.state_dir)] == ["working"]  # the server went away mid-run

    async with Client(build_server(settings), extensions=[advertise(EXT, {})]) as client:
        waiting = await raw(client, "tools/call", {"name": "wait_table_enrichment", "arguments": args})
        final, _ = await poll_until(client, created["taskId"], TERMINAL)
        followed, _ = await poll_until(client, waiting["taskId"], TERMINAL)

    assert created["resultType"] == "task" and waiting["resultType"] == "task"
    view = final["result"]["structuredContent"]
    assert view["rows_done"] == 60 and view["found"] + view["no_data"] == 60 and view["counts_exact"] is True
    assert followed["result"]["structuredContent"]["found"] == view["found"]
    assert sandbox.state.counts[RUN] == 1


async def test_a_table_run_task_over_http(sandbox: SandboxServer, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    with server_process(sandbox, state_dir, extra_env={"DATABAR_MCP_TOOLSETS": "all"}) as (_, url):
        async with Client(url, extensions=[advertise(EXT, {})]) as modern, Client(url, mode="legacy") as legacy:
            args = await table_run(modern, sandbox)
            created = await raw(modern, "tools/call", {"name": "run_table_enrichment", "arguments": args})
            final, _ = await poll_until(modern, created["taskId"], TERMINAL)
            waited = await raw(legacy, "tools/call", {"name": "wait_table_enrichment", "arguments": args, "task": {}})
            result = await raw(legacy, "tasks/result", {"taskId": waited["task"]["taskId"]})

    assert created["resultType"] == "task" and final["status"] == "completed"
    assert final["result"]["structuredContent"]["rows_done"] == 40
    assert result["structuredContent"]["found"] == final["result"]["structuredContent"]["found"]
    assert sandbox.state.counts[RUN] == 1
