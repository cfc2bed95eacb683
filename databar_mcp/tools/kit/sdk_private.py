"""What the MCP SDK knows and does not yet publish, read in one place (so an SDK upgrade is checked here).

Every reach into a private member of an SDK object is in this module: tests/unit/test_layers.py fails when any
other module reads, assigns or overrides one. Each reach names the member it uses; the ones a request depends on
fall back to the safe answer when the SDK changes.
"""

from __future__ import annotations

from typing import Any

from mcp.server.connection import Connection
from mcp.server.lowlevel.server import LifespanResultT, Server
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools import Tool

from databar_mcp.tools.kit.context import ToolContext


class SdkServer(MCPServer[LifespanResultT]):
    """MCPServer with the private members our server uses made public, and a hook on the tool lookup the SDK makes
    before every call (its `_tool_input_schema`, which HTTP's Mcp-Param check also runs)."""

    @property
    def lowlevel(self) -> Server[LifespanResultT]:
        """The lowlevel server (`_lowlevel_server`): its run loop, initialization options and request handlers."""
        return self._lowlevel_server

    def registered_tool(self, name: str) -> Tool | None:
        """A tool the SDK holds (`_tool_manager`), listed or not."""
        return self._tool_manager.get_tool(name)

    def has_prompt(self, name: str) -> bool:
        """Whether the SDK holds this prompt (`_prompt_manager`)."""
        return self._prompt_manager.get_prompt(name) is not None

    def before_tool_lookup(self, name: str) -> None:
        """Runs before the SDK looks a tool up to call it or check its parameters: where a tool is registered late."""

    def tool_input_schema(self, name: str) -> dict[str, Any] | None:
        """The input schema the SDK checks a call of `name` against (None: no such tool), after the hook."""
        return self._tool_input_schema(name)

    def _tool_input_schema(self, name: str) -> dict[str, Any] | None:
        self.before_tool_lookup(name)
        return super()._tool_input_schema(name)


def registered_tools(server: MCPServer[Any]) -> list[Tool]:
    """Every tool an MCPServer holds (`_tool_manager`), listed or not."""
    return server._tool_manager.list_tools()  # pyright: ignore[reportPrivateUsage]


def hold_tool(server: MCPServer[Any], tool: Tool) -> None:
    """Give `server` a Tool built elsewhere (`_tool_manager._tools`): the SDK's own add_tool builds the Tool again,
    argument model and schemas included, for every server. A name already held keeps its tool, as add_tool does."""
    server._tool_manager._tools.setdefault(tool.name, tool)  # pyright: ignore[reportPrivateUsage]


def session_connection(session: object) -> Connection | None:
    """The connection a request's session belongs to (`_connection`): it lives as long as the client does, while
    the session object is made per request. None when the SDK no longer has it."""
    connection: object = getattr(session, "_connection", None)
    return connection if isinstance(connection, Connection) else None


def client_cancelled(ctx: ToolContext) -> bool:
    """Whether the client cancelled this request (notifications/cancelled: the user pressed Stop).

    The dispatcher sets the request's `cancel_requested` event before it cancels the handler; the high-level
    Context does not expose it, the request's ServerSession holds it as `_request_outbound`. False when the
    SDK no longer has it: then a Stop ends the wait only, as our own deadline does.
    """
    outbound: Any = getattr(ctx.request_context.session, "_request_outbound", None)
    event: Any = getattr(outbound, "cancel_requested", None)
    is_set: Any = getattr(event, "is_set", None)
    return bool(is_set()) if callable(is_set) else False


STREAM_CLOSE_CANCELS = frozenset({"2026-07-28"})  # HTTP revisions whose client cancels by closing the reply stream


def stream_closed_by_client(ctx: ToolContext, *, draining: bool) -> bool:
    """Whether an HTTP request of a revision that cancels by closing its reply stream (2026-07-28 has no
    client-to-server notifications over HTTP) was cancelled by its client: the handler is cancelled while the
    server is not shutting down. A shutdown drains first (`draining`), so it never counts."""
    if draining or ctx.headers is None:  # stdio and in-memory calls have no headers: they send notifications
        return False
    return ctx.protocol_version in STREAM_CLOSE_CANCELS
