"""Table admin, exporters and flows through a real MCP client (their toolsets are not loaded by default)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mcp import Client

from databar_mcp.app.server import build_server
from databar_mcp.config import Settings
from databar_mcp.sandbox import Fault, SandboxServer
from tests.conftest import confirming, error_body, make_settings, structured, text_of

pytestmark = pytest.mark.anyio

EMAIL_FLOW = "3f1c9a52-7b2e-4d8a-9c61-0e5b2a7d4f10"


@pytest.fixture
def settings(sandbox: SandboxServer, tmp_path: Path) -> Settings:
    return make_settings(sandbox, tmp_path, toolsets="all")


@pytest.fixture
async def mcp(settings: Settings) -> AsyncIterator[Client]:
    async with Client(build_server(settings)) as client:
        yield client


async def call(mcp: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await mcp.call_tool(tool, args)
    assert not result.is_error, (tool, text_of(result))
    return structured(result)


async def test_columns_rename_dedupe_export_folders_and_delete(mcp: Client, sandbox: SandboxServer) -> None:
    table = (await call(mcp, "create_table", {"name": "Scratch", "columns": ["Email", "Name"]}))["identifier"]
    rows = [{"Email": e, "Name": "x"} for e in ("a@x.io", " A@x.io", "b@x.io", "b@x.io", "c@x.io")]
    await call(mcp, "insert_rows", {"table_uuid": table, "rows": rows})

    made = await call(mcp, "create_column", {"table_uuid": table, "name": "Score", "type": "number"})
    assert made["type"] == "number"
    assert (await call(mcp, "rename_column", {"table_uuid": table, "column": "Score", "new_name": "Lead score"}))[
        "name"
    ] == "Lead score"
    missing = await mcp.call_tool("delete_column", {"table_uuid": table, "column": "Nope"})
    assert missing.is_error and "not_found" in text_of(missing)
    await call(mcp, "delete_column", {"table_uuid": table, "column": made["identifier"]})

    counted = await call(mcp, "dedupe_rows", {"table_uuid": table, "columns": ["Email"]})
    assert (counted["total_rows"], counted["duplicates"], counted["deleted"]) == (5, 2, False)
    assert sandbox.state.counts["POST /v1/table/{table_uuid}/rows/dedupe"] == 0  # counting deletes nothing
    assert "confirm=true" in counted["next_call"]
    deleted = await call(mcp, "dedupe_rows", {"table_uuid": table, "columns": ["Email"], "confirm": True})
    assert (deleted["duplicates"], deleted["deleted"]) == (counted["duplicates"], True)

    sandbox.state.config.export_seconds = 0.3
    exported = await call(mcp, "export_table", {"table_uuid": table, "wait_seconds": 5})
    assert exported["status"] == "completed" and exported["file"]
    async with httpx.AsyncClient() as http:
        assert (await http.get(exported["file"])).text.count("@x.io") == 3

    folder = await call(mcp, "create_folder", {"name": "Prospects"})
    moved = await call(mcp, "update_table", {"table_uuid": table, "folder_id": folder["id"]})
    assert (moved["folder_id"], moved["name"]) == (folder["id"], None)
    listed = await call(mcp, "list_tables", {})
    assert [(f["name"], f["table_count"]) for f in listed["folders"]] == [("Prospects", 1)]
    both = await call(mcp, "update_table", {"table_uuid": table, "name": "Done", "folder_id": 0})
    assert (both["name"], both["folder_id"]) == ("Done", 0)
    listed = await call(mcp, "list_tables", {})
    assert [(f["name"], f["table_count"]) for f in listed["folders"]] == [("Prospects", 0)]  # out of every folder
    assert "Done" in {t["name"] for t in listed["tables"]}
    nothing = await mcp.call_tool("update_table", {"table_uuid": table})
    assert nothing.is_error and "validation_error" in text_of(nothing)
    sandbox.state.inject(Fault(route="POST /v1/folders/move-table", kind="status", status=503, times=5))
    half = await mcp.call_tool("update_table", {"table_uuid": table, "name": "Half", "folder_id": folder["id"]})
    assert half.is_error and "is now named 'Half', but the move failed" in text_of(half)  # the rename is not hidden
    await call(mcp, "delete_table", {"table_uuid": table})
    tables = await call(mcp, "list_tables", {})
    assert table not in {t["identifier"] for t in tables["tables"]}


async def test_exporter_needs_confirmation_and_sends_once(mcp: Client, sandbox: SandboxServer) -> None:
    table = (await call(mcp, "create_table", {"name": "To CRM", "columns": ["Email"]}))["identifier"]
    await call(mcp, "insert_rows", {"table_uuid": table, "rows": [{"Email": "a@x.io"}, {"Email": ""}]})
    exporters = await call(mcp, "list_exporters", {"query": "hubspot"})
    hubspot = exporters["exporters"][0]["id"]
    detail = (await call(mcp, "list_exporters", {"exporter_id": hubspot}))["exporter"]
    assert [p["name"] for p in detail["params"] if p["required"]] == ["email"]
    added = await call(
        mcp,
        "add_table_exporter",
        {"table_uuid": table, "exporter_id": hubspot, "mapping": {"email": {"column": "Email"}}},
    )
    run = "POST /v1/table/{table_uuid}/run-exporter/{processor_id}"
    refused = await mcp.call_tool("run_table_exporter", {"table_uuid": table, "exporter_id": added["exporter_id"]})
    assert sandbox.state.counts[run] == 0
    # Regression (issue 23, 7): a free export came back as spend_limit with next steps that contradicted it.
    err = error_body(refused)  # this client cannot ask the user
    assert err["code"] == "confirmation_required"
    assert "Sending 2 row(s)" in err["message"] and "cannot ask the user" in err["message"]
    call_again = f'run_table_exporter(table_uuid="{table}", exporter_id={added["exporter_id"]}, confirm=true)'
    assert err["next_steps"] == [
        "Ask the user whether to send these rows (the count and destination are above).",
        f"Only if they agree: call {call_again}.",
    ]
    sent = await call(
        mcp, "run_table_exporter", {"table_uuid": table, "exporter_id": added["exporter_id"], "confirm": True}
    )
    assert sent["done"] and (sent["found"], sent["errors"]) == (1, 1)
    again = await call(
        mcp, "run_table_exporter", {"table_uuid": table, "exporter_id": added["exporter_id"], "confirm": True}
    )
    assert again["reused"] and sandbox.state.counts[run] == 1


async def test_flows_list_estimate_and_run(mcp: Client, sandbox: SandboxServer) -> None:
    flows = await call(mcp, "list_flows", {})
    assert EMAIL_FLOW in {f["id"] for f in flows["flows"]}
    detail = await call(mcp, "get_flow", {"flow_id": EMAIL_FLOW})
    assert [i["id"] for i in detail["inputs"]] == ["first_name", "last_name", "domain"]
    assert (detail["cost_min"], detail["cost_max"]) == (1.0, 3.5)
    cost = await call(mcp, "get_flow", {"flow_id": EMAIL_FLOW, "runs": 10})
    assert (cost["min_credits"], cost["max_credits"], cost["runs"]) == (10.0, 35.0, 10)
    assert "10 run(s): 10..35 credits" in text_of(await mcp.call_tool("get_flow", {"flow_id": EMAIL_FLOW, "runs": 10}))

    bad = await mcp.call_tool("run_bulk_flow", {"flow_id": EMAIL_FLOW, "inputs": [{"first_name": "John"}]})
    assert bad.is_error and "validation_error" in text_of(bad) and "inputs[0].last_name" in text_of(bad)
    assert sandbox.state.counts.get("POST /v1/flows/{flow_id}/bulk-run", 0) == 0

    person = {"first_name": "John", "last_name": "Doe", "domain": "example.com"}
    one = await call(mcp, "run_bulk_flow", {"flow_id": EMAIL_FLOW, "inputs": [person]})
    assert one["status"] == "completed" and one["rows"][0]["data"]["email"] == "john.doe@example.com"
    assert one["estimated_credits"] == 3.5
    many = await call(
        mcp, "run_bulk_flow", {"flow_id": EMAIL_FLOW, "inputs": [person, {**person, "domain": "nobody.invalid"}]}
    )
    assert many["rows_total"] == 2 and many["rows_with_data"] == 1
    again = await call(mcp, "run_bulk_flow", {"flow_id": EMAIL_FLOW, "inputs": [person]})
    assert again["reused"] and sandbox.state.counts["POST /v1/flows/{flow_id}/bulk-run"] == 2  # one, many


@pytest.mark.parametrize(("answer", "sent"), [("accept", True), ("decline", False), ("refuse", False)])
async def test_exporter_asks_the_user_when_the_client_can(
    sandbox: SandboxServer, tmp_path: Path, answer: str, sent: bool
) -> None:
    asked: list[str] = []

    server = build_server(make_settings(sandbox, tmp_path, toolsets="all"))
    async with Client(server, elicitation_callback=confirming(answer, asked)) as mcp:
        table = (await call(mcp, "create_table", {"name": "To CRM", "columns": ["Email"]}))["identifier"]
        await call(mcp, "insert_rows", {"table_uuid": table, "rows": [{"Email": "a@x.io"}] * 3})
        added = await call(
            mcp,
            "add_table_exporter",
            {"table_uuid": table, "exporter_id": 41, "mapping": {"email": {"column": "Email"}}},
        )
        result = await mcp.call_tool("run_table_exporter", {"table_uuid": table, "exporter_id": added["exporter_id"]})
    assert asked and "send 3 row(s)" in asked[0] and "HubSpot" in asked[0]
    assert result.is_error is not sent, text_of(result)
    if not sent:
        err = error_body(result)
        assert err["code"] == "confirmation_required" and "The user" in err["message"]
        assert err["next_steps"] == [
            "Do not send these rows unless the user asks for it again; do not try to get around this."
        ]
    assert sandbox.state.counts["POST /v1/table/{table_uuid}/run-exporter/{processor_id}"] == int(sent)


async def test_an_export_whose_question_could_not_be_put_is_not_sent(sandbox: SandboxServer, tmp_path: Path) -> None:
    """Regression (issue 22, 12): reading the table failed while the question was prepared, then answered in the
    body; the export went out with no question asked. A confirmation that could not be asked refuses."""
    asked: list[str] = []
    settings = make_settings(sandbox, tmp_path, toolsets="all")
    async with Client(build_server(settings), elicitation_callback=confirming("accept", asked)) as mcp:
        table = (await call(mcp, "create_table", {"name": "To CRM", "columns": ["Email"]}))["identifier"]
        await call(mcp, "insert_rows", {"table_uuid": table, "rows": [{"Email": "a@x.io"}]})
        added = await call(
            mcp,
            "add_table_exporter",
            {"table_uuid": table, "exporter_id": 41, "mapping": {"email": {"column": "Email"}}},
        )
        attempts = 1 + settings.max_retries  # every try of the question's one read of the table's exporters
        sandbox.state.inject(Fault(route="GET /v1/table/{table_uuid}/exporters", kind="status", times=attempts))
        result = await mcp.call_tool("run_table_exporter", {"table_uuid": table, "exporter_id": added["exporter_id"]})
    err = error_body(result)
    assert err["code"] == "confirmation_required" and "could not be asked" in err["message"]
    assert "again in a few seconds" in err["next_steps"][0]
    assert asked == [] and sandbox.state.counts.get("POST /v1/table/{table_uuid}/run-exporter/{processor_id}", 0) == 0
