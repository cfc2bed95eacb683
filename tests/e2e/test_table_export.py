"""export_table_rows: a whole (or filtered) table into a file at the API's page size, resumable."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from mcp import Client

from databar_mcp.app.server import build_server
from databar_mcp.sandbox import Fault, SandboxServer
from databar_mcp.sandbox.config import SandboxConfig
from databar_mcp.sandbox.tables import SEED_TABLE_ID
from tests.conftest import SENTINEL_KEY, error_body, make_settings, structured, text_of

pytestmark = pytest.mark.anyio

TABLE = "5a6f0e1c-8d2b-4c3e-9f1a-2b7d6e4c8a90"
ROWS_GET = "GET /v1/table/{table_uuid}/rows"


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


async def test_the_whole_table_in_three_requests(mcp: Client, sandbox: SandboxServer) -> None:
    result = await mcp.call_tool("export_table_rows", {"table_uuid": TABLE})
    out = structured(result)
    assert not result.is_error, text_of(result)
    assert out["complete"] is True and out["rows_written"] == 2_345 and out["pages_read"] == 3
    rows = read_csv(Path(out["path"]))
    assert len(rows) == 2_345 and len({r["id"] for r in rows}) == 2_345
    assert list(rows[0]) == ["id", "first_name", "last_name", "company", "email"]
    assert sandbox.state.counts[ROWS_GET] == 3


async def test_a_filtered_export_as_jsonl(mcp: Client) -> None:
    out = structured(
        await mcp.call_tool(
            "export_table_rows",
            {"table_uuid": TABLE, "format": "jsonl", "filename": "no_email", "filter": {"email": {"empty": True}}},
        )
    )
    lines = [json.loads(line) for line in Path(out["path"]).read_text(encoding="utf-8").splitlines()]
    assert out["rows_written"] == len(lines) == 2_345 // 9
    assert all(not line["email"] for line in lines)


async def test_a_table_larger_than_the_deadline_is_written_in_resumable_parts(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    sandbox.state.inject(Fault(route=ROWS_GET, kind="slow", delay=0.6, times=1))
    settings = make_settings(sandbox, tmp_path, tool_deadline_s=2.5)  # one page fits before the deadline
    async with Client(build_server(settings)) as client:
        first = structured(await client.call_tool("export_table_rows", {"table_uuid": TABLE, "filename": "big"}))
        assert first["complete"] is False and first["rows_written"] == 1_000
        assert (
            first["next_call"] == f'export_table_rows(table_uuid="{TABLE}", format="csv", filename="big", start_page=2)'
        )
    # The next part, from a server with room for the rest (a busy machine may not fit two pages in 2.5 s).
    async with Client(build_server(make_settings(sandbox, tmp_path, tool_deadline_s=60))) as client:
        second = structured(
            await client.call_tool("export_table_rows", {"table_uuid": TABLE, "filename": "big", "start_page": 2})
        )
    assert second["complete"] is True and second["path"] == first["path"]
    rows = read_csv(Path(second["path"]))
    assert len(rows) == 2_345 and len({r["id"] for r in rows}) == 2_345  # one header, no row twice


async def test_resuming_needs_the_file_and_a_plain_name(mcp: Client, sandbox: SandboxServer) -> None:
    missing = error_body(await mcp.call_tool("export_table_rows", {"table_uuid": TABLE, "start_page": 2}))
    escape = error_body(await mcp.call_tool("export_table_rows", {"table_uuid": TABLE, "filename": "../x"}))
    assert missing["code"] == escape["code"] == "validation_error"
    assert sandbox.state.counts.get(ROWS_GET, 0) == 0


async def test_pages_keep_to_the_tables_stated_rate_limit_instead_of_being_refused(tmp_path: Path) -> None:
    """Regression (issue 28): export_table_rows read pages as fast as it could, so a table's rate limit refused
    one in every few (429, then a whole-second Retry-After). Now the limit a reply states is kept to: after the
    refusal that states it, no read is refused."""
    config = SandboxConfig(api_key=SENTINEL_KEY, seed_table_rows=10_000, table_rate_limit_per_second=4)
    with SandboxServer(config) as sandbox:
        async with Client(build_server(make_settings(sandbox, tmp_path))) as client:
            out = structured(await client.call_tool("export_table_rows", {"table_uuid": SEED_TABLE_ID}))
        assert out["complete"] is True and out["rows_written"] == 10_000 and out["pages_read"] == 10
        assert sandbox.state.counts[ROWS_GET] <= 10 + 1  # the ten pages, and at most the one refusal that said why
