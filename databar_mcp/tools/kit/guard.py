"""Run a tool body and turn the failures an agent can act on into structured error results."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

from mcp.types import CallToolResult

from databar_mcp.api.errors import DatabarError
from databar_mcp.core.ledger.backend import LedgerError
from databar_mcp.tools.kit.failures import from_api_error, from_ledger_error
from databar_mcp.tools.kit.results import ToolFailure, error_result

logger = logging.getLogger("databar_mcp.tools")
F = TypeVar("F", bound=Callable[..., Awaitable[CallToolResult]])


async def guarded(work: Awaitable[CallToolResult], *, task_id: str | None = None) -> CallToolResult:
    try:
        return await work
    except ToolFailure as failure:
        return error_result(failure.body)
    except DatabarError as exc:
        body = from_api_error(exc, task_id=task_id)
        logger.info("tool failed: %s (%s)", body.code.value, body.http_status)
        return error_result(body)
    except LedgerError as exc:  # the ledger's trouble, not the agent's: a structured answer all the same
        logger.warning("tool failed: the ledger could not be used: %s", exc)
        return error_result(from_ledger_error(exc, task_id=task_id))


def guarding(fn: F) -> F:
    """The tool `fn` as the SDK registers it: its failures an agent can act on become error results. Only the
    call is wrapped: functools.wraps leaves `fn`'s signature (which the SDK reads through __wrapped__) to say
    what the tool accepts."""

    @functools.wraps(fn)
    async def call(**arguments: Any) -> CallToolResult:
        return await guarded(fn(**arguments), task_id=arguments.get("task_id"))

    return cast(F, call)  # the same parameters, by __wrapped__
