"""The Starlette application: every route module behind the sandbox middleware."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from databar_mcp.sandbox.errors import ApiError, render_api_error, render_api_error_variant, render_http_exception
from databar_mcp.sandbox.middleware import SandboxMiddleware
from databar_mcp.sandbox.persistence import SaveAfterWrites
from databar_mcp.sandbox.routes import (
    catalog,
    connectors,
    flows,
    runs,
    table_admin,
    table_enrich,
    tables,
    tasks,
    workbooks,
    workspace,
)
from databar_mcp.sandbox.state import SandboxState


def create_app(state: SandboxState) -> Starlette:
    """Build an ASGI app serving `/v1/...` from `state`; one state per app, so servers stay independent."""
    routes = [
        *catalog.routes(state),
        *runs.routes(state),
        *tasks.routes(state),
        *tables.routes(state),
        *connectors.routes(state),
        *table_enrich.routes(state),
        *table_admin.routes(state),
        *flows.routes(state),
        *workspace.routes(state),
        *workbooks.routes(state),
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
