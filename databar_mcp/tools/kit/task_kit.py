"""What the tools that read or run tasks share: a task as a tool result, reading it from the ledger or Databar,
progress while waiting, and the words for a task that expired or failed."""

import glob
import time
from collections import OrderedDict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, cast
from weakref import WeakKeyDictionary

from mcp.types import CallToolResult

from databar_mcp.api.errors import ResultExpired, SubmissionUnknown
from databar_mcp.api.models import Task, TaskStatus
from databar_mcp.core.costs import balance_or_none
from databar_mcp.core.ledger.store import Ledger, Submission, TaskRecord
from databar_mcp.core.users import current_owner
from databar_mcp.tools.kit.context import Services, ToolContext
from databar_mcp.tools.kit.results import ErrorBody, ErrorCode, ToolFailure, ok_result
from databar_mcp.tools.kit.task_view import build_view, get_task_call


async def progress_reporter(ctx: ToolContext, task: Task) -> None:
    """Send an MCP progress notification ("412/1,000 rows, 37 found so far") when the client asked for it."""
    p = task.progress
    if p is None or p.total <= 0:
        return
    await ctx.report_progress(p.finished, p.total, f"{p.finished:,}/{p.total:,} rows, {p.completed:,} found so far")


def iso_or_none(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def iso(ts: float) -> str:
    """A moment as a user reads it anywhere: UTC, to the second."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def target_of(endpoint: str) -> str:
    """'waterfalls/email_getter/bulk-run' -> 'email_getter'."""
    parts = endpoint.strip("/").split("/")
    return parts[1] if len(parts) >= 2 else endpoint


def what_to_check(endpoint: str, at: float, rows: int | None, credits: float | None) -> str:
    """The one thing a user can verify before paying again for a run whose outcome is unknown."""
    cost = f", costing up to {credits:g} credits" if credits is not None else ""
    return (
        f"In the Databar web app, look for a run of {target_of(endpoint)} started at {iso(at)} with {rows} "
        f"row(s){cost}, or a balance that dropped by about that much since then. If it is there, it is this "
        "run: do not send it again."
    )


def lost_run_steps(sub: Submission) -> list[str]:
    """The exact next steps after a run's submission outcome became unknown (issue 23 §7)."""
    return [
        f"Ask the user to check: {what_to_check(sub.endpoint, sub.created_at, sub.rows, sub.estimated_credits)}",
        f"If the user found it: do not re-send; it counts as spent (up to {sub.estimated_credits or 0:g} credits).",
        f"Only if the user found no such run: call {sub.tool} again with the same arguments and force=true (the "
        "user is asked to confirm the re-send).",
    ]


async def note_lost_run(svc: Services, exc: SubmissionUnknown) -> None:
    """Keep the balance right after a run's reply was lost, so list_recent_tasks can say how it changed since."""
    if exc.fingerprint is None:
        return
    balance = await balance_or_none(svc.client)
    if balance is not None:
        await svc.ledger.note_lost_balance(exc.fingerprint, balance)


def expired_body(task_id: str, record: TaskRecord | None, exports_dir: Path | None = None) -> ErrorBody:
    """result_expired, with what re-running would cost when the ledger knows the original run; for a task the
    retention period pruned, when that was and the exports of it that are still on disk."""
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
    message = "Databar has deleted this task's data (results are kept 24 hours) and no local copy exists."
    if record is not None and record.pruned_at is not None:
        exports = exports_of(exports_dir, task_id)
        details |= {"pruned_at": iso(record.pruned_at), "exports": [str(p) for p in exports]}
        message = (
            f"This task's result was pruned from the local ledger on {iso(record.pruned_at)}: results are kept "
            "DATABAR_MCP_RESULT_RETENTION_DAYS days after a run finishes (default 90), and Databar deleted its "
            f"copy after 24 hours. Status {record.status}, {_counts(record)}."
        )
        if exports:
            message += " Its export is still on disk: " + ", ".join(str(p) for p in exports) + "."
            next_steps = [f"Read the exported file {exports[0]} instead of re-running.", *next_steps]
        else:
            message += " No export of it was found" + (f" in {exports_dir}." if exports_dir is not None else ".")
    return ErrorBody(
        code=ErrorCode.RESULT_EXPIRED,
        http_status=410,
        message=message,
        task_id=task_id,
        details=details,
        next_steps=next_steps,
    )


def exports_of(exports_dir: Path | None, task_id: str) -> list[Path]:
    """Exports of a task saved under its default name (the task id, or task-id-N when taken)."""
    if exports_dir is None or not exports_dir.is_dir():
        return []
    return sorted(
        path
        for path in exports_dir.glob(f"{glob.escape(task_id)}*")
        if path.suffix in (".csv", ".jsonl") and (path.stem == task_id or path.stem.rpartition("-")[0] == task_id)
    )


def _counts(record: TaskRecord) -> str:
    """'4 row(s), 3 with data, 12 credits spent' from a task's summary."""
    total, found = record.rows_total, record.rows_with_data
    rows = "rows unknown" if total is None else f"{total} row(s), {found} with data"
    spent = "" if record.credits_spent is None else f", {record.credits_spent:g} credits spent"
    return rows + spent


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


# ---- the rows of a task just finished, for its export -----------------------------------------------------

FIXED_STATUSES = (TaskStatus.COMPLETED, TaskStatus.PARTIALLY_COMPLETED, TaskStatus.CANCELLED)  # rows never change
RECENT_ROWS_KEPT = 2
RECENT_ROWS_TTL_S = 60.0
_recent_rows: WeakKeyDictionary[Ledger, OrderedDict[tuple[str | None, str], tuple[float, list[Any]]]] = (
    WeakKeyDictionary()
)


def remember_rows(svc: Services, task: Task, rows: list[Any]) -> None:
    """Keep a finished task's presented rows a minute: an agent exports a big run right after it finishes, and
    reading them back from the ledger means a 10,000-row result decompressed, decoded and presented again."""
    if task.status not in FIXED_STATUSES:
        return
    kept = _recent_rows.setdefault(svc.ledger, OrderedDict())
    kept[(current_owner(), task.task_id)] = (time.monotonic(), rows)
    kept.move_to_end((current_owner(), task.task_id))
    while len(kept) > RECENT_ROWS_KEPT:
        kept.popitem(last=False)


def recalled_rows(svc: Services, task_id: str) -> list[Any] | None:
    """The calling user's rows of `task_id` kept by remember_rows, while fresh (None: read them anew)."""
    kept = _recent_rows.get(svc.ledger)
    found = None if kept is None else kept.get((current_owner(), task_id))
    if found is None or time.monotonic() - found[0] > RECENT_ROWS_TTL_S:
        return None
    return found[1]


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
    presented: list[Any] | None = None,
) -> CallToolResult:
    """A task as a tool result: a page of rows; gone -> the ledger copy or result_expired; failed -> task_failed;
    unknown to Databar -> not_found. The ledger is read once, only when the answer needs it."""
    gone = task.status == TaskStatus.GONE
    record = None
    if gone or detailed or (estimated_credits is None and look_up_estimate):
        record = await svc.tasks.read(task.task_id, with_data=gone)
    if gone:
        stored = record.stored_task() if record is not None else None
        if stored is None:
            raise ToolFailure(expired_body(task.task_id, record, svc.settings.exports_dir))
        task, served_from, presented = stored, "ledger", None
    if task.status == TaskStatus.FAILED:
        raise ToolFailure(failed_body(task))
    if task.status == TaskStatus.UNKNOWN_TO_DATABAR:
        raise ToolFailure(unknown_body(task))
    if estimated_credits is None and look_up_estimate and record is not None:
        estimated_credits = record.estimated_credits
    if presented is not None and served_from == "api":
        remember_rows(svc, task, presented)  # stored in the ledger already (runner.observe): these are its rows
    view, text = build_view(
        task,
        offset=offset,
        limit=limit,
        budget=svc.settings.result_budget_chars,
        estimated_credits=estimated_credits,
        wait_hint_s=svc.settings.tool_deadline_s,
        served_from=served_from,
        reused=reused,
        inputs=(submitted_rows(record) or []) if detailed else None,
        presented=presented,
    )
    return ok_result(view, text)


def submitted_rows(record: TaskRecord | None) -> list[Any] | None:
    """The rows submitted for this task, as the ledger recorded them (None if it was not submitted here)."""
    if record is None or record.submission is None:
        return None
    request = record.submission.request
    # Waterfalls and enrichments send their rows as `params`; flows send theirs as `inputs`.
    params = request.get("params", request.get("inputs"))
    if isinstance(params, dict):
        return [params]  # a single-row run
    return cast(list[Any], params) if isinstance(params, list) else None


async def inputs_of(svc: Services, task_id: str) -> list[Any] | None:
    """The rows submitted for this task, as recorded in the ledger (None if it was not submitted here)."""
    return submitted_rows(await svc.tasks.read(task_id, with_data=False))


async def read_task(svc: Services, task_id: str) -> tuple[Task, Literal["api", "ledger"], float | None]:
    """The task, from the ledger when its result is stored (no request), else one poll of Databar; with the
    run's estimated cost when the ledger knows it (one ledger read either way)."""
    task, source, record = await read_task_record(svc, task_id)
    return task, source, record.estimated_credits if record is not None else None


async def read_task_record(svc: Services, task_id: str) -> tuple[Task, Literal["api", "ledger"], TaskRecord | None]:
    """read_task with the ledger record it read (its submission and estimate), so a call reads the ledger once."""
    record = await svc.tasks.read(task_id)
    stored = record.stored_task() if record is not None else None
    if stored is not None:
        return stored, "ledger", record
    try:
        return await svc.tasks.poll(task_id), "api", record
    except ResultExpired:
        raise ToolFailure(expired_body(task_id, record, svc.settings.exports_dir)) from None


async def finished_task(svc: Services, task_id: str) -> tuple[Task, Literal["api", "ledger"]]:
    """A finished task with its data, or a structured failure saying why there is none yet."""
    task, source, _ = await finished_task_record(svc, task_id)
    return task, source


async def finished_task_record(svc: Services, task_id: str) -> tuple[Task, Literal["api", "ledger"], TaskRecord | None]:
    """finished_task with the ledger record it read (its submission holds the inputs): one read of a 10,000-row
    run's record where an export made two (issue 28)."""
    task, source, record = await read_task_record(svc, task_id)
    if task.status == TaskStatus.GONE:
        record = await svc.tasks.read(task_id, with_data=False)
        raise ToolFailure(expired_body(task_id, record, svc.settings.exports_dir))
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
    return task, source, record


# ---- list_recent_tasks ---------------------------------------------------------------------------------
