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
    adding = await mcp.call_tool(
        "add_table_exporter", {"table_uuid": table, "exporter_id": hubspot, "mapping": {"email": {"column": "Email"}}}
    )
    added = structured(adding)
    assert f'run_table_exporter(table_uuid="{table}", table_exporter_id={added["table_exporter_id"]})' in text_of(
        adding
    )
    # Regression (issue 23, 7): exporter_id meant the catalog id here and the attached id in run_table_exporter.
    listed = {t.name: t for t in (await mcp.list_tools()).tools}
    assert "table_exporter_id" in listed["run_table_exporter"].input_schema["properties"]
    assert "exporter_id" not in listed["run_table_exporter"].input_schema["properties"]
    assert "exporter_id" in listed["add_table_exporter"].input_schema["properties"]
    run = "POST /v1/table/{table_uuid}/run-exporter/{processor_id}"
    refused = await mcp.call_tool(
        "run_table_exporter", {"table_uuid": table, "table_exporter_id": added["table_exporter_id"]}
    )
    assert sandbox.state.counts[run] == 0
    # Regression (issue 23, 7): a free export came back as spend_limit with next steps that contradicted it.
    err = error_body(refused)  # this client cannot ask the user
    assert err["code"] == "confirmation_required"
    assert "Sending 2 row(s)" in err["message"] and "cannot ask the user" in err["message"]
    call_again = (
        f'run_table_exporter(table_uuid="{table}", table_exporter_id={added["table_exporter_id"]}, confirm=true)'
    )
    assert err["next_steps"] == [
        "Ask the user whether to send these rows (the count and destination are above).",
        f"Only if they agree: call {call_again}.",
    ]
    sent = await call(
        mcp,
        "run_table_exporter",
        {"table_uuid": table, "table_exporter_id": added["table_exporter_id"], "confirm": True},
    )
    assert sent["done"] and (sent["found"], sent["errors"]) == (1, 1)
    again = await call(
        mcp,
        "run_table_exporter",
        {"table_uuid": table, "table_exporter_id": added["table_exporter_id"], "confirm": True},
    )
    assert again["reused"] and sandbox.state.counts[run] == 1


async def test_exporter_sends_only_the_selected_rows(mcp: Client, sandbox: SandboxServer) -> None:
    """Regression (issue 23, 7): run_table_exporter had no row selection; pushing the enriched rows to a CRM
    meant a new table and rows retyped. A filter (as list_table_rows takes it) or row ids select the rows; the
    confirmation states how many go, and only those are sent."""
    table = (await call(mcp, "create_table", {"name": "Leads", "columns": ["Name", "Email"]}))["identifier"]
    people = [("Ann", "ann@x.io"), ("Bob", ""), ("Cid", "cid@x.io"), ("Dee", "")]
    await call(mcp, "insert_rows", {"table_uuid": table, "rows": [{"Name": n, "Email": e} for n, e in people]})
    added = await call(
        mcp, "add_table_exporter", {"table_uuid": table, "exporter_id": 41, "mapping": {"email": {"column": "Email"}}}
    )
    base = {"table_uuid": table, "table_exporter_id": added["table_exporter_id"]}
    with_email = {"Email": {"empty": False}}
    asked = error_body(await mcp.call_tool("run_table_exporter", {**base, "filter": with_email}))
    assert asked["code"] == "confirmation_required"
    assert f'Sending 2 row(s) of table {table} where {{"Email":{{"empty":false}}}} to HubSpot' in asked["message"]
    again = f'run_table_exporter(table_uuid="{table}", table_exporter_id={base["table_exporter_id"]}, '
    assert f'{again}filter={{"Email":{{"empty":false}}}}, confirm=true)' in asked["next_steps"][1]

    sent = await mcp.call_tool(
        "run_table_exporter", {**base, "filter": with_email, "confirm": True, "wait_seconds": 20}
    )
    assert not sent.is_error, text_of(sent)
    assert "HubSpot: create or update contacts: 2/2 rows done" in text_of(sent)
    status = structured(sent)["status_column"]
    rows = (await call(mcp, "list_table_rows", {"table_uuid": table}))["rows"]
    assert {r["Name"]: bool(r.get(status)) for r in rows} == {"Ann": True, "Bob": False, "Cid": True, "Dee": False}

    bob = next(r["id"] for r in rows if r["Name"] == "Bob")
    one = error_body(await mcp.call_tool("run_table_exporter", {**base, "row_ids": [bob]}))
    assert "Sending 1 row(s)" in one["message"] and "(the 1 row ids given)" in one["message"]
    none = error_body(
        await mcp.call_tool("run_table_exporter", {**base, "filter": {"Email": {"equals": "nobody@x.io"}}})
    )
    assert none["code"] == "validation_error" and "No row of table" in none["message"]
    assert sandbox.state.counts["POST /v1/table/{table_uuid}/run-exporter/{processor_id}"] == 1


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


async def test_a_flow_export_joins_each_row_to_its_input(mcp: Client) -> None:
    """Regression (issue 23, 7): flow exports said "Inputs unknown: results only." while waterfall exports kept
    the inputs: a flow's rows are recorded as `inputs`, not `params`."""
    people = [
        {"first_name": "John", "last_name": "Doe", "domain": "example.com"},
        {"first_name": "Ann", "last_name": "Lee", "domain": "nobody.invalid"},
    ]
    task_id = (await call(mcp, "run_bulk_flow", {"flow_id": EMAIL_FLOW, "inputs": people}))["task_id"]
    exported = await mcp.call_tool("export_task_result", {"task_id": task_id})
    said = text_of(exported)
    assert "Each row is joined to its input." in said and "Inputs unknown" not in said
    lines = Path(structured(exported)["path"]).read_text().splitlines()
    assert lines[0].startswith("index,first_name,last_name,domain,found,")
    assert lines[1].startswith("0,John,Doe,example.com,True,") and lines[2].startswith("1,Ann,Lee,nobody.invalid,False")
    detailed = text_of(await mcp.call_tool("get_task", {"task_id": task_id, "response_format": "detailed"}))
    assert '#0 input {"first_name":"John"' in detailed


async def text(mcp: Client, tool: str, args: dict[str, Any]) -> str:
    result = await mcp.call_tool(tool, args)
    assert not result.is_error, (tool, text_of(result))
    return text_of(result)


async def test_clear_counts_first_then_keeps_columns_and_a_copy_keeps_the_rows(
    mcp: Client, sandbox: SandboxServer
) -> None:
    """Issue 27: clear_table is destructive, so it counts before it deletes (as dedupe_rows does)."""
    table = (await call(mcp, "create_table", {"name": "Leads", "columns": ["Email", "Company"]}))["identifier"]
    await call(mcp, "insert_rows", {"table_uuid": table, "rows": [{"Email": f"p{i}@x.io"} for i in range(4)]})
    copied = await mcp.call_tool("duplicate_table", {"table_uuid": table})
    copy = structured(copied)["table_uuid"]
    assert f"Copied table {table} to {copy} (Leads (copy)) in workbook wb_" in text_of(copied)

    counted = await text(mcp, "clear_table", {"table_uuid": table})
    assert counted.startswith("4 rows would be deleted (columns and enrichments stay); nothing was deleted.")
    assert f'clear_table(table_uuid="{table}", confirm=true)' in counted
    assert sandbox.state.counts["POST /v1/table/{table_uuid}/clear"] == 0
    cleared = await text(mcp, "clear_table", {"table_uuid": table, "confirm": True})
    assert cleared == f"Deleted 4 rows of table {table}; its columns and enrichments stay."
    assert [c["name"] for c in (await call(mcp, "get_table_columns", {"table_uuid": table}))["columns"]] == [
        "Email",
        "Company",
    ]
    assert (await call(mcp, "list_table_rows", {"table_uuid": copy}))["total_count"] == 4


async def test_workbooks_folders_and_the_trash(mcp: Client, sandbox: SandboxServer) -> None:
    """Issue 27: a table deleted by delete_table can be listed in the trash and restored with its rows."""
    table = (await call(mcp, "create_table", {"name": "Leads", "columns": ["Email"]}))["identifier"]
    other = (await call(mcp, "create_table", {"name": "Accounts", "columns": ["Domain"]}))["identifier"]
    await call(mcp, "insert_rows", {"table_uuid": table, "rows": [{"Email": "a@x.io"}, {"Email": "b@x.io"}]})
    books = await call(mcp, "list_workbooks", {})
    home = next(b["id"] for b in books["workbooks"] if b["tables"] == [{"table_uuid": table, "name": "Leads"}])
    moved = await text(mcp, "update_table", {"table_uuid": other, "workbook": home})
    assert moved == f"Table {other} is in workbook {home}."
    listing = await text(mcp, "list_workbooks", {})
    assert f"- {home}: Leads (2 tables: {table} (Leads), {other} (Accounts))" in listing
    renamed = await text(mcp, "rename_workbook", {"workbook_id": home, "name": "Pipeline"})
    assert renamed == f"Workbook {home} is now named 'Pipeline'."
    twin = await call(mcp, "duplicate_workbook", {"workbook_id": home})
    assert twin["workbook"]["name"] == "Pipeline (copy)" and len(twin["workbook"]["tables"]) == 2
    alone = await call(mcp, "update_table", {"table_uuid": other, "workbook": "new"})
    assert alone["workbook"] not in (None, home)

    folder = (await call(mcp, "create_folder", {"name": "Prospects"}))["id"]
    assert await text(mcp, "rename_folder", {"folder_id": folder, "name": "Old"}) == (
        f"Folder {folder} is now named 'Old'."
    )
    await call(mcp, "update_table", {"table_uuid": table, "folder_id": folder})
    gone = await text(mcp, "delete_folder", {"folder_id": folder})
    assert gone == f"Deleted folder {folder}; its tables are now in no folder."
    assert (await call(mcp, "list_tables", {}))["folders"] == []

    deleted = await text(mcp, "delete_table", {"table_uuid": table})
    assert deleted.endswith(f'with its rows; restore_from_trash(tables=["{table}"]) brings it back.')
    trash = await text(mcp, "list_trash", {})
    assert trash.splitlines()[0] == "1 item(s) in the trash:"
    assert f"- table {table}: Leads (deleted " in trash
    assert f'To restore, e.g.: restore_from_trash(tables=["{table}"])' in trash
    restored = await text(mcp, "restore_from_trash", {"tables": [table]})
    assert restored == f"Restored 1 table(s) ({table}) with their rows."
    assert (await call(mcp, "list_table_rows", {"table_uuid": table}))["total_count"] == 2
    missing = await mcp.call_tool("restore_from_trash", {"tables": [table]})
    assert missing.is_error and "not_found" in text_of(missing)
    nothing = await mcp.call_tool("restore_from_trash", {})
    assert nothing.is_error and "validation_error" in text_of(nothing)


STEPS = [
    {
        "id": "find",
        "uses": "waterfall:email_getter",
        "inputs": {"first_name": "{{input.first}}", "last_name": "{{input.last}}", "company": "{{input.domain}}"},
        "providers": [833],
    },
    {"id": "verify", "uses": "enrichment:10", "inputs": {"email": "{{find.email}}"}, "run_if": "find.email"},
]
INPUTS = [{"id": "first"}, {"id": "last"}, {"id": "domain"}]
OUTPUTS = {"email": "find.email", "status": "verify.status"}


async def test_build_a_flow_priced_before_it_is_saved_then_edit_and_restore(
    mcp: Client, sandbox: SandboxServer
) -> None:
    """Issue 27: a flow is built from steps, checked and priced before anything is saved, edited (a new
    version each time) and restored (another new version); the agent then runs it like any flow."""
    plan = {"name": "Email then verify", "inputs": INPUTS, "steps": STEPS, "outputs": OUTPUTS}
    dry = await text(mcp, "create_flow", plan)
    assert dry == (
        "Valid. One run (one input set) costs 1..1.5 credits. Nothing saved yet. "
        "To save: create_flow(the same arguments, confirm=true)"
    )
    assert sandbox.state.counts.get("POST /v1/flows", 0) == 0

    wrong = [{**STEPS[0]}, {**STEPS[1], "inputs": {"mail": "{{find.email}}"}}]
    refused = await mcp.call_tool("create_flow", {**plan, "steps": wrong, "confirm": True})
    assert refused.is_error and "validation_error" in text_of(refused)
    assert "steps[1]" in text_of(refused) and "'mail'" in text_of(refused)
    assert sandbox.state.counts.get("POST /v1/flows", 0) == 0

    made = await mcp.call_tool("create_flow", {**plan, "confirm": True})
    flow = structured(made)["flow_id"]
    assert text_of(made) == (
        f"Saved flow {flow} (Email then verify), version 1. One run (one input set) costs 1..1.5 credits.\n"
        f'Next: run_bulk_flow(flow_id="{flow}", inputs=[...])'
    )
    person = {"first": "John", "last": "Doe", "domain": "example.com"}
    ran = await call(mcp, "run_bulk_flow", {"flow_id": flow, "inputs": [person]})
    assert ran["rows"][0]["data"]["email"] == "john.doe@example.com"

    both = [{**STEPS[0], "providers": [833, 966]}, STEPS[1]]
    edit_dry = await text(mcp, "update_flow", {"flow_id": flow, "steps": both})
    assert edit_dry.startswith("Valid. One run (one input set) costs 1..3.5 credits (now 1..1.5).")
    assert sandbox.state.counts.get("PATCH /v1/flows/{flow_id}", 0) == 0
    edited = await call(mcp, "update_flow", {"flow_id": flow, "steps": both, "confirm": True})
    assert (edited["version"], edited["cost_max"]) == (2, 3.5)
    renamed = await call(mcp, "update_flow", {"flow_id": flow, "name": "Find and verify"})
    assert renamed["version"] == 3 and renamed["name"] == "Find and verify"
    assert (await call(mcp, "get_flow", {"flow_id": flow}))["cost_max"] == 3.5  # not the cached price

    versions = await text(mcp, "list_flow_versions", {"flow_id": flow})
    assert versions.splitlines()[0] == f"Flow {flow}: 3 version(s), newest first:"
    assert versions.splitlines()[1].startswith("- v3 ") and versions.splitlines()[1].endswith("name (Find and verify)")
    assert versions.splitlines()[-1] == f'To go back: restore_flow_version(flow_id="{flow}", version=2)'
    back = await mcp.call_tool("restore_flow_version", {"flow_id": flow, "version": 1})
    assert text_of(back).startswith(
        f"Restored version 1 of flow {flow} (Email then verify), version 4. One run (one input set) costs 1..1.5"
    )
    again = await text(mcp, "list_flow_versions", {"flow_id": flow, "limit": 1})
    assert again.splitlines()[1].endswith("(Email then verify), restored from v1")


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
        result = await mcp.call_tool(
            "run_table_exporter", {"table_uuid": table, "table_exporter_id": added["table_exporter_id"]}
        )
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
        result = await mcp.call_tool(
            "run_table_exporter", {"table_uuid": table, "table_exporter_id": added["table_exporter_id"]}
        )
    err = error_body(result)
    assert err["code"] == "confirmation_required" and "could not be asked" in err["message"]
    assert "again in a few seconds" in err["next_steps"][0]
    assert asked == [] and sandbox.state.counts.get("POST /v1/table/{table_uuid}/run-exporter/{processor_id}", 0) == 0
