"""The Starlette application: every route module behind the sandbox middleware."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from databar_mcp.sandbox import (
    routes_catalog,
    routes_connectors,
    routes_flows,
    routes_runs,
    routes_table_admin,
    routes_table_enrich,
    routes_tables,
    routes_tasks,
    routes_workspace,
)
from databar_mcp.sandbox.errors import ApiError, render_api_error, render_api_error_variant, render_http_exception
from databar_mcp.sandbox.middleware import SandboxMiddleware
from databar_mcp.sandbox.persistence import SaveAfterWrites
from databar_mcp.sandbox.state import SandboxState


def create_app(state: SandboxState) -> Starlette:
    """Build an ASGI app serving `/v1/...` from `state`; one state per app, so servers stay independent."""
    routes = [
        *routes_catalog.routes(state),
        *routes_runs.routes(state),
        *routes_tasks.routes(state),
        *routes_tables.routes(state),
        *routes_connectors.routes(state),
        *routes_table_enrich.routes(state),
        *routes_table_admin.routes(state),
        *routes_flows.routes(state),
        *routes_workspace.routes(state),
    ]

    async def api_error(request: Request, exc: Exception) -> Response:
        render = render_api_error_variant if state.config.reply_variant else render_api_error
        return await render(request, exc)

    return Starlette(
        routes=routes,
        middleware=[
            Middleware(SaveAfterWrites, state=state),
            Middleware(SandboxMiddleware, state=state, routes=routes),
        ],
        exception_handlers={ApiError: api_error, HTTPException: render_http_exception},
    )
