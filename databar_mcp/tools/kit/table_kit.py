"""What the table-enrichment and exporter toolsets share: ids, param sources, and watching a run that has
no task id (rows still processing, counted from the table) until it finishes or the deadline comes."""

import json
import weakref
from typing import Annotated, Literal, Self

from mcp.types import CallToolResult
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from databar_mcp import config
from databar_mcp.api import DatabarClient, deadline, runs
from databar_mcp.api.errors import DeadlineReached
from databar_mcp.api.models import ParamMapping
from databar_mcp.core.costs import credits_words, settle_run
from databar_mcp.core.ledger.store import CreditsBasis, Submission
from databar_mcp.core.table_runs import (
    ProgressCallback,
    RowStates,
    RunCounts,
    RunScope,
    TableReader,
    run_counts,
    wait_for_rows,
)
from databar_mcp.tools.kit.context import Services, ToolContext, services
from databar_mcp.tools.kit.params import FilterCondition, in_place
from databar_mcp.tools.kit.results import ErrorBody, ErrorCode, ToolFailure, ok_result

ColumnRef = Annotated[str, Field(min_length=1, max_length=256, description="Column name or uuid.")]
Scalar = str | int | float | bool

_readers: "weakref.WeakKeyDictionary[DatabarClient, TableReader]" = weakref.WeakKeyDictionary()

TableEnrichmentId = Annotated[
    int,
    Field(
        ge=1,
        le=2_000_000_000,
        description="From add_table_enrichment or list_table_enrichments.",
    ),
]


class ParamSource(BaseModel):
    # A param's source: a column of each row, or one constant for every row. (A comment, not a docstring:
    # pydantic would list a docstring in every tool that maps params, and the field names say it.)

    model_config = ConfigDict(extra="forbid")

    column: ColumnRef | None = Field(default=None)
    value: SkipJsonSchema[None] | Scalar = None  # null is no value: the listing shows no null branch

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.column is None) == (self.value is None):
            raise ValueError("give exactly one of column or value")
        return self

    def as_mapping(self) -> ParamMapping:
        if self.column is not None:
            return ParamMapping(type="mapping", value=self.column)
        assert self.value is not None
        return ParamMapping(type="simple", value=self.value)


# A mapping's value, as tools take it (its schema in place, see params.in_place).
Source = Annotated[ParamSource, in_place(ParamSource)]


class TableRunView(BaseModel):
    table_uuid: str
    enrichment_id: int
    name: str
    status: Literal["processing", "finished", "nothing_to_run"]
    done: bool
    strategy: str | None = None
    rows_in_run: int | None = Field(default=None, description="Rows this run processes.")
    rows_done: int | None = None
    still_processing: int
    found: int | None = Field(default=None, description="Rows of this run with data (filled in the output columns).")
    no_data: int | None = None
    errors: int | None = None
    counts_exact: bool = Field(default=True, description="False: found/no_data/errors are table-wide estimates.")
    estimated_credits: float | None = Field(default=None, description="Worst-case cost priced before the run.")
    credits_spent: float | None = Field(default=None, description="What the finished run spent (see credits_basis).")
    credits_basis: CreditsBasis | None = Field(
        default=None,
        description="measured: the balance's drop over the run (no other run overlapped); estimate: not measurable.",
    )
    reused: bool = Field(default=False, description="True: an identical earlier run was returned, not sent again.")
    status_column: str
    output_columns: list[str]
    rate_limited_reads: int = Field(default=0, description="Progress reads Databar refused (429); reads slowed down.")
    message: str
    next_call: str | None = Field(default=None, description="The exact call that keeps waiting.")
    read_call: str | None = Field(default=None, description="The call that reads the enriched rows.")


def reader_of(svc: Services) -> TableReader:
    """One reader per API client, so every call pacing one table shares its interval."""
    reader = _readers.get(svc.client)
    if reader is None:
        reader = _readers[svc.client] = TableReader(svc.client)
    return reader


def wait_call(table_uuid: str, enrichment_id: int, wait_seconds: float) -> str:
    return (
        f'wait_table_enrichment(table_uuid="{table_uuid}", enrichment_id={enrichment_id}, '
        f"wait_seconds={wait_seconds:g})"
    )


def read_call(table_uuid: str, status_column: str) -> str:
    condition = json.dumps({status_column: {"equals": "completed"}})
    return f'list_table_rows(table_uuid="{table_uuid}", filter={condition}, per_page=100)'


def run_endpoint(table_uuid: str, enrichment_id: int, *, exporter: bool = False) -> str:
    return runs.table_run_path(table_uuid, enrichment_id, exporter=exporter)


def not_attached(table_uuid: str, enrichment_id: int) -> ToolFailure:
    return ToolFailure(
        ErrorBody(
            code=ErrorCode.NOT_FOUND,
            message=f"Table {table_uuid} has no enrichment, waterfall or exporter with id {enrichment_id}.",
            next_steps=[f'Call list_table_enrichments(table_uuid="{table_uuid}") for the ids on this table.'],
        )
    )


async def report(
    ctx: ToolContext,
    scope: RunScope,
    *,
    wait_s: float,
    processing: int | None,
    estimate: float | None,
    reused: bool,
) -> CallToolResult:
    """Wait for the rows within `wait_s`, then count how the run went; a next_call when it is not done."""

    async def progress(done: int, total: int) -> None:
        await ctx.report_progress(done, total, f"{done:,}/{total:,} rows of {scope.name}")

    return await report_for(
        services(ctx),
        scope,
        wait_s=wait_s,
        processing=processing,
        estimate=estimate,
        reused=reused,
        on_progress=progress,
    )


async def report_for(
    svc: Services,
    scope: RunScope,
    *,
    wait_s: float,
    processing: int | None,
    estimate: float | None,
    reused: bool,
    on_progress: ProgressCallback | None = None,
) -> CallToolResult:
    """`report` without a tool call around it (an MCP task's watcher): progress goes to `on_progress`."""
    reader = reader_of(svc)
    limited_before = reader.rate_limited
    left = deadline.remaining()  # keep time for the final counts before the call's deadline
    timeout = wait_s if left is None else max(0.0, min(wait_s, left - config.TABLE_FINAL_READS_RESERVE_S))
    last = await wait_for_rows(
        reader,
        scope,
        timeout_s=timeout,
        poll_first_s=svc.settings.poll_first_s,
        poll_cap_s=svc.settings.poll_cap_s,
        on_progress=on_progress,
        processing=processing,
    )
    if last is None:  # no read fitted in the wait: one read now says where it stands
        last = await reader.count(scope.table_uuid, scope.status_column, {"equals": "processing"})
    after: RowStates | None = None
    if last == 0:
        try:
            after = await reader.outcome(scope)
        except DeadlineReached:  # every row is done; the next call counts them
            after = None
    counts = run_counts(scope, last, after)
    view, text = _view(svc, scope, counts, estimate, reused, reader.rate_limited - limited_before)
    if view.done and (run := await our_run(svc, scope)) is not None:
        settled = await settle_run(svc.ledger, svc.client, run)
        view.credits_spent, view.credits_basis = settled.credits_spent, settled.credits_basis
        view.estimated_credits = settled.estimated_credits if estimate is None else estimate
        text = render(view)
    return ok_result(view, text)


async def our_run(svc: Services, scope: RunScope) -> Submission | None:
    """The ledger's record of the run `scope` describes (None: not run through this server)."""
    endpoints = (
        run_endpoint(scope.table_uuid, scope.processor_id),
        run_endpoint(scope.table_uuid, scope.processor_id, exporter=True),
    )
    found = [s for s in [await svc.ledger.latest_submission(e) for e in endpoints] if s is not None]
    latest = max(found, key=lambda s: s.created_at) if found else None
    if latest is None or latest.outcome != "accepted" or "scope" not in latest.request:
        return None
    return latest if RunScope.from_json(latest.request["scope"]) == scope else None


def _view(
    svc: Services, scope: RunScope, counts: RunCounts, estimate: float | None, reused: bool, limited: int
) -> tuple[TableRunView, str]:
    finished = counts.still_processing == 0 and counts.found is not None
    wait_s = svc.settings.tool_deadline_s
    message = (
        f"{scope.name}: {counts.done:,}/{counts.rows:,} rows done"
        + (f", {counts.found:,} found, {counts.no_data:,} no data, {counts.errors:,} errors." if finished else ".")
        + ("" if finished else f" {counts.still_processing:,} still processing.")
    )
    view = TableRunView(
        table_uuid=scope.table_uuid,
        enrichment_id=scope.processor_id,
        name=scope.name,
        status="finished" if finished else "processing",
        done=finished,
        strategy=scope.strategy,
        rows_in_run=counts.rows,
        rows_done=counts.done,
        still_processing=counts.still_processing,
        found=counts.found,
        no_data=counts.no_data,
        errors=counts.errors,
        counts_exact=counts.exact,
        estimated_credits=estimate,
        reused=reused,
        status_column=scope.status_column,
        output_columns=list(scope.output_columns),
        rate_limited_reads=limited,
        message=message,
        next_call=None if finished else wait_call(scope.table_uuid, scope.processor_id, wait_s),
        read_call=read_call(scope.table_uuid, scope.status_column),
    )
    return view, render(view)


def render(view: TableRunView) -> str:
    lines = [f"Table enrichment {view.enrichment_id} on {view.table_uuid}: {view.status}. {view.message}"]
    if view.reused:
        lines.append("An identical earlier run was returned: nothing was sent or billed again (force=true re-runs).")
    if view.credits_basis is not None or view.estimated_credits is not None:
        lines.append(credits_words(view.credits_spent, view.credits_basis, view.estimated_credits))
    if not view.counts_exact and view.done:
        lines.append("found/no_data/errors are table-wide changes (other runs of these rows may blur them).")
    if view.rate_limited_reads:
        lines.append(f"Databar rate-limited {view.rate_limited_reads} progress read(s); reads were slowed down.")
    lines.append(f"Results are in the table: status column {view.status_column!r}, outputs {view.output_columns}.")
    if view.next_call:
        lines.append(f"Keep waiting: {view.next_call}")
    if view.read_call and view.done:
        lines.append(f"Read enriched rows: {view.read_call}")
    return "\n".join(lines)


def filter_json(conditions: dict[str, FilterCondition] | None) -> str | None:
    """The API's `filter` query value: compact JSON, column → {operator: value}."""
    if not conditions:
        return None
    return json.dumps({col: cond.api() for col, cond in conditions.items()}, separators=(",", ":"))


def filter_call_arg(conditions: dict[str, FilterCondition] | None) -> str | None:
    """The `filter` as the tools take it (compact JSON), for the next_call of a filtered read."""
    if not conditions:
        return None
    shown = {col: cond.model_dump(exclude_none=True) for col, cond in conditions.items()}
    return json.dumps(shown, separators=(",", ":"))
