"""Enrich toolset: run waterfalls and enrichments on one row or many. Every run goes through `run_and_wait`:
checked against the catalog, guarded for spend, submitted exactly once, waited for within the deadline.

One tool per kind of run, through Databar's bulk endpoints: a list of one row costs and answers like a single
run (rows aligned to inputs), and a second tool for one row would cost every conversation its definition."""

from dataclasses import replace
from typing import Annotated

from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp.types import CallToolResult
from pydantic import Field

from databar_mcp.api import runs
from databar_mcp.api.models import BulkEnrichmentRequest, BulkWaterfallRequest, Pagination
from databar_mcp.config import Toolset
from databar_mcp.core.catalog import default_providers, plan_bulk_run
from databar_mcp.core.files import InputSpec
from databar_mcp.tools.kit.context import ToolContext, services
from databar_mcp.tools.kit.file_runs import FileArgs, FileTarget, exactly_one, execute_file, guard_prepare
from databar_mcp.tools.kit.params import (
    WAIT_AND_NEXT,
    WAIT_DEFAULT,
    AcknowledgeFlag,
    ColumnMap,
    EnrichmentId,
    ForceFlag,
    InputValue,
    OptionalRows,
    OutputFilePath,
    RunInputFile,
    SkipBadRows,
    WaitSeconds,
    WaterfallId,
)
from databar_mcp.tools.kit.registry import tool
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
    execute,
    resend_question,
    spend_question,
)
from databar_mcp.tools.kit.task_view import TaskView

ProviderIds = Annotated[
    list[Annotated[int, Field(ge=1)]] | None,
    Field(
        min_length=1,
        max_length=50,
        description="Provider ids (list_waterfalls), tried in order until one finds data; default: the waterfall's.",
    ),
]
VerifierId = Annotated[int | None, Field(ge=1, description="Email verifier id from list_waterfalls.")]
Pages = Annotated[
    int | None,
    Field(ge=1, le=100, description="Paginated enrichments only: pages to fetch (each bills)."),
]


RUN_BULK_WATERFALL_DESCRIPTION = (
    "Run a waterfall on rows (e.g. work emails for a list of people); returns them aligned to the inputs (null: "
    "nothing found).\n\n"
    "Costs credits: each provider tried on a row bills its price, plus the verifier per found email; worst "
    "case rows × (providers' prices + verifier), as estimated_credits. " + WAIT_AND_NEXT
)

RUN_BULK_ENRICHMENT_DESCRIPTION = (
    "Run one enrichment (a single provider) on inputs; returns results aligned to them (null: nothing found).\n\n"
    "Costs credits: price × rows (× pages), as estimated_credits. " + WAIT_AND_NEXT
)


# ---- preparing each run (used by the spend resolver before the body, and by the body) ---------------------


async def prepare_bulk_waterfall(
    ctx: ToolContext,
    waterfall: str,
    params: list[dict[str, InputValue]],
    enrichments: list[int] | None,
    email_verifier: int | None,
) -> PreparedRun:
    svc = services(ctx)
    found = await svc.catalog.get(waterfall)
    chosen = list(enrichments) if enrichments else default_providers(found)  # named in the request: fingerprinted
    body = BulkWaterfallRequest(params=list(params), enrichments=chosen, email_verifier=email_verifier)
    return PreparedRun(
        tool="run_bulk_waterfall",
        target=f"waterfall '{waterfall}'",
        call=runs.bulk_waterfall(waterfall, body),
        rows=len(body.params),
        plan=plan_bulk_run(found, body.params, body.enrichments, email_verifier),
    )


async def prepare_bulk_enrichment(
    ctx: ToolContext, enrichment_id: int, params: list[dict[str, InputValue]], pages: int | None
) -> PreparedRun:
    svc = services(ctx)
    body = BulkEnrichmentRequest(params=list(params), pagination=Pagination(pages=pages) if pages is not None else None)
    plan = await svc.catalog.plan_enrichment(enrichment_id, body.params)
    if pages is not None and plan.estimated_credits is not None:
        plan = replace(plan, estimated_credits=plan.estimated_credits * pages)  # each page bills
    return PreparedRun(
        tool="run_bulk_enrichment",
        target=f"enrichment {enrichment_id}",
        call=runs.bulk_enrichment(enrichment_id, body),
        rows=len(body.params),
        plan=plan,
    )


# ---- the file form (issue 25): rows read from input_file, results written to a file ---------------------


def file_args(
    input_file: str | None, columns: dict[str, str] | None, skip_bad_rows: bool, output_file: str | None
) -> FileArgs | None:
    if input_file is None:
        return None
    return FileArgs(input_file, columns, skip_bad_rows, output_file)


async def waterfall_target(
    ctx: ToolContext, waterfall: str, enrichments: list[int] | None, email_verifier: int | None
) -> FileTarget:
    found = await services(ctx).catalog.get(waterfall)
    chosen = list(enrichments) if enrichments else default_providers(found)
    call_args: dict[str, object] = {"waterfall": waterfall}
    if enrichments:
        call_args["enrichments"] = enrichments
    if email_verifier is not None:
        call_args["email_verifier"] = email_verifier
    return FileTarget(
        tool="run_bulk_waterfall",
        target=f"waterfall '{waterfall}'",
        inputs=tuple(InputSpec(p.name, p.must_have) for p in found.input_params),
        identity={"waterfall": waterfall, "enrichments": chosen, "email_verifier": email_verifier},
        call_args=call_args,
        prepare_part=lambda rows: prepare_bulk_waterfall(
            ctx, waterfall, [dict(r) for r in rows], enrichments, email_verifier
        ),
    )


async def enrichment_target(ctx: ToolContext, enrichment_id: int, pages: int | None) -> FileTarget:
    found = await services(ctx).catalog.enrichment(enrichment_id)
    call_args: dict[str, object] = {"enrichment_id": enrichment_id}
    if pages is not None:
        call_args["pages"] = pages
    return FileTarget(
        tool="run_bulk_enrichment",
        target=f"enrichment {enrichment_id}",
        inputs=tuple(InputSpec(p.name, p.is_required) for p in found.params or []),
        identity={"enrichment": enrichment_id, "pages": pages},
        call_args=call_args,
        prepare_part=lambda rows: prepare_bulk_enrichment(ctx, enrichment_id, [dict(r) for r in rows], pages),
    )


async def prepare_waterfall_call(
    ctx: ToolContext,
    waterfall: str,
    params: list[dict[str, InputValue]] | None,
    enrichments: list[int] | None,
    email_verifier: int | None,
    input_file: str | None,
    columns: dict[str, str] | None,
    skip_bad_rows: bool,
    force: bool = False,
) -> PreparedRun:
    """The run a call asks for, in either form: the rows given, or the whole file as one spend."""
    exactly_one("run_bulk_waterfall", params_given=params is not None, file_given=input_file is not None)
    args = file_args(input_file, columns, skip_bad_rows, None)
    if args is not None:
        target = lambda: waterfall_target(ctx, waterfall, enrichments, email_verifier)  # noqa: E731
        return await guard_prepare(ctx, args, target, force=force)
    assert params is not None
    return await prepare_bulk_waterfall(ctx, waterfall, params, enrichments, email_verifier)


async def prepare_enrichment_call(
    ctx: ToolContext,
    enrichment_id: int,
    params: list[dict[str, InputValue]] | None,
    pages: int | None,
    input_file: str | None,
    columns: dict[str, str] | None,
    skip_bad_rows: bool,
    force: bool = False,
) -> PreparedRun:
    exactly_one("run_bulk_enrichment", params_given=params is not None, file_given=input_file is not None)
    args = file_args(input_file, columns, skip_bad_rows, None)
    if args is not None:
        return await guard_prepare(ctx, args, lambda: enrichment_target(ctx, enrichment_id, pages), force=force)
    assert params is not None
    return await prepare_bulk_enrichment(ctx, enrichment_id, params, pages)


# ---- resolvers: run before the tool body, so the SDK can put the spend and re-send questions to the user ----


async def bulk_waterfall_call(
    ctx: ToolContext,
    waterfall: str,
    params: list[dict[str, InputValue]] | None,
    enrichments: list[int] | None,
    email_verifier: int | None,
    input_file: str | None,
    columns: dict[str, str] | None,
    skip_bad_rows: bool,
    force: bool,
) -> Prepare:
    """What this call would send, prepared when asked: by its spend and re-send questions, then by its body."""
    return lambda: prepare_waterfall_call(
        ctx, waterfall, params, enrichments, email_verifier, input_file, columns, skip_bad_rows, force
    )


async def bulk_waterfall_spend(
    ctx: ToolContext, call: Annotated[Prepare, Resolve(bulk_waterfall_call)], force: bool
) -> SpendGate | Elicit[Confirmation]:
    return await spend_question(ctx, call, force)


async def bulk_waterfall_resend(
    ctx: ToolContext,
    call: Annotated[Prepare, Resolve(bulk_waterfall_call)],
    force: bool,
    acknowledge_possible_double_billing: bool,
) -> ResendGate | Elicit[ResendConfirmation]:
    return await resend_question(ctx, call, force, acknowledge_possible_double_billing)


async def bulk_enrichment_call(
    ctx: ToolContext,
    enrichment_id: int,
    params: list[dict[str, InputValue]] | None,
    pages: int | None,
    input_file: str | None,
    columns: dict[str, str] | None,
    skip_bad_rows: bool,
    force: bool,
) -> Prepare:
    """What this call would send, prepared when asked: by its spend and re-send questions, then by its body."""
    return lambda: prepare_enrichment_call(ctx, enrichment_id, params, pages, input_file, columns, skip_bad_rows, force)


async def bulk_enrichment_spend(
    ctx: ToolContext, call: Annotated[Prepare, Resolve(bulk_enrichment_call)], force: bool
) -> SpendGate | Elicit[Confirmation]:
    return await spend_question(ctx, call, force)


async def bulk_enrichment_resend(
    ctx: ToolContext,
    call: Annotated[Prepare, Resolve(bulk_enrichment_call)],
    force: bool,
    acknowledge_possible_double_billing: bool,
) -> ResendGate | Elicit[ResendConfirmation]:
    return await resend_question(ctx, call, force, acknowledge_possible_double_billing)


@tool(
    Toolset.ENRICH,
    name="run_bulk_waterfall",
    title="Run a waterfall on rows",
    description=RUN_BULK_WATERFALL_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def run_bulk_waterfall(
    waterfall: WaterfallId,
    ctx: ToolContext,
    call: Annotated[Prepare, Resolve(bulk_waterfall_call)],
    spend: Annotated[SpendOutcome, Resolve(bulk_waterfall_spend)],
    resend: Annotated[ResendOutcome, Resolve(bulk_waterfall_resend)],
    input_file: RunInputFile = None,
    columns: ColumnMap = None,
    skip_bad_rows: SkipBadRows = False,
    output_file: OutputFilePath = None,
    params: OptionalRows = None,
    enrichments: ProviderIds = None,
    email_verifier: VerifierId = None,
    wait_seconds: WaitSeconds = WAIT_DEFAULT,
    force: ForceFlag = False,
    acknowledge_possible_double_billing: AcknowledgeFlag = False,
) -> Annotated[CallToolResult, TaskView]:
    run = RunControls(ctx, spend, resend, wait_seconds, force, acknowledge_possible_double_billing)
    args = file_args(input_file, columns, skip_bad_rows, output_file)
    if args is None or params is not None:
        return await execute(run, call)
    return await execute_file(run, args, lambda: waterfall_target(ctx, waterfall, enrichments, email_verifier))


@tool(
    Toolset.ENRICH,
    name="run_bulk_enrichment",
    title="Run an enrichment on inputs",
    description=RUN_BULK_ENRICHMENT_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def run_bulk_enrichment(
    enrichment_id: EnrichmentId,
    ctx: ToolContext,
    call: Annotated[Prepare, Resolve(bulk_enrichment_call)],
    spend: Annotated[SpendOutcome, Resolve(bulk_enrichment_spend)],
    resend: Annotated[ResendOutcome, Resolve(bulk_enrichment_resend)],
    input_file: RunInputFile = None,
    columns: ColumnMap = None,
    skip_bad_rows: SkipBadRows = False,
    output_file: OutputFilePath = None,
    params: OptionalRows = None,
    pages: Pages = None,
    wait_seconds: WaitSeconds = WAIT_DEFAULT,
    force: ForceFlag = False,
    acknowledge_possible_double_billing: AcknowledgeFlag = False,
) -> Annotated[CallToolResult, TaskView]:
    run = RunControls(ctx, spend, resend, wait_seconds, force, acknowledge_possible_double_billing)
    args = file_args(input_file, columns, skip_bad_rows, output_file)
    if args is None or params is not None:
        return await execute(run, call)
    return await execute_file(run, args, lambda: enrichment_target(ctx, enrichment_id, pages))
