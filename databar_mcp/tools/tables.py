"""Tables toolset: list, create and inspect Databar tables, read their rows (filtered, a page at a time) and
write rows in any number, chunked into the API's 50-row batches with every row accounted for."""

import json
import time
from collections.abc import Sequence
from typing import Annotated, Any, TypeVar

from mcp.types import CallToolResult
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from databar_mcp import config
from databar_mcp.api import errors as api
from databar_mcp.api.models import (
    DeleteRowsRequest,
    InsertOptions,
    InsertRowsRequest,
    NewRow,
    RowByKey,
    RowChange,
    RowDedupe,
    Table,
    TableColumn,
    UpdateRowsRequest,
    UpsertRowsRequest,
)
from databar_mcp.config import Toolset
from databar_mcp.core.batching import RowOutcome
from databar_mcp.core.shaping import clip, escape_text, largest_fitting, render_value, result_size
from databar_mcp.tools.kit.context import ToolContext, services
from databar_mcp.tools.kit.file_runs import exactly_one
from databar_mcp.tools.kit.file_tables import import_file
from databar_mcp.tools.kit.params import ColumnMap, ColumnName, InputFilePath, RowFilter, SkipBadRows, TableId, in_place
from databar_mcp.tools.kit.registry import tool
from databar_mcp.tools.kit.results import (
    ErrorBody,
    ErrorCode,
    FieldProblem,
    ToolFailure,
    fitted_result,
    ok_result,
)
from databar_mcp.tools.kit.row_writes import (
    FIELD_PROBLEMS_SHOWN,
    RESEND_SAFE,
    ColumnRef,
    RowWriteOut,
    check_columns,
    chunked_write,
    describe_error,
    local_outcomes,
)
from databar_mcp.tools.kit.table_kit import filter_call_arg, filter_json
from databar_mcp.tools.kit.table_shapes import FolderOut, folder_out
from databar_mcp.tools.kit.task_view import UNTRUSTED_NOTE

T = TypeVar("T")

Scalar = str | int | float | bool | None
RowId = str | int
COLUMNS_LISTED = 50  # column names in create_table's text (all are in its structured content)


# ---- inputs --------------------------------------------------------------------------------------------


class RowUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: RowId
    fields: Annotated[dict[ColumnName, Scalar], Field(min_length=1, description="Column → value.")]


class RowUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Annotated[
        dict[ColumnName, Scalar],
        Field(
            min_length=1,
            max_length=1,
            description='One column → value that finds the row, e.g. {"email": "jane@acme.com"}.',
        ),
    ]
    fields: Annotated[dict[ColumnName, Scalar], Field()] = Field(default_factory=lambda: dict[str, Scalar]())


# ---- outputs -------------------------------------------------------------------------------------------


class TableOut(BaseModel):
    identifier: str
    name: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    table_url: str | None = None


class TableList(BaseModel):
    tables: list[TableOut]
    total: int
    omitted: int = Field(default=0, description="Tables left out to fit the result budget.")
    folders: list[FolderOut] | None = Field(
        description="Folders (update_table moves a table into one); null: Databar did not list them."
    )


class CreatedTable(TableOut):
    columns: list[str]
    next_step: str


class ColumnOut(BaseModel):
    name: str
    type: str | None = None
    identifier: str | None = None
    internal_name: str | None = None


class TableColumns(BaseModel):
    table_uuid: str
    columns: list[ColumnOut]
    total: int
    omitted: int = Field(default=0, description="Columns left out to fit the result budget.")


class TableRows(BaseModel):
    table_uuid: str
    page: int
    per_page: int
    skip: int = Field(default=0, description="Rows of the page skipped before these (already read).")
    filter: dict[str, dict[str, Any]] | None = None
    total_count: int | None = None
    has_next_page: bool
    rows: list[dict[str, Any]]
    rows_omitted: int = Field(default=0, description="Rows of this page left out to fit the result budget.")
    next_call: str | None = Field(default=None, description="The exact call for the next rows, if any.")


# ---- list_table_rows paging ----------------------------------------------------------------------------


def _call(table_uuid: str, page: int, per_page: int, filter_arg: str | None = None, skip: int = 0) -> str:
    filtered = f", filter={filter_arg}" if filter_arg else ""
    skipped = f", skip={skip}" if skip else ""
    return f'list_table_rows(table_uuid="{table_uuid}"{filtered}, page={page}, per_page={per_page}{skipped})'


def next_page_call(
    table_uuid: str,
    *,
    page: int,
    per_page: int,
    skip: int,
    shown: int,
    page_rows: int,
    has_next_page: bool,
    filter_arg: str | None = None,
) -> str | None:
    """The call that continues right after the last row shown: the rest of this page, or the next page.

    Page size never changes, so a long read keeps fetching full API pages (a budget-cut page is continued
    with `skip`, not by shrinking the page).
    """
    if skip + shown < page_rows:
        return _call(table_uuid, page, per_page, filter_arg, skip + shown)
    return _call(table_uuid, page + 1, per_page, filter_arg) if has_next_page else None


def render(result: TableRows) -> str:
    head = f"Table {result.table_uuid}, page {result.page} ({result.per_page} per page)"
    if result.filter:
        head += f", filter {render_value(result.filter)}"
    if result.total_count is not None:
        head += f", {result.total_count} rows in all"
    lines = [head + f": {len(result.rows)} rows shown ({UNTRUSTED_NOTE})"]
    lines.extend(render_value(row) for row in result.rows)
    if result.rows_omitted:
        lines.append(f"{result.rows_omitted} rows of this page did not fit the result budget.")
    if result.next_call:
        lines.append(f"Next: {result.next_call}")
    return "\n".join(lines)


# ---- errors --------------------------------------------------------------------------------------------


LIST_TABLE_ROWS_DESCRIPTION = """\
Read a table's rows a page at a time, optionally filtered. Free. Rows are keyed by column name, with their \
id; follow next_call for more."""

LIST_TABLES_DESCRIPTION = """\
List the workspace's tables (identifier: the table_uuid the table tools take) and folders. Free. Next: \
get_table_columns, list_table_rows."""

CREATE_TABLE_DESCRIPTION = """\
Create an empty table with these columns (each call makes a new one). Free. Next: insert_rows."""

GET_TABLE_COLUMNS_DESCRIPTION = "List a table's columns (the names rows are keyed by) and their types. Free."

# update/upsert/delete_rows write the same way: the model reads every description at once, so say it once.
SAME_AS_INSERT = "Batched and reported like insert_rows."

INSERT_DESCRIPTION = """\
Add rows to a table, column name → value. Free; a repeat adds them again (dedupe_keys skips matches). Sent \
in batches of 50, each row reported by index; a failed batch's error says which rows were written, NOT \
written (send again) or uncertain. Unknown columns are refused before anything is sent."""

UPDATE_DESCRIPTION = "Change cells of rows found by id. Free. " + SAME_AS_INSERT

UPSERT_DESCRIPTION = "Update the row each key finds, or create it. Free; overwrites the given cells. " + SAME_AS_INSERT

DELETE_DESCRIPTION = "Delete rows by id (irreversible). Free. " + SAME_AS_INSERT


@tool(
    Toolset.TABLES,
    name="list_table_rows",
    title="List table rows",
    description=LIST_TABLE_ROWS_DESCRIPTION,
    read_only=True,
    destructive=False,
    idempotent=True,
)
async def list_table_rows(
    table_uuid: TableId,
    ctx: ToolContext,
    page: Annotated[int, Field(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Field(ge=1, le=config.TABLE_PAGE_MAX)] = 100,
    filter: RowFilter = None,
    skip: Annotated[
        int,
        Field(ge=0, lt=config.TABLE_PAGE_MAX, description="Set by next_call."),
    ] = 0,
) -> Annotated[CallToolResult, TableRows]:
    svc = services(ctx)
    filter_arg = filter_call_arg(filter)
    shown_filter = json.loads(filter_arg) if filter_arg else None

    result = await svc.client.list_table_rows(table_uuid, page=page, per_page=per_page, filter_json=filter_json(filter))
    rows = result.data[skip:]

    def make(count: int) -> TableRows:
        return TableRows(
            table_uuid=table_uuid,
            page=page,
            per_page=per_page,
            filter=shown_filter,
            total_count=result.total_count,
            has_next_page=result.has_next_page,
            skip=skip,
            rows=rows[:count],
            rows_omitted=len(rows) - count,
            next_call=next_page_call(
                table_uuid,
                page=page,
                per_page=per_page,
                skip=skip,
                shown=count,
                page_rows=len(result.data),
                has_next_page=result.has_next_page,
                filter_arg=filter_arg,
            ),
        )

    count = largest_fitting(
        len(rows),
        lambda k: result_size(make(k).model_dump(mode="json"), render(make(k))),
        svc.settings.result_budget_chars,
    )
    # A row larger than the whole budget is still shown (the server cuts it to fit, says so and keeps it
    # whole as a resource), so next_call moves past it instead of asking for it again forever.
    shaped = make(max(count, min(1, len(rows))))
    return ok_result(shaped, render(shaped))


@tool(
    Toolset.TABLES,
    name="list_tables",
    title="List tables",
    description=LIST_TABLES_DESCRIPTION,
    read_only=True,
    destructive=False,
    idempotent=True,
)
async def list_tables(ctx: ToolContext) -> Annotated[CallToolResult, TableList]:
    svc = services(ctx)
    found = [table_out(t) for t in await svc.client.list_tables()]
    folders: list[FolderOut] | None
    try:
        folders = [folder_out(f) for f in await svc.client.list_folders()]
    except api.DatabarError:  # the tables are the answer; folders that fail to list leave them readable
        folders = None

    def make(k: int) -> TableList:
        return TableList(tables=found[:k], total=len(found), omitted=len(found) - k, folders=folders)

    def text(out: TableList) -> str:
        lines = [f"{out.total} table(s)" + (f", {out.omitted} omitted" if out.omitted else "") + ":"]
        lines.extend(f"- {t.identifier} {t.name or '(unnamed)'} (updated {t.updated_at})" for t in out.tables)
        if out.folders is None:
            lines.append("Folders: Databar did not list them.")
        else:
            lines.append(f"{len(out.folders)} folder(s)" + (":" if out.folders else "."))
            lines.extend(f"- {f.id}: {f.name} ({f.table_count} tables)" for f in out.folders)
        return escape_text("\n".join(lines))

    return fitted_result(len(found), make, text, svc.settings.result_budget_chars)


@tool(
    Toolset.TABLES,
    name="create_table",
    title="Create a table",
    description=CREATE_TABLE_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def create_table(
    name: Annotated[str, Field(min_length=1, max_length=256)],
    ctx: ToolContext,
    columns: Annotated[list[ColumnName] | None, Field(max_length=500, description="Unique column names.")] = None,
) -> Annotated[CallToolResult, CreatedTable]:
    svc = services(ctx)
    names = list(columns or [])
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        raise ToolFailure(
            ErrorBody(
                code=ErrorCode.VALIDATION_ERROR,
                message="Column names must be unique; nothing was created.",
                fields=[
                    FieldProblem(field=f"columns[{names.index(c)}]", problem=f"repeated: {clip(c, 100)}")
                    for c in dupes[:FIELD_PROBLEMS_SHOWN]
                ],
                next_steps=["Remove the repeated names and call again."],
            )
        )
    table = await svc.client.create_table(name, names)
    out = CreatedTable(
        **table_out(table).model_dump(),
        columns=names,
        next_step=f'insert_rows(table_uuid="{table.identifier}", rows=[...])',
    )
    listed = ", ".join(clip(c, 100) for c in names[:COLUMNS_LISTED]) or "none"
    more = (
        f" and {len(names) - COLUMNS_LISTED} more (get_table_columns lists them)" if len(names) > COLUMNS_LISTED else ""
    )
    title = clip(out.name or "", 200)
    text = f"Created table {out.identifier} ({title}) with {len(names)} columns: {listed}{more}."
    return ok_result(out, escape_text(f"{text}\nNext: {out.next_step}"))


@tool(
    Toolset.TABLES,
    name="get_table_columns",
    title="Get table columns",
    description=GET_TABLE_COLUMNS_DESCRIPTION,
    read_only=True,
    destructive=False,
    idempotent=True,
)
async def get_table_columns(table_uuid: TableId, ctx: ToolContext) -> Annotated[CallToolResult, TableColumns]:
    svc = services(ctx)
    try:
        found = [column_out(c) for c in await svc.client.table_columns(table_uuid)]
    except api.NotFoundError as exc:
        raise ToolFailure(describe_error(exc)) from None

    def make(k: int) -> TableColumns:
        return TableColumns(table_uuid=table_uuid, columns=found[:k], total=len(found), omitted=len(found) - k)

    def text(out: TableColumns) -> str:
        listed = ", ".join(f"{c.name} ({c.type or '?'})" for c in out.columns)
        more = f" ({out.omitted} more omitted)" if out.omitted else ""
        return escape_text(f"Table {table_uuid}: {out.total} column(s): {listed}{more}")

    return fitted_result(len(found), make, text, svc.settings.result_budget_chars)


@tool(
    Toolset.TABLES,
    name="insert_rows",
    title="Insert table rows",
    description=INSERT_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def insert_rows(
    table_uuid: TableId,
    ctx: ToolContext,
    rows: Annotated[
        SkipJsonSchema[None] | list[dict[ColumnName, Scalar]], Field(min_length=1, max_length=config.MAX_BULK_ROWS)
    ] = None,
    input_file: Annotated[
        SkipJsonSchema[None] | Annotated[str, Field(min_length=1)], Field(description="A file of rows, instead.")
    ] = None,
    columns: ColumnMap = None,
    skip_bad_rows: SkipBadRows = False,
    allow_new_columns: Annotated[bool, Field(description="Add unknown columns instead of refusing.")] = False,
    dedupe_keys: Annotated[
        list[ColumnName] | None,
        Field(
            min_length=1,
            max_length=10,
            description="Skip rows equal to an existing row in these columns.",
        ),
    ] = None,
) -> Annotated[CallToolResult, RowWriteOut]:
    svc = services(ctx)
    started = time.monotonic()
    exactly_one("insert_rows", params_given=rows is not None, file_given=input_file is not None, rows_name="rows")
    if input_file is not None:  # the file form: import_rows' body (issue 25)
        return await import_file(
            ctx,
            tool_name="insert_rows",
            table_uuid=table_uuid,
            input_file=input_file,
            columns=columns,
            skip_bad_rows=skip_bad_rows,
            mode="insert",
            allow_new_columns=allow_new_columns,
            dedupe_keys=dedupe_keys,
            shape=RowWriteOut,
        )
    assert rows is not None
    if not allow_new_columns:
        refs = [ColumnRef(i, c, f"rows[{i}].{c}") for i, row in enumerate(rows) for c in row]
        refs += [ColumnRef(0, k, f"dedupe_keys[{j}]") for j, k in enumerate(dedupe_keys or [])]
        await check_columns(svc, table_uuid, refs, insert=True)
    dedupe = RowDedupe(keys=list(dedupe_keys)) if dedupe_keys else None
    options = InsertOptions(allow_new_columns=allow_new_columns, dedupe=dedupe)

    async def send(batch: Sequence[dict[str, Scalar]]) -> list[RowOutcome]:
        body = InsertRowsRequest(rows=[NewRow(fields=row) for row in batch], options=options)
        return local_outcomes(await svc.client.insert_rows(table_uuid, body), None, "created")

    resend = "the dedupe_keys of this call skip rows already written" if dedupe_keys else None
    return await chunked_write(svc, table_uuid, "insert", "rows", rows, send, started=started, resend_safe=resend)


@tool(
    Toolset.TABLES,
    name="update_rows",
    title="Update table rows",
    description=UPDATE_DESCRIPTION,
    read_only=False,
    destructive=True,
    idempotent=True,
)
async def update_rows(
    table_uuid: TableId,
    rows: Annotated[
        list[Annotated[RowUpdate, in_place(RowUpdate)]],
        Field(min_length=1, max_length=config.MAX_BULK_ROWS),
    ],
    ctx: ToolContext,
    overwrite: Annotated[bool, Field(description="false: only fill empty cells.")] = True,
) -> Annotated[CallToolResult, RowWriteOut]:
    svc = services(ctx)
    started = time.monotonic()

    refs = [ColumnRef(i, c, f"rows[{i}].fields.{c}") for i, row in enumerate(rows) for c in row.fields]
    await check_columns(svc, table_uuid, refs, insert=False)

    async def send(batch: Sequence[RowUpdate]) -> list[RowOutcome]:
        body = UpdateRowsRequest(rows=[RowChange(id=r.id, fields=r.fields) for r in batch], overwrite=overwrite)
        answer = await svc.client.update_rows(table_uuid, body)
        return local_outcomes(answer, [r.id for r in batch], "updated")

    return await chunked_write(
        svc, table_uuid, "update", "rows", rows, send, started=started, resend_safe=RESEND_SAFE["update"]
    )


@tool(
    Toolset.TABLES,
    name="upsert_rows",
    title="Upsert table rows",
    description=UPSERT_DESCRIPTION,
    read_only=False,
    destructive=True,
    idempotent=True,
)
async def upsert_rows(
    table_uuid: TableId,
    ctx: ToolContext,
    rows: Annotated[
        SkipJsonSchema[None] | list[Annotated[RowUpsert, in_place(RowUpsert)]],
        Field(min_length=1, max_length=config.MAX_BULK_ROWS),
    ] = None,
    input_file: InputFilePath = None,
    key_column: Annotated[
        SkipJsonSchema[None] | ColumnName, Field(description="With input_file: the column that finds each row.")
    ] = None,
    columns: ColumnMap = None,
    skip_bad_rows: SkipBadRows = False,
) -> Annotated[CallToolResult, RowWriteOut]:
    svc = services(ctx)
    started = time.monotonic()
    exactly_one("upsert_rows", params_given=rows is not None, file_given=input_file is not None, rows_name="rows")
    if input_file is not None:  # the file form: import_rows' body (issue 25)
        return await import_file(
            ctx,
            tool_name="upsert_rows",
            table_uuid=table_uuid,
            input_file=input_file,
            columns=columns,
            skip_bad_rows=skip_bad_rows,
            mode="upsert",
            key_column=key_column,
            shape=RowWriteOut,
        )
    assert rows is not None

    refs = [ColumnRef(i, c, f"rows[{i}].key.{c}") for i, row in enumerate(rows) for c in row.key]
    refs += [ColumnRef(i, c, f"rows[{i}].fields.{c}") for i, row in enumerate(rows) for c in row.fields]
    await check_columns(svc, table_uuid, refs, insert=False)

    async def send(batch: Sequence[RowUpsert]) -> list[RowOutcome]:
        body = UpsertRowsRequest(rows=[RowByKey(key=r.key, fields=r.fields) for r in batch])
        return local_outcomes(await svc.client.upsert_rows(table_uuid, body), None, "upserted")

    return await chunked_write(
        svc, table_uuid, "upsert", "rows", rows, send, started=started, resend_safe=RESEND_SAFE["upsert"]
    )


@tool(
    Toolset.TABLES,
    name="delete_rows",
    title="Delete table rows",
    description=DELETE_DESCRIPTION,
    read_only=False,
    destructive=True,
    idempotent=True,
)
async def delete_rows(
    table_uuid: TableId,
    row_ids: Annotated[
        list[RowId],
        Field(min_length=1, max_length=config.MAX_BULK_ROWS),
    ],
    ctx: ToolContext,
) -> Annotated[CallToolResult, RowWriteOut]:
    svc = services(ctx)
    started = time.monotonic()

    async def send(batch: Sequence[str | int]) -> list[RowOutcome]:
        answer = await svc.client.delete_rows(table_uuid, DeleteRowsRequest(row_ids=list(batch)))
        if not answer.results and answer.deleted == len(batch):  # a bare count that covers every id
            return [RowOutcome(i, True, "deleted", row_id) for i, row_id in enumerate(batch)]
        return local_outcomes(answer, batch, "deleted")

    return await chunked_write(
        svc,
        table_uuid,
        "delete",
        "row_ids",
        row_ids,
        send,
        started=started,
        resend_safe=RESEND_SAFE["delete"],
    )


def table_out(table: Table) -> TableOut:
    return TableOut(
        identifier=table.identifier,
        name=table.name,
        created_at=table.created_at,
        updated_at=table.updated_at,
        table_url=table.table_url,
    )


def column_out(column: TableColumn) -> ColumnOut:
    return ColumnOut(
        name=column.name,
        type=column.type_of_value,
        identifier=column.identifier,
        internal_name=column.internal_name,
    )
