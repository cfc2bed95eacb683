"""Workbook and trash routes: workbooks own tables (one sheet each); deleting moves things to the trash,
rows and all, until they are restored or deleted forever (see workbooks.py)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from databar_mcp.sandbox.errors import Json, field_errors
from databar_mcp.sandbox.state import SandboxState
from databar_mcp.sandbox.validation import parse_body
from databar_mcp.sandbox.workbooks import (
    TrashedTable,
    TrashedWorkbook,
    Workbook,
    as_json,
    copy_table,
    missing,
    new_workbook_id,
    place,
    sheets,
    trash_json,
)

Name = Annotated[str, Field(min_length=1, max_length=256)]
Ids = Annotated[list[str], Field(max_length=500)]


class RenameBody(BaseModel):
    name: Name


class MergeBody(BaseModel):
    target: str
    sources: Annotated[list[str], Field(min_length=1, max_length=100)]


class AddTableBody(BaseModel):
    name: Name | None = None


class ReorderBody(BaseModel):
    table_ids: Annotated[list[str], Field(max_length=1000)]


class TrashBody(BaseModel):
    workbooks: Ids = Field(default_factory=list[str])
    tables: Ids = Field(default_factory=list[str])


def routes(state: SandboxState) -> list[Route]:
    space = state.workspace

    def book_of(request: Request) -> Workbook:
        return state.workspace.workbook(str(request.path_params["workbook_id"]))

    def reply(book: Workbook) -> dict[str, Json]:
        owned = [t.identifier for t in sheets(state.tables.values(), book.identifier)]
        return as_json(book, state.tables.values(), state.workspace.folder_of(owned))

    async def list_books(_request: Request) -> Response:
        with state.lock:
            return JSONResponse([reply(b) for b in state.workspace.workbooks.values()])

    async def get_book(request: Request) -> Response:
        with state.lock:
            return JSONResponse(reply(book_of(request)))

    async def rename_book(request: Request) -> Response:
        body = await parse_body(RenameBody, request)
        with state.lock:
            book = book_of(request)
            book.name, book.updated_at = body.name, state.iso_now()
            return JSONResponse(reply(book))

    async def delete_book(request: Request) -> Response:
        with state.lock:
            book = book_of(request)
            owned = sheets(state.tables.values(), book.identifier)
            for table in owned:
                del state.tables[table.identifier]
            del state.workspace.workbooks[book.identifier]
            state.workspace.trashed_workbooks[book.identifier] = TrashedWorkbook(book, state.iso_now(), owned)
            return Response(status_code=204)

    async def duplicate_book(request: Request) -> Response:
        with state.lock:
            book = book_of(request)
            twin = state.new_workbook(f"{book.name} (copy)")
            for table in sheets(state.tables.values(), book.identifier):
                copy, attached = copy_table(
                    state.table(table.identifier),
                    state.workspace.on(table.identifier),
                    table.name,
                    state.iso_now(),
                    iter(state.workspace.new_id, None),
                )
                state.tables[copy.identifier] = copy
                state.workspace.processors[copy.identifier] = attached
                place(state.tables.values(), copy, twin.identifier)
            return JSONResponse(reply(twin))

    async def merge(request: Request) -> Response:
        body = await parse_body(MergeBody, request)
        with state.lock:
            if body.target in body.sources:
                raise field_errors({"sources": ["The target cannot also be a source."]})
            missing([body.target, *body.sources], state.workspace.workbooks, "the workspace's workbooks")
            target = state.workspace.workbooks[body.target]
            for source in dict.fromkeys(body.sources):
                for table in sheets(state.tables.values(), source):
                    place(state.tables.values(), table, target.identifier)
                del state.workspace.workbooks[source]
            target.updated_at = state.iso_now()
            return JSONResponse(reply(target))

    async def add_table(request: Request) -> Response:
        body = await parse_body(AddTableBody, request, empty_ok=True)
        with state.lock:
            book = book_of(request)
            count = len(sheets(state.tables.values(), book.identifier))
            table = state.new_table(body.name or f"Sheet {count + 1}", [], workbook=book.identifier)
            book.updated_at = state.iso_now()
            return JSONResponse(table.as_json())

    async def reorder(request: Request) -> Response:
        body = await parse_body(ReorderBody, request)
        with state.lock:
            book = book_of(request)
            owned = {t.identifier: t for t in sheets(state.tables.values(), book.identifier)}
            if sorted(body.table_ids) != sorted(owned):
                raise field_errors({"table_ids": ["List every table of the workbook exactly once."]})
            for position, ident in enumerate(body.table_ids):
                owned[ident].position = position
            book.updated_at = state.iso_now()
            return JSONResponse(reply(book))

    async def list_trash(_request: Request) -> Response:
        with state.lock:
            return JSONResponse(trash_json(space.trash, space.trashed_workbooks))

    async def trash_body(request: Request) -> TrashBody:
        body = await parse_body(TrashBody, request, empty_ok=True)
        if not body.workbooks and not body.tables:
            raise field_errors({"tables": ["Give the workbooks and/or tables (ids from the trash)."]})
        return body

    def in_trash(body: TrashBody) -> None:
        """404 naming what is not in the trash; then nothing is done."""
        missing(body.workbooks, space.trashed_workbooks, "the trash")
        missing(body.tables, space.trash, "the trash")

    async def restore(request: Request) -> Response:
        body = await trash_body(request)
        with state.lock:
            in_trash(body)
            for ident in body.workbooks:
                binned = space.trashed_workbooks.pop(ident)
                space.workbooks[ident] = binned.workbook
                for table in binned.tables:
                    state.tables[table.identifier] = table
            for ident in body.tables:
                table = space.trash.pop(ident).table
                state.tables[table.identifier] = table
                home = table.workbook if table.workbook in space.workbooks else None
                if home is None:  # its workbook is gone: the table comes back in a workbook of its own
                    home = state.new_workbook(table.name, new_workbook_id()).identifier
                place(state.tables.values(), table, home)
            restored: dict[str, Json] = {"workbooks": list[Json](body.workbooks), "tables": list[Json](body.tables)}
            return JSONResponse({"restored": restored})

    async def delete_forever(request: Request) -> Response:
        body = await trash_body(request)
        with state.lock:
            in_trash(body)
            gone: list[TrashedTable] = [space.trash.pop(t) for t in body.tables]
            for ident in body.workbooks:
                gone += [TrashedTable(t, "") for t in space.trashed_workbooks.pop(ident).tables]
            for item in gone:
                space.forget(item.table.identifier)
            deleted: dict[str, Json] = {"workbooks": list[Json](body.workbooks), "tables": list[Json](body.tables)}
            return JSONResponse({"deleted": deleted})

    prefix = "/v1/workbooks/{workbook_id}"
    return [
        Route("/v1/workbooks", list_books, methods=["GET"]),
        Route("/v1/workbooks/merge", merge, methods=["POST"]),
        Route(prefix, get_book, methods=["GET"]),
        Route(prefix, rename_book, methods=["PATCH"]),
        Route(prefix, delete_book, methods=["DELETE"]),
        Route(f"{prefix}/duplicate", duplicate_book, methods=["POST"]),
        Route(f"{prefix}/tables", add_table, methods=["POST"]),
        Route(f"{prefix}/tables/reorder", reorder, methods=["POST"]),
        Route("/v1/trash", list_trash, methods=["GET"]),
        Route("/v1/trash/restore", restore, methods=["POST"]),
        Route("/v1/trash/delete-forever", delete_forever, methods=["POST"]),
    ]
