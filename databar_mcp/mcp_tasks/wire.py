"""The two wire shapes of an MCP task: 2025-11-25 experimental tasks and the 2026-07-28 tasks extension.

Both describe the same handle; they differ in field names (`ttl`/`pollInterval` vs `ttlMs`/`pollIntervalMs`),
in where the result travels (`tasks/result` vs inlined in `tasks/get`) and in what a tool error is
("failed" in 2025-11-25, "completed" with `isError` in the extension).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS, MISSING_REQUIRED_CLIENT_CAPABILITY

from databar_mcp.mcp_tasks.handles import Handle

EXTENSION_ID = "io.modelcontextprotocol/tasks"
RELATED_TASK_KEY = "io.modelcontextprotocol/related-task"
IMMEDIATE_RESPONSE_KEY = "io.modelcontextprotocol/model-immediate-response"
PROGRESS_META_KEY = "io.databar/progress"
DATABAR_TASK_META_KEY = "io.databar/task_id"

LEGACY_STATUS = {
    "working": "working",
    "input_required": "input_required",
    "completed": "completed",
    "tool_error": "failed",
    "cancelled": "cancelled",
    "protocol_error": "failed",
}
MODERN_STATUS = {**LEGACY_STATUS, "tool_error": "completed"}


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _meta(handle: Handle) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if handle.progress is not None:
        meta[PROGRESS_META_KEY] = handle.progress
    if handle.databar_task_id is not None:
        meta[DATABAR_TASK_META_KEY] = handle.databar_task_id
    return meta


def legacy_task(handle: Handle) -> dict[str, Any]:
    """The 2025-11-25 `Task` object."""
    task: dict[str, Any] = {
        "taskId": handle.handle_id,
        "status": LEGACY_STATUS[handle.state],
        "createdAt": iso(handle.created_at),
        "lastUpdatedAt": iso(handle.updated_at),
        "ttl": handle.ttl_ms,
    }
    if handle.status_message:
        task["statusMessage"] = handle.status_message
    if not handle.terminal and handle.poll_ms is not None:
        task["pollInterval"] = handle.poll_ms
    return task


def legacy_get(handle: Handle) -> dict[str, Any]:
    """tasks/get (and tasks/cancel) result: the task, with our progress and Databar task id in `_meta`."""
    result = legacy_task(handle)
    if meta := _meta(handle):
        result["_meta"] = meta
    return result


def legacy_created(handle: Handle) -> dict[str, Any]:
    """CreateTaskResult, with the immediate answer a host may hand the model while the task runs."""
    note = f"Started MCP task {handle.handle_id}"
    if handle.databar_task_id:
        note += f" (Databar task {handle.databar_task_id}; get_task reads it too)"
    return {"task": legacy_task(handle), "_meta": {IMMEDIATE_RESPONSE_KEY: note + "."}}


def modern_task(handle: Handle) -> dict[str, Any]:
    """The extension's `Task` object (no result fields)."""
    task: dict[str, Any] = {
        "taskId": handle.handle_id,
        "status": MODERN_STATUS[handle.state],
        "createdAt": iso(handle.created_at),
        "lastUpdatedAt": iso(handle.updated_at),
        "ttlMs": handle.ttl_ms,
    }
    if handle.status_message:
        task["statusMessage"] = handle.status_message
    if handle.poll_ms is not None:
        task["pollIntervalMs"] = handle.poll_ms
    return task


def modern_created(handle: Handle) -> dict[str, Any]:
    return {"resultType": "task", **modern_task(handle)}


def modern_detailed(handle: Handle) -> dict[str, Any]:
    """tasks/get result: a DetailedTask for the handle's status."""
    result: dict[str, Any] = {"resultType": "complete", **modern_task(handle)}
    if handle.state in ("completed", "tool_error", "cancelled") and handle.result is not None:
        if handle.state != "cancelled":
            result["result"] = handle.result
    elif handle.state == "protocol_error" and handle.result is not None:
        result["error"] = handle.result
    elif handle.state == "input_required" and handle.input is not None:
        result["inputRequests"] = handle.input.get("inputRequests") or {}
    if meta := _meta(handle):
        result["_meta"] = meta
    return result


def not_found() -> MCPError:
    return MCPError(code=INVALID_PARAMS, message="Failed to retrieve task: Task not found")


def expired() -> MCPError:
    return MCPError(code=INVALID_PARAMS, message="Failed to retrieve task: Task has expired")


def missing_extension() -> MCPError:
    return MCPError(
        code=MISSING_REQUIRED_CLIENT_CAPABILITY,
        message="Missing required client capability",
        data={"requiredCapabilities": {"extensions": {EXTENSION_ID: {}}}},
    )
