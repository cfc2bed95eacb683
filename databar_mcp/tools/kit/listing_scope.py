"""Whose tool list enable_toolsets grows: the viewer's, never every client's of a shared server.

A viewer is the OAuth user when there is one (their list follows them across sessions and replicas' calls),
else the HTTP session (`Mcp-Session-Id`), else this process: stdio serves one client, and a stateless HTTP
server without OAuth serves one tenant behind one static token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext

from databar_mcp.core.users import current_owner

if TYPE_CHECKING:
    from databar_mcp.tools.kit.registry import Toolbox

PROCESS = "process"
SESSION_HEADER = "mcp-session-id"


def viewer(headers: Mapping[str, str] | None) -> str:
    """The viewer of the request carrying these HTTP headers (None: not over HTTP)."""
    owner = current_owner()
    if owner is not None:
        return f"user:{owner}"
    session = None if headers is None else headers.get(SESSION_HEADER)
    return f"session:{session}" if session else PROCESS


def request_headers(ctx: ServerRequestContext[Any, Any]) -> Mapping[str, str] | None:
    request = ctx.request
    headers = getattr(request, "headers", None)
    return cast("Mapping[str, str] | None", headers)


class ScopedListing:
    """ServerMiddleware: tools/list shows each viewer the tools listed for them (the Toolbox is set by
    build_server once it exists)."""

    def __init__(self) -> None:
        self.box: Toolbox | None = None

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        box = self.box
        if box is None or ctx.method != "tools/list" or not isinstance(result, dict):
            return result
        who = viewer(request_headers(ctx))
        tools = cast(list[dict[str, Any]], result.get("tools") or [])
        result["tools"] = [tool for tool in tools if box.visible(str(tool.get("name")), who)]
        return result
