"""Tool results: a pydantic output model plus its compact text rendering, or a structured error.

Errors the agent can act on are tool results with `isError: true` and an `ErrorBody`; only our own bugs
become protocol errors.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any

from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from databar_mcp.shaping import compact_json, escape_text, largest_fitting, result_size


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
    UPSTREAM_ERROR = "upstream_error"


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


def render_error(body: ErrorBody) -> str:
    lines = [f"Error [{body.code.value}]" + (f" (HTTP {body.http_status})" if body.http_status else "")]
    lines.append(body.message)
    if body.task_id:
        lines.append(f"task_id: {body.task_id}")
    lines.extend(f"- {f.field}: {f.problem}" for f in body.fields)
    if body.details:
        details = escape_text(compact_json(body.details))
        lines.append(
            "Details: " + (details if len(details) <= 4_000 else details[:4_000] + "…(full in structured content)")
        )
    if body.next_steps:
        lines.append("Next steps:")
        lines.extend(f"- {step}" for step in body.next_steps)
    return "\n".join(lines)


def error_result(body: ErrorBody) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=render_error(body))],
        structured_content=body.model_dump(mode="json", exclude_defaults=False),
        is_error=True,
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
