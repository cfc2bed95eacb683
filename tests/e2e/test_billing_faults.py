"""Odd upstream replies to a billable run, each produced by the sandbox after the task was created.

Whatever may have followed delivery (truncated JSON, an HTML page with 200, a redirect, a 408, a task id that
belongs to another run) is `submission_unknown`: recorded in the ledger, never sent again without force. The
sandbox's own counters are the judge: POSTs it saw and tasks it created.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from databar_mcp.app.server import build_server
from databar_mcp.sandbox import Fault, SandboxServer
from databar_mcp.sandbox.config import FaultKind
from tests.conftest import BULK_ARGS, error_body, lead, make_settings, structured, text_of

pytestmark = pytest.mark.anyio

BULK_RUN = "POST /v1/waterfalls/{identifier}/bulk-run"

ODD_REPLIES: list[tuple[str, FaultKind, int]] = [
    ("truncated JSON with 200", "truncated_after", 0),
    ("HTML page with 200", "html_after", 0),
    ("302 redirect to a login page", "status_after", 302),
    ("408 from a proxy", "status_after", 408),
    ("418 nobody expects", "status_after", 418),
]


@pytest.mark.parametrize(("case", "kind", "status"), ODD_REPLIES, ids=[c[0] for c in ODD_REPLIES])
async def test_an_odd_reply_after_the_work_is_submission_unknown_and_never_sent_again(
    sandbox: SandboxServer, tmp_path: Path, case: str, kind: FaultKind, status: int
) -> None:
    sandbox.state.inject(Fault(route=BULK_RUN, kind=kind, status=status or 503))

    async with Client(build_server(make_settings(sandbox, tmp_path))) as client:
        results = [await client.call_tool("run_bulk_waterfall", BULK_ARGS) for _ in range(3)]
        recent = structured(await client.call_tool("list_recent_tasks", {}))

    codes = [error_body(r)["code"] for r in results]
    assert codes == ["submission_unknown"] * 3, f"{case}: {[text_of(r) for r in results]}"
    assert sandbox.state.counts[BULK_RUN] == 1  # three identical calls, one POST
    assert len(sandbox.state.tasks) == 1  # what Databar started (and billed): once
    assert [s["outcome"] for s in recent["unsettled_submissions"]] == ["unknown"]  # recorded, not "rejected"
    first = error_body(results[0])
    assert first["details"]["fingerprint"] == recent["unsettled_submissions"][0]["fingerprint"]


async def test_a_task_id_that_belongs_to_another_run_is_never_merged_into_it(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    async with Client(build_server(make_settings(sandbox, tmp_path))) as client:
        first = structured(await client.call_tool("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 10}))
        assert first["status"] == "completed" and first["rows_total"] == 4
        sandbox.state.inject(Fault(route=BULK_RUN, kind="reused_task_id"))

        one_row = {**BULK_ARGS, "params": [lead("Zed", "Quinn", "example.com")]}
        second = await client.call_tool("run_bulk_waterfall", one_row)
        again = await client.call_tool("run_bulk_waterfall", one_row)
        earlier = structured(await client.call_tool("get_task", {"task_id": first["task_id"]}))

    err = error_body(second)
    assert second.is_error and err["code"] == "submission_unknown", text_of(second)
    assert first["task_id"] in err["message"] and "not merged" in err["message"]
    assert error_body(again)["code"] == "submission_unknown"  # the one-row run is not sent again blindly
    assert sandbox.state.counts[BULK_RUN] == 2 and len(sandbox.state.tasks) == 2
    # The earlier task is still the earlier run's alone: its four rows, not the one-row run's.
    assert earlier["task_id"] == first["task_id"] and earlier["rows_total"] == 4
    assert earlier["rows"] == first["rows"]


async def test_numbers_equal_as_json_are_the_same_run(mcp: Client, sandbox: SandboxServer) -> None:
    """1 and 1.0 are one JSON value: the second call is the first run, returned without billing."""
    rows = [{**lead("John", "Doe", "example.com"), "company": 1}]
    first = await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "params": rows, "wait_seconds": 10})
    assert not first.is_error, text_of(first)
    floats = [{**row, "company": 1.0} for row in rows]
    second = await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "params": floats, "enrichments": [833.0, 966]})

    assert not second.is_error, text_of(second)
    assert structured(second)["reused"] is True
    assert structured(second)["task_id"] == structured(first)["task_id"]
    assert sandbox.state.counts[BULK_RUN] == 1


TASK_GET = "GET /v1/tasks/{task_id}"


async def test_a_fresh_task_that_answers_404_at_first_is_waited_for_not_given_up(
    mcp: Client, sandbox: SandboxServer
) -> None:
    sandbox.state.config.fresh_task_unseen_reads = 3  # the first reads hit a replica that has not seen it yet

    result = await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 10})

    assert not result.is_error, text_of(result)
    out = structured(result)
    assert out["status"] == "completed" and out["rows_total"] == 4
    assert sandbox.state.counts[BULK_RUN] == 1
    assert sandbox.state.counts[TASK_GET] >= 4  # three 404s, then the task


async def test_404s_after_a_submit_never_let_the_same_run_through_and_its_result_is_stored(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """The background tracker meets the 404s (no tool call is waiting); the re-call still gets the first task."""
    sandbox.state.config.fresh_task_unseen_reads = 4
    settings = make_settings(sandbox, tmp_path, tracker_interval_s=0.05)

    async with Client(build_server(settings)) as client:
        first = structured(await client.call_tool("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 0}))
        while sandbox.state.counts[TASK_GET] < 5:  # the tracker polled through the four 404s, then saw it
            await anyio.sleep(0.05)
        again = await client.call_tool("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 10})
        recent = structured(await client.call_tool("list_recent_tasks", {}))

    assert not again.is_error, text_of(again)
    assert structured(again)["reused"] is True and structured(again)["task_id"] == first["task_id"]
    assert structured(again)["rows_total"] == 4
    assert sandbox.state.counts[BULK_RUN] == 1 and len(sandbox.state.tasks) == 1
    assert [(t["task_id"], t["status"], t["result_stored"]) for t in recent["tasks"]] == [
        (first["task_id"], "completed", True)
    ]


async def test_a_reused_task_id_we_never_saw_is_caught_by_its_rows(mcp: Client, sandbox: SandboxServer) -> None:
    """The earlier run's reply was lost, so its task id is in no ledger; Databar then gives that id to a one-row
    run. Its four rows are not this run's: an upstream error, nothing stored or served, and not re-sent."""
    sandbox.state.inject(Fault(route=BULK_RUN, kind="reset_after"))
    assert error_body(await mcp.call_tool("run_bulk_waterfall", BULK_ARGS))["code"] == "submission_unknown"
    sandbox.state.inject(Fault(route=BULK_RUN, kind="reused_task_id"))

    one_row = {**BULK_ARGS, "params": [lead("Zed", "Quinn", "example.com")], "wait_seconds": 10}
    result = await mcp.call_tool("run_bulk_waterfall", one_row)
    again = await mcp.call_tool("run_bulk_waterfall", one_row)

    err = error_body(result)
    assert result.is_error and err["code"] == "upstream_error", text_of(result)
    assert "holds 4 row(s) but this run sent 1" in err["message"]
    assert "Zed" not in text_of(result) and "John" not in text_of(result)
    assert error_body(again)["code"] == "submission_unknown"
    assert sandbox.state.counts[BULK_RUN] == 2


async def test_a_task_databar_does_not_show_yet_says_so(mcp: Client, sandbox: SandboxServer) -> None:
    """While the fresh task answers 404, get_task says it is submitted but not visible yet, never just 'running'."""
    sandbox.state.config.fresh_task_unseen_reads = 1000
    started = structured(await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 0}))

    result = await mcp.call_tool("get_task", {"task_id": started["task_id"], "wait_seconds": 0})

    assert not result.is_error, text_of(result)
    assert "does not show this task yet" in text_of(result) and "Nothing needs re-sending" in text_of(result)
    assert structured(result)["next_call"].startswith("get_task(")
    assert sandbox.state.counts[BULK_RUN] == 1


# ---- a 404 (or another refusal status) whose body is not Databar's, after the work (issue 22 item 7) ------

BILLABLE_ROUTES = {
    "run_bulk_waterfall": BULK_RUN,
    "run_bulk_enrichment": "POST /v1/enrichments/{enrichment_id}/bulk-run",
    "run_bulk_flow": "POST /v1/flows/{flow_id}/bulk-run",
    "run_table_enrichment": "POST /v1/table/{table_uuid}/run-enrichment/{processor_id}",
    "run_table_exporter": "POST /v1/table/{table_uuid}/run-exporter/{processor_id}",
}
FOREIGN_REPLIES: dict[str, tuple[int, object]] = {
    "404 HTML maintenance page": (404, None),
    "404 empty body": (404, ""),
    "403 gateway JSON": (403, {"message": "Forbidden"}),
    "429 HTML from a CDN": (429, "<html><body>Slow down</body></html>"),
}


async def billable_args(client: Client, tool: str) -> dict[str, Any]:
    """Arguments for one run of `tool` on the sandbox (a table is made for the table tools)."""
    from tests.e2e.test_table_admin_flows import EMAIL_FLOW
    from tests.e2e.test_table_enrich import table_with_waterfall

    if tool == "run_bulk_waterfall":
        return dict(BULK_ARGS)
    if tool == "run_bulk_enrichment":
        return {"enrichment_id": 120, "params": [{"domain": "example.com"}, {"domain": "acme.io"}]}
    if tool == "run_bulk_flow":
        people = [{"first_name": "Ann", "last_name": "Lee", "domain": "example.com"}]
        return {"flow_id": EMAIL_FLOW, "inputs": people}
    if tool == "run_table_enrichment":
        table, enrichment = await table_with_waterfall(client, 5)
        return {"table_uuid": table, "enrichment_id": enrichment, "wait_seconds": 1}
    table = structured(await client.call_tool("create_table", {"name": "To CRM", "columns": ["Email"]}))["identifier"]
    await client.call_tool("insert_rows", {"table_uuid": table, "rows": [{"Email": "a@x.io"}]})
    mapping = {"email": {"column": "Email"}}
    added = await client.call_tool("add_table_exporter", {"table_uuid": table, "exporter_id": 41, "mapping": mapping})
    return {"table_uuid": table, "table_exporter_id": structured(added)["table_exporter_id"], "confirm": True}


@pytest.mark.parametrize("reply", list(FOREIGN_REPLIES))
@pytest.mark.parametrize("tool", list(BILLABLE_ROUTES))
async def test_a_refusal_status_not_in_databars_shape_after_the_work_bills_once(
    sandbox: SandboxServer, tmp_path: Path, tool: str, reply: str
) -> None:
    """Regression: a proxy's 404 page after Databar started the run was recorded `rejected`, and the re-call
    billed again (5 of 5 billable tools). Only Databar's own error shape is a refusal."""
    sandbox.state.balance = 100_000
    route = BILLABLE_ROUTES[tool]
    status, body = FOREIGN_REPLIES[reply]
    async with Client(build_server(make_settings(sandbox, tmp_path, toolsets="all"))) as client:
        args = await billable_args(client, tool)
        sandbox.state.reset_counts()
        sandbox.state.inject(Fault(route=route, kind="status_after", status=status, body=body))
        results = [await client.call_tool(tool, args) for _ in range(2)]
        recent = structured(await client.call_tool("list_recent_tasks", {}))

    codes = [error_body(r)["code"] for r in results]
    assert codes == ["submission_unknown"] * 2, [text_of(r) for r in results]
    assert f"Databar answered {status}" in text_of(results[0]) and "not in Databar's error shape" in text_of(results[0])
    assert sandbox.state.counts[route] == 1  # the work was done once; the re-call sent nothing
    unsettled = [(s["tool"], s["outcome"]) for s in recent["unsettled_submissions"]]
    assert unsettled == [(tool, "unknown")]  # recorded as may-have-billed, never "rejected"


@pytest.mark.parametrize("tool", ["run_bulk_waterfall", "run_bulk_enrichment", "run_bulk_flow", "run_table_enrichment"])
async def test_a_404_page_after_the_work_in_an_mcp_task_bills_once(
    sandbox: SandboxServer, tmp_path: Path, tool: str
) -> None:
    from tests.tasks_client import poll_until, raw

    sandbox.state.balance = 100_000
    route = BILLABLE_ROUTES[tool]
    async with Client(build_server(make_settings(sandbox, tmp_path, toolsets="all")), mode="legacy") as client:
        args = await billable_args(client, tool)
        sandbox.state.reset_counts()
        sandbox.state.inject(Fault(route=route, kind="status_after", status=404))
        created = await raw(client, "tools/call", {"name": tool, "arguments": args, "task": {}})
        task_id = created["task"]["taskId"]
        await poll_until(client, task_id, {"completed", "failed", "cancelled"})
        result = await raw(client, "tasks/result", {"taskId": task_id})
        again = await client.call_tool(tool, args)

    assert result["isError"] is True and "submission_unknown" in json.dumps(result["content"]), result
    assert error_body(again)["code"] == "submission_unknown", text_of(again)
    assert sandbox.state.counts[route] == 1


async def test_a_lost_submission_shows_its_reason_possible_spend_balance_change_and_next_steps(
    mcp: Client, sandbox: SandboxServer
) -> None:
    """Regression (issue 23 §7): after submission_unknown, list_recent_tasks said only "1 submission(s) with
    unknown outcome … fingerprint …" and the spend figure left it out, so a model concluded nothing was spent."""
    sandbox.state.config.task_base_seconds = 5.0  # the run bills after the lost reply (on the sandbox's clock)
    sandbox.state.inject(Fault(route=BULK_RUN, kind="reset_after"))
    assert error_body(await mcp.call_tool("run_bulk_waterfall", BULK_ARGS))["code"] == "submission_unknown"
    sandbox.state.clock.advance(60)  # Databar ran it after all

    listing = text_of(await mcp.call_tool("list_recent_tasks", {}))
    account = text_of(await mcp.call_tool("get_account", {}))

    now = sandbox.state.balance
    assert now < 1000  # it did bill
    assert "Reason: The request was sent but its reply was lost" in listing, listing
    assert "Possibly spent: up to 12 credits (counted as possibly spent until settled)." in listing
    assert f"Balance since: 1000 then, {now:g} now ({now - 1000:+g})." in listing
    assert "Ask the user to check: In the Databar web app, look for a run of email_getter" in listing
    assert "call run_bulk_waterfall again with the same arguments and force=true" in listing
    assert "Possibly spent: up to 12 more by 1 run(s) whose submission outcome is unknown" in account
