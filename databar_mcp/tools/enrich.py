"""Enrich toolset: discover waterfalls and run them in bulk."""

import time
from typing import Annotated, Any

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from databar_mcp import config
from databar_mcp.api.errors import FieldIssue, InsufficientCredits
from databar_mcp.api.models import BulkWaterfallRequest, Waterfall
from databar_mcp.runner import DuplicateRunUnknown
from databar_mcp.shaping import escape_text, largest_fitting, result_size
from databar_mcp.store import Submission
from databar_mcp.tools.context import Services, ToolContext, services
from databar_mcp.tools.failures import from_api_error, from_issues
from databar_mcp.tools.guard import guarded
from databar_mcp.tools.registry import Toolbox
from databar_mcp.tools.results import ErrorBody, ErrorCode, ToolFailure, ok_result
from databar_mcp.tools.task_view import TaskView, get_task_call, render
from databar_mcp.tools.tasks import deliver, progress_reporter, wait_field

# ---- list_waterfalls -----------------------------------------------------------------------------------


class ProviderOut(BaseModel):
    id: int
    name: str
    price: float | None = Field(default=None, description="Credits per row this provider is tried on.")
    enabled_by_default: bool


class VerifierOut(BaseModel):
    id: int
    name: str | None = None
    price: float | None = None


class WaterfallOut(BaseModel):
    identifier: str
    name: str
    description: str | None = None
    required_inputs: list[str]
    optional_inputs: list[str]
    output_fields: list[str]
    providers: list[ProviderOut] = Field(description="Pass some of these ids as `enrichments`, in order.")
    email_verifiers: list[VerifierOut]


class WaterfallList(BaseModel):
    waterfalls: list[WaterfallOut]
    total: int
    omitted: int = Field(default=0, description="Waterfalls left out to fit the budget; narrow with `query`.")


def waterfall_out(w: Waterfall) -> WaterfallOut:
    return WaterfallOut(
        identifier=w.identifier,
        name=w.name,
        description=(w.description or "")[:300] or None,
        required_inputs=[p.name for p in w.input_params if p.is_required],
        optional_inputs=[p.name for p in w.input_params if not p.is_required],
        output_fields=w.output_field_names(),
        providers=[
            ProviderOut(id=p.id, name=p.name, price=p.price, enabled_by_default=p.enabled_by_default)
            for p in w.available_enrichments
        ],
        email_verifiers=[VerifierOut(id=v.id, name=v.name, price=v.price) for v in w.email_verifiers],
    )


def _provider_text(p: ProviderOut) -> str:
    price = "?" if p.price is None else f"{p.price:g}"
    return f"{p.id} {p.name} ({price} cr{', default' if p.enabled_by_default else ''})"


def render_waterfalls(listing: WaterfallList) -> str:
    lines = [f"{listing.total} waterfall(s)" + (f", {listing.omitted} omitted" if listing.omitted else "") + ":"]
    for w in listing.waterfalls:
        providers = ", ".join(_provider_text(p) for p in w.providers)
        lines.append(
            f"- {w.identifier}: {w.name}. Inputs: {', '.join(w.required_inputs)}"
            + (f" (optional: {', '.join(w.optional_inputs)})" if w.optional_inputs else "")
            + f". Outputs: {', '.join(w.output_fields)}. Providers: {providers}."
        )
        if w.email_verifiers:
            verifiers = ", ".join(f"{v.id} {v.name or ''} ({v.price or 0:g} cr)" for v in w.email_verifiers)
            lines.append(f"  Email verifiers: {verifiers}")
    return escape_text("\n".join(lines))


LIST_WATERFALLS_DESCRIPTION = """\
List Databar waterfalls: enrichments that try several data providers in turn until one finds the data \
(e.g. a work email from name + company).

Free and read-only. For each waterfall: its identifier, the inputs each row needs, the output fields, and \
the providers (ids and credit prices per row) and email verifiers it offers.

Next: pick a waterfall and provider ids, then call run_bulk_waterfall with one input object per row."""

# ---- run_bulk_waterfall --------------------------------------------------------------------------------

RUN_BULK_WATERFALL_DESCRIPTION = """\
Run a Databar waterfall on many rows at once (e.g. find work emails for a list of people) and return the \
enriched rows, aligned to the inputs (null where no provider found data).

Costs credits: each provider tried on a row bills its price (list_waterfalls shows prices), plus the email \
verifier per found email; the worst case is rows × (sum of chosen provider prices + verifier price). \
Inputs are checked against the waterfall before anything is sent; the run is submitted exactly once.

Waits up to wait_seconds for the results, reporting progress. If the task is still running then, the \
answer has status "processing", the task_id and the exact get_task call: call it to keep waiting; do not \
call run_bulk_waterfall again for the same rows. Calling it again with identical input anyway returns the \
earlier task (reused: true) without billing; force=true re-runs. Large results are paged: follow next_call. \
Every result is kept in the local ledger after Databar deletes it (24 h)."""

WaterfallId = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="Waterfall identifier from list_waterfalls, e.g. 'email_getter'.",
    ),
]
InputValue = str | int | float | bool | None
Rows = Annotated[
    list[dict[str, InputValue]],
    Field(
        min_length=1,
        max_length=config.MAX_BULK_ROWS,
        description="One object per row with the waterfall's input fields, e.g. "
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
VerifierId = Annotated[
    int | None, Field(ge=1, description="Optional email verifier id from list_waterfalls; null for none.")
]


def register(box: Toolbox) -> None:
    settings = box.settings

    @box.tool(
        name="list_waterfalls",
        toolset="discover",
        title="List waterfalls",
        description=LIST_WATERFALLS_DESCRIPTION,
        read_only=True,
        destructive=False,
        idempotent=True,
    )
    async def list_waterfalls(
        ctx: ToolContext,
        query: Annotated[
            str | None,
            Field(max_length=200, description="Optional filter on identifier, name or description."),
        ] = None,
    ) -> Annotated[CallToolResult, WaterfallList]:
        svc = services(ctx)

        async def work() -> CallToolResult:
            found = [waterfall_out(w) for w in await svc.client.list_waterfalls()]
            if query:
                q = query.lower()
                found = [w for w in found if q in f"{w.identifier} {w.name} {w.description or ''}".lower()]

            def make(count: int) -> WaterfallList:
                return WaterfallList(waterfalls=found[:count], total=len(found), omitted=len(found) - count)

            count = largest_fitting(
                len(found),
                lambda k: result_size(make(k).model_dump(mode="json"), render_waterfalls(make(k))),
                svc.settings.result_budget_chars,
            )
            listing = make(count)
            return ok_result(listing, render_waterfalls(listing))

        return await guarded(work())

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
        email_verifier: VerifierId = None,
        wait_seconds: Annotated[float, wait_field(settings)] = settings.tool_deadline_s,
        force: Annotated[
            bool,
            Field(
                description="Submit even if an identical run is running or finished within the duplicate window "
                "(it bills again). Leave false: a repeated call then returns the earlier task for free."
            ),
        ] = False,
    ) -> Annotated[CallToolResult, TaskView]:
        started = time.monotonic()
        svc = services(ctx)

        async def work() -> CallToolResult:
            body = BulkWaterfallRequest(
                params=list(params), enrichments=list(enrichments), email_verifier=email_verifier
            )
            plan = await svc.catalog.plan_bulk(waterfall, body.params, body.enrichments, email_verifier)
            if plan.issues:
                raise ToolFailure(
                    from_issues(f"The input does not fit waterfall '{waterfall}'; nothing was sent.", plan.issues)
                )
            try:
                submitted = await svc.runner.submit_bulk_waterfall(
                    waterfall, body, estimated_credits=plan.estimated_credits, force=force
                )
            except InsufficientCredits as exc:
                raise ToolFailure(await _insufficient(svc, exc, plan.estimated_credits)) from None
            except DuplicateRunUnknown as exc:
                raise ToolFailure(duplicate_unknown(exc.earlier)) from None
            reused = submitted.reused is not None
            if reused:
                stored = await svc.ledger.stored_task(submitted.task_id)
                if stored is not None:
                    return await deliver(
                        svc,
                        stored,
                        offset=0,
                        limit=None,
                        estimated_credits=plan.estimated_credits,
                        served_from="ledger",
                        reused=True,
                    )
            else:
                await ctx.report_progress(0, len(body.params), f"submitted {len(body.params):,} rows")
            remaining = max(0.0, wait_seconds - (time.monotonic() - started))
            task = await svc.runner.wait(
                submitted.task_id, timeout_s=remaining, on_progress=lambda t: progress_reporter(ctx, t)
            )
            if task is None:
                view = TaskView(
                    task_id=submitted.task_id,
                    status="processing" if reused else submitted.status,
                    done=False,
                    estimated_credits=plan.estimated_credits,
                    reused=reused,
                    message=(
                        "An identical run is already running; returning it instead of billing again."
                        if reused
                        else f"Submitted {len(body.params)} rows; still running."
                    ),
                    next_call=get_task_call(submitted.task_id, wait_seconds=svc.settings.tool_deadline_s),
                )
                return ok_result(view, render(view))
            return await deliver(
                svc, task, offset=0, limit=None, estimated_credits=plan.estimated_credits, reused=reused
            )

        return await guarded(work())


def duplicate_unknown(earlier: Submission) -> ErrorBody:
    """An identical run was sent earlier and its outcome is unknown: re-sending could bill twice."""
    age = max(0, int(time.time() - earlier.created_at))
    return ErrorBody(
        code=ErrorCode.SUBMISSION_UNKNOWN,
        message=(
            f"An identical run was sent {age} s ago and its outcome is unknown (the reply was lost): Databar "
            "may have started and billed it. It was not sent again."
        ),
        details={"fingerprint": earlier.fingerprint, "submitted_at": earlier.created_at, "rows": earlier.rows},
        next_steps=[
            "Call list_recent_tasks: unsettled_submissions lists this run by fingerprint.",
            "Check the Databar dashboard for a task started then; if it exists, wait for its results there.",
            "If you are sure it never started, call run_bulk_waterfall again with force=true.",
        ],
    )


async def _insufficient(svc: Services, exc: InsufficientCredits, estimate: float | None) -> Any:
    """406, with the balance (one extra GET, best effort) and the run's estimated cost."""
    body = from_api_error(exc)
    body.details["estimated_credits"] = estimate
    try:
        body.details["balance"] = (await svc.client.get_user()).balance
    except Exception:  # the explanation must not fail because the balance could not be read
        body.details["balance"] = None
    if estimate is not None and body.details["balance"] is not None:
        body.message += f" This run may cost up to {estimate:g} credits; the balance is {body.details['balance']:g}."
    return body


__all__ = ["FieldIssue", "register"]
