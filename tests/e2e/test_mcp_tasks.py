"""Databar tasks as MCP Tasks, both generations, through the official Python client speaking raw task requests.

2025-11-25 (experimental tasks: `task` on tools/call, tasks/get|result|list|cancel) and the 2026-07-28
extension `io.modelcontextprotocol/tasks` (resultType "task", tasks/get|update|cancel), in process, over
stdio and over HTTP, against the real server and the sandbox over real HTTP.
"""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client import advertise
from mcp.shared.dispatcher import CallOptions
from mcp.shared.exceptions import MCPError
from mcp.types import ElicitRequestParams, ElicitResult

from databar_mcp.app.server import build_server
from databar_mcp.sandbox import SandboxServer
from tests.conftest import BULK_ARGS, lead, make_settings, structured
from tests.system.test_crash_recovery import our_child_server, server_process, stdio_params
from tests.tasks_client import EXT, StatusListener, poll_until, raw

pytestmark = pytest.mark.anyio

BULK_RUN = "POST /v1/waterfalls/{identifier}/bulk-run"
CANCEL = "POST /v1/tasks/{task_id}/cancel"
POLL = "GET /v1/tasks/{task_id}"
TERMINAL = {"completed", "failed", "cancelled"}
HOUR = 3600.0
ROWS = [lead(f"F{i}", f"L{i}", "example.com" if i % 2 == 0 else "nowhere.invalid") for i in range(20)]
SLOW_ARGS: dict[str, Any] = {"waterfall": "email_getter", "params": ROWS, "enrichments": [833]}


def slow(sandbox: SandboxServer, base: float = 0.4, row: float = 0.05) -> None:
    sandbox.state.config.task_base_seconds = base
    sandbox.state.config.row_seconds = row


def slow_until_finished(sandbox: SandboxServer) -> None:
    """A run whose first row is done at once and the rest an hour apart on the sandbox clock: it shows progress
    and stays working however busy the machine is, until `finish`."""
    slow(sandbox, base=0.0, row=HOUR)


async def poll_until_progress(client: Client, task_id: str) -> list[dict[str, Any]]:
    """tasks/get until a working status reports rows done (our server has polled Databar by then)."""
    seen: list[dict[str, Any]] = []
    while not seen or "rows" not in seen[-1].get("statusMessage", ""):
        _, polled = await poll_until(client, task_id, {"working"})
        seen += polled
        if "rows" not in polled[-1].get("statusMessage", ""):
            await anyio.sleep(0.05)
    return seen


def finish(sandbox: SandboxServer) -> None:
    """Move the sandbox clock past a `slow_until_finished` run's last row."""
    sandbox.state.clock.advance(len(ROWS) * HOUR)


def handle_rows(state_dir: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(state_dir / "ledger.sqlite3") as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute("SELECT * FROM mcp_tasks").fetchall()


def ledger_dir(settings_state: Path) -> Path:
    return settings_state


async def create_legacy(client: Client, args: dict[str, Any], ttl: int | None = 60_000) -> dict[str, Any]:
    task: dict[str, Any] = {} if ttl is None else {"ttl": ttl}
    created = await raw(client, "tools/call", {"name": "run_bulk_waterfall", "arguments": args, "task": task})
    return created["task"]


# ---- 2025-11-25 ------------------------------------------------------------------------------------------


async def test_legacy_task_create_poll_progress_result_and_list(sandbox: SandboxServer, tmp_path: Path) -> None:
    slow_until_finished(sandbox)
    listener = StatusListener()
    server = build_server(make_settings(sandbox, tmp_path))
    async with Client(server, mode="legacy", extensions=[listener]) as client:
        assert client.server_capabilities.tasks is not None
        assert client.server_capabilities.tasks.requests is not None
        tools = {t.name: t for t in (await client.list_tools()).tools}
        task_tools = {n for n, t in tools.items() if t.execution and t.execution.task_support == "optional"}
        assert task_tools == {"run_bulk_waterfall", "run_bulk_enrichment", "get_task"}

        task = await create_legacy(client, SLOW_ARGS)
        assert task["status"] == "working" and task["ttl"] == 60_000 and task["pollInterval"] >= 250
        assert len(task["taskId"]) >= 32  # 192 random bits
        assert sandbox.state.counts[BULK_RUN] == 1 and sandbox.state.counts[POLL] == 0  # returned at once

        seen = await poll_until_progress(client, task["taskId"])
        finish(sandbox)  # seen working on a poll however busy the machine: now the sandbox clock ends the run
        final, rest = await poll_until(client, task["taskId"], TERMINAL)
        seen += rest
        result = await raw(client, "tasks/result", {"taskId": task["taskId"]})
        listing = await raw(client, "tasks/list", {})
        databar_id = final["_meta"]["io.databar/task_id"]
        plain = await client.call_tool("get_task", {"task_id": databar_id})

    assert final["status"] == "completed" and "pollInterval" not in final
    progressed = [s for s in seen if s["status"] == "working" and "io.databar/progress" in s.get("_meta", {})]
    assert progressed and "rows" in progressed[-1]["statusMessage"]
    assert result["_meta"]["io.modelcontextprotocol/related-task"] == {"taskId": task["taskId"]}
    assert result["structuredContent"]["rows"] == structured(plain)["rows"]
    assert result["structuredContent"]["rows_total"] == len(ROWS) and result["structuredContent"]["done"] is True
    assert [t["taskId"] for t in listing["tasks"]] == [task["taskId"]]
    statuses = listener.seen
    assert statuses and statuses[-1]["status"] == "completed" and statuses[-1]["taskId"] == task["taskId"]
    assert sandbox.state.counts[BULK_RUN] == 1


async def test_legacy_cancel_cancels_at_databar_and_in_the_ledger(sandbox: SandboxServer, tmp_path: Path) -> None:
    slow(sandbox, base=30.0)
    settings = make_settings(sandbox, tmp_path)
    async with Client(build_server(settings), mode="legacy") as client:
        task = await create_legacy(client, SLOW_ARGS)
        cancelled = await raw(client, "tasks/cancel", {"taskId": task["taskId"]})
        with pytest.raises(MCPError) as again:
            await raw(client, "tasks/cancel", {"taskId": task["taskId"]})
        result = await raw(client, "tasks/result", {"taskId": task["taskId"]})
        recent = structured(await client.call_tool("list_recent_tasks", {}))

    assert cancelled["status"] == "cancelled"
    assert sandbox.state.counts[CANCEL] == 1
    assert again.value.error.code == -32602 and "terminal" in again.value.error.message
    assert result["structuredContent"]["status"] == "cancelled"
    assert recent["tasks"][0]["status"] == "cancelled"
    assert [r["state"] for r in handle_rows(settings.state_dir)] == ["cancelled"]


async def test_a_client_that_does_not_ask_for_tasks_sees_todays_behaviour(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    settings = make_settings(sandbox, tmp_path)
    async with Client(build_server(settings), mode="legacy") as client:
        plain = await client.call_tool("run_bulk_waterfall", BULK_ARGS)
        with pytest.raises(MCPError) as not_a_task_tool:
            await raw(client, "tools/call", {"name": "get_account", "arguments": {}, "task": {}})
    async with Client(build_server(settings)) as modern:  # 2026-07-28 without the extension
        again = await modern.call_tool("run_bulk_waterfall", {**BULK_ARGS, "force": True})
        with pytest.raises(MCPError) as undeclared:
            await raw(modern, "tasks/get", {"taskId": "x" * 32})

    assert not plain.is_error and structured(plain)["status"] == "completed"
    assert not again.is_error and structured(again)["status"] == "completed"
    assert not_a_task_tool.value.error.code == -32601
    assert undeclared.value.error.code == -32021
    assert handle_rows(settings.state_dir) == []


async def test_unknown_ids_and_expired_ttls_answer_clearly(sandbox: SandboxServer, tmp_path: Path) -> None:
    async with Client(build_server(make_settings(sandbox, tmp_path)), mode="legacy") as client:
        task = await create_legacy(client, BULK_ARGS, ttl=1)  # below the floor: clamped to 1 s
        assert task["ttl"] == 1000
        await anyio.sleep(1.2)
        with pytest.raises(MCPError) as gone:
            await raw(client, "tasks/get", {"taskId": task["taskId"]})
        with pytest.raises(MCPError) as unknown:
            await raw(client, "tasks/get", {"taskId": task["taskId"][:-1] + "A"})
        with pytest.raises(MCPError) as bad_cursor:
            await raw(client, "tasks/list", {"cursor": "nope"})
    assert gone.value.error.code == -32602 and "expired" in gone.value.error.message
    assert unknown.value.error.code == -32602 and "not found" in unknown.value.error.message
    assert bad_cursor.value.error.code == -32602


async def test_restart_mid_task_then_databar_expiry_still_answers(sandbox: SandboxServer, tmp_path: Path) -> None:
    slow(sandbox, base=1.0)
    settings = make_settings(sandbox, tmp_path)
    async with Client(build_server(settings), mode="legacy") as client:
        task = await create_legacy(client, SLOW_ARGS)
    assert handle_rows(settings.state_dir)[0]["state"] == "working"  # the server went away mid-task

    async with Client(build_server(settings), mode="legacy") as client:
        final, _ = await poll_until(client, task["taskId"], TERMINAL)
        first = await raw(client, "tasks/result", {"taskId": task["taskId"]})
    sandbox.state.clock.advance(25 * 3600)  # Databar has deleted the task now
    polls = sandbox.state.counts[POLL]
    async with Client(build_server(settings), mode="legacy") as client:
        later = await raw(client, "tasks/get", {"taskId": task["taskId"]})
        again = await raw(client, "tasks/result", {"taskId": task["taskId"]})

    assert final["status"] == "completed" and later["status"] == "completed"
    assert again["structuredContent"]["rows"] == first["structuredContent"]["rows"]
    assert sandbox.state.counts[POLL] == polls  # served from the ledger, no request to Databar
    assert sandbox.state.counts[BULK_RUN] == 1


async def test_get_task_as_a_task_waits_on_an_existing_run(sandbox: SandboxServer, tmp_path: Path) -> None:
    # Surely still working when the MCP task is created (a 1.4 s run had finished by then on a busy machine).
    slow_until_finished(sandbox)
    async with Client(build_server(make_settings(sandbox, tmp_path)), mode="legacy") as client:
        run = structured(await client.call_tool("run_bulk_waterfall", {**SLOW_ARGS, "wait_seconds": 0}))
        created = await raw(
            client, "tools/call", {"name": "get_task", "arguments": {"task_id": run["task_id"]}, "task": {}}
        )
        finish(sandbox)
        result = await raw(client, "tasks/result", {"taskId": created["task"]["taskId"]})
    assert created["task"]["status"] == "working"
    assert result["structuredContent"]["task_id"] == run["task_id"] and result["structuredContent"]["done"] is True


# ---- 2026-07-28 extension --------------------------------------------------------------------------------


async def test_modern_run_answers_with_a_task_handle_then_the_same_result(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    slow_until_finished(sandbox)
    async with Client(build_server(make_settings(sandbox, tmp_path)), extensions=[advertise(EXT, {})]) as client:
        assert client.protocol_version == "2026-07-28"
        assert EXT in (client.server_capabilities.extensions or {})
        created = await raw(client, "tools/call", {"name": "run_bulk_waterfall", "arguments": SLOW_ARGS})
        seen = await poll_until_progress(client, created["taskId"])
        finish(sandbox)
        final, rest = await poll_until(client, created["taskId"], TERMINAL)
        seen += rest
        plain = await client.call_tool("get_task", {"task_id": final["_meta"]["io.databar/task_id"]})

    assert created["resultType"] == "task" and created["status"] == "working"
    assert created["pollIntervalMs"] >= 250 and created["ttlMs"] > 0
    assert all(s["resultType"] == "complete" for s in seen)
    assert any("rows" in s.get("statusMessage", "") for s in seen if s["status"] == "working")
    assert final["status"] == "completed" and final["result"]["structuredContent"]["rows"] == structured(plain)["rows"]
    assert sandbox.state.counts[BULK_RUN] == 1


async def test_modern_spend_confirmation_is_asked_through_the_task(sandbox: SandboxServer, tmp_path: Path) -> None:
    async def elicit(context: Any, params: ElicitRequestParams) -> ElicitResult:
        raise AssertionError("the question must travel through the task, not block the call")

    settings = make_settings(sandbox, tmp_path, confirm_above=5)
    async with Client(build_server(settings), extensions=[advertise(EXT, {})], elicitation_callback=elicit) as client:
        yes = await raw(client, "tools/call", {"name": "run_bulk_waterfall", "arguments": BULK_ARGS})
        asked = await raw(client, "tasks/get", {"taskId": yes["taskId"]})
        assert sandbox.state.counts[BULK_RUN] == 0  # nothing is sent before the user answers
        ((key, question),) = asked["inputRequests"].items()
        ack = await raw(
            client,
            "tasks/update",
            {"taskId": yes["taskId"], "inputResponses": {key: {"action": "accept", "content": {"confirm": True}}}},
        )
        done, _ = await poll_until(client, yes["taskId"], TERMINAL)

        no = await raw(client, "tools/call", {"name": "run_bulk_waterfall", "arguments": {**BULK_ARGS, "force": True}})
        key_no = next(iter((await raw(client, "tasks/get", {"taskId": no["taskId"]}))["inputRequests"]))
        await raw(client, "tasks/update", {"taskId": no["taskId"], "inputResponses": {key_no: {"action": "decline"}}})
        refused, _ = await poll_until(client, no["taskId"], TERMINAL)

    assert yes["status"] == "input_required" and asked["status"] == "input_required"
    assert question["method"] == "elicitation/create" and "12 credits" in question["params"]["message"]
    assert ack == {"resultType": "complete"}
    assert done["status"] == "completed" and done["result"]["structuredContent"]["status"] == "completed"
    assert refused["status"] == "completed" and refused["result"]["isError"] is True
    assert sandbox.state.counts[BULK_RUN] == 1  # the declined run was never sent


async def test_modern_cancel_and_a_finished_get_task_needs_no_task(sandbox: SandboxServer, tmp_path: Path) -> None:
    slow(sandbox, base=30.0)
    async with Client(build_server(make_settings(sandbox, tmp_path)), extensions=[advertise(EXT, {})]) as client:
        created = await raw(client, "tools/call", {"name": "run_bulk_waterfall", "arguments": SLOW_ARGS})
        ack = await raw(client, "tasks/cancel", {"taskId": created["taskId"]})
        after = await raw(client, "tasks/get", {"taskId": created["taskId"]})
        databar_id = after["_meta"]["io.databar/task_id"]
        finished = await raw(client, "tools/call", {"name": "get_task", "arguments": {"task_id": databar_id}})
    assert ack["resultType"] == "complete" and after["status"] == "cancelled"
    assert sandbox.state.counts[CANCEL] == 1
    assert finished.get("resultType") != "task" and finished["structuredContent"]["status"] == "cancelled"


# ---- over stdio and HTTP ---------------------------------------------------------------------------------


async def test_stdio_task_survives_a_killed_server(sandbox: SandboxServer, tmp_path: Path) -> None:
    slow(sandbox, base=1.5)
    state_dir = tmp_path / "state"
    async with Client(stdio_params(sandbox, state_dir), mode="legacy") as client:
        task = await create_legacy(client, SLOW_ARGS)
        pid = our_child_server(state_dir)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        await anyio.sleep(0.2)
    async with Client(stdio_params(sandbox, state_dir), mode="legacy") as client:
        final, _ = await poll_until(client, task["taskId"], TERMINAL)
        result = await raw(client, "tasks/result", {"taskId": task["taskId"]})
    assert final["status"] == "completed" and result["structuredContent"]["rows_total"] == len(ROWS)
    assert sandbox.state.counts[BULK_RUN] == 1


async def test_http_tasks_are_scoped_to_their_session_and_modern_ones_survive_a_restart(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    slow(sandbox)
    state_dir = tmp_path / "state"
    with server_process(sandbox, state_dir) as (_, url):
        async with Client(url, mode="legacy") as mine, Client(url, mode="legacy") as other:
            task = await create_legacy(mine, SLOW_ARGS)
            with pytest.raises(MCPError) as foreign:
                await raw(other, "tasks/get", {"taskId": task["taskId"]})
            theirs = await raw(other, "tasks/list", {})
            final, _ = await poll_until(mine, task["taskId"], TERMINAL)
            result = await raw(mine, "tasks/result", {"taskId": task["taskId"]})
        async with Client(url, extensions=[advertise(EXT, {})]) as modern:
            created = await raw(
                modern, "tools/call", {"name": "run_bulk_waterfall", "arguments": {**SLOW_ARGS, "force": True}}
            )
    with server_process(sandbox, state_dir) as (_, url):
        async with Client(url, extensions=[advertise(EXT, {})]) as modern:
            done, _ = await poll_until(modern, created["taskId"], TERMINAL)

    assert foreign.value.error.code == -32602 and theirs["tasks"] == []
    assert final["status"] == "completed" and result["structuredContent"]["rows_total"] == len(ROWS)
    assert created["resultType"] == "task" and done["status"] == "completed"
    assert done["result"]["structuredContent"]["rows_total"] == len(ROWS)
    assert sandbox.state.counts[BULK_RUN] == 2


async def test_http_modern_task_methods_refuse_a_wrong_or_missing_mcp_name(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """SEP-2663 over HTTP: `Mcp-Name` carries the taskId of tasks/get|update|cancel, and a mismatch (an absent
    header included) is -32020 with HTTP 400, as the SDK already answers for tools/call (issue 22 item 15)."""
    slow(sandbox, base=30.0)
    with server_process(sandbox, tmp_path / "state") as (_, url):
        async with Client(url, extensions=[advertise(EXT, {})]) as modern:
            task_id = (await raw(modern, "tools/call", {"name": "run_bulk_waterfall", "arguments": SLOW_ARGS}))[
                "taskId"
            ]
            requests = {
                m: stamped(modern, m, {"taskId": task_id}) for m in ("tasks/get", "tasks/update", "tasks/cancel")
            }
        async with httpx2.AsyncClient(timeout=30) as http:
            refused = [
                await http.post(url, json=body, headers={**headers, **name})
                for body, headers in requests.values()
                for name in ({"Mcp-Name": "someone-elses-task"}, {})
            ]
            body, headers = requests["tasks/get"]
            right = await http.post(url, json=body, headers={**headers, "Mcp-Name": task_id})

    assert [r.status_code for r in refused] == [400] * 6
    assert all(r.json()["error"]["code"] == -32020 and "Mcp-Name" in r.json()["error"]["message"] for r in refused)
    assert right.status_code == 200 and right.json()["result"]["status"] == "working"
    assert sandbox.state.counts[CANCEL] == 0  # the refused cancels cancelled nothing


def stamped(client: Client, method: str, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A JSON-RPC request as the client would POST it (its `_meta` and headers), without its `Mcp-Name`."""
    data: dict[str, Any] = {"method": method, "params": dict(params)}
    opts: CallOptions = {}
    client.session._stamp(data, opts)  # pyright: ignore[reportPrivateUsage]
    headers = {k: v for k, v in (opts.get("headers") or {}).items() if k.lower() != "mcp-name"}
    headers |= {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    return {"jsonrpc": "2.0", "id": 1, **data}, headers
