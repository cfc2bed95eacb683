"""Tasks toolset: read (and wait for) asynchronous Databar tasks, and recover them from the ledger."""

import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

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
from databar_mcp.tools.task_view import TaskView, build_view, get_task_call

TaskId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="The task_id returned by a run tool (or listed by list_recent_tasks).",
    ),
]
Offset = Annotated[
    int, Field(ge=0, le=config.MAX_OFFSET, description="Index of the first result row to return (paging).")
]
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
call it until next_call is absent (or read every row at once from the full_result resource, or write them \
to a file with export_task_result). If the task is still running when the wait ends, call get_task again \
with the same task_id. Databar deletes results after 24 hours, but every finished result is kept in the \
local ledger and served from there (served_from: "ledger")."""

LIST_RECENT_TASKS_DESCRIPTION = """\
List the tasks this server submitted or read, newest first, from its local ledger: status, waterfall, \
rows, rows with data, credits, age, and whether the full result is stored locally.

Free and read-only: no request to Databar. Use it to recover after a crash, a lost conversation or a \
client timeout (find the task_id, then call get_task), and before re-running anything after a \
submission_unknown error: `unsettled_submissions` lists runs whose outcome is not known."""


CANCEL_TASK_DESCRIPTION = """\
Cancel a running Databar task (from any run tool). Databar refunds the credits of work not yet done; rows \
already finished stay billed and are returned.

Changes state at Databar; cancelling a finished task changes nothing and answers conflict. Next: nothing, \
or get_task to read what finished before the cancel."""


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


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def iso(ts: float) -> str:
    """A moment as a user reads it anywhere: UTC, to the second."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def target_of(endpoint: str) -> str:
    """'waterfalls/email_getter/bulk-run' -> 'email_getter'."""
    parts = endpoint.strip("/").split("/")
    return parts[1] if len(parts) >= 2 else endpoint


def expired_body(task_id: str, record: TaskRecord | None) -> ErrorBody:
    """result_expired, with what re-running would cost when the ledger knows the original run."""
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


def unknown_body(task: Task) -> ErrorBody:
    """Databar does not know the task (404 past the grace period): nothing to read, and it is tracked no more."""
    return ErrorBody(
        code=ErrorCode.NOT_FOUND,
        http_status=404,
        message=f"Databar does not know task {task.task_id} (another API key or account, or it never showed the "
        "task it returned); its run may still have billed.",
        task_id=task.task_id,
        next_steps=["Call list_recent_tasks to see the run it came from, and check the Databar web app."],
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
) -> CallToolResult:
    """A task as a tool result: a page of rows; gone -> the ledger copy or result_expired; failed -> task_failed;
    unknown to Databar -> not_found. The ledger is read once, only when the answer needs it."""
    gone = task.status == TaskStatus.GONE
    record = None
    if gone or (estimated_credits is None and look_up_estimate):
        record = await svc.tasks.read(task.task_id, with_data=gone)
    if gone:
        stored = record.stored_task() if record is not None else None
        if stored is None:
            raise ToolFailure(expired_body(task.task_id, record))
        task, served_from = stored, "ledger"
    if task.status == TaskStatus.FAILED:
        raise ToolFailure(failed_body(task))
    if task.status == TaskStatus.UNKNOWN_TO_DATABAR:
        raise ToolFailure(unknown_body(task))
    if estimated_credits is None and look_up_estimate and record is not None:
        estimated_credits = record.estimated_credits
    view, text = build_view(
        task,
        offset=offset,
        limit=limit,
        budget=svc.settings.result_budget_chars,
        estimated_credits=estimated_credits,
        wait_hint_s=svc.settings.tool_deadline_s,
        served_from=served_from,
        reused=reused,
    )
    return ok_result(view, text)


async def read_task(svc: Services, task_id: str) -> tuple[Task, Literal["api", "ledger"], float | None]:
    """The task, from the ledger when its result is stored (no request), else one poll of Databar; with the
    run's estimated cost when the ledger knows it (one ledger read either way)."""
    record = await svc.tasks.read(task_id)
    stored = record.stored_task() if record is not None else None
    if stored is not None:
        return stored, "ledger", record.estimated_credits if record is not None else None
    try:
        return await svc.tasks.poll(task_id), "api", record.estimated_credits if record is not None else None
    except ResultExpired:
        raise ToolFailure(expired_body(task_id, record)) from None


async def finished_task(svc: Services, task_id: str) -> tuple[Task, Literal["api", "ledger"]]:
    """A finished task with its data, or a structured failure saying why there is none yet."""
    task, source, _ = await read_task(svc, task_id)
    if task.status == TaskStatus.GONE:
        raise ToolFailure(expired_body(task_id, await svc.tasks.read(task_id, with_data=False)))
    if task.status == TaskStatus.FAILED:
        raise ToolFailure(failed_body(task))
    if task.status == TaskStatus.UNKNOWN_TO_DATABAR:
        raise ToolFailure(unknown_body(task))
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
    ) -> Annotated[CallToolResult, TaskView]:
        svc = services(ctx)

        async def work() -> CallToolResult:
            task, source, estimate = await read_task(svc, task_id)
            if not task.is_terminal and wait_seconds > 0:
                await progress_reporter(ctx, task)
                task = (
                    await svc.tasks.wait(
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
                look_up_estimate=False,  # read_task's ledger read already brought it
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
                task = await svc.tasks.cancel(task_id)
            except ConflictError as exc:
                body = from_api_error(exc, task_id=task_id)
                body.message = f"Task {task_id} is already finished; nothing was cancelled. ({exc.message})"
                body.next_steps = [f"Read it with {get_task_call(task_id)}."]
                raise ToolFailure(body) from None
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
        limit: Annotated[int, Field(ge=1, le=100, description="Most tasks to list (newest first).")] = 20,
        offset: Annotated[int, Field(ge=0, le=config.MAX_OFFSET, description="Tasks to skip (paging).")] = 0,
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
