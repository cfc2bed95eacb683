"""Enrich toolset: run waterfalls and enrichments, one row or many. Every run goes through `run_and_wait`:
checked against the catalog, guarded for spend, submitted exactly once, waited for within the deadline."""

from dataclasses import replace
from typing import Annotated

from mcp.server.mcpserver.resolve import Resolve
from mcp.types import CallToolResult
from pydantic import Field

from databar_mcp.api import runs
from databar_mcp.api.models import (
    BulkEnrichmentRequest,
    BulkWaterfallRequest,
    EnrichmentRunRequest,
    Pagination,
    WaterfallRunRequest,
)
from databar_mcp.config import Toolset
from databar_mcp.core.catalog import default_providers, plan_bulk_run
from databar_mcp.tools.context import ToolContext, services
from databar_mcp.tools.params import (
    EnrichmentId,
    InputValue,
    Row,
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
    list[Annotated[int, Field(ge=1)]],
    Field(
        min_length=1,
        max_length=50,
        description="Provider ids from list_waterfalls, tried in this order until one finds data (at least 1).",
    ),
]
OptionalProviderIds = Annotated[
    list[Annotated[int, Field(ge=1)]] | None,
    Field(
        min_length=1,
        max_length=50,
        description="Provider ids from list_waterfalls, tried in order; null for the waterfall's defaults.",
    ),
]
VerifierId = Annotated[
    int | None, Field(ge=1, description="Optional email verifier id from list_waterfalls; null for none.")
]
Pages = Annotated[
    int | None,
    Field(ge=1, le=100, description="For paginated enrichments only: how many pages to fetch (each bills)."),
]


WAIT_AND_NEXT = """\
Waits up to wait_seconds, reporting progress. If the task is still running then, the answer has status \
"processing", the task_id and the exact get_task call: call it to keep waiting; never re-run the same \
input to "retry" (an identical call returns the earlier task, reused: true, without billing; force=true \
bills again). Large results are paged: follow next_call. Results stay in the local ledger after Databar \
deletes them (24 h). Refused with spend_limit when the server's spend guard forbids the cost."""

RUN_BULK_WATERFALL_DESCRIPTION = (
    """\
Run a Databar waterfall on many rows at once (e.g. find work emails for a list of people) and return the \
enriched rows, aligned to the inputs (null where no provider found data).

Costs credits: each provider tried on a row bills its price (list_waterfalls shows prices), plus the email \
verifier per found email; the worst case is rows × (sum of chosen provider prices + verifier price), \
reported as estimated_credits. Inputs are checked against the waterfall before anything is sent; the run \
is submitted exactly once.

"""
    + WAIT_AND_NEXT
)

RUN_WATERFALL_DESCRIPTION = (
    """\
Run a Databar waterfall on one row (e.g. one person's work email) and return its data (null if no \
provider found any). For several rows use run_bulk_waterfall: one call, one task.

Costs credits: each provider tried bills its price, plus the verifier for a found email; the worst case \
(all chosen providers + verifier) is reported as estimated_credits. Checked against the waterfall before \
anything is sent; submitted exactly once.

"""
    + WAIT_AND_NEXT
)

RUN_ENRICHMENT_DESCRIPTION = (
    """\
Run one Databar enrichment (a single provider, from search_enrichments) on one input and return its data.

Costs credits: the enrichment's price (× pages for paginated ones), reported as estimated_credits. Params \
are checked against get_enrichment's list before anything is sent; submitted exactly once.

"""
    + WAIT_AND_NEXT
)

RUN_BULK_ENRICHMENT_DESCRIPTION = (
    """\
Run one Databar enrichment on many inputs at once and return the results aligned to the inputs (null \
where nothing was found).

Costs credits: the enrichment's price × rows (estimated_credits). Params are checked before anything is \
sent; submitted exactly once.

"""
    + WAIT_AND_NEXT
)


# ---- preparing each run (used by the spend resolver before the body, and by the body) ---------------------


async def prepare_bulk_waterfall(
    ctx: ToolContext,
    waterfall: str,
    params: list[dict[str, InputValue]],
    enrichments: list[int],
    email_verifier: int | None,
) -> PreparedRun:
    svc = services(ctx)
    body = BulkWaterfallRequest(params=list(params), enrichments=list(enrichments), email_verifier=email_verifier)
    return PreparedRun(
        tool="run_bulk_waterfall",
        target=f"waterfall '{waterfall}'",
        call=runs.bulk_waterfall(waterfall, body),
        rows=len(body.params),
        plan=await svc.catalog.plan_bulk(waterfall, body.params, body.enrichments, email_verifier),
    )


async def prepare_waterfall(
    ctx: ToolContext,
    waterfall: str,
    params: dict[str, InputValue],
    enrichments: list[int] | None,
    email_verifier: int | None,
) -> PreparedRun:
    svc = services(ctx)
    body = WaterfallRunRequest(params=dict(params), enrichments=enrichments, email_verifier=email_verifier)
    found = await svc.catalog.get(waterfall)
    return PreparedRun(
        tool="run_waterfall",
        target=f"waterfall '{waterfall}'",
        call=runs.waterfall(waterfall, body),
        rows=1,
        plan=plan_bulk_run(found, [body.params], enrichments or default_providers(found), email_verifier),
    )


async def prepare_enrichment(
    ctx: ToolContext, enrichment_id: int, params: dict[str, InputValue], pages: int | None
) -> PreparedRun:
    svc = services(ctx)
    body = EnrichmentRunRequest(params=dict(params), pagination=Pagination(pages=pages) if pages is not None else None)
    plan = await svc.catalog.plan_enrichment(enrichment_id, [body.params])
    if pages is not None and plan.estimated_credits is not None:
        plan = replace(plan, estimated_credits=plan.estimated_credits * pages)  # each page bills
    return PreparedRun(
        tool="run_enrichment",
        target=f"enrichment {enrichment_id}",
        call=runs.enrichment(enrichment_id, body),
        rows=1,
        plan=plan,
    )


async def prepare_bulk_enrichment(
    ctx: ToolContext, enrichment_id: int, params: list[dict[str, InputValue]]
) -> PreparedRun:
    svc = services(ctx)
    body = BulkEnrichmentRequest(params=list(params))
    return PreparedRun(
        tool="run_bulk_enrichment",
        target=f"enrichment {enrichment_id}",
        call=runs.bulk_enrichment(enrichment_id, body),
        rows=len(body.params),
        plan=await svc.catalog.plan_enrichment(enrichment_id, body.params),
    )


# ---- spend resolvers: run before the tool body, so the SDK can put a question to the user -----------------
# (The SDK passes tool arguments by name and recognises only a bare Context annotation here.)


bulk_waterfall_run = run_guards(
    "bulk_waterfall", prepare_bulk_waterfall, "waterfall", "params", "enrichments", "email_verifier"
)
waterfall_run = run_guards("waterfall", prepare_waterfall, "waterfall", "params", "enrichments", "email_verifier")
enrichment_run = run_guards("enrichment", prepare_enrichment, "enrichment_id", "params", "pages")
bulk_enrichment_run = run_guards("bulk_enrichment", prepare_bulk_enrichment, "enrichment_id", "params")


@tool(
    Toolset.ENRICH,
    name="run_bulk_waterfall",
    title="Run a waterfall on many rows",
    description=RUN_BULK_WATERFALL_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def run_bulk_waterfall(
    waterfall: WaterfallId,
    params: Rows,
    enrichments: ProviderIds,
    run: Annotated[RunControls, Resolve(bulk_waterfall_run)],
    email_verifier: VerifierId = None,
) -> Annotated[CallToolResult, TaskView]:
    return await execute(run, lambda: prepare_bulk_waterfall(run.ctx, waterfall, params, enrichments, email_verifier))


@tool(
    Toolset.ENRICH,
    name="run_waterfall",
    title="Run a waterfall on one row",
    description=RUN_WATERFALL_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def run_waterfall(
    waterfall: WaterfallId,
    params: Row,
    run: Annotated[RunControls, Resolve(waterfall_run)],
    enrichments: OptionalProviderIds = None,
    email_verifier: VerifierId = None,
) -> Annotated[CallToolResult, TaskView]:
    return await execute(run, lambda: prepare_waterfall(run.ctx, waterfall, params, enrichments, email_verifier))


@tool(
    Toolset.ENRICH,
    name="run_enrichment",
    title="Run an enrichment on one input",
    description=RUN_ENRICHMENT_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def run_enrichment(
    enrichment_id: EnrichmentId,
    params: Row,
    run: Annotated[RunControls, Resolve(enrichment_run)],
    pages: Pages = None,
) -> Annotated[CallToolResult, TaskView]:
    return await execute(run, lambda: prepare_enrichment(run.ctx, enrichment_id, params, pages))


@tool(
    Toolset.ENRICH,
    name="run_bulk_enrichment",
    title="Run an enrichment on many inputs",
    description=RUN_BULK_ENRICHMENT_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def run_bulk_enrichment(
    enrichment_id: EnrichmentId,
    params: Rows,
    run: Annotated[RunControls, Resolve(bulk_enrichment_run)],
) -> Annotated[CallToolResult, TaskView]:
    return await execute(run, lambda: prepare_bulk_enrichment(run.ctx, enrichment_id, params))
