"""Table admin toolset, continued: workbooks (the documents that own tables), folder edits, and the trash
(a deleted table or workbook stays there, rows and all, until it is restored or deleted forever)."""

from typing import Annotated

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from databar_mcp.api.models import Workbook
from databar_mcp.config import Toolset
from databar_mcp.core.shaping import escape_text
from databar_mcp.tools.kit.context import ToolContext, services
from databar_mcp.tools.kit.registry import tool
from databar_mcp.tools.kit.results import ErrorBody, ErrorCode, ToolFailure, fitted_result, ok_result

Name = Annotated[str, Field(min_length=1, max_length=256)]
WorkbookId = Annotated[
    str,
    Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$", description="Workbook id from list_workbooks."),
]
FolderId = Annotated[int, Field(ge=1, description="Folder id from list_tables.")]
TrashIds = Annotated[list[Annotated[str, Field(min_length=1, max_length=100)]], Field(max_length=100)]


class SheetOut(BaseModel):
    table_uuid: str
    name: str | None = None


class WorkbookOut(BaseModel):
    id: str
    name: str | None = None
    folder_id: int | None = None
    tables: list[SheetOut] = Field(description="Its tables, in sheet order.")


class WorkbookList(BaseModel):
    workbooks: list[WorkbookOut]
    total: int
    omitted: int = Field(default=0, description="Workbooks left out to fit the result budget.")


class WorkbookDone(BaseModel):
    workbook: WorkbookOut
    message: str


class FolderDone(BaseModel):
    id: int
    name: str | None = None
    deleted: bool = False
    message: str


class TrashEntry(BaseModel):
    kind: str = Field(description="table or workbook.")
    id: str
    name: str | None = None
    trashed_at: str | None = None
    tables: int | None = Field(default=None, description="A workbook's tables (they come back with it).")


class TrashList(BaseModel):
    items: list[TrashEntry]
    total: int
    omitted: int = Field(default=0, description="Items left out to fit the result budget.")
    next_call: str | None = None


class Restored(BaseModel):
    tables: list[str]
    workbooks: list[str]
    message: str


def workbook_out(book: Workbook) -> WorkbookOut:
    return WorkbookOut(
        id=book.identifier,
        name=book.name,
        folder_id=book.folder_id,
        tables=[SheetOut(table_uuid=t.identifier, name=t.name) for t in book.tables],
    )


def workbook_line(book: WorkbookOut) -> str:
    sheets = ", ".join(f"{t.table_uuid} ({t.name})" for t in book.tables[:20]) or "no tables"
    more = f" and {len(book.tables) - 20} more" if len(book.tables) > 20 else ""
    return f"- {book.id}: {book.name} ({len(book.tables)} tables: {sheets}{more})"


LIST_WORKBOOKS_DESCRIPTION = """\
List workbooks (documents owning tables, one sheet each) with their tables. Free. To put a table in one: \
update_table(workbook=...)."""
RENAME_WORKBOOK_DESCRIPTION = "Rename a workbook. Free."
DUPLICATE_WORKBOOK_DESCRIPTION = "Copy a workbook and all its tables (rows included) into a new workbook. Free."
RENAME_FOLDER_DESCRIPTION = "Rename a folder. Free."
DELETE_FOLDER_DESCRIPTION = "Delete a folder; its tables stay, out of any folder. Free."
LIST_TRASH_DESCRIPTION = "List deleted tables and workbooks (kept with their rows until purged). Free."
RESTORE_DESCRIPTION = """\
Restore deleted tables and/or workbooks (ids from list_trash) with their rows. Free. A table whose workbook \
is gone comes back in a new one."""


@tool(
    Toolset.TABLE_ADMIN,
    name="list_workbooks",
    title="List workbooks",
    description=LIST_WORKBOOKS_DESCRIPTION,
    read_only=True,
    destructive=False,
    idempotent=True,
)
async def list_workbooks(ctx: ToolContext) -> Annotated[CallToolResult, WorkbookList]:
    svc = services(ctx)
    found = [workbook_out(b) for b in await svc.client.list_workbooks()]

    def make(k: int) -> WorkbookList:
        return WorkbookList(workbooks=found[:k], total=len(found), omitted=len(found) - k)

    def text(out: WorkbookList) -> str:
        head = f"{out.total} workbook(s)" + (f", {out.omitted} omitted" if out.omitted else "") + ":"
        return escape_text("\n".join([head, *(workbook_line(b) for b in out.workbooks)]))

    return fitted_result(len(found), make, text, svc.settings.result_budget_chars)


@tool(
    Toolset.TABLE_ADMIN,
    name="rename_workbook",
    title="Rename a workbook",
    description=RENAME_WORKBOOK_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=True,
)
async def rename_workbook(
    workbook_id: WorkbookId, name: Name, ctx: ToolContext
) -> Annotated[CallToolResult, WorkbookDone]:
    svc = services(ctx)
    book = workbook_out(await svc.client.rename_workbook(workbook_id, name))
    out = WorkbookDone(workbook=book, message=f"Workbook {book.id} is now named {book.name!r}.")
    return ok_result(out, escape_text(out.message))


@tool(
    Toolset.TABLE_ADMIN,
    name="duplicate_workbook",
    title="Copy a workbook",
    description=DUPLICATE_WORKBOOK_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def duplicate_workbook(workbook_id: WorkbookId, ctx: ToolContext) -> Annotated[CallToolResult, WorkbookDone]:
    svc = services(ctx)
    book = workbook_out(await svc.client.duplicate_workbook(workbook_id))
    out = WorkbookDone(workbook=book, message=f"Copied workbook {workbook_id} to:\n{workbook_line(book)}")
    return ok_result(out, escape_text(out.message))


@tool(
    Toolset.TABLE_ADMIN,
    name="rename_folder",
    title="Rename a folder",
    description=RENAME_FOLDER_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=True,
)
async def rename_folder(folder_id: FolderId, name: Name, ctx: ToolContext) -> Annotated[CallToolResult, FolderDone]:
    svc = services(ctx)
    folder = await svc.client.rename_folder(folder_id, name)
    out = FolderDone(id=folder.id, name=folder.name, message=f"Folder {folder.id} is now named {folder.name!r}.")
    return ok_result(out, escape_text(out.message))


@tool(
    Toolset.TABLE_ADMIN,
    name="delete_folder",
    title="Delete a folder",
    description=DELETE_FOLDER_DESCRIPTION,
    read_only=False,
    destructive=True,
    idempotent=True,
)
async def delete_folder(folder_id: FolderId, ctx: ToolContext) -> Annotated[CallToolResult, FolderDone]:
    svc = services(ctx)
    await svc.client.delete_folder(folder_id)
    message = f"Deleted folder {folder_id}; its tables are now in no folder."
    return ok_result(FolderDone(id=folder_id, deleted=True, message=message), message)


@tool(
    Toolset.TABLE_ADMIN,
    name="list_trash",
    title="List the trash",
    description=LIST_TRASH_DESCRIPTION,
    read_only=True,
    destructive=False,
    idempotent=True,
)
async def list_trash(ctx: ToolContext) -> Annotated[CallToolResult, TrashList]:
    svc = services(ctx)
    found = [
        TrashEntry(kind=i.kind, id=i.identifier, name=i.name, trashed_at=i.trashed_at, tables=i.tables_count)
        for i in await svc.client.list_trash()
    ]
    first = next(iter(found), None)
    call = None
    if first is not None:
        call = f'restore_from_trash({first.kind}s=["{first.id}"])'

    def make(k: int) -> TrashList:
        return TrashList(items=found[:k], total=len(found), omitted=len(found) - k, next_call=call)

    def text(out: TrashList) -> str:
        lines = [f"{out.total} item(s) in the trash" + (f", {out.omitted} omitted" if out.omitted else "") + ":"]
        for item in out.items:
            tables = f", {item.tables} tables" if item.tables is not None else ""
            lines.append(f"- {item.kind} {item.id}: {item.name} (deleted {item.trashed_at}{tables})")
        if out.next_call:
            lines.append(f"To restore, e.g.: {out.next_call}")
        return escape_text("\n".join(lines))

    return fitted_result(len(found), make, text, svc.settings.result_budget_chars)


@tool(
    Toolset.TABLE_ADMIN,
    name="restore_from_trash",
    title="Restore from the trash",
    description=RESTORE_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=True,
)
async def restore_from_trash(
    ctx: ToolContext, tables: TrashIds | None = None, workbooks: TrashIds | None = None
) -> Annotated[CallToolResult, Restored]:
    svc = services(ctx)
    if not tables and not workbooks:
        raise ToolFailure(
            ErrorBody(
                code=ErrorCode.VALIDATION_ERROR,
                message="Nothing to restore: pass tables and/or workbooks; nothing was sent.",
                next_steps=["list_trash lists what can be restored."],
            )
        )
    await svc.client.restore_from_trash(workbooks=list(workbooks or []), tables=list(tables or []))
    parts = [f"{len(v)} {k} ({', '.join(v)})" for k, v in (("table(s)", tables), ("workbook(s)", workbooks)) if v]
    out = Restored(
        tables=list(tables or []),
        workbooks=list(workbooks or []),
        message=f"Restored {' and '.join(parts)} with their rows.",
    )
    return ok_result(out, escape_text(out.message))
