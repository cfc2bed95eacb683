"""Connector routes: CRUD with the seed's validation and the plan's caps."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from databar_mcp.sandbox.connectors import ConnectorIn, connector_json
from databar_mcp.sandbox.errors import Json, not_found
from databar_mcp.sandbox.state import SandboxState
from databar_mcp.sandbox.validation import parse_body, parse_path_int


def routes(state: SandboxState) -> list[Route]:
    def existing(request: Request) -> tuple[int, dict[str, Json]]:
        connector_id = parse_path_int(request, "connector_id")
        connector = state.connectors.get(connector_id)
        if connector is None:
            raise not_found("Connector not found.")
        return connector_id, connector

    async def collection(request: Request) -> Response:
        if request.method == "GET":
            with state.lock:
                return JSONResponse(list(state.connectors.values()))
        spec = await parse_body(ConnectorIn, request)
        connector_id = state.next_connector_id()
        connector = connector_json(connector_id, spec, state.iso_now())
        with state.lock:
            state.connectors[connector_id] = connector
        return JSONResponse(connector, status_code=201)

    async def item(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(existing(request)[1])
        if request.method == "DELETE":
            with state.lock:
                connector_id, _ = existing(request)
                del state.connectors[connector_id]
            return Response(status_code=204)
        spec = await parse_body(ConnectorIn, request)
        with state.lock:
            connector_id, old = existing(request)
            created_at = old.get("created_at")
            connector = connector_json(connector_id, spec, created_at if isinstance(created_at, str) else "")
            state.connectors[connector_id] = connector
        return JSONResponse(connector)

    return [
        Route("/v1/connectors/", collection, methods=["GET", "POST"]),
        Route("/v1/connectors/{connector_id}", item, methods=["GET", "PUT", "DELETE"]),
    ]
