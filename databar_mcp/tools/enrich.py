"""Enrich toolset: run waterfalls and enrichments, one row or many. Every run goes through `run_and_wait`:
checked against the catalog, guarded for spend, submitted exactly once, waited for within the deadline."""

from dataclasses import replace
from typing import Annotated, cast

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
from databar_mcp.core.catalog import default_providers, plan_bulk_run
from databar_mcp.tools.context import ToolContext, services
from databar_mcp.tools.discover import EnrichmentId, WaterfallId
from databar_mcp.tools.registry import Toolbox
from databar_mcp.tools.running import (
    ACKNOWLEDGE_DESCRIPTION,
    FORCE_DESCRIPTION,
    WAIT_AND_NEXT,
    Confirmation,
    PreparedRun,
    ResendConfirmation,
    ResendGate,
    ResendOutcome,
    SpendGate,
    SpendOutcome,
    execute,
    resend_question,
    spend_question,
)
from databar_mcp.tools.task_view import TaskView
from databar_mcp.tools.tasks import wait_field

InputValue = str | int | float | bool | None
Row = Annotated[
    dict[str, InputValue],
    Field(
        description='Input fields, e.g. {"first_name": "Jane", "last_name": "Doe", "company": "acme.com"}.',
    ),
]
Rows = Annotated[
    list[dict[str, InputValue]],
    Field(
        min_length=1,
        max_length=config.MAX_BULK_ROWS,
        description="One object of input fields per row.",
    ),
]
ProviderIds = Annotated[
    list[Annotated[int, Field(ge=1)]],
    Field(
        min_length=1,
        max_length=50,
        description="Provider ids from list_waterfalls, tried in this order until one finds data.",
    ),
]
OptionalProviderIds = Annotated[
    list[Annotated[int, Field(ge=1)]] | None,
    Field(
        min_length=1,
        max_length=50,
        description="Provider ids, tried in order; null: the waterfall's defaults.",
    ),
]
VerifierId = Annotated[int | None, Field(ge=1, description="Email verifier id from list_waterfalls.")]
Pages = Annotated[
    int | None,
    Field(ge=1, le=100, description="Paginated enrichments only: pages to fetch (each bills)."),
]
ForceFlag = Annotated[bool, Field(description=FORCE_DESCRIPTION)]
AcknowledgeFlag = Annotated[bool, Field(description=ACKNOWLEDGE_DESCRIPTION)]

RUN_BULK_WATERFALL_DESCRIPTION = (
    "Run a waterfall on many rows (e.g. work emails for a list of people); returns the rows aligned to the "
    "inputs (null where no provider found data).\n\n"
    "Costs credits: each provider tried on a row bills its price, plus the verifier per found email; worst "
    "case rows × (providers' prices + verifier), as estimated_credits. Checked first; submitted once. " + WAIT_AND_NEXT
)

RUN_WATERFALL_DESCRIPTION = (
    "Run a waterfall on one row (e.g. one person's work email); returns its data (null if nothing found). "
    "For several rows use run_bulk_waterfall.\n\n"
    "Costs credits: each provider tried bills its price, plus the verifier for a found email (worst case "
    "as estimated_credits). Checked first; submitted once. " + WAIT_AND_NEXT
)

RUN_ENRICHMENT_DESCRIPTION = (
    "Run one enrichment (a single provider, from search_enrichments) on one input; returns its data.\n\n"
    "Costs credits: its price (× pages if paginated), as estimated_credits. Checked against get_enrichment's "
    "params first; submitted once. " + WAIT_AND_NEXT
)

RUN_BULK_ENRICHMENT_DESCRIPTION = (
    "Run one enrichment on many inputs; returns results aligned to the inputs (null where nothing found).\n\n"
    "Costs credits: price × rows (estimated_credits). Checked first; submitted once. " + WAIT_AND_NEXT
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
        endpoint=f"waterfalls/{waterfall}/bulk-run",
        request=body.model_dump(mode="json"),
        rows=len(body.params),
        plan=await svc.catalog.plan_bulk(waterfall, body.params, body.enrichments, email_verifier),
        send=lambda: svc.client.bulk_run_waterfall(waterfall, body),
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
        endpoint=f"waterfalls/{waterfall}/run",
        request=body.model_dump(mode="json"),
        rows=1,
        plan=plan_bulk_run(found, [body.params], enrichments or default_providers(found), email_verifier),
        send=lambda: svc.client.run_waterfall(waterfall, body),
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
        endpoint=f"enrichments/{enrichment_id}/run",
        request=body.model_dump(mode="json"),
        rows=1,
        plan=plan,
        send=lambda: svc.client.run_enrichment(enrichment_id, body),
    )


async def prepare_bulk_enrichment(
    ctx: ToolContext, enrichment_id: int, params: list[dict[str, InputValue]]
) -> PreparedRun:
    svc = services(ctx)
    body = BulkEnrichmentRequest(params=list(params))
    return PreparedRun(
        tool="run_bulk_enrichment",
        target=f"enrichment {enrichment_id}",
        endpoint=f"enrichments/{enrichment_id}/bulk-run",
        request=body.model_dump(mode="json"),
        rows=len(body.params),
        plan=await svc.catalog.plan_enrichment(enrichment_id, body.params),
        send=lambda: svc.client.bulk_run_enrichment(enrichment_id, body),
    )


# ---- spend resolvers: run before the tool body, so the SDK can put a question to the user -----------------
# (The SDK passes tool arguments by name and recognises only a bare Context annotation here.)


async def bulk_waterfall_spend(
    context: Context,  # pyright: ignore[reportMissingTypeArgument]
    waterfall: str,
    params: list[dict[str, InputValue]],
    enrichments: list[int],
    email_verifier: int | None,
    force: bool,
) -> SpendGate | Elicit[Confirmation]:
    ctx = cast(ToolContext, context)
    return await spend_question(
        ctx, lambda: prepare_bulk_waterfall(ctx, waterfall, params, enrichments, email_verifier), force
    )


async def waterfall_spend(
    context: Context,  # pyright: ignore[reportMissingTypeArgument]
    waterfall: str,
    params: dict[str, InputValue],
    enrichments: list[int] | None,
    email_verifier: int | None,
    force: bool,
) -> SpendGate | Elicit[Confirmation]:
    ctx = cast(ToolContext, context)
    return await spend_question(
        ctx, lambda: prepare_waterfall(ctx, waterfall, params, enrichments, email_verifier), force
    )


async def enrichment_spend(
    context: Context,  # pyright: ignore[reportMissingTypeArgument]
    enrichment_id: int,
    params: dict[str, InputValue],
    pages: int | None,
    force: bool,
) -> SpendGate | Elicit[Confirmation]:
    ctx = cast(ToolContext, context)
    return await spend_question(ctx, lambda: prepare_enrichment(ctx, enrichment_id, params, pages), force)


async def bulk_enrichment_spend(
    context: Context,  # pyright: ignore[reportMissingTypeArgument]
    enrichment_id: int,
    params: list[dict[str, InputValue]],
    force: bool,
) -> SpendGate | Elicit[Confirmation]:
    ctx = cast(ToolContext, context)
    return await spend_question(ctx, lambda: prepare_bulk_enrichment(ctx, enrichment_id, params), force)


# ---- re-send resolvers: before a forced re-send of a run whose earlier submission is unknown, ask the user ----


async def bulk_waterfall_resend(
    context: Context,  # pyright: ignore[reportMissingTypeArgument]
    waterfall: str,
    params: list[dict[str, InputValue]],
    enrichments: list[int],
    email_verifier: int | None,
    force: bool,
    acknowledge_possible_double_billing: bool,
) -> ResendGate | Elicit[ResendConfirmation]:
    ctx = cast(ToolContext, context)
    return await resend_question(
        ctx,
        lambda: prepare_bulk_waterfall(ctx, waterfall, params, enrichments, email_verifier),
        force,
        acknowledge_possible_double_billing,
    )


async def waterfall_resend(
    context: Context,  # pyright: ignore[reportMissingTypeArgument]
    waterfall: str,
    params: dict[str, InputValue],
    enrichments: list[int] | None,
    email_verifier: int | None,
    force: bool,
    acknowledge_possible_double_billing: bool,
) -> ResendGate | Elicit[ResendConfirmation]:
    ctx = cast(ToolContext, context)
    return await resend_question(
        ctx,
        lambda: prepare_waterfall(ctx, waterfall, params, enrichments, email_verifier),
        force,
        acknowledge_possible_double_billing,
    )


async def enrichment_resend(
    context: Context,  # pyright: ignore[reportMissingTypeArgument]
    enrichment_id: int,
    params: dict[str, InputValue],
    pages: int | None,
    force: bool,
    acknowledge_possible_double_billing: bool,
) -> ResendGate | Elicit[ResendConfirmation]:
    ctx = cast(ToolContext, context)
    return await resend_question(
        ctx, lambda: prepare_enrichment(ctx, enrichment_id, params, pages), force, acknowledge_possible_double_billing
    )


async def bulk_enrichment_resend(
    context: Context,  # pyright: ignore[reportMissingTypeArgument]
    enrichment_id: int,
    params: list[dict[str, InputValue]],
    force: bool,
    acknowledge_possible_double_billing: bool,
) -> ResendGate | Elicit[ResendConfirmation]:
    ctx = cast(ToolContext, context)
    return await resend_question(
        ctx, lambda: prepare_bulk_enrichment(ctx, enrichment_id, params), force, acknowledge_possible_double_billing
    )


def register(box: Toolbox) -> None:
    settings = box.settings

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
        resend: Annotated[ResendOutcome, Resolve(bulk_waterfall_resend)],
        email_verifier: VerifierId = None,
        wait_seconds: Annotated[float, wait_field(settings)] = settings.tool_deadline_s,
        force: ForceFlag = False,
        acknowledge_possible_double_billing: AcknowledgeFlag = False,
    ) -> Annotated[CallToolResult, TaskView]:
        return await execute(
            ctx,
            lambda: prepare_bulk_waterfall(ctx, waterfall, params, enrichments, email_verifier),
            force=force,
            wait_seconds=wait_seconds,
            spend=spend,
            resend=resend,
            acknowledged=acknowledge_possible_double_billing,
        )

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
        resend: Annotated[ResendOutcome, Resolve(waterfall_resend)],
        enrichments: OptionalProviderIds = None,
        email_verifier: VerifierId = None,
        wait_seconds: Annotated[float, wait_field(settings)] = settings.tool_deadline_s,
        force: ForceFlag = False,
        acknowledge_possible_double_billing: AcknowledgeFlag = False,
    ) -> Annotated[CallToolResult, TaskView]:
        return await execute(
            ctx,
            lambda: prepare_waterfall(ctx, waterfall, params, enrichments, email_verifier),
            force=force,
            wait_seconds=wait_seconds,
            spend=spend,
            resend=resend,
            acknowledged=acknowledge_possible_double_billing,
        )

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
        resend: Annotated[ResendOutcome, Resolve(enrichment_resend)],
        pages: Pages = None,
        wait_seconds: Annotated[float, wait_field(settings)] = settings.tool_deadline_s,
        force: ForceFlag = False,
        acknowledge_possible_double_billing: AcknowledgeFlag = False,
    ) -> Annotated[CallToolResult, TaskView]:
        return await execute(
            ctx,
            lambda: prepare_enrichment(ctx, enrichment_id, params, pages),
            force=force,
            wait_seconds=wait_seconds,
            spend=spend,
            resend=resend,
            acknowledged=acknowledge_possible_double_billing,
        )

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
        resend: Annotated[ResendOutcome, Resolve(bulk_enrichment_resend)],
        wait_seconds: Annotated[float, wait_field(settings)] = settings.tool_deadline_s,
        force: ForceFlag = False,
        acknowledge_possible_double_billing: AcknowledgeFlag = False,
    ) -> Annotated[CallToolResult, TaskView]:
        return await execute(
            ctx,
            lambda: prepare_bulk_enrichment(ctx, enrichment_id, params),
            force=force,
            wait_seconds=wait_seconds,
            spend=spend,
            resend=resend,
            acknowledged=acknowledge_possible_double_billing,
        )
