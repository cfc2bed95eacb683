"""Tasks toolset: read (and wait for) an asynchronous Databar task."""

from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult
from pydantic import Field

from databar_mcp.api.errors import ResultExpired
from databar_mcp.api.models import Task, TaskStatus
from databar_mcp.config import Settings
from databar_mcp.tools.context import Services, ToolContext, hints, services
from databar_mcp.tools.failures import from_api_error
from databar_mcp.tools.guard import guarded
from databar_mcp.tools.results import ErrorBody, ErrorCode, ToolFailure, error_result, ok_result
from databar_mcp.tools.task_view import TaskView, build_view

TaskId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The task_id returned by a run tool.",
    ),
]
Offset = Annotated[int, Field(ge=0, description="Index of the first result row to return (paging).")]
Limit = Annotated[
    int | None,
    Field(ge=1, le=10_000, description="Most rows to return; default: as many as fit the result budget."),
]

GET_TASK_DESCRIPTION = """\
Get the status and results of a Databar task (from run_bulk_waterfall or another run tool), waiting for it \
to finish if needed.

Free: reading a task spends no credits. Waits up to wait_seconds (never past the server's deadline) and \
returns as soon as the task finishes; reports progress while waiting.

Results are a list aligned to the inputs: row i is the result for input i, null when nothing was found. \
Large results are paged: the answer holds as many rows as fit, plus next_offset and the exact next_call; \
call it until next_call is absent. If the task is still running when the wait ends, call get_task again \
with the same task_id. Databar deletes results after 24 hours: read them before then."""


def wait_field(settings: Settings) -> Any:
    """The wait_seconds parameter: bounded by the configured deadline, so no call outlives the client."""
    return Field(
        ge=0,
        le=settings.tool_deadline_s,
        description=f"Seconds to wait for the task to finish before answering (0..{settings.tool_deadline_s:g}).",
    )


async def progress_reporter(ctx: ToolContext, task: Task) -> None:
    """Send an MCP progress notification ("412/1,000 rows, 37 found so far") when the client asked for it."""
    p = task.progress
    if p is None or p.total <= 0:
        return
    await ctx.report_progress(p.finished, p.total, f"{p.finished:,}/{p.total:,} rows, {p.completed:,} found so far")


def task_result(
    svc: Services, task: Task, *, offset: int, limit: int | None, estimated_credits: float | None = None
) -> CallToolResult:
    """A task as a tool result: data pages on success; task_failed and result_expired as errors."""
    if task.status == TaskStatus.GONE:
        raise ToolFailure(from_api_error(ResultExpired("gone", status_code=410), task_id=task.task_id))
    if task.status == TaskStatus.FAILED:
        raise ToolFailure(
            ErrorBody(
                code=ErrorCode.TASK_FAILED,
                message="The Databar task failed: " + ("; ".join(task.errors[:5]) or "no reason given") + ".",
                task_id=task.task_id,
                details={"credits_spent": task.credits_spent},
                next_steps=[
                    "Check the inputs (list_waterfalls shows the required fields) and run again.",
                    "If the inputs are right, the providers may be down: try other providers or retry later.",
                ],
            )
        )
    view, text = build_view(
        task,
        offset=offset,
        limit=limit,
        budget=svc.settings.result_budget_chars,
        estimated_credits=estimated_credits,
        wait_hint_s=svc.settings.tool_deadline_s,
    )
    return ok_result(view, text)


def register(server: MCPServer[Services], settings: Settings) -> None:
    @server.tool(
        name="get_task",
        description=GET_TASK_DESCRIPTION,
        annotations=hints(title="Get task status and results", read_only=True, destructive=False, idempotent=True),
    )
    async def get_task(
        task_id: TaskId,
        ctx: ToolContext,
        wait_seconds: Annotated[float, wait_field(settings)] = settings.tool_deadline_s,
        offset: Offset = 0,
        limit: Limit = None,
    ) -> Annotated[CallToolResult, TaskView]:
        svc = services(ctx)

        async def work() -> CallToolResult:
            task = await svc.runner.poll_once(task_id)
            if not task.is_terminal and wait_seconds > 0:
                await progress_reporter(ctx, task)
                task = (
                    await svc.runner.wait(
                        task_id,
                        timeout_s=wait_seconds,
                        first=task,
                        on_progress=lambda t: progress_reporter(ctx, t),
                    )
                    or task
                )
            return task_result(svc, task, offset=offset, limit=limit)

        return await guarded(work(), task_id=task_id)


__all__ = ["error_result", "progress_reporter", "register", "task_result", "wait_field"]
