"""Tasks toolset: read (and wait for) asynchronous Databar tasks, and recover them from the ledger."""

import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, cast

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from databar_mcp import config
from databar_mcp.api.errors import ConflictError, ResultExpired
from databar_mcp.api.models import Task, TaskStatus
from databar_mcp.config import Settings
from databar_mcp.core.shaping import escape_text, largest_fitting, result_size
from databar_mcp.core.store import Submission, TaskRecord
from databar_mcp.tools.context import Services, ToolContext, services
from databar_mcp.tools.failures import from_api_error
from databar_mcp.tools.guard import guarded
from databar_mcp.tools.registry import Toolbox
from databar_mcp.tools.results import ErrorBody, ErrorCode, ToolFailure, error_result, ok_result
from databar_mcp.tools.task_view import (
    RESPONSE_FORMAT_DESCRIPTION,
    ResponseFormat,
    TaskView,
    build_view,
    get_task_call,
)

TaskId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="task_id from a run tool or list_recent_tasks.",
    ),
]
Offset = Annotated[int, Field(ge=0, le=config.MAX_OFFSET, description="First result row to return.")]
Limit = Annotated[
    int | None,
    Field(ge=1, le=10_000, description="Most rows to return; default: as many as fit."),
]

GET_TASK_DESCRIPTION = """\
Get a task's status and results (from any run tool), waiting up to wait_seconds for it to finish. Free.

Row i is input i's result (null: nothing found). Large results are paged: follow next_call until it is \
absent. Still running when the wait ends: call again. Results Databar deleted (after 24 h) come from the \
local ledger."""

LIST_RECENT_TASKS_DESCRIPTION = """\
List the tasks this server ran or read, newest first, from its local ledger. Free. Use it to find a lost \
task_id, and after submission_unknown before anything else (unsettled_submissions)."""


CANCEL_TASK_DESCRIPTION = """\
Cancel a running task. Databar refunds work not yet done; finished rows stay billed and are returned. A \
finished task answers conflict. Next: get_task to read what finished."""


def wait_field(settings: Settings) -> Any:
    """The wait_seconds parameter: bounded by the configured deadline, so no call outlives the client."""
    return Field(
        ge=0,
        le=settings.tool_deadline_s,
        description="Seconds to wait for the result.",
    )


async def progress_reporter(ctx: ToolContext, task: Task) -> None:
    """Send an MCP progress notification ("412/1,000 rows, 37 found so far") when the client asked for it."""
    p = task.progress
    if p is None or p.total <= 0:
        return
    await ctx.report_progress(p.finished, p.total, f"{p.finished:,}/{p.total:,} rows, {p.completed:,} found so far")


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def iso(ts: float) -> str:
    """A moment as a user reads it anywhere: UTC, to the second."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def target_of(endpoint: str) -> str:
    """'waterfalls/email_getter/bulk-run' -> 'email_getter'."""
    parts = endpoint.strip("/").split("/")
    return parts[1] if len(parts) >= 2 else endpoint


async def expired_body(svc: Services, task_id: str) -> ErrorBody:
    """result_expired, with what re-running would cost when the ledger knows the original run."""
    record = await svc.ledger.task(task_id)
    sub = record.submission if record is not None else None
    details: dict[str, Any] = {}
    next_steps = ["Run the enrichment again to get the data anew (it will be billed again)."]
    if sub is not None:
        details = {"rows": sub.rows, "rerun_estimated_credits": sub.estimated_credits, "tool": sub.tool}
        if sub.estimated_credits is not None:
            next_steps = [
                f"Re-running the same {sub.rows} rows with {target_of(sub.endpoint)} would cost up to "
                f"{sub.estimated_credits:g} credits (pass force=true: the original is older than the "
                "duplicate window or gone).",
            ]
    return ErrorBody(
        code=ErrorCode.RESULT_EXPIRED,
        http_status=410,
        message="Databar has deleted this task's data (results are kept 24 hours) and no local copy exists.",
        task_id=task_id,
        details=details,
        next_steps=next_steps,
    )


def failed_body(task: Task) -> ErrorBody:
    return ErrorBody(
        code=ErrorCode.TASK_FAILED,
        message="The Databar task failed: " + ("; ".join(task.errors[:5]) or "no reason given") + ".",
        task_id=task.task_id,
        details={"credits_spent": task.credits_spent},
        next_steps=[
            "Check the inputs (list_waterfalls shows the required fields) and run again.",
            "If the inputs are right, the providers may be down: try other providers or retry later.",
        ],
    )


async def deliver(
    svc: Services,
    task: Task,
    *,
    offset: int,
    limit: int | None,
    estimated_credits: float | None = None,
    served_from: Literal["api", "ledger"] = "api",
    reused: bool = False,
    look_up_estimate: bool = True,
    detailed: bool = False,
) -> CallToolResult:
    """A task as a tool result: a page of rows; gone -> the ledger copy or result_expired; failed -> task_failed."""
    if task.status == TaskStatus.GONE:
        stored = await svc.ledger.stored_task(task.task_id)
        if stored is None:
            raise ToolFailure(await expired_body(svc, task.task_id))
        task, served_from = stored, "ledger"
    if task.status == TaskStatus.FAILED:
        raise ToolFailure(failed_body(task))
    if estimated_credits is None and look_up_estimate:
        record = await svc.ledger.task(task.task_id)
        if record is not None and record.submission is not None:
            estimated_credits = record.submission.estimated_credits
    inputs = (await submitted_rows(svc, task.task_id) or []) if detailed else None
    view, text = build_view(
        task,
        offset=offset,
        limit=limit,
        budget=svc.settings.result_budget_chars,
        estimated_credits=estimated_credits,
        wait_hint_s=svc.settings.tool_deadline_s,
        served_from=served_from,
        reused=reused,
        inputs=inputs,
    )
    return ok_result(view, text)


async def submitted_rows(svc: Services, task_id: str) -> list[Any] | None:
    """The rows submitted for this task, as recorded in the ledger (None if it was not submitted here)."""
    record = await svc.ledger.task(task_id)
    if record is None or record.submission is None:
        return None
    params = record.submission.request.get("params")
    if isinstance(params, dict):
        return [params]  # a single-row run
    return cast(list[Any], params) if isinstance(params, list) else None


async def read_task(svc: Services, task_id: str) -> tuple[Task, Literal["api", "ledger"], float | None]:
    """The task, from the ledger when its result is stored (no request), else one poll of Databar; with the
    run's estimated cost when the ledger knows it."""
    stored = await svc.ledger.stored(task_id)
    if stored is not None:
        return stored[0], "ledger", stored[1]
    try:
        return await svc.runner.poll(task_id), "api", None
    except ResultExpired:
        raise ToolFailure(await expired_body(svc, task_id)) from None


async def finished_task(svc: Services, task_id: str) -> tuple[Task, Literal["api", "ledger"]]:
    """A finished task with its data, or a structured failure saying why there is none yet."""
    task, source, _ = await read_task(svc, task_id)
    if task.status == TaskStatus.GONE:
        raise ToolFailure(await expired_body(svc, task_id))
    if task.status == TaskStatus.FAILED:
        raise ToolFailure(failed_body(task))
    if not task.is_terminal:
        raise ToolFailure(
            ErrorBody(
                code=ErrorCode.CONFLICT,
                message=f"Task {task_id} is still {task.status}; its result is not complete yet.",
                task_id=task_id,
                next_steps=[f"Wait for it with {get_task_call(task_id, wait_seconds=svc.settings.tool_deadline_s)}."],
            )
        )
    return task, source


# ---- list_recent_tasks ---------------------------------------------------------------------------------


class RecentTask(BaseModel):
    task_id: str
    status: str
    tool: str | None = None
    waterfall: str | None = None
    rows: int | None = Field(default=None, description="Input rows submitted (or result rows when not known).")
    rows_with_data: int | None = None
    credits_spent: float | None = None
    estimated_credits: float | None = None
    submitted_at: str
    age_seconds: int
    result_stored: bool = Field(description="True when the full result is in the local ledger (kept past 24 h).")
    next_call: str


class UnsettledSubmission(BaseModel):
    fingerprint: str = Field(description="The run's fingerprint, as given in the submission_unknown error.")
    tool: str
    waterfall: str
    rows: int | None = None
    estimated_credits: float | None = None
    submitted_at: str
    age_seconds: int
    outcome: str = Field(description='"unknown": the reply was lost; "pending": being sent right now.')


class RecentTasks(BaseModel):
    tasks: list[RecentTask]
    total: int
    offset: int
    next_offset: int | None = None
    next_call: str | None = None
    unsettled_submissions: list[UnsettledSubmission] = Field(default_factory=lambda: list[UnsettledSubmission]())
    message: str


def recent_task(record: TaskRecord, now: float, wait_s: float) -> RecentTask:
    sub = record.submission
    return RecentTask(
        task_id=record.task_id,
        status=record.status,
        tool=sub.tool if sub else None,
        waterfall=target_of(sub.endpoint) if sub else None,
        rows=(sub.rows if sub and sub.rows is not None else record.rows_total),
        rows_with_data=record.rows_with_data,
        credits_spent=record.credits_spent,
        estimated_credits=sub.estimated_credits if sub else None,
        submitted_at=_iso(record.submitted_at) or "",
        age_seconds=int(max(0.0, now - record.submitted_at)),
        result_stored=record.has_result,
        next_call=get_task_call(record.task_id)
        if record.is_terminal
        else get_task_call(record.task_id, wait_seconds=wait_s),
    )


def unsettled(sub: Submission, now: float) -> UnsettledSubmission:
    return UnsettledSubmission(
        fingerprint=sub.fingerprint,
        tool=sub.tool,
        waterfall=target_of(sub.endpoint),
        rows=sub.rows,
        estimated_credits=sub.estimated_credits,
        submitted_at=_iso(sub.created_at) or "",
        age_seconds=int(max(0.0, now - sub.created_at)),
        outcome=sub.outcome,
    )


def render_recent(listing: RecentTasks) -> str:
    lines = [listing.message]
    for t in listing.tasks:
        found = "" if t.rows_with_data is None else f", {t.rows_with_data} with data"
        credits = "" if t.credits_spent is None else f", {t.credits_spent:g} credits"
        stored = ", result stored" if t.result_stored else ""
        lines.append(
            f"- {t.task_id} {t.status} {t.waterfall or '?'}: {t.rows if t.rows is not None else '?'} rows"
            f"{found}{credits}{stored}, {t.age_seconds} s ago. Next: {t.next_call}"
        )
    for s in listing.unsettled_submissions:
        lines.append(
            f"! outcome {s.outcome}: {s.waterfall}, {s.rows} rows, {s.age_seconds} s ago, fingerprint {s.fingerprint}"
        )
    if listing.next_call:
        lines.append(f"Next page: {listing.next_call}")
    return escape_text("\n".join(lines))


def register(box: Toolbox) -> None:
    settings = box.settings

    @box.tool(
        name="get_task",
        toolset="tasks",
        title="Get task status and results",
        description=GET_TASK_DESCRIPTION,
        read_only=True,
        destructive=False,
        idempotent=True,
    )
    async def get_task(
        task_id: TaskId,
        ctx: ToolContext,
        wait_seconds: Annotated[float, wait_field(settings)] = settings.tool_deadline_s,
        offset: Offset = 0,
        limit: Limit = None,
        response_format: Annotated[ResponseFormat, Field(description=RESPONSE_FORMAT_DESCRIPTION)] = "concise",
    ) -> Annotated[CallToolResult, TaskView]:
        svc = services(ctx)

        async def work() -> CallToolResult:
            task, source, estimate = await read_task(svc, task_id)
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
            return await deliver(
                svc,
                task,
                offset=offset,
                limit=limit,
                served_from=source,
                estimated_credits=estimate,
                look_up_estimate=source == "api",  # a ledger read already brought it
                detailed=response_format == "detailed",
            )

        return await guarded(work(), task_id=task_id)

    @box.tool(
        name="cancel_task",
        toolset="tasks",
        title="Cancel a running task",
        description=CANCEL_TASK_DESCRIPTION,
        read_only=False,
        destructive=True,
        idempotent=True,
    )
    async def cancel_task(task_id: TaskId, ctx: ToolContext) -> Annotated[CallToolResult, TaskView]:
        svc = services(ctx)

        async def work() -> CallToolResult:
            try:
                task = await svc.client.cancel_task(task_id)
            except ConflictError as exc:
                body = from_api_error(exc, task_id=task_id)
                body.message = f"Task {task_id} is already finished; nothing was cancelled. ({exc.message})"
                body.next_steps = [f"Read it with {get_task_call(task_id)}."]
                raise ToolFailure(body) from None
            await svc.ledger.observe(task)
            return await deliver(svc, task, offset=0, limit=None)

        return await guarded(work(), task_id=task_id)

    @box.tool(
        name="list_recent_tasks",
        toolset="tasks",
        title="List recent tasks",
        description=LIST_RECENT_TASKS_DESCRIPTION,
        read_only=True,
        destructive=False,
        idempotent=True,
    )
    async def list_recent_tasks(
        ctx: ToolContext,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
        offset: Annotated[int, Field(ge=0, le=config.MAX_OFFSET)] = 0,
        unfinished_only: Annotated[bool, Field(description="Only tasks not finished yet.")] = False,
    ) -> Annotated[CallToolResult, RecentTasks]:
        svc = services(ctx)

        async def work() -> CallToolResult:
            now = time.time()
            records, total = await svc.ledger.recent(limit=limit, offset=offset, unfinished_only=unfinished_only)
            window_start = now - max(svc.settings.duplicate_window_s, config.API_RETENTION_S)
            pending = [
                unsettled(s, now)
                for s in await svc.ledger.unknown_submissions(limit=20)
                if s.created_at >= window_start
            ]
            tasks = [recent_task(r, now, svc.settings.tool_deadline_s) for r in records]

            def make(count: int) -> RecentTasks:
                shown_end = offset + count
                more = shown_end < total
                return RecentTasks(
                    tasks=tasks[:count],
                    total=total,
                    offset=offset,
                    next_offset=shown_end if more else None,
                    next_call=f"list_recent_tasks(offset={shown_end}, limit={limit})" if more else None,
                    unsettled_submissions=pending,
                    message=f"{total} task(s) in the ledger"
                    + (" not finished" if unfinished_only else "")
                    + f"; showing {count} from {offset}."
                    + (f" {len(pending)} submission(s) with unknown outcome." if pending else ""),
                )

            count = largest_fitting(
                len(tasks),
                lambda k: result_size(make(k).model_dump(mode="json"), render_recent(make(k))),
                svc.settings.result_budget_chars,
            )
            listing = make(count)
            return ok_result(listing, render_recent(listing))

        return await guarded(work())


__all__ = ["error_result", "finished_task", "progress_reporter", "read_task", "register", "wait_field"]
