"""Tool results: a pydantic output model plus its compact text rendering, or a structured error.

Errors the agent can act on are tool results with `isError: true` and an `ErrorBody` carried as text (a
summary line, then the body as JSON); only our own bugs become protocol errors.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from databar_mcp.config import ERROR_DETAIL_STRING_CHARS, RESULT_BUDGET_CHARS
from databar_mcp.core.shaping import compact_json, escape_text, largest_fitting, result_size, truncate_strings


class ErrorCode(StrEnum):
    INSUFFICIENT_CREDITS = "insufficient_credits"
    RESULT_EXPIRED = "result_expired"
    VALIDATION_ERROR = "validation_error"
    RATE_LIMITED = "rate_limited"
    NOT_FOUND = "not_found"
    AUTH_FAILED = "auth_failed"
    TASK_FAILED = "task_failed"
    SUBMISSION_UNKNOWN = "submission_unknown"
    CONFLICT = "conflict"
    SPEND_LIMIT = "spend_limit"
    SPEND_GUARD_UNAVAILABLE = "spend_guard_unavailable"  # the guard could not check (balance unreadable): retry
    CONFIRMATION_REQUIRED = "confirmation_required"  # the user has not confirmed (yet): ask, then call again
    UPSTREAM_ERROR = "upstream_error"
    LEDGER_UNAVAILABLE = "ledger_unavailable"


class FieldProblem(BaseModel):
    field: str
    problem: str


class ErrorBody(BaseModel):
    """What went wrong, and what to do next."""

    code: ErrorCode
    http_status: int | None = None
    message: str
    next_steps: list[str] = Field(default_factory=lambda: list[str]())
    task_id: str | None = None
    retry_after_seconds: float | None = None
    fields: list[FieldProblem] = Field(default_factory=lambda: list[FieldProblem]())
    details: dict[str, Any] = Field(default_factory=lambda: dict[str, Any]())


class ToolFailure(Exception):
    """Raised inside a tool to end it with a structured error result."""

    def __init__(self, body: ErrorBody) -> None:
        super().__init__(body.message)
        self.body = body


def summary_line(body: ErrorBody) -> str:
    """`Error [code] (HTTP n): message` on one line, for people and clients that show only the first line."""
    head = f"Error [{body.code.value}]" + (f" (HTTP {body.http_status})" if body.http_status else "")
    return escape_text(" ".join(f"{head}: {body.message}".split()))


def render_error(body: ErrorBody) -> str:
    """The one-line summary, then the whole body as one line of JSON (what an agent or a program parses)."""
    return summary_line(body) + "\n" + escape_text(compact_json(body.model_dump(mode="json")))


def fit_error(body: ErrorBody, budget: int) -> ErrorBody:
    """The body itself when it fits `budget`; else with long detail strings cut, then details and fields dropped."""
    if len(render_error(body)) <= budget:
        return body
    cut = body.model_copy(update={"details": truncate_strings(body.details, ERROR_DETAIL_STRING_CHARS)})
    if len(render_error(cut)) <= budget:
        return cut
    omitted = {"omitted": f"details too large for one result ({len(compact_json(body.details))} chars)"}
    cut = body.model_copy(update={"details": omitted})
    while cut.fields and len(render_error(cut)) > budget:
        cut = cut.model_copy(update={"fields": cut.fields[: len(cut.fields) // 2]})
    return cut


def error_result(body: ErrorBody, budget: int = RESULT_BUDGET_CHARS) -> CallToolResult:
    """An isError result whose only content is text: the summary line, then the body as JSON, one block each.

    No structuredContent: TypeScript-SDK clients (the MCP Inspector, hosts built on that SDK) validate
    structuredContent against the tool's output schema even when isError is true, so an error body sent
    there is replaced by a schema complaint; text reaches every client intact. The JSON block stands alone,
    so a result cut to a smaller budget (tools/kit/fitting.py) stays valid JSON.
    """
    summary, body_json = render_error(fit_error(body, budget)).split("\n", 1)
    return CallToolResult(
        content=[TextContent(type="text", text=summary), TextContent(type="text", text=body_json)], is_error=True
    )


def ok_result(output: BaseModel, text: str) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=output.model_dump(mode="json"),
    )


def fitted_result(
    count: int, make: Callable[[int], BaseModel], render: Callable[[Any], str], budget: int
) -> CallToolResult:
    """The result holding the most of `count` items (make(k) shows the first k) within `budget` characters."""

    def size(k: int) -> int:
        model = make(k)
        return result_size(model.model_dump(mode="json"), render(model))

    model = make(largest_fitting(count, size, budget))
    return ok_result(model, render(model))


def with_line(result: CallToolResult, line: str | None, budget: int, *, second: bool = False) -> CallToolResult:
    """The result with one more line at the end of its text (`second`: right after its first line), when there
    is one and it fits the budget."""
    texts = [block for block in result.content if isinstance(block, TextContent)]
    if line is None or not texts:
        return result
    text = escape_text(line)
    if result_size(result.structured_content or {}, texts[0].text + "\n" + text) > budget:
        return result  # the rows the page holds come first; the line is a suggestion
    if second:
        head, newline, rest = texts[0].text.partition("\n")
        texts[0].text = head + "\n" + text + (newline + rest if newline else "")
    else:
        texts[0].text += "\n" + text
    return result
