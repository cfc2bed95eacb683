"""Run tools on a file (issue 25): input_file in, an output file out, through a real MCP client and the sandbox.

The model reads the text: each test asserts on what it says (the mapping used, the bad rows by number, the
output path, the call that continues) and counts the bulk-run POSTs the sandbox saw.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from databar_mcp.app.server import build_server
from databar_mcp.sandbox import SandboxServer
from tests.conftest import confirming, error_body, make_settings, structured, text_of

pytestmark = pytest.mark.anyio

BULK_POSTS = "POST /v1/waterfalls/{identifier}/bulk-run"
PEOPLE = [
    ("John", "Doe", "example.com"),
    ("Ann", "Lee", "nowhere.invalid"),
    ("Mary", "Major", "example.com"),
    ("Bob", "Stone", "gone.invalid"),
]


def write_csv(path: Path, header: list[str], rows: list[tuple[str, ...]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        return list(csv.DictReader(f))


def file_args(path: Path, **more: Any) -> dict[str, Any]:
    return {"waterfall": "email_getter", "input_file": str(path), "enrichments": [833, 966], **more}


async def test_other_header_spellings_are_mapped_and_the_mapping_is_stated(
    mcp: Client, sandbox: SandboxServer, tmp_path: Path
) -> None:
    leads = write_csv(
        tmp_path / "leads.csv",
        ["First Name", "Surname", "Company Domain", "Notes"],
        [(*p, f"note {i}") for i, p in enumerate(PEOPLE)],
    )
    out = tmp_path / "out.csv"

    result = await mcp.call_tool("run_bulk_waterfall", file_args(leads, output_file=str(out)))

    text = text_of(result)
    assert not result.is_error, text
    assert text.startswith("File job fj-") and "completed" in text.splitlines()[0]
    assert "first_name ← 'First Name'" in text and "last_name ← 'Surname'" in text
    assert "company ← 'Company Domain'" in text
    assert f"Output: {out}" in text
    assert "john.doe@example.com" in text  # the sample
    rows = read_csv(out)
    assert len(rows) == 4 and rows[0]["Notes"] == "note 0" and rows[0]["result.email"] == "john.doe@example.com"
    assert rows[1]["result.email"] == ""
    assert sandbox.state.counts[BULK_POSTS] == 1
    view = structured(result)
    assert view["done"] is True and view["rows_total"] == 4 and view["rows_with_data"] == 2


async def test_bad_rows_are_named_by_row_number_and_nothing_is_sent(
    mcp: Client, sandbox: SandboxServer, tmp_path: Path
) -> None:
    rows = [*PEOPLE[:2], ("", "Nobody", "example.com"), *PEOPLE[2:], ("Zed", "Last", "")]
    leads = write_csv(tmp_path / "leads.csv", ["first_name", "last_name", "company"], rows)

    result = await mcp.call_tool("run_bulk_waterfall", file_args(leads))

    body = error_body(result)
    assert body["code"] == "validation_error"
    assert "2 of 6 rows of leads.csv cannot be sent" in body["message"]
    assert "row 4: no value for required first_name" in body["message"]
    assert "row 7: no value for required company" in body["message"]
    assert "no credits were spent" in body["message"]
    assert any("skip_bad_rows=true to send the 4 good rows" in step for step in body["next_steps"])
    assert sandbox.state.counts[BULK_POSTS] == 0


async def test_skip_bad_rows_sends_the_good_rows_and_leaves_bad_ones_empty(
    mcp: Client, sandbox: SandboxServer, tmp_path: Path
) -> None:
    rows = [PEOPLE[0], ("", "Nobody", "example.com"), PEOPLE[2]]
    leads = write_csv(tmp_path / "leads.csv", ["first_name", "last_name", "company"], rows)
    out = tmp_path / "out.csv"

    result = await mcp.call_tool("run_bulk_waterfall", file_args(leads, skip_bad_rows=True, output_file=str(out)))

    text = text_of(result)
    assert not result.is_error, text
    assert "1 bad rows skipped" in text
    written = read_csv(out)
    assert [r["result.email"] for r in written] == ["john.doe@example.com", "", "mary.major@example.com"]
    assert [task.total for task in sandbox.state.tasks.values()] == [2]  # the bad row was never sent
    assert sandbox.state.counts[BULK_POSTS] == 1


async def test_xlsx_in_gives_xlsx_out(mcp: Client, tmp_path: Path) -> None:
    from openpyxl import Workbook, load_workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["First name", "Last name", "Website"])
    for person in PEOPLE:
        sheet.append(list(person))
    book.save(tmp_path / "leads.xlsx")

    result = await mcp.call_tool("run_bulk_waterfall", file_args(tmp_path / "leads.xlsx"))

    text = text_of(result)
    assert not result.is_error, text
    output = Path(text.split("Output: ", 1)[1].split(" (", 1)[0])
    assert output.suffix == ".xlsx" and "(xlsx, 4 rows" in text
    cells = list(load_workbook(output, read_only=True).active.iter_rows(values_only=True))  # type: ignore[union-attr]
    assert cells[0][:3] == ("First name", "Last name", "Website") and "result.email" in cells[0]
    assert "john.doe@example.com" in cells[1] and len(cells) == 5


async def test_params_and_input_file_together_are_refused(mcp: Client, sandbox: SandboxServer, tmp_path: Path) -> None:
    leads = write_csv(tmp_path / "leads.csv", ["first_name", "last_name", "company"], PEOPLE)
    both = await mcp.call_tool("run_bulk_waterfall", file_args(leads, params=[{"first_name": "A"}]))
    neither = await mcp.call_tool("run_bulk_waterfall", {"waterfall": "email_getter"})

    assert "exactly one (both was given)" in error_body(both)["message"]
    assert "exactly one (neither was given)" in error_body(neither)["message"]
    assert sandbox.state.counts[BULK_POSTS] == 0


async def test_a_file_in_parts_resumes_without_sending_a_part_twice(sandbox: SandboxServer, tmp_path: Path) -> None:
    people = [(f"P{i}", f"L{i}", "example.com" if i % 2 else "nowhere.invalid") for i in range(10)]
    leads = write_csv(tmp_path / "leads.csv", ["first_name", "last_name", "company"], people)
    settings = make_settings(sandbox, tmp_path, file_part_rows=4, tool_deadline_s=5.0)
    sandbox.state.config.task_base_seconds = 30.0  # parts stay processing: the first call ends at its deadline

    async with Client(build_server(settings)) as first:
        result = await first.call_tool("run_bulk_waterfall", file_args(leads, wait_seconds=0.5))
    text = text_of(result)
    assert not result.is_error, text
    assert "processing" in text.splitlines()[0] and "3 of 3 part(s) sent" in text
    assert 'To continue, call exactly: run_bulk_waterfall(waterfall="email_getter"' in text
    assert sandbox.state.counts[BULK_POSTS] == 3

    sandbox.state.clock.advance(60)  # the parts finish while no call is waiting
    async with Client(build_server(settings)) as second:  # a new conversation, a new server process' state
        again = await second.call_tool("run_bulk_waterfall", file_args(leads))
    text = text_of(again)
    assert not again.is_error, text
    assert "completed" in text.splitlines()[0], text
    assert sandbox.state.counts[BULK_POSTS] == 3  # no part sent twice
    output = Path(text.split("Output: ", 1)[1].split(" (", 1)[0])
    assert len(read_csv(output)) == 10


async def test_a_flow_runs_on_a_file(mcp: Client, sandbox: SandboxServer, tmp_path: Path) -> None:
    companies = write_csv(tmp_path / "companies.csv", ["Domain", "Owner"], [("example.com", "a"), ("acme.com", "b")])

    result = await mcp.call_tool(
        "run_bulk_flow", {"flow_id": "8d4e2b71-0c3f-4a95-b7e8-5f6a1c2d3e40", "input_file": str(companies)}
    )

    text = text_of(result)
    assert not result.is_error, text
    assert "completed" in text.splitlines()[0] and "domain ← 'Domain'" in text
    assert sandbox.state.counts["POST /v1/flows/{flow_id}/bulk-run"] == 1


async def test_a_done_job_writes_its_results_again_to_another_output_without_sending(
    mcp: Client, sandbox: SandboxServer, tmp_path: Path
) -> None:
    leads = write_csv(tmp_path / "leads.csv", ["first_name", "last_name", "company"], PEOPLE)
    first = await mcp.call_tool("run_bulk_waterfall", file_args(leads, output_file=str(tmp_path / "a.csv")))
    second = await mcp.call_tool("run_bulk_waterfall", file_args(leads, output_file=str(tmp_path / "b.csv")))
    same = await mcp.call_tool("run_bulk_waterfall", file_args(leads, output_file=str(tmp_path / "b.csv")))

    assert f"Output: {tmp_path / 'a.csv'}" in text_of(first)
    assert f"Output: {tmp_path / 'b.csv'}" in text_of(second) and f"Output: {tmp_path / 'b.csv'}" in text_of(same)
    assert read_csv(tmp_path / "a.csv") == read_csv(tmp_path / "b.csv")
    assert sandbox.state.counts[BULK_POSTS] == 1


async def table_of(mcp: Client, *columns: str) -> str:
    created = await mcp.call_tool("create_table", {"name": "leads", "columns": list(columns)})
    return structured(created)["identifier"]


async def test_import_rows_fills_a_table_from_a_file_in_batches(
    mcp: Client, sandbox: SandboxServer, tmp_path: Path
) -> None:
    await mcp.call_tool("enable_toolsets", {"toolsets": ["tables"]})
    table = await table_of(mcp, "first_name", "last_name", "company")
    people = [(f"P{i}", f"L{i}", "example.com") for i in range(120)]
    leads = write_csv(
        tmp_path / "leads.csv", ["First Name", "Surname", "Website", "Notes"], [(*p, "x") for p in people]
    )

    result = await mcp.call_tool("import_rows", {"table_uuid": table, "input_file": str(leads)})

    text = text_of(result)
    assert not result.is_error, text
    assert "done — 120 of 120 rows of leads.csv sent in 3 of 3 batch(es)" in text and "120 created" in text
    assert "first_name ← 'First Name'" in text and "File columns not imported (no such table column): Notes" in text
    assert sandbox.state.counts["POST /v1/table/{table_uuid}/rows"] == 3
    listed = await mcp.call_tool("list_table_rows", {"table_uuid": table, "per_page": 1})
    assert structured(listed)["total_count"] == 120

    again = await mcp.call_tool("import_rows", {"table_uuid": table, "input_file": str(leads)})
    assert "done" in text_of(again).splitlines()[0] and "This call: nothing new" in text_of(again)
    assert sandbox.state.counts["POST /v1/table/{table_uuid}/rows"] == 3  # the same call sends nothing twice


async def test_insert_rows_takes_a_file_and_refuses_bad_rows_by_number(
    mcp: Client, sandbox: SandboxServer, tmp_path: Path
) -> None:
    await mcp.call_tool("enable_toolsets", {"toolsets": ["tables"]})
    table = await table_of(mcp, "first_name", "company")
    leads = write_csv(tmp_path / "leads.csv", ["first_name", "company"], [("A", "a.com"), ("B", "x" * 2000)])

    refused = await mcp.call_tool("insert_rows", {"table_uuid": table, "input_file": str(leads)})
    skipped = await mcp.call_tool("insert_rows", {"table_uuid": table, "input_file": str(leads), "skip_bad_rows": True})

    assert "row 3: company is 2,000 characters" in error_body(refused)["message"]
    out = structured(skipped)
    assert out["complete"] is True and out["counts"] == {"created": 1}
    assert sandbox.state.counts["POST /v1/table/{table_uuid}/rows"] == 1


async def test_upsert_rows_from_a_file_finds_rows_by_the_key_column(
    mcp: Client, sandbox: SandboxServer, tmp_path: Path
) -> None:
    await mcp.call_tool("enable_toolsets", {"toolsets": ["tables"]})
    table = await table_of(mcp, "email", "company")
    first = write_csv(tmp_path / "a.csv", ["E-mail", "Company"], [("a@x.com", "x.com"), ("b@y.com", "y.com")])
    second = write_csv(tmp_path / "b.csv", ["E-mail", "Company"], [("a@x.com", "new.com")])

    no_key = await mcp.call_tool("upsert_rows", {"table_uuid": table, "input_file": str(first)})
    made = await mcp.call_tool("upsert_rows", {"table_uuid": table, "input_file": str(first), "key_column": "email"})
    changed = await mcp.call_tool(
        "upsert_rows", {"table_uuid": table, "input_file": str(second), "key_column": "email"}
    )

    assert "needs key_column" in error_body(no_key)["message"]
    assert structured(made)["counts"] == {"created": 2}
    assert structured(changed)["counts"] == {"updated": 1}
    assert "email ← 'E-mail'" in text_of(changed)


async def test_the_whole_file_is_one_spend_asked_once(sandbox: SandboxServer, tmp_path: Path) -> None:
    people = [(f"P{i}", f"L{i}", "example.com") for i in range(10)]
    leads = write_csv(tmp_path / "leads.csv", ["first_name", "last_name", "company"], people)
    settings = make_settings(sandbox, tmp_path, file_part_rows=4, confirm_above=5.0)
    asked: list[str] = []

    async with Client(build_server(settings), elicitation_callback=confirming("accept", asked)) as client:
        first = await client.call_tool("run_bulk_waterfall", file_args(leads))
        again = await client.call_tool("run_bulk_waterfall", file_args(leads))

    assert not first.is_error, text_of(first)
    assert len(asked) == 1 and "30" in asked[0]  # 10 rows x (1 + 2) credits: the whole file, asked once
    assert "completed" in text_of(first).splitlines()[0] and "in 3 part(s)" in text_of(first)
    assert "completed" in text_of(again).splitlines()[0]
    assert sandbox.state.counts[BULK_POSTS] == 3


async def test_a_declined_file_run_sends_nothing(sandbox: SandboxServer, tmp_path: Path) -> None:
    leads = write_csv(tmp_path / "leads.csv", ["first_name", "last_name", "company"], PEOPLE)
    settings = make_settings(sandbox, tmp_path, confirm_above=1.0)
    asked: list[str] = []

    async with Client(build_server(settings), elicitation_callback=confirming("decline", asked)) as client:
        result = await client.call_tool("run_bulk_waterfall", file_args(leads))

    assert error_body(result)["code"] == "spend_limit" and len(asked) == 1
    assert sandbox.state.counts[BULK_POSTS] == 0


async def test_force_runs_a_done_file_again_and_asks_for_the_whole_file(sandbox: SandboxServer, tmp_path: Path) -> None:
    leads = write_csv(tmp_path / "leads.csv", ["first_name", "last_name", "company"], PEOPLE)
    settings = make_settings(sandbox, tmp_path, confirm_above=5.0)
    asked: list[str] = []

    async with Client(build_server(settings), elicitation_callback=confirming("accept", asked)) as client:
        await client.call_tool("run_bulk_waterfall", file_args(leads))
        again = await client.call_tool("run_bulk_waterfall", file_args(leads, force=True))

    assert "completed" in text_of(again).splitlines()[0], text_of(again)
    assert len(asked) == 2  # the forced run is priced whole (12 credits), so the user is asked again
    assert sandbox.state.counts[BULK_POSTS] == 2
