"""Task routes: poll (with include_partial) and cancel."""

from __future__ import annotations

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from databar_mcp.sandbox.state import SandboxState
from databar_mcp.sandbox.validation import parse_query


class TaskQuery(BaseModel):
    include_partial: bool = False


def routes(state: SandboxState) -> list[Route]:
    async def get_task(request: Request) -> Response:
        query = parse_query(TaskQuery, request)
        return JSONResponse(state.read_task(str(request.path_params["task_id"]), query.include_partial))

    async def cancel_task(request: Request) -> Response:
        return JSONResponse(state.cancel_task(str(request.path_params["task_id"])))

    return [
        Route("/v1/tasks/{task_id}", get_task, methods=["GET"]),
        Route("/v1/tasks/{task_id}/cancel", cancel_task, methods=["POST"]),
    ]
