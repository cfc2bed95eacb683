"""Enrich toolset: run waterfalls and enrichments on one row or many. Every run goes through `run_and_wait`:
checked against the catalog, guarded for spend, submitted exactly once, waited for within the deadline.

One tool per kind of run, through Databar's bulk endpoints: a list of one row costs and answers like a single
run (rows aligned to inputs), and a second tool for one row would cost every conversation its definition."""

from dataclasses import replace
from typing import Annotated

from mcp.server.mcpserver.resolve import Resolve
from mcp.types import CallToolResult
from pydantic import Field

from databar_mcp.api import runs
from databar_mcp.api.models import BulkEnrichmentRequest, BulkWaterfallRequest, Pagination
from databar_mcp.config import Toolset
from databar_mcp.core.catalog import default_providers, plan_bulk_run
from databar_mcp.tools.context import ToolContext, services
from databar_mcp.tools.params import (
    WAIT_AND_NEXT,
    EnrichmentId,
    InputValue,
    Rows,
    WaterfallId,
)
from databar_mcp.tools.registry import tool
from databar_mcp.tools.running import (
    PreparedRun,
    RunControls,
    execute,
    run_guards,
)
from databar_mcp.tools.task_view import TaskView

ProviderIds = Annotated[
    list[Annotated[int, Field(ge=1)]] | None,
    Field(
        min_length=1,
        max_length=50,
        description="Provider ids from list_waterfalls, tried in this order until one finds data; default: the "
        "waterfall's own.",
    ),
]
VerifierId = Annotated[int | None, Field(ge=1, description="Email verifier id from list_waterfalls.")]
Pages = Annotated[
    int | None,
    Field(ge=1, le=100, description="Paginated enrichments only: pages to fetch (each bills)."),
]


RUN_BULK_WATERFALL_DESCRIPTION = (
    "Run a waterfall on one row or many (e.g. work emails for a list of people); returns the rows aligned to the "
    "inputs (null where no provider found data).\n\n"
    "Costs credits: each provider tried on a row bills its price, plus the verifier per found email; worst "
    "case rows × (providers' prices + verifier), as estimated_credits. Checked first; submitted once. " + WAIT_AND_NEXT
)

RUN_BULK_ENRICHMENT_DESCRIPTION = (
    "Run one enrichment (a single provider) on one input or many; returns results aligned to the inputs (null "
    "where nothing found).\n\n"
    "Costs credits: price × rows (× pages), as estimated_credits. Params checked first; submitted once. "
    + WAIT_AND_NEXT
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


# ---- spend resolvers: run before the tool body, so the SDK can put a question to the user -----------------
# (The SDK passes tool arguments by name and recognises only a bare Context annotation here.)


bulk_waterfall_run = run_guards(
    "bulk_waterfall", prepare_bulk_waterfall, "waterfall", "params", "enrichments", "email_verifier"
)
bulk_enrichment_run = run_guards("bulk_enrichment", prepare_bulk_enrichment, "enrichment_id", "params", "pages")


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
    params: Rows,
    run: Annotated[RunControls, Resolve(bulk_waterfall_run)],
    enrichments: ProviderIds = None,
    email_verifier: VerifierId = None,
) -> Annotated[CallToolResult, TaskView]:
    return await execute(run, lambda: prepare_bulk_waterfall(run.ctx, waterfall, params, enrichments, email_verifier))


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
    params: Rows,
    run: Annotated[RunControls, Resolve(bulk_enrichment_run)],
    pages: Pages = None,
) -> Annotated[CallToolResult, TaskView]:
    return await execute(run, lambda: prepare_bulk_enrichment(run.ctx, enrichment_id, params, pages))
