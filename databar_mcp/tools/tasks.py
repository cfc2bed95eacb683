"""Tasks toolset: read (and wait for) asynchronous Databar tasks, and recover them from the ledger."""

import time
from typing import Annotated, Any, Literal, cast

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from databar_mcp import config
from databar_mcp.api.errors import ConflictError
from databar_mcp.api.models import Task, TaskStatus
from databar_mcp.api.statuses import TERMINAL_STATUSES
from databar_mcp.config import Toolset
from databar_mcp.core.costs import balance_or_none
from databar_mcp.core.ledger.store import COUNT_CAP, Submission, TaskRecord
from databar_mcp.core.shaping import escape_text, largest_fitting, result_size
from databar_mcp.core.untried import untried_providers_line_later
from databar_mcp.tools.kit.context import Services, ToolContext, services
from databar_mcp.tools.kit.failures import from_api_error
from databar_mcp.tools.kit.finished_answers import answer_key, finished_answers
from databar_mcp.tools.kit.params import (
    WAIT_DEFAULT,
    Limit,
    Offset,
    TaskId,
    WaitSeconds,
    wait_within,
)
from databar_mcp.tools.kit.registry import tool
from databar_mcp.tools.kit.results import ToolFailure, ok_result, with_line
from databar_mcp.tools.kit.task_kit import (
    deliver,
    iso_or_none,
    lost_run_steps,
    progress_reporter,
    read_task_record,
    recalled_rows,
    target_of,
)
from databar_mcp.tools.kit.task_view import (
    RESPONSE_FORMAT_DESCRIPTION,
    ResponseFormat,
    TaskView,
    get_task_call,
    result_rows,
)

GET_TASK_DESCRIPTION = """\
Get a task's status and results (from any run tool), waiting up to wait_seconds for it to finish. Free.

Row i is input i's result (null: nothing found). Large results are paged: follow next_call until it is \
absent. Still running when the wait ends: call again. Results Databar deleted (after 24 h) come from the \
local ledger."""

# For the results view, which follows a run in short waits: Databar's include_partial is costly, so at most one
# such read per task per config.PARTIAL_READ_INTERVAL_S (the others answer with progress only).
PARTIAL_DESCRIPTION = "While running, also rows finished so far (rate-limited)."

LIST_RECENT_TASKS_DESCRIPTION = """\
List the tasks this server ran or read, newest first, from its local ledger. Free. Use it to find a lost \
task_id, and after submission_unknown before anything else (unsettled_submissions)."""


CANCEL_TASK_DESCRIPTION = """\
Cancel a running task. Databar refunds work not yet done; finished rows stay billed and are returned. A \
finished task answers conflict. Next: get_task to read what finished."""


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
    reason: str | None = Field(default=None, description="The original error: why the outcome is unknown.")
    possibly_spent: float | None = Field(
        default=None, description="Counted as possibly spent (the estimate) until the user settles it."
    )
    balance_then: float | None = Field(default=None, description="The balance right after the reply was lost.")
    balance_now: float | None = None
    next_steps: list[str] = Field(default_factory=lambda: list[str]())


class TableRun(BaseModel):
    tool: str
    table_uuid: str
    enrichment_id: int
    name: str
    rows: int | None = None
    estimated_credits: float | None = None
    credits_spent: float | None = Field(default=None, description="Once finished (see credits_basis).")
    credits_basis: str | None = Field(
        default=None,
        description="measured: from the balance before and after; estimate: not measurable; null: "
        "not seen finished yet.",
    )
    submitted_at: str
    age_seconds: int
    next_call: str


class RecentTasks(BaseModel):
    tasks: list[RecentTask]
    total: int
    offset: int
    next_offset: int | None = None
    next_call: str | None = None
    table_runs: list[TableRun] = Field(
        default_factory=lambda: list[TableRun](),
        description="Table enrichment and exporter runs (Databar gives them no task id), on the first page.",
    )
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
        submitted_at=iso_or_none(record.submitted_at) or "",
        age_seconds=int(max(0.0, now - record.submitted_at)),
        result_stored=record.has_result,
        next_call=get_task_call(record.task_id)
        if record.is_terminal
        else get_task_call(record.task_id, wait_seconds=wait_s),
    )


def unsettled(sub: Submission, now: float, balance_now: float | None) -> UnsettledSubmission:
    return UnsettledSubmission(
        fingerprint=sub.fingerprint,
        tool=sub.tool,
        waterfall=target_of(sub.endpoint),
        rows=sub.rows,
        estimated_credits=sub.estimated_credits,
        submitted_at=iso_or_none(sub.created_at) or "",
        age_seconds=int(max(0.0, now - sub.created_at)),
        outcome=sub.outcome,
        reason=sub.error,
        possibly_spent=sub.estimated_credits,
        balance_then=sub.balance_before,
        balance_now=balance_now if sub.balance_before is not None else None,
        next_steps=lost_run_steps(sub),
    )


def table_run(sub: Submission, now: float, wait_s: float) -> TableRun:
    scope = cast(dict[str, Any], sub.request.get("scope") or {})
    table_uuid, enrichment_id = str(scope.get("table_uuid", "?")), int(scope.get("processor_id", 0))
    return TableRun(
        tool=sub.tool,
        table_uuid=table_uuid,
        enrichment_id=enrichment_id,
        name=str(scope.get("name", "?")),
        rows=sub.rows,
        estimated_credits=sub.estimated_credits,
        credits_spent=sub.credits_spent,
        credits_basis=sub.credits_basis,
        submitted_at=iso_or_none(sub.created_at) or "",
        age_seconds=int(max(0.0, now - sub.created_at)),
        next_call=f'wait_table_enrichment(table_uuid="{table_uuid}", enrichment_id={enrichment_id}, '
        f"wait_seconds={wait_s:g})",
    )


def task_credits(t: RecentTask) -> str:
    est = "" if t.estimated_credits is None else f" (est ≤ {t.estimated_credits:g})"
    if t.credits_spent is not None:
        return f", {t.credits_spent:g} credits{est}"
    if t.estimated_credits is None:
        return ""
    if t.status not in TERMINAL_STATUSES:
        return f", credits not known yet{est}"
    return f", credits not stated by Databar, counted at its estimate{est}"


def table_run_credits(r: TableRun) -> str:
    est = "?" if r.estimated_credits is None else f"{r.estimated_credits:g}"
    if r.credits_basis == "measured":
        return f"{r.credits_spent:g} credits measured from the balance (est ≤ {est})"
    if r.credits_basis == "estimate":
        return f"not measurable, counted at its estimate ≤ {est} credits"
    return f"not seen finished yet: up to {est} credits"


def unsettled_lines(s: UnsettledSubmission) -> list[str]:
    possibly = "?" if s.possibly_spent is None else f"{s.possibly_spent:g}"
    lines = [
        f"! Unknown outcome{' (still pending)' if s.outcome == 'pending' else ''}: {s.tool} {s.waterfall}, "
        f"{s.rows} rows, sent {s.submitted_at} ({s.age_seconds} s ago), fingerprint {s.fingerprint}.",
        f"  Reason: {(s.reason or 'the sender stopped before the reply came').rstrip('.')}.",
        f"  Possibly spent: up to {possibly} credits (counted as possibly spent until settled).",
    ]
    if s.balance_then is not None and s.balance_now is not None:
        change = s.balance_now - s.balance_then
        lines.append(f"  Balance since: {s.balance_then:g} then, {s.balance_now:g} now ({change:+g}).")
    elif s.balance_then is not None:
        lines.append(f"  Balance then: {s.balance_then:g} (now: could not be read).")
    lines.extend(f"  Next {n}: {step}" for n, step in enumerate(s.next_steps, start=1))
    return lines


def render_recent(listing: RecentTasks) -> str:
    lines = [listing.message]
    for t in listing.tasks:
        found = "" if t.rows_with_data is None else f", {t.rows_with_data} with data"
        stored = ", result stored" if t.result_stored else ""
        lines.append(
            f"- {t.task_id} {t.status} {t.waterfall or '?'}: {t.rows if t.rows is not None else '?'} rows"
            f"{found}{task_credits(t)}{stored}, {t.age_seconds} s ago. Next: {t.next_call}"
        )
    if listing.table_runs:
        lines.append("Table runs (Databar gives them no task id):")
    for r in listing.table_runs:
        lines.append(
            f"- {r.tool} {r.name} (enrichment_id {r.enrichment_id}) on table {r.table_uuid}: {r.rows} rows, "
            f"{table_run_credits(r)}, {r.age_seconds} s ago. Next: {r.next_call}"
        )
    for s in listing.unsettled_submissions:
        lines.extend(unsettled_lines(s))
    if listing.next_call:
        lines.append(f"Next page: {listing.next_call}")
    return escape_text("\n".join(lines))


@tool(
    Toolset.TASKS,
    name="get_task",
    title="Get task status and results",
    description=GET_TASK_DESCRIPTION,
    read_only=True,
    destructive=False,
    idempotent=True,
)
async def get_task(
    task_id: TaskId,
    ctx: ToolContext,
    wait_seconds: WaitSeconds = WAIT_DEFAULT,
    offset: Offset = 0,
    limit: Limit = None,
    response_format: Annotated[ResponseFormat, Field(description=RESPONSE_FORMAT_DESCRIPTION)] = "concise",
    partial: Annotated[bool, Field(description=PARTIAL_DESCRIPTION)] = False,
) -> Annotated[CallToolResult, TaskView]:
    svc = services(ctx)
    wait_seconds = wait_within(wait_seconds, svc.settings)
    budget = svc.settings.result_budget_chars
    key = answer_key(task_id, offset=offset, limit=limit, detailed=response_format == "detailed", budget=budget)
    answers = finished_answers(svc.ledger)
    if (kept := answers.get(key, svc.catalog)) is not None:
        return kept
    source: Literal["api", "ledger"] = "ledger"
    presented: list[Any] | None = None
    if (held := await _held_result(svc, task_id)) is not None:
        task, record, presented = held
    else:
        task, source, record = await read_task_record(svc, task_id)
    estimate = record.estimated_credits if record is not None else None
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
    if partial and source == "api" and not task.is_terminal:
        task = await svc.tasks.poll_partial(task_id) or task
    if presented is None and task.status != TaskStatus.GONE:
        presented = result_rows(task)  # made once, read twice
    answer = await deliver(
        svc,
        task,
        offset=offset,
        limit=limit,
        served_from=source,
        estimated_credits=estimate,
        look_up_estimate=False,  # read_task's ledger read already brought it
        detailed=response_format == "detailed",
        presented=presented,
    )
    fetch = source == "api"  # a ledger answer promises no request to Databar
    untried = (
        await untried_providers_line_later(
            svc.catalog, svc.tasks, task, may_ask=fetch, record=record, presented=presented
        )
        if offset == 0
        else None
    )
    answer = with_line(answer, untried, budget)
    if source == "ledger" and task.is_terminal:  # a stored result: the same arguments get the same answer
        answers.keep(key, answer, record, svc.catalog)
    return answer


async def _held_result(svc: Services, task_id: str) -> tuple[Task, TaskRecord, list[Any]] | None:
    """A result this user was handed moments ago (task_kit.remember_rows), with its ledger record read without
    its rows: paging through a 10,000-row result decoded and presented all of them again for every page."""
    rows = recalled_rows(svc, task_id)
    if rows is None:
        return None
    record = await svc.tasks.read(task_id, with_data=False)
    summary = record.stored_summary() if record is not None else None
    if record is None or summary is None:
        return None
    return summary, record, rows


@tool(
    Toolset.TASKS,
    name="cancel_task",
    title="Cancel a running task",
    description=CANCEL_TASK_DESCRIPTION,
    read_only=False,
    destructive=True,
    idempotent=True,
)
async def cancel_task(task_id: TaskId, ctx: ToolContext) -> Annotated[CallToolResult, TaskView]:
    svc = services(ctx)
    try:
        task = await svc.tasks.cancel(task_id)
    except ConflictError as exc:
        body = from_api_error(exc, task_id=task_id)
        body.message = f"Task {task_id} is already finished; nothing was cancelled. ({exc.message})"
        body.next_steps = [f"Read it with {get_task_call(task_id)}."]
        raise ToolFailure(body) from None
    return await deliver(svc, task, offset=0, limit=None)


@tool(
    Toolset.TASKS,
    name="list_recent_tasks",
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
    now = time.time()
    records, total = await svc.ledger.recent(limit=limit, offset=offset, unfinished_only=unfinished_only)
    window_start = now - max(svc.settings.duplicate_window_s, config.API_RETENTION_S)
    lost = [s for s in await svc.ledger.unknown_submissions(limit=20) if s.created_at >= window_start]
    balance_now = await balance_or_none(svc.client) if any(s.balance_before is not None for s in lost) else None
    pending = [unsettled(s, now, balance_now) for s in lost]
    wait_s = svc.settings.tool_deadline_s
    tasks = [recent_task(r, now, wait_s) for r in records]
    table_runs = (
        [
            table_run(s, now, wait_s)
            for s in await svc.ledger.runs_without_task(since=window_start, limit=limit)
            if not unfinished_only or s.settled_at is None
        ]
        if offset == 0
        else []
    )

    capped = total > max(COUNT_CAP, offset + limit)  # the ledger counts this far, never the whole year

    def make(count: int) -> RecentTasks:
        shown_end = offset + count
        more = shown_end < total
        return RecentTasks(
            tasks=tasks[:count],
            total=total,
            offset=offset,
            next_offset=shown_end if more else None,
            next_call=f"list_recent_tasks(offset={shown_end}, limit={limit})" if more else None,
            table_runs=table_runs,
            unsettled_submissions=pending,
            message=(f"more than {total - 1:,}" if capped else f"{total}")
            + " task(s) in the ledger"
            + (" not finished" if unfinished_only else "")
            + f"; showing {count} from {offset}."
            + (f" {len(table_runs)} table run(s)." if table_runs else "")
            + (f" {len(pending)} submission(s) with unknown outcome: possibly spent, see below." if pending else ""),
        )

    count = largest_fitting(
        len(tasks),
        lambda k: result_size(make(k).model_dump(mode="json"), render_recent(make(k))),
        svc.settings.result_budget_chars,
    )
    listing = make(count)
    return ok_result(listing, render_recent(listing))
