"""Table-enrichment toolset: attach an enrichment or waterfall to a Databar table, map its inputs to columns,
and run it on every row inside Databar, so no row passes through the agent's context.

The run is billable and Databar gives it no task id: the spend guard prices it first (rows that will run ×
the price per row), the ledger records it before the POST, an ambiguous reply is never re-sent, and an
identical call returns the earlier run. Progress is read from the table (rows still processing) within
the deadline; `wait_table_enrichment` keeps waiting.
"""

import json
import time
import weakref
from dataclasses import dataclass
from typing import Annotated, Any, Literal, cast

from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from databar_mcp import config
from databar_mcp.api import DatabarClient, runs
from databar_mcp.api.errors import ConflictError, FieldIssue, InsufficientCredits
from databar_mcp.api.models import (
    AttachedEnrichment,
    LaunchStrategy,
    RunStrategy,
    TableRunStarted,
    Waterfall,
)
from databar_mcp.config import Toolset
from databar_mcp.core.attachments import AttachedWaterfall, Attachments
from databar_mcp.core.catalog import RunPlan
from databar_mcp.core.costs import balance_or_none
from databar_mcp.core.runner import DuplicateRunUnknown
from databar_mcp.core.table_runs import (
    ProcessorColumns,
    RowStates,
    RunScope,
    processor_columns,
    rows_to_run,
    submit_table_run,
)
from databar_mcp.core.users import UserLimitReached
from databar_mcp.tools.kit.context import Services, ToolContext, services
from databar_mcp.tools.kit.failures import from_issues
from databar_mcp.tools.kit.params import (
    WAIT_DEFAULT,
    AcknowledgeFlag,
    ForceFlag,
    TableId,
    WaitSeconds,
)
from databar_mcp.tools.kit.registry import tool
from databar_mcp.tools.kit.results import ErrorBody, ErrorCode, ToolFailure, ok_result
from databar_mcp.tools.kit.running import (
    Confirmation,
    Prepare,
    PreparedRun,
    ResendConfirmation,
    ResendGate,
    ResendOutcome,
    RunControls,
    SpendGate,
    SpendOutcome,
    duplicate_unknown,
    insufficient,
    resend_question,
    settle_resend,
    settle_spend,
    spend_question,
    user_limit,
)
from databar_mcp.tools.kit.table_kit import (
    ParamSource,
    Source,
    TableEnrichmentId,
    TableRunView,
    not_attached,
    read_call,
    reader_of,
    render,
    report,
    run_endpoint,
    wait_call,
)

Strategy = Annotated[
    RunStrategy,
    Field(description="run_empty: rows not enriched yet; run_errors: failed rows; run_all: every row (re-bills)."),
]
RowIds = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=100)]] | None,
    Field(
        min_length=1,
        max_length=config.TABLE_RUN_ROW_IDS_MAX,
        description="Only these rows (within the strategy).",
    ),
]


EnrichmentMapping = Annotated[
    dict[Annotated[str, Field(min_length=1, max_length=256)], Source],
    Field(
        min_length=1,
        max_length=50,
        description='Param → source, e.g. {"domain": {"column": "website"}, "country": {"value": "US"}}; '
        "a waterfall's inputs take columns only.",
    ),
]
# What add_table_enrichment attaches: a catalog enrichment by id, or a waterfall by identifier (the bounds of
# params.EnrichmentId and params.WaterfallId, without their descriptions: this parameter's says both).
CatalogId = Annotated[int, Field(ge=1, le=10_000_000)]
WaterfallName = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")]


# ---- outputs -------------------------------------------------------------------------------------------


class AttachedOut(BaseModel):
    table_uuid: str
    enrichment_id: int = Field(description="The table-enrichment id: pass it to run_table_enrichment.")
    name: str
    kind: Literal["enrichment", "waterfall", "exporter", "unknown"]
    status_column: str | None = Field(default=None, description="Column saying per row: completed, no_data, error.")
    output_columns: list[str] = Field(default_factory=lambda: list[str](), description="Columns the results fill.")


class AttachedList(BaseModel):
    table_uuid: str
    enrichments: list[AttachedOut]
    next_step: str


class AddedOut(AttachedOut):
    next_step: str


# ---- shared helpers ------------------------------------------------------------------------------------

_prepared: "weakref.WeakKeyDictionary[DatabarClient, dict[str, tuple[float, TablePrepared]]]" = (
    weakref.WeakKeyDictionary()
)


async def attached_out(
    svc: Services, table_uuid: str, attached: AttachedEnrichment, kind: str | None = None
) -> AttachedOut:
    """What is attached and where it writes; `kind` None: told by its status column's type."""
    table_columns = await svc.client.table_columns(table_uuid)
    columns = processor_columns(table_columns, attached.id)
    if kind is None:
        status_type = next((c.type_of_value for c in table_columns if columns and c.name == columns.status), None)
        kind = status_type if status_type in ("enrichment", "waterfall", "exporter") else "unknown"
    return AttachedOut(
        table_uuid=table_uuid,
        enrichment_id=attached.id,
        name=attached.name,
        kind=cast(Any, kind),
        status_column=columns.status if columns else None,
        output_columns=list(columns.outputs) if columns else [],
    )


def waterfall_worst_case(waterfall: Waterfall) -> float | None:
    """Every provider the waterfall offers, plus its dearest verifier: what one row can cost at most."""
    prices = [p.price for p in waterfall.available_enrichments]
    if not prices or any(p is None for p in prices):
        return None
    verifiers = [v.price for v in waterfall.email_verifiers if v.price is not None]
    return sum(p for p in prices if p is not None) + (max(verifiers) if verifiers else 0.0)


def waterfall_row_cost(waterfall: Waterfall, attached: AttachedWaterfall) -> float | None:
    """The chosen providers (all tried when none finds data) plus the chosen verifier."""
    prices = {p.id: p.price for p in waterfall.available_enrichments}
    verifiers = {v.id: v.price for v in waterfall.email_verifiers}
    chosen = [prices.get(p) for p in attached.providers]
    if attached.email_verifier is not None:
        chosen.append(verifiers.get(attached.email_verifier))
    if not chosen or any(p is None for p in chosen):
        return waterfall_worst_case(waterfall)
    return sum(p for p in chosen if p is not None)


async def price_per_row(svc: Services, table_uuid: str, enrichment_id: int, kind: str) -> tuple[str, float | None]:
    """The attached thing's name and the most one row can cost (None: unknown; exporters cost nothing)."""
    if kind == "waterfall":
        attached = next((w for w in await svc.client.list_table_waterfalls(table_uuid) if w.id == enrichment_id), None)
        if attached is None:
            raise not_attached(table_uuid, enrichment_id)
        remembered = await Attachments(svc.settings.state_dir).recall(table_uuid, enrichment_id)
        if remembered is not None:  # attached here: priced as its own providers bill
            return attached.name, waterfall_row_cost(await svc.catalog.get(remembered.waterfall), remembered)
        for waterfall in await svc.client.list_waterfalls():
            if waterfall.name == attached.name or waterfall.identifier == attached.name:
                return attached.name, waterfall_worst_case(await svc.catalog.get(waterfall.identifier))
        return attached.name, None
    if kind == "exporter":
        attached = next((e for e in await svc.client.list_table_exporters(table_uuid) if e.id == enrichment_id), None)
        if attached is None:
            raise not_attached(table_uuid, enrichment_id)
        return attached.name, 0.0
    attached = next((e for e in await svc.client.list_table_enrichments(table_uuid) if e.id == enrichment_id), None)
    if attached is None:
        raise not_attached(table_uuid, enrichment_id)
    found, _, _ = await svc.client.search_enrichments(q=attached.name, category=None, page=1, limit=20)
    match = next((e for e in found if e.name == attached.name), None)
    if match is None or match.price is None or match.price_parameter is not None:
        return attached.name, None  # per-parameter prices depend on each row's value
    return attached.name, match.price


# ---- preparing a run (used by the spend resolver, then by the body) -----------------------------------


@dataclass(frozen=True)
class TablePrepared:
    run: PreparedRun  # what the spend guard reads: endpoint, body, rows, estimate
    scope: RunScope
    columns: ProcessorColumns
    kind: str


async def prepare_table_run(
    ctx: ToolContext, table_uuid: str, enrichment_id: int, strategy: RunStrategy, row_ids: list[str] | None
) -> TablePrepared:
    """Find the enrichment's columns, count the rows the run would process, price them (≤ 10 s reused)."""
    svc = services(ctx)
    key = json.dumps([table_uuid, enrichment_id, strategy, row_ids])
    cache = _prepared.setdefault(svc.client, {})
    hit = cache.get(key)
    if hit is not None and time.monotonic() - hit[0] < config.TABLE_PREPARED_TTL_S:
        return hit[1]
    table_columns = await svc.client.table_columns(table_uuid)
    columns = processor_columns(table_columns, enrichment_id)
    if columns is None:
        raise not_attached(table_uuid, enrichment_id)
    status_type = next(c.type_of_value for c in table_columns if c.name == columns.status)
    kind = status_type if status_type in ("waterfall", "exporter") else "enrichment"
    name, per_row = await price_per_row(svc, table_uuid, enrichment_id, kind)
    before = await reader_of(svc).states(table_uuid, columns.status)
    rows = rows_to_run(before, strategy, row_ids)
    scope = RunScope(
        table_uuid=table_uuid,
        processor_id=enrichment_id,
        name=name,
        status_column=columns.status,
        output_columns=columns.outputs,
        strategy=strategy,
        row_ids=len(row_ids) if row_ids is not None else None,
        rows=rows,
        before=before,
    )
    issues: tuple[FieldIssue, ...] = ()
    if before.processing:
        issues = (FieldIssue("enrichment_id", f"{before.processing} row(s) are still processing from an earlier run"),)
    estimate = None if per_row is None else round(per_row * rows, 6)
    run = PreparedRun(
        tool="run_table_enrichment",
        target=f"table enrichment {enrichment_id} ({name})",
        call=runs.table_enrichment(table_uuid, enrichment_id, strategy, row_ids),
        rows=rows,
        plan=RunPlan(waterfall=None, rows=rows, estimated_credits=estimate, issues=issues),
    )
    prepared = TablePrepared(run=run, scope=scope, columns=columns, kind=kind)
    cache[key] = (time.monotonic(), prepared)
    return prepared


async def prepared_table_run(
    ctx: ToolContext, table_uuid: str, enrichment_id: int, strategy: RunStrategy, row_ids: list[str] | None
) -> PreparedRun:
    return (await prepare_table_run(ctx, table_uuid, enrichment_id, strategy, row_ids)).run


async def table_run_call(
    ctx: ToolContext, table_uuid: str, enrichment_id: int, run_strategy: RunStrategy, row_ids: list[str] | None
) -> Prepare:
    """What this call would send, prepared when asked by its spend and re-send questions (before the body)."""
    return lambda: prepared_table_run(ctx, table_uuid, enrichment_id, run_strategy, row_ids)


async def table_run_spend(
    ctx: ToolContext, call: Annotated[Prepare, Resolve(table_run_call)], force: bool
) -> SpendGate | Elicit[Confirmation]:
    return await spend_question(ctx, call, force)


async def table_run_resend(
    ctx: ToolContext,
    call: Annotated[Prepare, Resolve(table_run_call)],
    force: bool,
    acknowledge_possible_double_billing: bool,
) -> ResendGate | Elicit[ResendConfirmation]:
    return await resend_question(ctx, call, force, acknowledge_possible_double_billing)


# ---- waiting and reporting -----------------------------------------------------------------------------


# ---- descriptions --------------------------------------------------------------------------------------

ADD_DESCRIPTION = """\
Attach an enrichment (id from search_enrichments) or a waterfall (identifier, e.g. "email_getter") to a \
table, its params read from columns. Free; adds its status and output columns. Next: run_table_enrichment \
with the returned enrichment_id."""

LIST_DESCRIPTION = """\
List a table's attached enrichments, waterfalls and exporters: enrichment_id, status and output columns. \
Free."""

UPDATE_DESCRIPTION = """\
Change an attached enrichment's or waterfall's mapping (replaced whole) and/or launch strategy. Free; \
enriched rows keep their values until run again."""

RUN_DESCRIPTION = """\
Run an attached enrichment or waterfall on the table's rows inside Databar (no rows pass through you). Costs \
credits per row processed; the worst case (estimated_credits) is checked first. Submitted once (an \
identical call returns the earlier run); while rows are processing follow next_call, never re-run."""

WAIT_DESCRIPTION = """\
Keep waiting for a run_table_enrichment or run_table_exporter run; counts its rows (done, found, no data, \
errors). Free. Follow next_call while present, then read_call reads the rows."""


@tool(
    Toolset.TABLE_ENRICH,
    name="add_table_enrichment",
    title="Attach an enrichment or waterfall to a table",
    description=ADD_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def add_table_enrichment(
    table_uuid: TableId,
    enrichment: Annotated[CatalogId | WaterfallName, Field(description="Enrichment id or waterfall identifier.")],
    mapping: EnrichmentMapping,
    svc: Services,
    launch_strategy: Annotated[
        LaunchStrategy, Field(description="run_on_update re-runs a row when its mapped columns change (bills).")
    ] = "run_on_click",
    enrichments: Annotated[
        list[Annotated[int, Field(ge=1)]] | None,
        Field(min_length=1, max_length=50, description="Waterfall only: provider ids in order; default: its own."),
    ] = None,
    email_verifier: Annotated[int | None, Field(ge=1, description="Waterfall only: email verifier id.")] = None,
) -> Annotated[CallToolResult, AddedOut]:
    if isinstance(enrichment, str) and enrichment.isdigit():
        enrichment = int(enrichment)  # an id sent as a string is still an id (no waterfall is all digits)
    if isinstance(enrichment, str):
        return await _add_waterfall(svc, table_uuid, enrichment, mapping, launch_strategy, enrichments, email_verifier)
    misplaced = [
        FieldIssue(name, "only for waterfalls")
        for name, given in (("enrichments", enrichments), ("email_verifier", email_verifier))
        if given is not None
    ]
    if misplaced:
        raise ToolFailure(_issues(f"{enrichment} is an enrichment id; nothing was sent.", misplaced))
    detail = await svc.catalog.enrichment(enrichment)
    params = {p.name: p for p in detail.params or []}
    issues = [FieldIssue(f"mapping.{k}", f"not a param of enrichment {enrichment}") for k in mapping if k not in params]
    issues += [
        FieldIssue(f"mapping.{p.name}", "required by the enrichment")
        for p in params.values()
        if p.is_required and p.name not in mapping
    ]
    if params and issues:
        raise ToolFailure(_issues(f"The mapping does not fit enrichment {enrichment}; nothing was sent.", issues))
    attached = await svc.client.add_table_enrichment(
        table_uuid, enrichment, {k: v.as_mapping() for k, v in mapping.items()}, launch_strategy
    )
    out = await attached_out(svc, table_uuid, attached, "enrichment")
    return _added(out)


async def _add_waterfall(
    svc: Services,
    table_uuid: str,
    waterfall: str,
    mapping: dict[str, ParamSource],
    launch_strategy: LaunchStrategy,
    enrichments: list[int] | None,
    email_verifier: int | None,
) -> CallToolResult:
    issues = [
        FieldIssue(f"mapping.{k}", "a waterfall input takes a column, not a value")
        for k, v in mapping.items()
        if v.column is None
    ]
    if launch_strategy != "run_on_click":
        issues.append(FieldIssue("launch_strategy", "a waterfall runs on click only"))
    if issues:
        raise ToolFailure(_issues(f"{waterfall} is a waterfall; nothing was sent.", issues))
    columns = {k: v.column for k, v in mapping.items() if v.column is not None}
    found = await svc.catalog.get(waterfall)
    inputs = {p.name: p for p in found.input_params}
    providers = {p.id for p in found.available_enrichments}
    issues = [FieldIssue(f"mapping.{k}", f"not an input of {waterfall}") for k in mapping if k not in inputs]
    issues += [
        FieldIssue(f"mapping.{p.name}", "required by the waterfall")
        for p in inputs.values()
        if p.must_have and p.name not in mapping
    ]
    issues += [
        FieldIssue("enrichments", f"{e} is not offered by {waterfall}") for e in enrichments or [] if e not in providers
    ]
    if issues:
        raise ToolFailure(_issues(f"The mapping does not fit waterfall {waterfall}; nothing was sent.", issues))
    attached = await svc.client.add_table_waterfall(table_uuid, waterfall, columns, enrichments, email_verifier)
    chosen = tuple(enrichments or (p.id for p in found.available_enrichments if p.enabled_by_default))
    await Attachments(svc.settings.state_dir).remember(
        table_uuid, attached.id, AttachedWaterfall(waterfall, chosen, email_verifier)
    )
    return _added(await attached_out(svc, table_uuid, attached, "waterfall"))


@tool(
    Toolset.TABLE_ENRICH,
    name="list_table_enrichments",
    title="List a table's enrichments",
    description=LIST_DESCRIPTION,
    read_only=True,
    destructive=False,
    idempotent=True,
)
async def list_table_enrichments(table_uuid: TableId, svc: Services) -> Annotated[CallToolResult, AttachedList]:
    columns = await svc.client.table_columns(table_uuid)
    found: list[AttachedOut] = []
    for kind, items in (
        ("enrichment", await svc.client.list_table_enrichments(table_uuid)),
        ("waterfall", await svc.client.list_table_waterfalls(table_uuid)),
        ("exporter", await svc.client.list_table_exporters(table_uuid)),
    ):
        for item in items:
            owned = processor_columns(columns, item.id)
            found.append(
                AttachedOut(
                    table_uuid=table_uuid,
                    enrichment_id=item.id,
                    name=item.name,
                    kind=cast(Any, kind),
                    status_column=owned.status if owned else None,
                    output_columns=list(owned.outputs) if owned else [],
                )
            )
    out = AttachedList(
        table_uuid=table_uuid,
        enrichments=found,
        next_step="run_table_enrichment(table_uuid, enrichment_id) runs one on the table's rows."
        if found
        else "Attach one with add_table_enrichment.",
    )
    text = "\n".join(
        [f"{len(found)} attached to table {table_uuid}:"]
        + [f"- {a.enrichment_id}: {a.name} ({a.kind}), outputs {a.output_columns}" for a in found]
        + [out.next_step]
    )
    return ok_result(out, text)


@tool(
    Toolset.TABLE_ENRICH,
    name="update_table_enrichment",
    title="Change a table enrichment",
    description=UPDATE_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=True,
)
async def update_table_enrichment(
    table_uuid: TableId,
    enrichment_id: TableEnrichmentId,
    svc: Services,
    mapping: Annotated[
        dict[Annotated[str, Field(min_length=1, max_length=256)], Source] | None,
        Field(max_length=50),
    ] = None,
    launch_strategy: LaunchStrategy | None = None,
) -> Annotated[CallToolResult, AttachedOut]:
    if mapping is None and launch_strategy is None:
        raise ToolFailure(_issues("Nothing to change.", [FieldIssue("mapping", "give mapping or launch_strategy")]))
    updated = await svc.client.update_table_enrichment(
        table_uuid,
        enrichment_id,
        mapping={k: v.as_mapping() for k, v in mapping.items()} if mapping is not None else None,
        launch_strategy=launch_strategy,
    )
    out = await attached_out(svc, table_uuid, updated)
    return ok_result(out, f"Updated {out.name} ({out.enrichment_id}) on table {table_uuid}.")


@tool(
    Toolset.TABLE_ENRICH,
    name="run_table_enrichment",
    title="Run a table enrichment on its rows",
    description=RUN_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def run_table_enrichment(
    table_uuid: TableId,
    enrichment_id: TableEnrichmentId,
    ctx: ToolContext,
    svc: Services,
    spend: Annotated[SpendOutcome, Resolve(table_run_spend)],
    resend: Annotated[ResendOutcome, Resolve(table_run_resend)],
    run_strategy: Strategy = "run_empty",
    row_ids: RowIds = None,
    wait_seconds: WaitSeconds = WAIT_DEFAULT,
    force: ForceFlag = False,
    acknowledge_possible_double_billing: AcknowledgeFlag = False,
) -> Annotated[CallToolResult, TableRunView]:
    started_at = time.monotonic()
    run = RunControls(ctx, spend, resend, wait_seconds, force, acknowledge_possible_double_billing)
    prepared = await prepare_table_run(ctx, table_uuid, enrichment_id, run_strategy, row_ids)
    _prepared.get(svc.client, {}).clear()  # the next call counts afresh
    plan, scope = prepared.run.plan, prepared.scope
    known = await svc.runner.earlier(prepared.run.endpoint, prepared.run.request)
    if run.force:  # a forced re-send of a run whose outcome is unknown needs the user's word
        settle_resend(run.resend, known, acknowledged=run.acknowledged)
    earlier = None if run.force else known
    if earlier is None and plan.issues:
        raise ToolFailure(_conflict_running(table_uuid, enrichment_id, plan.issues))
    if earlier is None and scope.rows == 0:
        return _nothing_to_run(scope)
    await settle_spend(svc, run.spend, prepared.run, force=run.force)
    try:
        submitted = await submit_table_run(
            runner=svc.runner,
            ledger=svc.ledger,
            tool="run_table_enrichment",
            call=prepared.run.call,
            scope=scope,
            estimated_credits=plan.estimated_credits,
            force=run.force,
            window_s=svc.settings.duplicate_window_s,
            settle_s=svc.settings.connect_timeout_s + svc.settings.read_timeout_s + 2.0,
            send=svc.client.start_table_run,
            balance=lambda: balance_or_none(svc.client),
        )
    except InsufficientCredits as exc:
        raise ToolFailure(await insufficient(svc, exc, plan.estimated_credits, scope.rows)) from None
    except DuplicateRunUnknown as exc:
        raise ToolFailure(duplicate_unknown(exc.earlier)) from None
    except UserLimitReached as exc:
        raise user_limit(exc, plan) from None
    except ConflictError:
        raise ToolFailure(_conflict_running(table_uuid, enrichment_id, ())) from None
    reused = submitted.reused is not None
    estimate = submitted.reused.estimated_credits if submitted.reused is not None else plan.estimated_credits
    started: TableRunStarted | None = submitted.started
    if started is not None:
        await ctx.report_progress(0, submitted.scope.rows, f"started on {submitted.scope.rows:,} row(s)")
    remaining = max(0.0, run.wait_seconds - (time.monotonic() - started_at))
    return await report(ctx, submitted.scope, wait_s=remaining, processing=None, estimate=estimate, reused=reused)


@tool(
    Toolset.TABLE_ENRICH,
    name="wait_table_enrichment",
    title="Wait for a table enrichment",
    description=WAIT_DESCRIPTION,
    read_only=True,
    destructive=False,
    idempotent=True,
)
async def wait_table_enrichment(
    table_uuid: TableId,
    enrichment_id: TableEnrichmentId,
    ctx: ToolContext,
    svc: Services,
    wait_seconds: WaitSeconds = WAIT_DEFAULT,
) -> Annotated[CallToolResult, TableRunView]:
    started_at = time.monotonic()

    endpoints = (
        run_endpoint(table_uuid, enrichment_id),
        run_endpoint(table_uuid, enrichment_id, exporter=True),
    )
    found = [s for s in [await svc.ledger.latest_submission(e) for e in endpoints] if s is not None]
    latest = max(found, key=lambda s: s.created_at) if found else None
    if latest is not None and latest.outcome == "accepted" and "scope" in latest.request:
        scope = RunScope.from_json(latest.request["scope"])
        estimate = latest.estimated_credits
    else:
        scope = await _table_wide_scope(ctx, table_uuid, enrichment_id)
        estimate = None
    remaining = max(0.0, wait_seconds - (time.monotonic() - started_at))
    return await report(ctx, scope, wait_s=remaining, processing=None, estimate=estimate, reused=False)


async def _table_wide_scope(ctx: ToolContext, table_uuid: str, enrichment_id: int) -> RunScope:
    """No run of ours on record: watch the rows processing now; counts are then the whole table's."""
    svc = services(ctx)
    columns = processor_columns(await svc.client.table_columns(table_uuid), enrichment_id)
    if columns is None:
        raise not_attached(table_uuid, enrichment_id)
    states = await reader_of(svc).states(table_uuid, columns.status)
    empty = RowStates(total=states.total, processing=0, completed=0, no_data=0, errors=0, never_run=0)
    return RunScope(
        table_uuid=table_uuid,
        processor_id=enrichment_id,
        name=columns.status,
        status_column=columns.status,
        output_columns=columns.outputs,
        strategy="run_all",
        row_ids=0,  # marks the counts as table-wide
        rows=states.processing + states.completed + states.no_data + states.errors,
        before=empty,
    )


def _issues(message: str, issues: list[FieldIssue]) -> ErrorBody:
    return from_issues(message, tuple(issues))


def _added(out: AttachedOut) -> CallToolResult:
    call = f'run_table_enrichment(table_uuid="{out.table_uuid}", enrichment_id={out.enrichment_id})'
    added = AddedOut(**out.model_dump(), next_step=f"Run it on the table's rows: {call}")
    text = (
        f"Attached {added.name} to table {added.table_uuid} as enrichment_id {added.enrichment_id} "
        f"(status column {added.status_column!r}, outputs {added.output_columns}). Next: {call}"
    )
    return ok_result(added, text)


def _conflict_running(table_uuid: str, enrichment_id: int, issues: tuple[FieldIssue, ...]) -> ErrorBody:
    detail = f" ({issues[0].message})" if issues else ""
    return ErrorBody(
        code=ErrorCode.CONFLICT,
        http_status=409,
        message=f"Table enrichment {enrichment_id} is already running on this table{detail}; nothing was sent.",
        next_steps=[f"Wait for it: {wait_call(table_uuid, enrichment_id, config.TOOL_DEADLINE_S)}."],
    )


def _nothing_to_run(scope: RunScope) -> CallToolResult:
    view = TableRunView(
        table_uuid=scope.table_uuid,
        enrichment_id=scope.processor_id,
        name=scope.name,
        status="nothing_to_run",
        done=True,
        strategy=scope.strategy,
        rows_in_run=0,
        rows_done=0,
        still_processing=0,
        estimated_credits=0.0,
        status_column=scope.status_column,
        output_columns=list(scope.output_columns),
        message=f"No row matches {scope.strategy}: nothing was sent, no credits spent.",
        read_call=read_call(scope.table_uuid, scope.status_column),
    )
    return ok_result(view, render(view))
