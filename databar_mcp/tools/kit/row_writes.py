"""Writing rows in any number: the API's 50-row batches, every row accounted for (written, refused, uncertain,
never sent), and the answer that says which is which. The tables toolset's insert, update, upsert and delete
tools (and any tool that writes rows) go through here."""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from databar_mcp import config
from databar_mcp.api import errors as api
from databar_mcp.api.models import (
    RowWriteBatch,
)
from databar_mcp.core.batching import Chunk, RowOutcome, WriteReport, index_ranges, write_in_chunks
from databar_mcp.core.shaping import escape_text, largest_fitting
from databar_mcp.tools.kit.context import Services
from databar_mcp.tools.kit.failures import from_api_error
from databar_mcp.tools.kit.results import (
    ErrorBody,
    ErrorCode,
    FieldProblem,
    ToolFailure,
    error_result,
    fitted_result,
    render_error,
)

T = TypeVar("T")

Scalar = str | int | float | bool | None
RowId = str | int
RANGES_SHOWN = 100  # index ranges listed per category before "...and N more rows"
FIELD_PROBLEMS_SHOWN = 50


class RowResult(BaseModel):
    index: int = Field(description="Position of the row in this call's list, from 0.")
    id: str | int | None = None
    action: str = Field(description="created, skipped_duplicate, updated, deleted, failed or unreported.")
    error: str | None = None


class RowWriteOut(BaseModel):
    table_uuid: str
    operation: str
    complete: bool = Field(description="false: stopped at the deadline; not_written lists the rows to send again.")
    total_rows: int
    batches_sent: int
    counts: dict[str, int]
    failed: list[str] = Field(description="Index ranges of rows Databar refused (see rows for why).")
    not_written: list[str] = Field(description="Index ranges never sent (only when complete is false).")
    rows: list[RowResult] = Field(description="Per-row outcomes, failed rows first, then by index.")
    rows_omitted: int = Field(default=0, description="Per-row outcomes left out to fit the result budget.")
    message: str
    next_steps: list[str] = Field(default_factory=lambda: list[str]())


def describe_error(exc: api.DatabarError) -> ErrorBody:
    body = from_api_error(exc)
    if isinstance(exc, api.NotFoundError):
        body.message = f"Table not found: {exc.message}"
        body.next_steps = ["Check the table_uuid; list_tables shows every table's identifier."]
    return body


async def fetch(awaitable: Awaitable[T]) -> T:
    """A read the write tools need first; its failure ends the tool with nothing written."""
    try:
        return await awaitable
    except api.DatabarError as exc:
        body = describe_error(exc)
        body.message += " Nothing was written."
        raise ToolFailure(body) from None


@dataclass(frozen=True)
class ColumnRef:
    row: int  # the caller's index
    column: str
    path: str  # the argument path that names it, e.g. rows[3].fields.email


async def check_columns(svc: Services, table_uuid: str, refs: Sequence[ColumnRef], *, insert: bool) -> None:
    """Refuse, before anything is sent, rows naming columns the table does not have (one columns read)."""
    known = {c.name for c in await fetch(svc.client.table_columns(table_uuid))}
    first: dict[str, ColumnRef] = {}
    rows_using: dict[str, set[int]] = {}
    for ref in refs:
        if ref.column not in known:
            first.setdefault(ref.column, ref)
            rows_using.setdefault(ref.column, set()).add(ref.row)
    if not first:
        return
    unknown = sorted(first)
    steps = ["Use the table's column names (get_table_columns lists them) and call again."]
    if insert:
        steps.append("Or pass allow_new_columns=true to add the missing columns to the table.")
    raise ToolFailure(
        ErrorBody(
            code=ErrorCode.VALIDATION_ERROR,
            message=f"Unknown column(s) for table {table_uuid}: {', '.join(unknown)}. Nothing was sent.",
            fields=[
                FieldProblem(field=first[c].path, problem=f"unknown column {c!r} (used by {len(rows_using[c])} row(s))")
                for c in unknown[:FIELD_PROBLEMS_SHOWN]
            ],
            details={
                "error": "UNKNOWN_COLUMNS",
                "unknown_columns": unknown,
                "rows": {c: index_ranges(rows_using[c], limit=20) for c in unknown[:FIELD_PROBLEMS_SHOWN]},
                "known_columns": sorted(known)[:200],
            },
            next_steps=steps,
        )
    )


# ---- chunked writes ------------------------------------------------------------------------------------


Operation = Literal["insert", "update", "upsert", "delete"]
RESEND_SAFE: dict[str, str] = {
    "update": "an update sets the same values again",
    "upsert": "an upsert finds the row by its key and updates it",
    "delete": "deleting an already deleted row only reports it as not found",
}


def local_outcomes(batch: RowWriteBatch, ids: Sequence[str | int] | None, ok_action: str) -> list[RowOutcome]:
    """One batch's answer, at batch-local indexes: the API's `index` when given, else the row id, else position."""
    waiting: dict[str, list[int]] = {}
    for position, row_id in enumerate(ids or ()):
        waiting.setdefault(str(row_id), []).append(position)
    outcomes: list[RowOutcome] = []
    for position, result in enumerate(batch.results):
        if result.index is not None:
            local = result.index
        elif result.id is not None and waiting.get(str(result.id)):
            local = waiting[str(result.id)].pop(0)
        else:
            local = position
        ok = result.ok if result.ok is not None else result.error is None
        row_id = result.id
        if row_id is None and ids is not None and 0 <= local < len(ids):
            row_id = ids[local]
        action = (result.action or ok_action) if ok else "failed"
        outcomes.append(RowOutcome(local, ok, action, row_id, None if ok else (result.error or "Not written.")))
    return outcomes


def _results(report: WriteReport) -> list[RowResult]:
    ordered = sorted(report.outcomes, key=lambda o: (o.ok, o.index))  # failures first
    return [RowResult(index=o.index, id=o.id, action=o.action, error=o.error) for o in ordered]


def _slice(rng: range) -> str:
    return f"[{rng.start}:{rng.stop}]"


def _span(rng: range) -> str:
    return str(rng.start) if len(rng) == 1 else f"{rng.start}-{rng.stop - 1}"


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{n} {action}" for action, n in counts.items()) or "nothing"


def _render_rows(rows: list[RowResult], omitted: int) -> list[str]:
    lines = [
        f"#{r.index} {r.action}" + (f" id={r.id}" if r.id is not None else "") + (f": {r.error}" if r.error else "")
        for r in rows
    ]
    if omitted:
        lines.append(f"({omitted} more per-row outcomes did not fit the result budget.)")
    return lines


def render_write(out: RowWriteOut) -> str:
    lines = [out.message, f"Counts: {_counts_text(out.counts)}."]
    if out.failed:
        lines.append(f"Failed rows: {', '.join(out.failed)}.")
    if out.not_written:
        lines.append(f"NOT written: {', '.join(out.not_written)}.")
    lines.extend(_render_rows(out.rows, out.rows_omitted))
    lines.extend(f"Next: {step}" for step in out.next_steps)
    return escape_text("\n".join(lines))


def success_result(
    svc: Services, table_uuid: str, operation: Operation, param: str, report: WriteReport
) -> CallToolResult:
    results = _results(report)
    failed = report.failed
    steps: list[str] = []
    not_written = report.not_written
    if not report.complete:
        message = (
            f"PARTIAL {operation}: stopped at the tool's deadline after {report.sent} of {report.batches} "
            f"batches. Rows {_span(not_written)} were NOT sent."
        )
        steps.append(f"Call {operation}_rows again with only the rows not written ({param}{_slice(not_written)}).")
    else:
        message = f"{operation.capitalize()}: {report.total} row(s) in {report.sent} batch(es) to table {table_uuid}."
    if failed:
        steps.append(f"{len(failed)} row(s) failed; each one's error is in rows. Fix them and send only those again.")

    def make(k: int) -> RowWriteOut:
        return RowWriteOut(
            table_uuid=table_uuid,
            operation=operation,
            complete=report.complete,
            total_rows=report.total,
            batches_sent=report.sent,
            counts=report.counts(),
            failed=index_ranges((o.index for o in failed), limit=RANGES_SHOWN),
            not_written=index_ranges(not_written, limit=RANGES_SHOWN),
            rows=results[:k],
            rows_omitted=len(results) - k,
            message=message,
            next_steps=steps,
        )

    return fitted_result(len(results), make, render_write, svc.settings.result_budget_chars)


def batch_error_fields(exc: api.DatabarError, report: WriteReport, param: str) -> list[FieldProblem]:
    """UNKNOWN_COLUMNS / INVALID_DATA of the failed batch, with the row index mapped back to the caller's."""
    stop = report.stop
    raw: object = exc.body if isinstance(exc, api.BadRequestError) else None
    if stop is None or not isinstance(exc, api.BadRequestError) or not isinstance(raw, dict):
        return []
    body = cast(dict[str, Any], raw)
    problems: list[FieldProblem] = []
    if exc.error_code == "UNKNOWN_COLUMNS" and isinstance(body.get("columns"), list):
        columns: list[Any] = body["columns"]
        rows = f"{param}{_slice(range(stop.start, stop.stop))}"
        problems.extend(FieldProblem(field=rows, problem=f"unknown column {c!s}") for c in columns)
    elif exc.error_code == "INVALID_DATA":
        index = body.get("index")
        where = (
            f"{param}[{stop.start + index}]"
            if isinstance(index, int)
            else f"{param}{_slice(range(stop.start, stop.stop))}"
        )
        problems.append(FieldProblem(field=where, problem=str(body.get("message") or "invalid data")))
    elif exc.error_code == "BATCH_TOO_LARGE":
        problems.append(FieldProblem(field=param, problem=f"Databar refused the batch size: {exc.message}"))
    return problems


def failure_result(
    svc: Services, operation: Operation, param: str, report: WriteReport, *, resend_safe: str | None
) -> CallToolResult:
    stop = report.stop
    assert stop is not None and stop.error is not None
    exc = stop.error
    base = describe_error(exc)
    written, uncertain, not_written, failed = report.written, report.uncertain, report.not_written, report.failed
    batch = range(stop.start, stop.stop)
    parts = [f"{operation.capitalize()} stopped at batch {stop.batch + 1} of {report.batches} (rows {_span(batch)}):"]
    parts.append(base.message.rstrip(".") + ".")
    parts.append(f"Written: {', '.join(index_ranges(written, limit=20)) or 'none'}.")
    if failed:
        parts.append(f"Refused row by row: {', '.join(index_ranges((o.index for o in failed), limit=20))}.")
    if uncertain:
        parts.append(
            f"UNCERTAIN: {_span(uncertain)} (no good answer to their batch: they may or may not have been written; "
            "deliberately not re-sent)."
        )
    parts.append(f"NOT written: {_span(not_written) if not_written else 'none'}.")
    steps: list[str] = []
    refused = isinstance(exc, api.APIStatusError) and 400 <= exc.status_code < 500
    if refused:
        steps.extend(base.next_steps)
    if uncertain:
        if resend_safe:
            steps.append(f"Resending rows {_span(uncertain)} ({param}{_slice(uncertain)}) is safe: {resend_safe}.")
        else:
            steps.append(
                f"Before resending rows {_span(uncertain)} ({param}{_slice(uncertain)}), check whether they landed "
                "(list_table_rows with a filter on a column that identifies them), or resend them with dedupe_keys "
                "so rows already in the table are skipped instead of duplicated."
            )
    if not_written:
        steps.append(
            f"Send rows {_span(not_written)} again ({param}{_slice(not_written)}; indexes restart at 0 in the new call)"
            + (" once the problem above is resolved." if refused else " when Databar answers again.")
        )
    if failed:
        steps.append("Rows refused row by row are listed in details.rows with their errors.")
    if not refused and not uncertain:  # e.g. no connection: the batch certainly never arrived
        steps.extend(base.next_steps)
    results = _results(report)
    details_base: dict[str, Any] = {
        **base.details,
        "operation": operation,
        "total_rows": report.total,
        "batch_size": report.batch_size,
        "batches": report.batches,
        "batches_sent": report.sent,
        "failed_batch": {"number": stop.batch + 1, "rows": _span(batch)},
        "written": index_ranges(written, limit=RANGES_SHOWN),
        "uncertain": index_ranges(uncertain),
        "not_written": index_ranges(not_written),
        "failed": index_ranges((o.index for o in failed), limit=RANGES_SHOWN),
        "counts": report.counts(),
    }

    def make(k: int) -> ErrorBody:
        return ErrorBody(
            code=base.code,
            http_status=base.http_status,
            message=" ".join(parts),
            next_steps=steps,
            retry_after_seconds=base.retry_after_seconds,
            fields=[*batch_error_fields(exc, report, param), *base.fields][:FIELD_PROBLEMS_SHOWN],
            details={
                **details_base,
                "rows": [r.model_dump(mode="json", exclude_none=True) for r in results[:k]],
                "rows_omitted": len(results) - k,
            },
        )

    budget = svc.settings.result_budget_chars
    return error_result(make(largest_fitting(len(results), lambda k: len(render_error(make(k))), budget)), budget)


async def chunked_write(
    svc: Services,
    table_uuid: str,
    operation: Operation,
    param: str,
    items: Sequence[T],
    send: Callable[[Sequence[T]], Awaitable[list[RowOutcome]]],
    *,
    started: float,
    resend_safe: str | None,
) -> CallToolResult:
    async def send_chunk(chunk: Chunk[T]) -> list[RowOutcome]:
        return await send(chunk.items)

    report = await write_in_chunks(
        items,
        send_chunk,
        batch_size=config.ROW_WRITE_BATCH,
        deadline=started + svc.settings.tool_deadline_s,
    )
    if report.stop is not None and report.stop.error is not None:
        return failure_result(svc, operation, param, report, resend_safe=resend_safe)
    return success_result(svc, table_uuid, operation, param, report)


# ---- descriptions --------------------------------------------------------------------------------------
