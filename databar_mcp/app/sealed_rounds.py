"""Each sealed `requestState` is accepted once: the middleware pair that spends it (core/rounds.py says why).

The SDK's RequestStateBoundary verifies a state and hands the tools its plaintext, which is the same for two
rounds that asked the same question; only the sealed form is unique. So one middleware, outside the boundary,
notes the sealed state's digest, and another, inside it (the state is verified by then), spends the digest in
the ledger before the call goes on. A state that comes back a second time is refused as the boundary refuses an
expired one (-32602 "Invalid or expired requestState"): the client starts the call again, and the user is asked
again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.request_state import RequestStateBoundary
from mcp.shared.exceptions import MCPError
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS

from databar_mcp import config
from databar_mcp.core.rounds import digest_of, spend_round
from databar_mcp.tools.kit.context import Services

logger = logging.getLogger("databar_mcp.app.sealed_rounds")

CARRIER = "tools/call"  # our only method whose rounds act (prompts and resources ask nothing)
_sealed: ContextVar[str | None] = ContextVar("databar_sealed_round", default=None)


class NoteSealedRound:
    """Outside the boundary: note the digest of the sealed state a tools/call brings back."""

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        state = ctx.params.get("requestState") if ctx.method == CARRIER and ctx.params is not None else None
        if not isinstance(state, str):  # absent (a first round), or not a string (the boundary refuses it)
            return await call_next(ctx)
        noted = _sealed.set(digest_of(state))
        try:
            return await call_next(ctx)
        finally:
            _sealed.reset(noted)


class SpendSealedRound:
    """Inside the boundary: spend the noted digest in the ledger; a second use is refused, and so is a round
    whose use cannot be recorded (a guard that cannot check does not let a run through)."""

    def __init__(self, services: Callable[[], Services | None], *, keep_s: float) -> None:
        self._services = services
        self._keep_s = keep_s

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        digest = _sealed.get()
        if digest is None or ctx.method != CARRIER:
            return await call_next(ctx)
        tool = str((ctx.params or {}).get("name", ""))[:100]
        services = self._services()
        try:
            if services is None:
                raise RuntimeError("the server is not serving (no ledger)")
            first = await spend_round(services.ledger, digest, keep_s=self._keep_s)
        except Exception as exc:
            logger.error("could not record the use of a requestState on %s %r: %s", CARRIER, tool, exc)
            raise MCPError(
                code=INTERNAL_ERROR, message="The ledger could not record this answer's use: call the tool again."
            ) from None
        if not first:
            logger.warning("a requestState already used came back on %s %r: refused", CARRIER, tool)
            raise MCPError(
                code=INVALID_PARAMS, message="Invalid or expired requestState", data={"reason": "invalid_request_state"}
            )
        return await call_next(ctx)


def spend_sealed_rounds_once(server: MCPServer[Any], services: Callable[[], Services | None]) -> None:
    """Put the pair around the SDK's RequestStateBoundary in the server's middleware chain (outermost first)."""
    chain = server.middleware
    boundary = next(i for i, m in enumerate(chain) if isinstance(m, RequestStateBoundary))
    chain.insert(boundary, NoteSealedRound())
    # Kept until the state could no longer pass the boundary: its lifetime, plus the clock skew the SDK allows.
    keep_s = config.REQUEST_STATE_TTL_S + config.REQUEST_STATE_SKEW_S
    chain.insert(boundary + 2, SpendSealedRound(services, keep_s=keep_s))
