"""Tables toolset: list, create and inspect Databar tables, read their rows (filtered, a page at a time) and
write rows in any number, chunked into the API's 50-row batches with every row accounted for."""

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar, cast

from mcp.types import CallToolResult
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from databar_mcp import config
from databar_mcp.api import errors as api
from databar_mcp.api.models import (
    DeleteRowsRequest,
    InsertOptions,
    InsertRowsRequest,
    NewRow,
    RowByKey,
    RowChange,
    RowDedupe,
    RowWriteBatch,
    Table,
    TableColumn,
    UpdateRowsRequest,
    UpsertRowsRequest,
)
from databar_mcp.config import Toolset
from databar_mcp.core.batching import Chunk, RowOutcome, WriteReport, index_ranges, write_in_chunks
from databar_mcp.core.shaping import clip, escape_text, largest_fitting, render_value, result_size
from databar_mcp.tools.context import Services, ToolContext
from databar_mcp.tools.failures import from_api_error
from databar_mcp.tools.file_runs import exactly_one
from databar_mcp.tools.file_tables import import_file
from databar_mcp.tools.params import ColumnMap, ColumnName, InputFilePath, RowFilter, SkipBadRows, TableId, in_place
from databar_mcp.tools.registry import tool
from databar_mcp.tools.results import (
    ErrorBody,
    ErrorCode,
    FieldProblem,
    ToolFailure,
    error_result,
    fitted_result,
    ok_result,
    render_error,
)
from databar_mcp.tools.table_kit import filter_call_arg, filter_json
from databar_mcp.tools.task_view import UNTRUSTED_NOTE

T = TypeVar("T")

Scalar = str | int | float | bool | None
RowId = str | int
RANGES_SHOWN = 100  # index ranges listed per category before "...and N more rows"
FIELD_PROBLEMS_SHOWN = 50
COLUMNS_LISTED = 50  # column names in create_table's text (all are in its structured content)


# ---- inputs --------------------------------------------------------------------------------------------


class RowUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: RowId
    fields: Annotated[dict[ColumnName, Scalar], Field(min_length=1, description="Column → value.")]


class RowUpsert(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: Annotated[
        dict[ColumnName, Scalar],
        Field(
            min_length=1,
            max_length=1,
            description='One column → value that finds the row, e.g. {"email": "jane@acme.com"}.',
        ),
    ]
    fields: Annotated[dict[ColumnName, Scalar], Field()] = Field(default_factory=lambda: dict[str, Scalar]())


# ---- outputs -------------------------------------------------------------------------------------------


class TableOut(BaseModel):
    identifier: str
    name: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    table_url: str | None = None


class FolderOut(BaseModel):
    id: int
    name: str
    table_count: int | None = None


class TableList(BaseModel):
    tables: list[TableOut]
    total: int
    omitted: int = Field(default=0, description="Tables left out to fit the result budget.")
    folders: list[FolderOut] | None = Field(
        description="Folders (update_table moves a table into one); null: Databar did not list them."
    )


class CreatedTable(TableOut):
    columns: list[str]
    next_step: str


class ColumnOut(BaseModel):
    name: str
    type: str | None = None
    identifier: str | None = None
    internal_name: str | None = None


class TableColumns(BaseModel):
    table_uuid: str
    columns: list[ColumnOut]
    total: int
    omitted: int = Field(default=0, description="Columns left out to fit the result budget.")


class TableRows(BaseModel):
    table_uuid: str
    page: int
    per_page: int
    skip: int = Field(default=0, description="Rows of the page skipped before these (already read).")
    filter: dict[str, dict[str, Any]] | None = None
    total_count: int | None = None
    has_next_page: bool
    rows: list[dict[str, Any]]
    rows_omitted: int = Field(default=0, description="Rows of this page left out to fit the result budget.")
    next_call: str | None = Field(default=None, description="The exact call for the next rows, if any.")


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


# ---- list_table_rows paging ----------------------------------------------------------------------------


def _call(table_uuid: str, page: int, per_page: int, filter_arg: str | None = None, skip: int = 0) -> str:
    filtered = f", filter={filter_arg}" if filter_arg else ""
    skipped = f", skip={skip}" if skip else ""
    return f'list_table_rows(table_uuid="{table_uuid}"{filtered}, page={page}, per_page={per_page}{skipped})'


def next_page_call(
    table_uuid: str,
    *,
    page: int,
    per_page: int,
    skip: int,
    shown: int,
    page_rows: int,
    has_next_page: bool,
    filter_arg: str | None = None,
) -> str | None:
    """The call that continues right after the last row shown: the rest of this page, or the next page.

    Page size never changes, so a long read keeps fetching full API pages (a budget-cut page is continued
    with `skip`, not by shrinking the page).
    """
    if skip + shown < page_rows:
        return _call(table_uuid, page, per_page, filter_arg, skip + shown)
    return _call(table_uuid, page + 1, per_page, filter_arg) if has_next_page else None


def render(result: TableRows) -> str:
    head = f"Table {result.table_uuid}, page {result.page} ({result.per_page} per page)"
    if result.filter:
        head += f", filter {render_value(result.filter)}"
    if result.total_count is not None:
        head += f", {result.total_count} rows in all"
    lines = [head + f": {len(result.rows)} rows shown ({UNTRUSTED_NOTE})"]
    lines.extend(render_value(row) for row in result.rows)
    if result.rows_omitted:
        lines.append(f"{result.rows_omitted} rows of this page did not fit the result budget.")
    if result.next_call:
        lines.append(f"Next: {result.next_call}")
    return "\n".join(lines)


# ---- errors --------------------------------------------------------------------------------------------


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
_RESEND_SAFE: dict[str, str] = {
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

LIST_TABLE_ROWS_DESCRIPTION = """\
Read a table's rows a page at a time, optionally filtered. Free. Rows are keyed by column name, with their \
id; follow next_call for more."""

LIST_TABLES_DESCRIPTION = """\
List the workspace's tables (identifier: the table_uuid the table tools take) and folders. Free. Next: \
get_table_columns, list_table_rows."""

CREATE_TABLE_DESCRIPTION = """\
Create an empty table with these columns (each call makes a new one). Free. Next: insert_rows."""

GET_TABLE_COLUMNS_DESCRIPTION = "List a table's columns (the names rows are keyed by) and their types. Free."

# update/upsert/delete_rows write the same way: the model reads every description at once, so say it once.
SAME_AS_INSERT = "Batched and reported like insert_rows."

INSERT_DESCRIPTION = """\
Add rows to a table, column name → value. Free; a repeat adds them again (dedupe_keys skips matches). Sent \
in batches of 50, each row reported by index; a failed batch's error says which rows were written, NOT \
written (send again) or uncertain. Unknown columns are refused before anything is sent."""

UPDATE_DESCRIPTION = "Change cells of rows found by id. Free. " + SAME_AS_INSERT

UPSERT_DESCRIPTION = "Update the row each key finds, or create it. Free; overwrites the given cells. " + SAME_AS_INSERT

DELETE_DESCRIPTION = "Delete rows by id (irreversible). Free. " + SAME_AS_INSERT


@tool(
    Toolset.TABLES,
    name="list_table_rows",
    title="List table rows",
    description=LIST_TABLE_ROWS_DESCRIPTION,
    read_only=True,
    destructive=False,
    idempotent=True,
)
async def list_table_rows(
    table_uuid: TableId,
    svc: Services,
    page: Annotated[int, Field(ge=1, le=1_000_000)] = 1,
    per_page: Annotated[int, Field(ge=1, le=config.TABLE_PAGE_MAX)] = 100,
    filter: RowFilter = None,
    skip: Annotated[
        int,
        Field(ge=0, lt=config.TABLE_PAGE_MAX, description="Set by next_call."),
    ] = 0,
) -> Annotated[CallToolResult, TableRows]:
    filter_arg = filter_call_arg(filter)
    shown_filter = json.loads(filter_arg) if filter_arg else None

    result = await svc.client.list_table_rows(table_uuid, page=page, per_page=per_page, filter_json=filter_json(filter))
    rows = result.data[skip:]

    def make(count: int) -> TableRows:
        return TableRows(
            table_uuid=table_uuid,
            page=page,
            per_page=per_page,
            filter=shown_filter,
            total_count=result.total_count,
            has_next_page=result.has_next_page,
            skip=skip,
            rows=rows[:count],
            rows_omitted=len(rows) - count,
            next_call=next_page_call(
                table_uuid,
                page=page,
                per_page=per_page,
                skip=skip,
                shown=count,
                page_rows=len(result.data),
                has_next_page=result.has_next_page,
                filter_arg=filter_arg,
            ),
        )

    count = largest_fitting(
        len(rows),
        lambda k: result_size(make(k).model_dump(mode="json"), render(make(k))),
        svc.settings.result_budget_chars,
    )
    # A row larger than the whole budget is still shown (the server cuts it to fit, says so and keeps it
    # whole as a resource), so next_call moves past it instead of asking for it again forever.
    shaped = make(max(count, min(1, len(rows))))
    return ok_result(shaped, render(shaped))


@tool(
    Toolset.TABLES,
    name="list_tables",
    title="List tables",
    description=LIST_TABLES_DESCRIPTION,
    read_only=True,
    destructive=False,
    idempotent=True,
)
async def list_tables(svc: Services) -> Annotated[CallToolResult, TableList]:
    found = [table_out(t) for t in await svc.client.list_tables()]
    folders: list[FolderOut] | None
    try:
        folders = [FolderOut(id=f.id, name=f.name, table_count=f.table_count) for f in await svc.client.list_folders()]
    except api.DatabarError:  # the tables are the answer; folders that fail to list leave them readable
        folders = None

    def make(k: int) -> TableList:
        return TableList(tables=found[:k], total=len(found), omitted=len(found) - k, folders=folders)

    def text(out: TableList) -> str:
        lines = [f"{out.total} table(s)" + (f", {out.omitted} omitted" if out.omitted else "") + ":"]
        lines.extend(f"- {t.identifier} {t.name or '(unnamed)'} (updated {t.updated_at})" for t in out.tables)
        if out.folders is None:
            lines.append("Folders: Databar did not list them.")
        else:
            lines.append(f"{len(out.folders)} folder(s)" + (":" if out.folders else "."))
            lines.extend(f"- {f.id}: {f.name} ({f.table_count} tables)" for f in out.folders)
        return escape_text("\n".join(lines))

    return fitted_result(len(found), make, text, svc.settings.result_budget_chars)


@tool(
    Toolset.TABLES,
    name="create_table",
    title="Create a table",
    description=CREATE_TABLE_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def create_table(
    name: Annotated[str, Field(min_length=1, max_length=256)],
    svc: Services,
    columns: Annotated[list[ColumnName] | None, Field(max_length=500, description="Unique column names.")] = None,
) -> Annotated[CallToolResult, CreatedTable]:
    names = list(columns or [])
    dupes = sorted({c for c in names if names.count(c) > 1})
    if dupes:
        raise ToolFailure(
            ErrorBody(
                code=ErrorCode.VALIDATION_ERROR,
                message="Column names must be unique; nothing was created.",
                fields=[
                    FieldProblem(field=f"columns[{names.index(c)}]", problem=f"repeated: {clip(c, 100)}")
                    for c in dupes[:FIELD_PROBLEMS_SHOWN]
                ],
                next_steps=["Remove the repeated names and call again."],
            )
        )
    table = await svc.client.create_table(name, names)
    out = CreatedTable(
        **table_out(table).model_dump(),
        columns=names,
        next_step=f'insert_rows(table_uuid="{table.identifier}", rows=[...])',
    )
    listed = ", ".join(clip(c, 100) for c in names[:COLUMNS_LISTED]) or "none"
    more = (
        f" and {len(names) - COLUMNS_LISTED} more (get_table_columns lists them)" if len(names) > COLUMNS_LISTED else ""
    )
    title = clip(out.name or "", 200)
    text = f"Created table {out.identifier} ({title}) with {len(names)} columns: {listed}{more}."
    return ok_result(out, escape_text(f"{text}\nNext: {out.next_step}"))


@tool(
    Toolset.TABLES,
    name="get_table_columns",
    title="Get table columns",
    description=GET_TABLE_COLUMNS_DESCRIPTION,
    read_only=True,
    destructive=False,
    idempotent=True,
)
async def get_table_columns(table_uuid: TableId, svc: Services) -> Annotated[CallToolResult, TableColumns]:
    try:
        found = [column_out(c) for c in await svc.client.table_columns(table_uuid)]
    except api.NotFoundError as exc:
        raise ToolFailure(describe_error(exc)) from None

    def make(k: int) -> TableColumns:
        return TableColumns(table_uuid=table_uuid, columns=found[:k], total=len(found), omitted=len(found) - k)

    def text(out: TableColumns) -> str:
        listed = ", ".join(f"{c.name} ({c.type or '?'})" for c in out.columns)
        more = f" ({out.omitted} more omitted)" if out.omitted else ""
        return escape_text(f"Table {table_uuid}: {out.total} column(s): {listed}{more}")

    return fitted_result(len(found), make, text, svc.settings.result_budget_chars)


@tool(
    Toolset.TABLES,
    name="insert_rows",
    title="Insert table rows",
    description=INSERT_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def insert_rows(
    table_uuid: TableId,
    svc: Services,
    ctx: ToolContext,
    rows: Annotated[
        SkipJsonSchema[None] | list[dict[ColumnName, Scalar]], Field(min_length=1, max_length=config.MAX_BULK_ROWS)
    ] = None,
    input_file: Annotated[
        SkipJsonSchema[None] | Annotated[str, Field(min_length=1)], Field(description="A file of rows, instead.")
    ] = None,
    columns: ColumnMap = None,
    skip_bad_rows: SkipBadRows = False,
    allow_new_columns: Annotated[bool, Field(description="Add unknown columns instead of refusing.")] = False,
    dedupe_keys: Annotated[
        list[ColumnName] | None,
        Field(
            min_length=1,
            max_length=10,
            description="Skip rows equal to an existing row in these columns.",
        ),
    ] = None,
) -> Annotated[CallToolResult, RowWriteOut]:
    started = time.monotonic()
    exactly_one("insert_rows", params_given=rows is not None, file_given=input_file is not None, rows_name="rows")
    if input_file is not None:  # the file form: import_rows' body (issue 25)
        return await import_file(
            ctx,
            tool_name="insert_rows",
            table_uuid=table_uuid,
            input_file=input_file,
            columns=columns,
            skip_bad_rows=skip_bad_rows,
            mode="insert",
            allow_new_columns=allow_new_columns,
            dedupe_keys=dedupe_keys,
            shape=RowWriteOut,
        )
    assert rows is not None
    if not allow_new_columns:
        refs = [ColumnRef(i, c, f"rows[{i}].{c}") for i, row in enumerate(rows) for c in row]
        refs += [ColumnRef(0, k, f"dedupe_keys[{j}]") for j, k in enumerate(dedupe_keys or [])]
        await check_columns(svc, table_uuid, refs, insert=True)
    dedupe = RowDedupe(keys=list(dedupe_keys)) if dedupe_keys else None
    options = InsertOptions(allow_new_columns=allow_new_columns, dedupe=dedupe)

    async def send(batch: Sequence[dict[str, Scalar]]) -> list[RowOutcome]:
        body = InsertRowsRequest(rows=[NewRow(fields=row) for row in batch], options=options)
        return local_outcomes(await svc.client.insert_rows(table_uuid, body), None, "created")

    resend = "the dedupe_keys of this call skip rows already written" if dedupe_keys else None
    return await chunked_write(svc, table_uuid, "insert", "rows", rows, send, started=started, resend_safe=resend)


@tool(
    Toolset.TABLES,
    name="update_rows",
    title="Update table rows",
    description=UPDATE_DESCRIPTION,
    read_only=False,
    destructive=True,
    idempotent=True,
)
async def update_rows(
    table_uuid: TableId,
    rows: Annotated[
        list[Annotated[RowUpdate, in_place(RowUpdate)]],
        Field(min_length=1, max_length=config.MAX_BULK_ROWS),
    ],
    svc: Services,
    overwrite: Annotated[bool, Field(description="false: only fill empty cells.")] = True,
) -> Annotated[CallToolResult, RowWriteOut]:
    started = time.monotonic()

    refs = [ColumnRef(i, c, f"rows[{i}].fields.{c}") for i, row in enumerate(rows) for c in row.fields]
    await check_columns(svc, table_uuid, refs, insert=False)

    async def send(batch: Sequence[RowUpdate]) -> list[RowOutcome]:
        body = UpdateRowsRequest(rows=[RowChange(id=r.id, fields=r.fields) for r in batch], overwrite=overwrite)
        answer = await svc.client.update_rows(table_uuid, body)
        return local_outcomes(answer, [r.id for r in batch], "updated")

    return await chunked_write(
        svc, table_uuid, "update", "rows", rows, send, started=started, resend_safe=_RESEND_SAFE["update"]
    )


@tool(
    Toolset.TABLES,
    name="upsert_rows",
    title="Upsert table rows",
    description=UPSERT_DESCRIPTION,
    read_only=False,
    destructive=True,
    idempotent=True,
)
async def upsert_rows(
    table_uuid: TableId,
    svc: Services,
    ctx: ToolContext,
    rows: Annotated[
        SkipJsonSchema[None] | list[Annotated[RowUpsert, in_place(RowUpsert)]],
        Field(min_length=1, max_length=config.MAX_BULK_ROWS),
    ] = None,
    input_file: InputFilePath = None,
    key_column: Annotated[
        SkipJsonSchema[None] | ColumnName, Field(description="With input_file: the column that finds each row.")
    ] = None,
    columns: ColumnMap = None,
    skip_bad_rows: SkipBadRows = False,
) -> Annotated[CallToolResult, RowWriteOut]:
    started = time.monotonic()
    exactly_one("upsert_rows", params_given=rows is not None, file_given=input_file is not None, rows_name="rows")
    if input_file is not None:  # the file form: import_rows' body (issue 25)
        return await import_file(
            ctx,
            tool_name="upsert_rows",
            table_uuid=table_uuid,
            input_file=input_file,
            columns=columns,
            skip_bad_rows=skip_bad_rows,
            mode="upsert",
            key_column=key_column,
            shape=RowWriteOut,
        )
    assert rows is not None

    refs = [ColumnRef(i, c, f"rows[{i}].key.{c}") for i, row in enumerate(rows) for c in row.key]
    refs += [ColumnRef(i, c, f"rows[{i}].fields.{c}") for i, row in enumerate(rows) for c in row.fields]
    await check_columns(svc, table_uuid, refs, insert=False)

    async def send(batch: Sequence[RowUpsert]) -> list[RowOutcome]:
        body = UpsertRowsRequest(rows=[RowByKey(key=r.key, fields=r.fields) for r in batch])
        return local_outcomes(await svc.client.upsert_rows(table_uuid, body), None, "upserted")

    return await chunked_write(
        svc, table_uuid, "upsert", "rows", rows, send, started=started, resend_safe=_RESEND_SAFE["upsert"]
    )


@tool(
    Toolset.TABLES,
    name="delete_rows",
    title="Delete table rows",
    description=DELETE_DESCRIPTION,
    read_only=False,
    destructive=True,
    idempotent=True,
)
async def delete_rows(
    table_uuid: TableId,
    row_ids: Annotated[
        list[RowId],
        Field(min_length=1, max_length=config.MAX_BULK_ROWS),
    ],
    svc: Services,
) -> Annotated[CallToolResult, RowWriteOut]:
    started = time.monotonic()

    async def send(batch: Sequence[str | int]) -> list[RowOutcome]:
        answer = await svc.client.delete_rows(table_uuid, DeleteRowsRequest(row_ids=list(batch)))
        if not answer.results and answer.deleted == len(batch):  # a bare count that covers every id
            return [RowOutcome(i, True, "deleted", row_id) for i, row_id in enumerate(batch)]
        return local_outcomes(answer, batch, "deleted")

    return await chunked_write(
        svc,
        table_uuid,
        "delete",
        "row_ids",
        row_ids,
        send,
        started=started,
        resend_safe=_RESEND_SAFE["delete"],
    )


def table_out(table: Table) -> TableOut:
    return TableOut(
        identifier=table.identifier,
        name=table.name,
        created_at=table.created_at,
        updated_at=table.updated_at,
        table_url=table.table_url,
    )


def column_out(column: TableColumn) -> ColumnOut:
    return ColumnOut(
        name=column.name,
        type=column.type_of_value,
        identifier=column.identifier,
        internal_name=column.internal_name,
    )
