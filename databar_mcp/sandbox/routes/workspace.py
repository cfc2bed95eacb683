"""Workspace routes: folders (organise tables) and the exporter catalog (destinations for table rows)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from databar_mcp.sandbox.errors import Json, not_found
from databar_mcp.sandbox.exporters import EXPORTERS
from databar_mcp.sandbox.routes.catalog import paged
from databar_mcp.sandbox.state import SandboxState
from databar_mcp.sandbox.validation import parse_body, parse_path_int, parse_query
from databar_mcp.sandbox.workspace import Folder

Name = Annotated[str, Field(min_length=1, max_length=256)]


class FolderBody(BaseModel):
    name: Name


class MoveBody(BaseModel):
    table_uuid: str
    folder_id: int | None = None


class ExportersQuery(BaseModel):
    q: str | None = None
    page: Annotated[int | None, Field(ge=1)] = None
    limit: Annotated[int, Field(ge=1, le=500)] = 50


class ExporterQuery(BaseModel):
    authorization: int | None = None


def routes(state: SandboxState) -> list[Route]:
    async def list_folders(_request: Request) -> Response:
        with state.lock:
            return JSONResponse([f.as_json() for f in state.workspace.folders.values()])

    async def create_folder(request: Request) -> Response:
        body = await parse_body(FolderBody, request)
        with state.lock:
            stamp = state.iso_now()
            folder = Folder(state.workspace.new_id(), body.name, stamp, stamp)
            state.workspace.folders[folder.id] = folder
            return JSONResponse(folder.as_json())

    async def rename_folder(request: Request) -> Response:
        body = await parse_body(FolderBody, request)
        with state.lock:
            folder = state.workspace.folder(parse_path_int(request, "folder_id"))
            folder.name, folder.updated_at = body.name, state.iso_now()
            return JSONResponse(folder.as_json())

    async def delete_folder(request: Request) -> Response:
        with state.lock:
            folder = state.workspace.folder(parse_path_int(request, "folder_id"))
            del state.workspace.folders[folder.id]
            return Response(status_code=204)

    async def move_table(request: Request) -> Response:
        body = await parse_body(MoveBody, request)
        with state.lock:
            table = state.table(body.table_uuid)
            target = state.workspace.folder(body.folder_id) if body.folder_id is not None else None
            for folder in state.workspace.folders.values():
                folder.tables.discard(table.identifier)
            if target is not None:
                target.tables.add(table.identifier)
                target.updated_at = state.iso_now()
            return JSONResponse({"table_uuid": table.identifier, "folder_id": body.folder_id})

    async def list_exporters(request: Request) -> Response:
        query = parse_query(ExportersQuery, request)
        items: list[Json] = [
            e.summary_json()
            for e in EXPORTERS.values()
            if not query.q or query.q.lower() in f"{e.name}\n{e.description}".lower()
        ]
        return JSONResponse(items if query.page is None else paged(items, query.page, query.limit))

    async def get_exporter(request: Request) -> Response:
        parse_query(ExporterQuery, request)
        exporter = EXPORTERS.get(parse_path_int(request, "exporter_id"))
        if exporter is None:
            raise not_found("Exporter not found.")
        return JSONResponse(exporter.detail_json())

    return [
        Route("/v1/folders", list_folders, methods=["GET"]),
        Route("/v1/folders", create_folder, methods=["POST"]),
        Route("/v1/folders/move-table", move_table, methods=["POST"]),
        Route("/v1/folders/{folder_id}", rename_folder, methods=["PATCH"]),
        Route("/v1/folders/{folder_id}", delete_folder, methods=["DELETE"]),
        Route("/v1/exporters/", list_exporters, methods=["GET"]),
        Route("/v1/exporters/{exporter_id}", get_exporter, methods=["GET"]),
    ]
