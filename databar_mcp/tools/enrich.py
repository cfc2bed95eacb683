"""Enrich toolset: run waterfalls and enrichments, one row or many. Every run goes through `run_and_wait`:
checked against the catalog, guarded for spend, submitted exactly once, waited for within the deadline."""

import time
from dataclasses import replace
from typing import Annotated, Any, cast

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp.types import CallToolResult
from pydantic import Field

from databar_mcp import config
from databar_mcp.api.models import (
    BulkEnrichmentRequest,
    BulkWaterfallRequest,
    EnrichmentRunRequest,
    Pagination,
    WaterfallRunRequest,
)
from databar_mcp.catalog import RunPlan, default_providers, plan_bulk_run
from databar_mcp.tools.context import ToolContext, services
from databar_mcp.tools.discover import EnrichmentId, WaterfallId
from databar_mcp.tools.guard import guarded
from databar_mcp.tools.registry import Toolbox
from databar_mcp.tools.running import (
    FORCE_DESCRIPTION,
    Confirmation,
    SpendGate,
    SpendOutcome,
    run_and_wait,
    spend_question,
)
from databar_mcp.tools.task_view import TaskView
from databar_mcp.tools.tasks import wait_field

InputValue = str | int | float | bool | None
Row = Annotated[
    dict[str, InputValue],
    Field(
        description='The input fields, e.g. {"first_name": "Jane", "last_name": "Doe", "company": "acme.com"}.',
    ),
]
Rows = Annotated[
    list[dict[str, InputValue]],
    Field(
        min_length=1,
        max_length=config.MAX_BULK_ROWS,
        description="One object per row with the input fields, e.g. "
        '{"first_name": "Jane", "last_name": "Doe", "company": "acme.com"}.',
    ),
]
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
ForceFlag = Annotated[bool, Field(description=FORCE_DESCRIPTION)]

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


def register(box: Toolbox) -> None:
    settings = box.settings

    # ---- run_bulk_waterfall ----

    def bulk_waterfall_body(
        params: list[dict[str, InputValue]], enrichments: list[int], email_verifier: int | None
    ) -> BulkWaterfallRequest:
        return BulkWaterfallRequest(params=list(params), enrichments=list(enrichments), email_verifier=email_verifier)

    async def bulk_waterfall_plan(
        ctx: ToolContext, waterfall: str, body: BulkWaterfallRequest
    ) -> tuple[RunPlan, str, dict[str, Any]]:
        plan = await services(ctx).catalog.plan_bulk(waterfall, body.params, body.enrichments, body.email_verifier)
        return plan, f"waterfalls/{waterfall}/bulk-run", body.model_dump(mode="json")

    async def bulk_waterfall_spend(
        context: Context,  # pyright: ignore[reportMissingTypeArgument]  # the SDK's resolvers need it bare
        waterfall: str,
        params: list[dict[str, InputValue]],
        enrichments: list[int],
        email_verifier: int | None,
        force: bool,
    ) -> SpendGate | Elicit[Confirmation]:
        ctx = cast(ToolContext, context)
        body = bulk_waterfall_body(params, enrichments, email_verifier)
        return await spend_question(ctx, lambda: bulk_waterfall_plan(ctx, waterfall, body), force)

    @box.tool(
        name="run_bulk_waterfall",
        toolset="enrich",
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
        ctx: ToolContext,
        spend: Annotated[SpendOutcome, Resolve(bulk_waterfall_spend)],
        email_verifier: VerifierId = None,
        wait_seconds: Annotated[float, wait_field(settings)] = settings.tool_deadline_s,
        force: ForceFlag = False,
    ) -> Annotated[CallToolResult, TaskView]:
        started = time.monotonic()
        svc = services(ctx)

        async def work() -> CallToolResult:
            body = bulk_waterfall_body(params, enrichments, email_verifier)
            plan, endpoint, request = await bulk_waterfall_plan(ctx, waterfall, body)
            return await run_and_wait(
                ctx,
                svc,
                tool="run_bulk_waterfall",
                target=f"waterfall '{waterfall}'",
                endpoint=endpoint,
                request=request,
                rows=len(body.params),
                plan=plan,
                force=force,
                wait_seconds=wait_seconds,
                started=started,
                send=lambda: svc.client.bulk_run_waterfall(waterfall, body),
                spend=spend,
            )

        return await guarded(work())

    # ---- run_waterfall ----

    async def waterfall_plan(
        ctx: ToolContext, waterfall: str, body: WaterfallRunRequest
    ) -> tuple[RunPlan, str, dict[str, Any]]:
        found = await services(ctx).catalog.get(waterfall)
        chosen = body.enrichments or default_providers(found)
        plan = plan_bulk_run(found, [body.params], chosen, body.email_verifier)
        return plan, f"waterfalls/{waterfall}/run", body.model_dump(mode="json")

    async def waterfall_spend(
        context: Context,  # pyright: ignore[reportMissingTypeArgument]  # the SDK's resolvers need it bare
        waterfall: str,
        params: dict[str, InputValue],
        enrichments: list[int] | None,
        email_verifier: int | None,
        force: bool,
    ) -> SpendGate | Elicit[Confirmation]:
        ctx = cast(ToolContext, context)
        body = WaterfallRunRequest(params=dict(params), enrichments=enrichments, email_verifier=email_verifier)
        return await spend_question(ctx, lambda: waterfall_plan(ctx, waterfall, body), force)

    @box.tool(
        name="run_waterfall",
        toolset="enrich",
        title="Run a waterfall on one row",
        description=RUN_WATERFALL_DESCRIPTION,
        read_only=False,
        destructive=False,
        idempotent=False,
    )
    async def run_waterfall(
        waterfall: WaterfallId,
        params: Row,
        ctx: ToolContext,
        spend: Annotated[SpendOutcome, Resolve(waterfall_spend)],
        enrichments: OptionalProviderIds = None,
        email_verifier: VerifierId = None,
        wait_seconds: Annotated[float, wait_field(settings)] = settings.tool_deadline_s,
        force: ForceFlag = False,
    ) -> Annotated[CallToolResult, TaskView]:
        started = time.monotonic()
        svc = services(ctx)

        async def work() -> CallToolResult:
            body = WaterfallRunRequest(params=dict(params), enrichments=enrichments, email_verifier=email_verifier)
            plan, endpoint, request = await waterfall_plan(ctx, waterfall, body)
            return await run_and_wait(
                ctx,
                svc,
                tool="run_waterfall",
                target=f"waterfall '{waterfall}'",
                endpoint=endpoint,
                request=request,
                rows=1,
                plan=plan,
                force=force,
                wait_seconds=wait_seconds,
                started=started,
                send=lambda: svc.client.run_waterfall(waterfall, body),
                spend=spend,
            )

        return await guarded(work())

    # ---- run_enrichment ----

    async def enrichment_plan(
        ctx: ToolContext, enrichment_id: int, body: EnrichmentRunRequest
    ) -> tuple[RunPlan, str, dict[str, Any]]:
        plan = await services(ctx).catalog.plan_enrichment(enrichment_id, [body.params])
        if body.pagination is not None and plan.estimated_credits is not None:
            plan = replace(plan, estimated_credits=plan.estimated_credits * body.pagination.pages)
        return plan, f"enrichments/{enrichment_id}/run", body.model_dump(mode="json")

    def enrichment_body(params: dict[str, InputValue], pages: int | None) -> EnrichmentRunRequest:
        return EnrichmentRunRequest(
            params=dict(params), pagination=Pagination(pages=pages) if pages is not None else None
        )

    async def enrichment_spend(
        context: Context,  # pyright: ignore[reportMissingTypeArgument]  # the SDK's resolvers need it bare
        enrichment_id: int,
        params: dict[str, InputValue],
        pages: int | None,
        force: bool,
    ) -> SpendGate | Elicit[Confirmation]:
        ctx = cast(ToolContext, context)
        body = enrichment_body(params, pages)
        return await spend_question(ctx, lambda: enrichment_plan(ctx, enrichment_id, body), force)

    @box.tool(
        name="run_enrichment",
        toolset="enrich",
        title="Run an enrichment on one input",
        description=RUN_ENRICHMENT_DESCRIPTION,
        read_only=False,
        destructive=False,
        idempotent=False,
    )
    async def run_enrichment(
        enrichment_id: EnrichmentId,
        params: Row,
        ctx: ToolContext,
        spend: Annotated[SpendOutcome, Resolve(enrichment_spend)],
        pages: Pages = None,
        wait_seconds: Annotated[float, wait_field(settings)] = settings.tool_deadline_s,
        force: ForceFlag = False,
    ) -> Annotated[CallToolResult, TaskView]:
        started = time.monotonic()
        svc = services(ctx)

        async def work() -> CallToolResult:
            body = enrichment_body(params, pages)
            plan, endpoint, request = await enrichment_plan(ctx, enrichment_id, body)
            return await run_and_wait(
                ctx,
                svc,
                tool="run_enrichment",
                target=f"enrichment {enrichment_id}",
                endpoint=endpoint,
                request=request,
                rows=1,
                plan=plan,
                force=force,
                wait_seconds=wait_seconds,
                started=started,
                send=lambda: svc.client.run_enrichment(enrichment_id, body),
                spend=spend,
            )

        return await guarded(work())

    # ---- run_bulk_enrichment ----

    async def bulk_enrichment_plan(
        ctx: ToolContext, enrichment_id: int, body: BulkEnrichmentRequest
    ) -> tuple[RunPlan, str, dict[str, Any]]:
        plan = await services(ctx).catalog.plan_enrichment(enrichment_id, body.params)
        return plan, f"enrichments/{enrichment_id}/bulk-run", body.model_dump(mode="json")

    async def bulk_enrichment_spend(
        context: Context,  # pyright: ignore[reportMissingTypeArgument]  # the SDK's resolvers need it bare
        enrichment_id: int,
        params: list[dict[str, InputValue]],
        force: bool,
    ) -> SpendGate | Elicit[Confirmation]:
        ctx = cast(ToolContext, context)
        body = BulkEnrichmentRequest(params=list(params))
        return await spend_question(ctx, lambda: bulk_enrichment_plan(ctx, enrichment_id, body), force)

    @box.tool(
        name="run_bulk_enrichment",
        toolset="enrich",
        title="Run an enrichment on many inputs",
        description=RUN_BULK_ENRICHMENT_DESCRIPTION,
        read_only=False,
        destructive=False,
        idempotent=False,
    )
    async def run_bulk_enrichment(
        enrichment_id: EnrichmentId,
        params: Rows,
        ctx: ToolContext,
        spend: Annotated[SpendOutcome, Resolve(bulk_enrichment_spend)],
        wait_seconds: Annotated[float, wait_field(settings)] = settings.tool_deadline_s,
        force: ForceFlag = False,
    ) -> Annotated[CallToolResult, TaskView]:
        started = time.monotonic()
        svc = services(ctx)

        async def work() -> CallToolResult:
            body = BulkEnrichmentRequest(params=list(params))
            plan, endpoint, request = await bulk_enrichment_plan(ctx, enrichment_id, body)
            return await run_and_wait(
                ctx,
                svc,
                tool="run_bulk_enrichment",
                target=f"enrichment {enrichment_id}",
                endpoint=endpoint,
                request=request,
                rows=len(body.params),
                plan=plan,
                force=force,
                wait_seconds=wait_seconds,
                started=started,
                send=lambda: svc.client.bulk_run_enrichment(enrichment_id, body),
                spend=spend,
            )

        return await guarded(work())
