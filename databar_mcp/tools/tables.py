"""Tables toolset: read rows of a Databar table, a page at a time."""

from typing import Annotated, Any

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from databar_mcp import config
from databar_mcp.shaping import largest_fitting, render_value, result_size
from databar_mcp.tools.context import ToolContext, services
from databar_mcp.tools.guard import guarded
from databar_mcp.tools.registry import Toolbox
from databar_mcp.tools.results import ok_result
from databar_mcp.tools.task_view import UNTRUSTED_NOTE

TableId = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        description="The table's UUID (its identifier in Databar).",
    ),
]


class TableRows(BaseModel):
    table_uuid: str
    page: int
    per_page: int
    total_count: int | None = None
    has_next_page: bool
    rows: list[dict[str, Any]]
    rows_omitted: int = Field(default=0, description="Rows of this page left out to fit the result budget.")
    next_call: str | None = Field(default=None, description="The exact call for the next rows, if any.")


def _call(table_uuid: str, page: int, per_page: int) -> str:
    return f'list_table_rows(table_uuid="{table_uuid}", page={page}, per_page={per_page})'


def next_page_call(table_uuid: str, *, page: int, per_page: int, shown: int, has_next_page: bool) -> str | None:
    """The call that continues right after the last row shown, in pages the API can serve."""
    if shown >= per_page:
        return _call(table_uuid, page + 1, per_page) if has_next_page else None
    start = (page - 1) * per_page + shown  # 0-based index of the first row not shown
    size = max(1, shown)
    while start % size:  # a page size that makes `start` fall on a page boundary (1 always does)
        size -= 1
    return _call(table_uuid, start // size + 1, size)


def render(result: TableRows) -> str:
    head = f"Table {result.table_uuid}, page {result.page} ({result.per_page} per page)"
    if result.total_count is not None:
        head += f", {result.total_count} rows in all"
    lines = [head + f": {len(result.rows)} rows shown ({UNTRUSTED_NOTE})"]
    lines.extend(render_value(row) for row in result.rows)
    if result.rows_omitted:
        lines.append(f"{result.rows_omitted} rows of this page did not fit the result budget.")
    if result.next_call:
        lines.append(f"Next: {result.next_call}")
    return "\n".join(lines)


LIST_TABLE_ROWS_DESCRIPTION = """\
Read rows from a Databar table, one page at a time.

Free and read-only. Each row is an object keyed by column name, with the row's id. The answer gives \
total_count and has_next_page; when more rows exist, next_call is the exact call for the next ones \
(rows that do not fit the result budget are left for that call, never dropped)."""


def register(box: Toolbox) -> None:

    @box.tool(
        name="list_table_rows",
        toolset="tables",
        title="List table rows",
        description=LIST_TABLE_ROWS_DESCRIPTION,
        read_only=True,
        destructive=False,
        idempotent=True,
    )
    async def list_table_rows(
        table_uuid: TableId,
        ctx: ToolContext,
        page: Annotated[int, Field(ge=1, le=1_000_000, description="Page number, from 1.")] = 1,
        per_page: Annotated[int, Field(ge=1, le=config.TABLE_PAGE_MAX, description="Rows per page (1..1000).")] = 100,
    ) -> Annotated[CallToolResult, TableRows]:
        svc = services(ctx)

        async def work() -> CallToolResult:
            result = await svc.client.list_table_rows(table_uuid, page=page, per_page=per_page)
            rows = result.data

            def make(count: int) -> TableRows:
                return TableRows(
                    table_uuid=table_uuid,
                    page=page,
                    per_page=per_page,
                    total_count=result.total_count,
                    has_next_page=result.has_next_page,
                    rows=rows[:count],
                    rows_omitted=len(rows) - count,
                    next_call=next_page_call(
                        table_uuid,
                        page=page,
                        per_page=per_page,
                        shown=count if count < len(rows) else per_page,
                        has_next_page=result.has_next_page,
                    ),
                )

            count = largest_fitting(
                len(rows),
                lambda k: result_size(make(k).model_dump(mode="json"), render(make(k))),
                svc.settings.result_budget_chars,
            )
            shaped = make(count)
            return ok_result(shaped, render(shaped))

        return await guarded(work())
