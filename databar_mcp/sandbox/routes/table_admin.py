"""Table administration routes: columns (and their order), rename, duplicate, clear, move to a workbook, delete
(to the trash), dedupe, and Databar's own export.

An export goes `processing` → `completed` after `export_seconds` on the sandbox clock; its `file` is a URL
outside /v1 that needs no key (as a signed download link would).
"""

from __future__ import annotations

import csv
import io
from typing import Annotated, Any

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from databar_mcp.sandbox.errors import ApiError, Json, field_errors, not_found
from databar_mcp.sandbox.processors import add_column, is_empty
from databar_mcp.sandbox.state import SandboxState
from databar_mcp.sandbox.tables import Column, Table
from databar_mcp.sandbox.validation import parse_body, parse_path_int
from databar_mcp.sandbox.workbooks import TrashedTable, copy_table, place
from databar_mcp.sandbox.workspace import Export

COLUMN_TYPES = ("text", "number", "boolean", "date", "datetime", "email", "url", "phone", "json")
EXPORT_FORMATS = ("csv",)
Name = Annotated[str, Field(min_length=1, max_length=256)]


class ColumnBody(BaseModel):
    name: Name
    type: str = "text"
    config: dict[str, Any] = Field(default_factory=dict[str, Any])


class RenameBody(BaseModel):
    name: Name


class DuplicateBody(BaseModel):
    table: str


class MoveBody(BaseModel):
    workbook: str | None = None
    new_workbook: bool = False
    name: Name | None = None


class ReorderBody(BaseModel):
    index: Annotated[int, Field(ge=0)]


class DedupeBody(BaseModel):
    columns: list[str] | None = None


class ExportBody(BaseModel):
    format: str = "csv"


def _csv(table: Table) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    names = table.column_names
    writer.writerow(["id", *names])
    for row in table.rows:
        writer.writerow([row.get("id"), *("" if row.get(n) is None else row.get(n) for n in names)])
    return out.getvalue()


def _column_reply(column: Column) -> dict[str, Json]:
    return {"identifier": column.identifier, "name": column.name, "type_of_value": column.type_of_value}


def routes(state: SandboxState) -> list[Route]:
    def table_of(request: Request) -> Table:
        return state.table(str(request.path_params["table_uuid"]))

    def column_of(table: Table, request: Request) -> Column:
        ident = str(request.path_params["column_id"])
        column = next((c for c in table.columns if c.identifier == ident), None)
        if column is None:
            raise not_found("Column not found.")
        return column

    async def create_column(request: Request) -> Response:
        body = await parse_body(ColumnBody, request)
        if body.type not in COLUMN_TYPES:
            raise field_errors({"type": [f'"{body.type}" is not a valid choice: {", ".join(COLUMN_TYPES)}.']})
        with state.lock:
            table = table_of(request)
            if body.name in table.column_names:
                raise field_errors({"name": ["A column with this name already exists."]})
            column = add_column(table, body.name, body.type)
            table.updated_at = state.iso_now()
            return JSONResponse(_column_reply(column))

    async def rename_column(request: Request) -> Response:
        body = await parse_body(RenameBody, request)
        with state.lock:
            table = table_of(request)
            column = column_of(table, request)
            if body.name != column.name and body.name in table.column_names:
                raise field_errors({"name": ["A column with this name already exists."]})
            old = column.name
            for row in table.rows:
                row[body.name] = row.pop(old, None)
            column.name = body.name
            for processor in state.workspace.on(table.identifier).values():
                if processor.status_column == old:
                    processor.status_column = body.name
                for field, name in processor.output_columns.items():
                    if name == old:
                        processor.output_columns[field] = body.name
            table.updated_at = state.iso_now()
            return JSONResponse(_column_reply(column))

    async def delete_column(request: Request) -> Response:
        with state.lock:
            table = table_of(request)
            column = column_of(table, request)
            if column.data_processor_id is not None:
                raise field_errors({"column": ["This column is filled by an enrichment on the table."]})
            table.columns.remove(column)
            for row in table.rows:
                row.pop(column.name, None)
            table.updated_at = state.iso_now()
            return Response(status_code=204)

    async def rename_table(request: Request) -> Response:
        body = await parse_body(RenameBody, request)
        with state.lock:
            table = table_of(request)
            table.name = body.name
            table.updated_at = state.iso_now()
            return JSONResponse(table.as_json())

    async def delete_table(request: Request) -> Response:
        """To the trash, rows, columns and enrichments kept (restorable); its workbook stays."""
        with state.lock:
            table = table_of(request)
            del state.tables[table.identifier]
            state.workspace.trash[table.identifier] = TrashedTable(table, state.iso_now())
            for folder in state.workspace.folders.values():
                folder.tables.discard(table.identifier)
            return Response(status_code=204)

    async def duplicate_table(request: Request) -> Response:
        """A copy (rows, columns and enrichments) in a new workbook."""
        body = await parse_body(DuplicateBody, request)
        with state.lock:
            source = state.table(body.table)
            copy, attached = copy_table(
                source,
                state.workspace.on(source.identifier),
                f"{source.name} (copy)",
                state.iso_now(),
                iter(state.workspace.new_id, None),
            )
            state.tables[copy.identifier] = copy
            state.workspace.processors[copy.identifier] = attached
            place(state.tables.values(), copy, state.new_workbook(copy.name).identifier)
            return JSONResponse(copy.as_json())

    async def clear_table(request: Request) -> Response:
        """Every row goes; the columns and the enrichments attached stay."""
        with state.lock:
            table = table_of(request)
            deleted = len(table.rows)
            table.rows.clear()
            table.updated_at = state.iso_now()
            return JSONResponse({"status": "completed", "deleted_rows": deleted})

    async def move_table(request: Request) -> Response:
        body = await parse_body(MoveBody, request, empty_ok=True)
        if body.new_workbook == (body.workbook is not None):
            raise field_errors({"workbook": ["Give either a workbook or new_workbook=true."]})
        with state.lock:
            table = table_of(request)
            if body.workbook is not None:
                target = state.workspace.workbook(body.workbook).identifier
            else:
                target = state.new_workbook(body.name or table.name).identifier
            place(state.tables.values(), table, target)
            table.updated_at = state.iso_now()
            return JSONResponse(table.as_json())

    async def reorder_column(request: Request) -> Response:
        body = await parse_body(ReorderBody, request)
        with state.lock:
            table = table_of(request)
            column = column_of(table, request)
            if body.index >= len(table.columns):
                raise field_errors({"index": [f"Must be from 0 to {len(table.columns) - 1}."]})
            table.columns.remove(column)
            table.columns.insert(body.index, column)
            table.updated_at = state.iso_now()
            order: list[Json] = [c.identifier for c in table.columns]
            return JSONResponse({"identifier": column.identifier, "index": body.index, "columns": order})

    async def dedupe(request: Request) -> Response:
        body = await parse_body(DedupeBody, request, empty_ok=True)
        with state.lock:
            table = table_of(request)
            if body.columns is not None:
                unknown = [c for c in body.columns if c not in table.column_names]
                if unknown:
                    raise field_errors({"columns": [f"Unknown column: {c}." for c in unknown]})
            keys = body.columns or [c.name for c in table.columns if c.data_processor_id is None]
            seen: set[tuple[str, ...]] = set()
            kept: list[dict[str, Json]] = []
            for row in table.rows:
                values = [row.get(k) for k in keys]
                key = tuple("" if v is None else str(v).strip().lower() for v in values)
                if all(is_empty(v) for v in values) or key not in seen:
                    seen.add(key)
                    kept.append(row)
            deleted = len(table.rows) - len(kept)
            total = len(table.rows)
            table.rows[:] = kept
            table.updated_at = state.iso_now()
            return JSONResponse({"count_all_rows": total, "count_rows_delete": deleted})

    async def start_export(request: Request) -> Response:
        body = await parse_body(ExportBody, request, empty_ok=True)
        if body.format not in EXPORT_FORMATS:
            raise field_errors({"format": [f'"{body.format}" is not a valid choice: {", ".join(EXPORT_FORMATS)}.']})
        with state.lock:
            table = table_of(request)
            export = Export(
                file_id=state.workspace.new_id(),
                format=body.format,
                ready_at=state.clock.now() + state.config.export_seconds,
                content=_csv(table),
            )
            state.workspace.exports[table.identifier] = export
            state.workspace.files[export.file_id] = export
            return JSONResponse({"status": "processing", "file_id": None, "file": None, "message": "Export started."})

    async def export_status(request: Request) -> Response:
        with state.lock:
            table = table_of(request)
            export = state.workspace.exports.get(table.identifier)
            if export is None:
                raise not_found("No export for this table.")
            if state.clock.now() < export.ready_at:
                return JSONResponse({"status": "processing", "file_id": None, "file": None, "message": "Exporting."})
            url = f"{str(request.base_url).rstrip('/')}/files/exports/{export.file_id}.{export.format}"
            return JSONResponse({"status": "completed", "file_id": export.file_id, "file": url, "message": None})

    async def export_file(request: Request) -> Response:
        with state.lock:
            export = state.workspace.files.get(parse_path_int(request, "file_id"))
            if export is None or state.clock.now() < export.ready_at:
                raise ApiError(404, {"detail": "File not found."})
            return PlainTextResponse(export.content, media_type="text/csv")

    prefix = "/v1/table/{table_uuid}"
    return [
        Route(f"{prefix}/columns", create_column, methods=["POST"]),
        Route(f"{prefix}/columns/{{column_id}}", rename_column, methods=["PATCH"]),
        Route(f"{prefix}/columns/{{column_id}}", delete_column, methods=["DELETE"]),
        Route(f"{prefix}/columns/{{column_id}}/reorder", reorder_column, methods=["POST"]),
        Route("/v1/table/duplicate", duplicate_table, methods=["POST"]),
        Route(f"{prefix}/clear", clear_table, methods=["POST"]),
        Route(f"{prefix}/move", move_table, methods=["POST"]),
        Route(prefix, rename_table, methods=["PATCH"]),
        Route(prefix, delete_table, methods=["DELETE"]),
        Route(f"{prefix}/rows/dedupe", dedupe, methods=["POST"]),
        Route(f"{prefix}/export", start_export, methods=["POST"]),
        Route(f"{prefix}/export", export_status, methods=["GET"]),
        Route("/files/exports/{file_id}.csv", export_file, methods=["GET"]),
    ]
