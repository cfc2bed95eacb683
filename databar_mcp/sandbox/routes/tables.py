"""Table routes: list, create, columns, paged rows with filters, and the ≤50-row batch writes."""

from __future__ import annotations

from typing import Annotated, Any, cast

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from databar_mcp.sandbox.errors import Json, field_errors, schema_errors
from databar_mcp.sandbox.state import SandboxState
from databar_mcp.sandbox.tables import Table
from databar_mcp.sandbox.validation import parse_body, parse_query

RawRow = dict[str, Any]


class TableCreateBody(BaseModel):
    name: Annotated[str, Field(max_length=256)] = "New table"
    columns: list[str] = Field(default_factory=list[str])


class RowsQuery(BaseModel):
    page: Annotated[int, Field(ge=1)] = 1
    per_page: Annotated[int, Field(ge=1)] = 1000
    filter: str | None = None


class Dedupe(BaseModel):
    enabled: bool = False
    keys: list[str] = Field(default_factory=list[str])


class InsertOptions(BaseModel):
    allow_new_columns: bool = False
    dedupe: Dedupe | None = None


class InsertBody(BaseModel):
    rows: list[RawRow]
    options: InsertOptions = Field(default_factory=InsertOptions)


class PatchBody(BaseModel):
    rows: list[RawRow]
    overwrite: bool = True
    return_rows: bool = False


class UpsertBody(BaseModel):
    rows: list[RawRow]
    return_rows: bool = False


class DeleteBody(BaseModel):
    row_ids: list[str | int]


def _rows(rows: list[RawRow]) -> list[dict[str, Json]]:
    return cast(list[dict[str, Json]], rows)


def routes(state: SandboxState) -> list[Route]:
    def table_of(request: Request) -> Table:
        return state.table(str(request.path_params["table_uuid"]))

    def shaped(results: list[Json]) -> list[Json]:
        """Row errors are `{code, message}`; the variant replies send the message alone."""
        if not state.config.reply_variant:
            return results
        out: list[Json] = []
        for item in results:
            if isinstance(item, dict) and isinstance(item.get("error"), dict):
                error = cast(dict[str, Json], item["error"])
                item = {**item, "error": error.get("message")}
            out.append(item)
        return out

    def touched(table: Table, results: list[Json]) -> Response:
        table.updated_at = state.iso_now()
        return JSONResponse({"results": shaped(results)})

    async def list_tables(_request: Request) -> Response:
        with state.lock:
            return JSONResponse([t.as_json() for t in state.tables.values()])

    async def create_table(request: Request) -> Response:
        body = await parse_body(TableCreateBody, request, empty_ok=True)
        if len(set(body.columns)) != len(body.columns):
            raise field_errors({"columns": ["Column names must be unique."]})
        return JSONResponse(state.new_table(body.name, body.columns).as_json())

    async def columns(request: Request) -> Response:
        with state.lock:
            return JSONResponse([c.as_json() for c in table_of(request).columns])

    async def read_rows(request: Request) -> Response:
        query = parse_query(RowsQuery, request)
        ceiling = state.config.rows_per_page_max
        if query.per_page > ceiling:
            raise schema_errors(
                [
                    {
                        "type": "less_than_equal",
                        "loc": ["query", "per_page"],
                        "msg": f"Input should be less than or equal to {ceiling}",
                        "input": str(query.per_page),
                        "ctx": {"le": ceiling},
                    }
                ]
            )
        with state.lock:
            return JSONResponse(table_of(request).page(query.page, query.per_page, query.filter))

    async def insert_rows(request: Request) -> Response:
        body = await parse_body(InsertBody, request)
        dedupe = body.options.dedupe
        keys = dedupe.keys if dedupe is not None and dedupe.enabled else []
        with state.lock:
            table = table_of(request)
            return touched(table, table.insert(_rows(body.rows), body.options.allow_new_columns, keys))

    async def patch_rows(request: Request) -> Response:
        body = await parse_body(PatchBody, request)
        with state.lock:
            table = table_of(request)
            return touched(table, table.patch(_rows(body.rows), body.overwrite, body.return_rows))

    async def upsert_rows(request: Request) -> Response:
        body = await parse_body(UpsertBody, request)
        with state.lock:
            table = table_of(request)
            return touched(table, table.upsert(_rows(body.rows), body.return_rows))

    async def delete_rows(request: Request) -> Response:
        body = await parse_body(DeleteBody, request)
        with state.lock:
            table = table_of(request)
            results = table.delete(list[Json](body.row_ids))
            deleted = sum(1 for r in results if isinstance(r, dict) and r.get("ok"))
            table.updated_at = state.iso_now()
            return JSONResponse({"deleted": deleted, "results": shaped(results)})

    async def rows_endpoint(request: Request) -> Response:
        if request.method == "GET":
            return await read_rows(request)
        if request.method == "PATCH":
            return await patch_rows(request)
        return await insert_rows(request)

    return [
        Route("/v1/table/", list_tables, methods=["GET"]),
        Route("/v1/table/create", create_table, methods=["POST"]),
        Route("/v1/table/{table_uuid}/columns", columns, methods=["GET"]),
        Route("/v1/table/{table_uuid}/rows", rows_endpoint, methods=["GET", "POST", "PATCH"]),
        Route("/v1/table/{table_uuid}/rows/upsert", upsert_rows, methods=["POST"]),
        Route("/v1/table/{table_uuid}/rows/delete", delete_rows, methods=["POST"]),
    ]
