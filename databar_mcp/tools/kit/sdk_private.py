"""What the MCP SDK knows and does not yet publish, read in one place (so an SDK upgrade is checked here).

Each function says which private member it reads and falls back to the safe answer when the SDK changes.
"""

from __future__ import annotations

from typing import Any

from databar_mcp.tools.kit.context import ToolContext


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
