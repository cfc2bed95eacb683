"""Table admin toolset: columns (create, rename, delete), tables (rename, move into a folder or a workbook,
copy, clear, delete to the trash), duplicate rows (counted before anything is deleted), Databar's own file
export, and folders. Workbooks, folder edits and the trash are in workbooks.py."""

import time
from collections.abc import Awaitable
from typing import Annotated, Literal

import anyio
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from databar_mcp import config
from databar_mcp.api.errors import DatabarError, NotFoundError
from databar_mcp.api.models import CreatedColumn, TableColumn
from databar_mcp.config import Toolset
from databar_mcp.tools.kit.context import Services, ToolContext, services
from databar_mcp.tools.kit.failures import from_api_error
from databar_mcp.tools.kit.params import (
    WAIT_DEFAULT,
    ColumnName,
    TableId,
    WaitSeconds,
    wait_within,
)
from databar_mcp.tools.kit.registry import tool
from databar_mcp.tools.kit.results import ErrorBody, ErrorCode, FieldProblem, ToolFailure, ok_result
from databar_mcp.tools.kit.table_kit import ColumnRef
from databar_mcp.tools.kit.table_shapes import FolderOut, folder_out

ColumnType = Literal["text", "number", "boolean", "date", "datetime", "email", "url", "phone", "json"]
Name = Annotated[str, Field(min_length=1, max_length=256)]
# 0, not null, takes a table out of every folder: omitting folder_id (null) leaves it where it is.
FolderTarget = Annotated[int, Field(ge=0, description="Folder id from list_tables; 0: out of every folder.")]
WorkbookTarget = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_-]+$",
        description='Workbook id from list_workbooks; "new": a workbook of its own.',
    ),
]
EXPORT_POLL_S = 0.5


class ColumnChanged(BaseModel):
    table_uuid: str
    identifier: str
    name: str
    type: str | None = None


class TableUpdated(BaseModel):
    table_uuid: str
    name: str | None = Field(default=None, description="The table's name (after a rename).")
    folder_id: int | None = Field(default=None, description="The folder it was moved to; 0: out of every folder.")
    workbook: str | None = Field(default=None, description="The workbook it was moved to.")
    message: str


class CopiedTable(BaseModel):
    table_uuid: str = Field(description="The copy's id.")
    name: str | None = None
    workbook: str | None = None
    source_uuid: str
    message: str


class ClearOut(BaseModel):
    table_uuid: str
    rows: int | None = Field(default=None, description="Rows that would go (or went).")
    cleared: bool
    message: str
    next_call: str | None = None


class Deleted(BaseModel):
    table_uuid: str
    deleted: str
    message: str


class DedupeOut(BaseModel):
    table_uuid: str
    columns: list[str] = Field(description="Rows with equal values in all of these are duplicates.")
    total_rows: int
    duplicates: int = Field(description="Rows that would go (or went): every copy but the oldest.")
    deleted: bool
    message: str
    next_call: str | None = None


class ExportOut(BaseModel):
    table_uuid: str
    status: str
    file: str | None = Field(default=None, description="Download URL of the exported file, once completed.")
    file_id: int | str | None = None
    message: str
    next_call: str | None = None


def column_changed(table_uuid: str, made: CreatedColumn) -> ColumnChanged:
    """A column as the API answered its creation or rename."""
    return ColumnChanged(table_uuid=table_uuid, identifier=made.identifier, name=made.name, type=made.type_of_value)


async def column_of(svc: Services, table_uuid: str, ref: str) -> TableColumn:
    """The column named `ref` (or with that uuid), or not_found listing the table's columns."""
    columns = await svc.client.table_columns(table_uuid)
    found = next((c for c in columns if ref in (c.name, c.identifier)), None)
    if found is None or found.identifier is None:
        names = ", ".join(c.name for c in columns[:50])
        raise ToolFailure(
            ErrorBody(
                code=ErrorCode.NOT_FOUND,
                message=f"Table {table_uuid} has no column {ref!r}.",
                details={"columns": names},
                next_steps=["Use one of the table's columns (get_table_columns lists them)."],
            )
        )
    return found


def _key(row: dict[str, object], columns: list[str]) -> tuple[str, ...] | None:
    values = [row.get(c) for c in columns]
    if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
        return None  # a row with nothing in the key columns is no one's duplicate
    return tuple("" if v is None else str(v).strip().lower() for v in values)


async def count_duplicates(svc: Services, table_uuid: str, columns: list[str]) -> tuple[int, int]:
    """(rows, duplicates) by reading the table a page at a time; the rows stay in this server."""
    seen: set[tuple[str, ...]] = set()
    total = duplicates = 0
    page = 1
    while True:
        got = await svc.client.list_table_rows(table_uuid, page=page, per_page=config.TABLE_PAGE_MAX)
        for row in got.data:
            total += 1
            key = _key(row, columns)
            if key is None:
                continue
            if key in seen:
                duplicates += 1
            seen.add(key)
        if not got.has_next_page or not got.data:
            return total, duplicates
        page += 1


CREATE_COLUMN_DESCRIPTION = """\
Add an empty column to a table. Free. Next: update_rows / upsert_rows, or map it in add_table_enrichment."""

RENAME_COLUMN_DESCRIPTION = "Rename a table column. Free; values are kept."

DELETE_COLUMN_DESCRIPTION = """\
Delete a column and its values (not undoable here; not for columns an enrichment fills). Free."""

UPDATE_TABLE_DESCRIPTION = "Rename a table and/or move it into a folder or workbook. Free."

DUPLICATE_TABLE_DESCRIPTION = "Copy a table (rows, columns, enrichments) into a new workbook. Free."

CLEAR_TABLE_DESCRIPTION = """\
Delete every row of a table; columns and attached enrichments stay (not undoable). Free. Without \
confirm=true it only counts the rows."""

DELETE_TABLE_DESCRIPTION = "Delete a table (to the trash, with its rows, until restore_from_trash). Free."

DEDUPE_DESCRIPTION = """\
Remove duplicate rows (equal in the key columns, ignoring case and spaces), keeping each group's oldest. \
Free. Without confirm=true it only counts them."""

EXPORT_TABLE_DESCRIPTION = """\
Export a whole table as CSV through Databar and return its download URL. Free. While processing, call again \
(it waits on the same export). For a local file use export_table_rows."""

CREATE_FOLDER_DESCRIPTION = "Create a folder for tables. Free. Next: update_table(folder_id=...)."


@tool(
    Toolset.TABLE_ADMIN,
    name="create_column",
    title="Add a column",
    description=CREATE_COLUMN_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def create_column(
    table_uuid: TableId, name: Name, ctx: ToolContext, type: ColumnType = "text"
) -> Annotated[CallToolResult, ColumnChanged]:
    svc = services(ctx)
    made = await svc.client.create_column(table_uuid, name, type)
    out = column_changed(table_uuid, made)
    return ok_result(out, f"Added column {out.name!r} ({out.type}, id {out.identifier}) to {table_uuid}.")


@tool(
    Toolset.TABLE_ADMIN,
    name="rename_column",
    title="Rename a column",
    description=RENAME_COLUMN_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=True,
)
async def rename_column(
    table_uuid: TableId, column: ColumnRef, new_name: Name, ctx: ToolContext
) -> Annotated[CallToolResult, ColumnChanged]:
    svc = services(ctx)
    found = await column_of(svc, table_uuid, column)
    assert found.identifier is not None
    made = await svc.client.rename_column(table_uuid, found.identifier, new_name)
    out = column_changed(table_uuid, made)
    return ok_result(out, f"Renamed column {found.name!r} to {out.name!r} on {table_uuid}.")


@tool(
    Toolset.TABLE_ADMIN,
    name="delete_column",
    title="Delete a column",
    description=DELETE_COLUMN_DESCRIPTION,
    read_only=False,
    destructive=True,
    idempotent=True,
)
async def delete_column(table_uuid: TableId, column: ColumnRef, ctx: ToolContext) -> Annotated[CallToolResult, Deleted]:
    svc = services(ctx)
    found = await column_of(svc, table_uuid, column)
    assert found.identifier is not None
    await svc.client.delete_column(table_uuid, found.identifier)
    out = Deleted(table_uuid=table_uuid, deleted=found.name, message=f"Deleted column {found.name!r}.")
    return ok_result(out, out.message)


@tool(
    Toolset.TABLE_ADMIN,
    name="update_table",
    title="Rename or move a table",
    description=UPDATE_TABLE_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=True,
)
async def update_table(
    table_uuid: TableId,
    ctx: ToolContext,
    name: Name | None = None,
    folder_id: FolderTarget | None = None,
    workbook: WorkbookTarget | None = None,
) -> Annotated[CallToolResult, TableUpdated]:
    svc = services(ctx)
    if name is None and folder_id is None and workbook is None:
        raise ToolFailure(
            ErrorBody(
                code=ErrorCode.VALIDATION_ERROR,
                message="Nothing to change: pass name, folder_id and/or workbook; nothing was sent.",
                fields=[FieldProblem(field="name", problem="give name, folder_id or workbook")],
                next_steps=["Pass name to rename the table, folder_id or workbook to move it."],
            )
        )
    done: list[str] = []
    new_name: str | None = None
    if name is not None:
        new_name = (await svc.client.rename_table(table_uuid, name)).name
        done.append(f"is now named {new_name!r}")
    if folder_id is not None:
        await _then(done, table_uuid, svc.client.move_table_to_folder(table_uuid, folder_id or None))
        done.append(f"is in folder {folder_id}" if folder_id else "is in no folder")
    moved_to: str | None = None
    if workbook is not None:
        await _then(
            done, table_uuid, svc.client.move_table_to_workbook(table_uuid, None if workbook == "new" else workbook)
        )
        moved_to = await _workbook_of(svc, table_uuid)
        done.append(f"is in workbook {moved_to}" if moved_to else "was moved")
    out = TableUpdated(
        table_uuid=table_uuid,
        name=new_name,
        folder_id=folder_id,
        workbook=moved_to,
        message=f"Table {table_uuid} {' and '.join(done)}.",
    )
    return ok_result(out, out.message)


async def _then(done: list[str], table_uuid: str, step: Awaitable[None]) -> None:
    """Run one more change; when it fails after others stood, say which stand (or the agent redoes them)."""
    try:
        await step
    except DatabarError as exc:
        if not done:
            raise
        failed = from_api_error(exc)
        message = f"Table {table_uuid} {' and '.join(done)}, but the move failed: {failed.message}"
        raise ToolFailure(failed.model_copy(update={"message": message})) from None


async def _workbook_of(svc: Services, table_uuid: str) -> str | None:
    """The workbook a table is in now (Databar's move answers no shape we can rely on)."""
    try:
        return next((t.workbook for t in await svc.client.list_tables() if t.identifier == table_uuid), None)
    except DatabarError:
        return None


@tool(
    Toolset.TABLE_ADMIN,
    name="duplicate_table",
    title="Copy a table",
    description=DUPLICATE_TABLE_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def duplicate_table(table_uuid: TableId, ctx: ToolContext) -> Annotated[CallToolResult, CopiedTable]:
    svc = services(ctx)
    copy = await svc.client.duplicate_table(table_uuid)
    where = f" in workbook {copy.workbook}" if copy.workbook else ""
    out = CopiedTable(
        table_uuid=copy.identifier,
        name=copy.name,
        workbook=copy.workbook,
        source_uuid=table_uuid,
        message=f"Copied table {table_uuid} to {copy.identifier} ({copy.name}){where}.",
    )
    return ok_result(out, out.message)


@tool(
    Toolset.TABLE_ADMIN,
    name="clear_table",
    title="Delete every row of a table",
    description=CLEAR_TABLE_DESCRIPTION,
    read_only=False,
    destructive=True,
    idempotent=True,
)
async def clear_table(
    table_uuid: TableId, ctx: ToolContext, confirm: Annotated[bool, Field()] = False
) -> Annotated[CallToolResult, ClearOut]:
    svc = services(ctx)
    if not confirm:
        rows = await svc.client.count_table_rows(table_uuid)
        call = f'clear_table(table_uuid="{table_uuid}", confirm=true)'
        out = ClearOut(
            table_uuid=table_uuid,
            rows=rows,
            cleared=False,
            message=f"{rows:,} rows would be deleted (columns and enrichments stay); nothing was deleted.",
            next_call=call if rows else None,
        )
        return ok_result(out, out.message + (f" To delete them: {call}" if rows else ""))
    done = await svc.client.clear_table(table_uuid)
    count = f"{done.deleted_rows:,} rows" if done.deleted_rows is not None else "every row"
    out = ClearOut(
        table_uuid=table_uuid,
        rows=done.deleted_rows,
        cleared=True,
        message=f"Deleted {count} of table {table_uuid}; its columns and enrichments stay.",
    )
    return ok_result(out, out.message)


@tool(
    Toolset.TABLE_ADMIN,
    name="delete_table",
    title="Delete a table",
    description=DELETE_TABLE_DESCRIPTION,
    read_only=False,
    destructive=True,
    idempotent=True,
)
async def delete_table(table_uuid: TableId, ctx: ToolContext) -> Annotated[CallToolResult, Deleted]:
    svc = services(ctx)
    await svc.client.delete_table(table_uuid)
    undo = f'restore_from_trash(tables=["{table_uuid}"])'
    message = f"Table {table_uuid} was moved to the trash with its rows; {undo} brings it back."
    out = Deleted(table_uuid=table_uuid, deleted=table_uuid, message=message)
    return ok_result(out, message)


@tool(
    Toolset.TABLE_ADMIN,
    name="dedupe_rows",
    title="Remove duplicate rows",
    description=DEDUPE_DESCRIPTION,
    read_only=False,
    destructive=True,
    idempotent=True,
)
async def dedupe_rows(
    table_uuid: TableId,
    ctx: ToolContext,
    columns: Annotated[
        list[ColumnName] | None,
        Field(min_length=1, max_length=50, description="Key columns; default: every non-enrichment column."),
    ] = None,
    confirm: Annotated[bool, Field()] = False,
) -> Annotated[CallToolResult, DedupeOut]:
    svc = services(ctx)
    table_columns = await svc.client.table_columns(table_uuid)
    names = [c.name for c in table_columns]
    unknown = [c for c in columns or [] if c not in names]
    if unknown:
        raise ToolFailure(
            ErrorBody(
                code=ErrorCode.VALIDATION_ERROR,
                message=f"Unknown column(s) {unknown}; nothing was deleted.",
                next_steps=[f"Use the table's columns: {', '.join(names[:50])}."],
            )
        )
    keys = list(columns) if columns else [c.name for c in table_columns if c.data_processor_id is None]
    if not confirm:
        total, duplicates = await count_duplicates(svc, table_uuid, keys)
        call = f'dedupe_rows(table_uuid="{table_uuid}"' + (f", columns={keys}" if columns else "")
        call += ", confirm=true)"
        out = DedupeOut(
            table_uuid=table_uuid,
            columns=keys,
            total_rows=total,
            duplicates=duplicates,
            deleted=False,
            message=f"{duplicates:,} of {total:,} rows are duplicates and would go; nothing was deleted.",
            next_call=call if duplicates else None,
        )
        return ok_result(out, out.message + (f" To delete them: {call}" if duplicates else ""))
    result = await svc.client.dedupe_rows(table_uuid, list(columns) if columns else None)
    out = DedupeOut(
        table_uuid=table_uuid,
        columns=keys,
        total_rows=result.count_all_rows,
        duplicates=result.count_rows_delete,
        deleted=True,
        message=f"Deleted {result.count_rows_delete:,} duplicate rows of {result.count_all_rows:,}.",
    )
    return ok_result(out, out.message)


@tool(
    Toolset.TABLE_ADMIN,
    name="export_table",
    title="Export a table to a file (Databar)",
    description=EXPORT_TABLE_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def export_table(
    table_uuid: TableId,
    ctx: ToolContext,
    wait_seconds: WaitSeconds = WAIT_DEFAULT,
) -> Annotated[CallToolResult, ExportOut]:
    svc = services(ctx)
    wait_seconds = wait_within(wait_seconds, svc.settings)
    started = time.monotonic()

    try:
        state = await svc.client.table_export_status(table_uuid)
    except NotFoundError:
        state = None
    if state is None or state.status != "processing":
        state = await svc.client.start_table_export(table_uuid, "csv")
    while state.status == "processing" and time.monotonic() - started + EXPORT_POLL_S < wait_seconds:
        await anyio.sleep(EXPORT_POLL_S)
        state = await svc.client.table_export_status(table_uuid)
    done = state.status == "completed"
    out = ExportOut(
        table_uuid=table_uuid,
        status=state.status,
        file=state.file,
        file_id=state.file_id,
        message=(f"Exported: {state.file}" if done else state.message or f"Export {state.status}."),
        next_call=None if done else f'export_table(table_uuid="{table_uuid}")',
    )
    return ok_result(out, out.message + (f" Next: {out.next_call}" if out.next_call else ""))


@tool(
    Toolset.TABLE_ADMIN,
    name="create_folder",
    title="Create a folder",
    description=CREATE_FOLDER_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def create_folder(name: Name, ctx: ToolContext) -> Annotated[CallToolResult, FolderOut]:
    svc = services(ctx)
    folder = await svc.client.create_folder(name)
    out = folder_out(folder)
    return ok_result(out, f"Created folder {out.id}: {out.name}.")
