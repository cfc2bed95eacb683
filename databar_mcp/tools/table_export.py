"""export_table_rows: a whole table (or a filtered part) into a CSV/JSONL file, 1,000 rows per API page.

Paging a large table through tool results costs the agent's context and hundreds of calls; this reads it
at the API's page size within the tool deadline and, if the table is larger, names the call that resumes.
"""

import functools
import time
from typing import Annotated, Literal

import anyio.to_thread
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from databar_mcp import config
from databar_mcp.api.models import TableRowsPage
from databar_mcp.config import Toolset
from databar_mcp.core.files.export_writing import ExportFormat, UnsafeName, append_table_rows, table_export_path
from databar_mcp.tools.kit.context import ToolContext, services
from databar_mcp.tools.kit.failures import bad_filename
from databar_mcp.tools.kit.params import (
    RowFilter,
    TableId,
)
from databar_mcp.tools.kit.registry import tool
from databar_mcp.tools.kit.results import ok_result
from databar_mcp.tools.kit.table_kit import filter_call_arg, filter_json

PAGE = config.TABLE_PAGE_MAX
PAGE_TIME_MARGIN_S = 2.0  # stop starting pages this close to the deadline

DESCRIPTION = """\
Write a table's rows (all, or matching filter) to a CSV/JSONL file in the server's exports folder; returns \
the path, not the rows. Free. Better than paging list_table_rows for many rows. Follow next_call (if any) \
to append the rest."""


class TableExport(BaseModel):
    table_uuid: str
    path: str
    format: str
    rows_written: int = Field(description="Rows appended by this call.")
    pages_read: int
    complete: bool = Field(description="False when more pages remain: call next_call to append them.")
    total_count: int | None = None
    bytes: int
    next_call: str | None = None
    message: str


@tool(
    Toolset.TABLES,
    name="export_table_rows",
    title="Export table rows to a file",
    description=DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def export_table_rows(
    table_uuid: TableId,
    ctx: ToolContext,
    format: Literal["csv", "jsonl"] = "csv",
    filename: Annotated[
        str | None,
        Field(max_length=100, description="Plain name; default table-<uuid>."),
    ] = None,
    filter: RowFilter = None,
    start_page: Annotated[int, Field(ge=1, le=1_000_000, description="Set by next_call.")] = 1,
) -> Annotated[CallToolResult, TableExport]:
    svc = services(ctx)
    fmt: ExportFormat = format
    deadline = time.monotonic() + svc.settings.tool_deadline_s - PAGE_TIME_MARGIN_S
    api_filter, filter_arg = filter_json(filter), filter_call_arg(filter)

    try:
        path = table_export_path(svc.settings.exports_dir, table_uuid, filename, fmt, resume=start_page > 1)
    except UnsafeName as exc:
        raise bad_filename(exc, "Pass a plain name such as 'leads', or omit filename to start anew.") from None
    try:
        columns = ["id", *(c.name for c in await svc.client.table_columns(table_uuid))]
    except BaseException:
        if start_page == 1:
            path.unlink(missing_ok=True)  # nothing was written: free the claimed name again
        raise
    page, written, pages, total, more = start_page, 0, 0, None, True
    size = path.stat().st_size if path.exists() else 0

    async def read(number: int, into: list[TableRowsPage]) -> None:
        into.append(await svc.client.list_table_rows(table_uuid, page=number, per_page=PAGE, filter_json=api_filter))

    # The next page is read while this one is written: the file never waits for the API, nor the API for the file.
    first: list[TableRowsPage] = []
    await read(page, first)
    got = first[0]
    while True:
        ahead: list[TableRowsPage] = []
        going_on = got.has_next_page and time.monotonic() < deadline
        async with anyio.create_task_group() as tg:
            if going_on:
                tg.start_soon(read, page + 1, ahead)
            size = await anyio.to_thread.run_sync(functools.partial(append_table_rows, path, fmt, columns, got.data))
        written += len(got.data)
        pages += 1
        total = got.total_count
        more = got.has_next_page
        page += 1
        if not going_on:
            break
        got = ahead[0]
    next_call = None
    if more:
        filtered = f", filter={filter_arg}" if filter_arg else ""
        next_call = (
            f'export_table_rows(table_uuid="{table_uuid}", format="{fmt}", filename="{path.stem}"'
            f"{filtered}, start_page={page})"
        )
    out = TableExport(
        table_uuid=table_uuid,
        path=str(path),
        format=fmt,
        rows_written=written,
        pages_read=pages,
        complete=not more,
        total_count=total,
        bytes=size,
        next_call=next_call,
        message=f"Wrote {written:,} rows ({pages} page(s)) to {path}"
        + ("." if not more else f"; more remain. Next: {next_call}"),
    )
    return ok_result(out, out.message)
