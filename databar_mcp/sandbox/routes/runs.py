"""Billable run routes: validate like the real API, price the worst case, then create a task."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, cast

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from databar_mcp.sandbox.catalog import ENRICHMENTS, WATERFALLS, Param, Waterfall, choice_items
from databar_mcp.sandbox.errors import Json, field_errors, insufficient_credits, not_found
from databar_mcp.sandbox.providers import RowOutcome, enrichment_row, waterfall_row
from databar_mcp.sandbox.routes.catalog import enrichment_of
from databar_mcp.sandbox.state import SandboxState
from databar_mcp.sandbox.validation import parse_body

Row = dict[str, Any]
Errors = dict[str, list[str]]


class WaterfallBulkBody(BaseModel):
    """The seed's OpenAPI says `enrichments` is required; Databar's SDK and CLI leave it out for the default
    cascade (the providers enabled by default), and Databar serves them: absent means the default."""

    params: list[Row]
    enrichments: Annotated[list[int], Field(min_length=1)] | None = None
    email_verifier: int | None = None


class WaterfallRunBody(BaseModel):
    params: Row
    enrichments: Annotated[list[int], Field(min_length=1)] | None = None
    email_verifier: int | None = None


class EnrichmentRunBody(BaseModel):
    params: Row
    pagination: Row | None = None


class EnrichmentBulkBody(BaseModel):
    params: list[Row]
    pagination: Row | None = None


def _row_errors(params: Sequence[Param], row: Mapping[str, object], prefix: str) -> Errors:
    errors: Errors = {}
    for param in params:
        value = row.get(param.name)
        if value is None:
            if param.is_required:
                errors[prefix + param.name] = ["This field is required."]
        elif isinstance(value, str) and not value.strip():
            if param.is_required:
                errors[prefix + param.name] = ["This field may not be blank."]
        elif param.choices and str(value) not in _allowed(param):
            errors[prefix + param.name] = [f'"{value}" is not a valid choice.']
    return errors


def _allowed(param: Param) -> set[str]:
    return {*param.choices, *(c.lower() for c in param.choices), *(str(c["id"]) for c in choice_items(param))}


def _provider_errors(waterfall: Waterfall, chosen: Sequence[int], verifier: int | None) -> Errors:
    errors: Errors = {}
    unknown = [e for e in chosen if e not in waterfall.provider_ids]
    if unknown:
        errors["enrichments"] = [f"Enrichment {e} is not available for this waterfall." for e in unknown]
    if verifier is not None and verifier not in waterfall.email_verifiers:
        if waterfall.email_verifiers:
            errors["email_verifier"] = [f"Email verifier {verifier} is not available for this waterfall."]
        else:
            errors["email_verifier"] = ["This waterfall does not verify emails."]
    return errors


def _rows_errors(params: Sequence[Param], rows: Sequence[Row], limit: int) -> Errors:
    if not rows:
        return {"params": ["Ensure this field has at least 1 items."]}
    if len(rows) > limit:
        return {"params": [f"Ensure this field has no more than {limit} items."]}
    errors: Errors = {}
    for index, row in enumerate(rows):
        errors.update(_row_errors(params, row, f"params[{index}]."))
    return errors


async def off_loop(work: Callable[[], list[RowOutcome]]) -> list[RowOutcome]:
    """Run CPU work in the loop's default executor, which asyncio.run joins: stop() leaves no thread."""
    return await asyncio.get_running_loop().run_in_executor(None, work)


def routes(state: SandboxState) -> list[Route]:
    def waterfall_of(request: Request) -> Waterfall:
        waterfall = WATERFALLS.get(str(request.path_params["identifier"]))
        if waterfall is None:
            raise not_found("Waterfall not found.")
        return waterfall

    def start(outcomes: Sequence[RowOutcome], worst_case: float, bulk: bool, waterfall: bool = False) -> Response:
        task = state.submit(outcomes, worst_case, bulk, waterfall=waterfall)
        return JSONResponse({"task_id": task.task_id, "status": "processing"})

    def afford(worst_case: float) -> None:
        """Refuse before computing outcomes (10 000 rows take ~0.5 s, off the loop); submit() checks again."""
        if state.balance < worst_case:
            raise insufficient_credits()

    def run_waterfall(waterfall: Waterfall, rows: list[Row], chosen: list[int], verifier: int | None) -> float:
        errors = _provider_errors(waterfall, chosen, verifier)
        errors.update(_rows_errors(waterfall.input_params, rows, state.config.max_bulk_rows))
        if errors:
            raise field_errors(errors)
        per_row = sum(ENRICHMENTS[e].price for e in chosen)
        per_row += ENRICHMENTS[verifier].price if verifier is not None else 0.0
        afford(per_row * len(rows))
        return per_row * len(rows)

    async def waterfall_bulk(request: Request) -> Response:
        body = await parse_body(WaterfallBulkBody, request)
        waterfall = waterfall_of(request)
        chosen = list(dict.fromkeys(body.enrichments or waterfall.default_provider_ids))
        worst = run_waterfall(waterfall, body.params, chosen, body.email_verifier)
        verifier = body.email_verifier
        outcomes = await off_loop(
            lambda: [waterfall_row(waterfall, cast(dict[str, Json], r), chosen, verifier) for r in body.params]
        )
        return start(outcomes, worst, bulk=True, waterfall=True)

    async def waterfall_single(request: Request) -> Response:
        body = await parse_body(WaterfallRunBody, request)
        waterfall = waterfall_of(request)
        chosen = list(dict.fromkeys(body.enrichments or waterfall.default_provider_ids))
        worst = run_waterfall(waterfall, [body.params], chosen, body.email_verifier)
        outcome = waterfall_row(waterfall, cast(dict[str, Json], body.params), chosen, body.email_verifier)
        return start([outcome], worst, bulk=False, waterfall=True)

    async def enrichment_single(request: Request) -> Response:
        body = await parse_body(EnrichmentRunBody, request)
        enrichment = enrichment_of(request)
        errors = _row_errors(enrichment.params, body.params, "params.")
        if errors:
            raise field_errors(errors)
        worst = enrichment.unit_cost(cast(dict[str, Json], body.params))
        afford(worst)
        return start([enrichment_row(enrichment, cast(dict[str, Json], body.params))], worst, False)

    async def enrichment_bulk(request: Request) -> Response:
        body = await parse_body(EnrichmentBulkBody, request)
        enrichment = enrichment_of(request)
        errors = _rows_errors(enrichment.params, body.params, state.config.max_bulk_rows)
        if errors:
            raise field_errors(errors)
        worst = sum(enrichment.unit_cost(cast(dict[str, Json], r)) for r in body.params)
        afford(worst)
        outcomes = await off_loop(lambda: [enrichment_row(enrichment, cast(dict[str, Json], r)) for r in body.params])
        return start(outcomes, worst, bulk=True)

    return [
        Route("/v1/waterfalls/{identifier}/bulk-run", waterfall_bulk, methods=["POST"]),
        Route("/v1/waterfalls/{identifier}/run", waterfall_single, methods=["POST"]),
        Route("/v1/enrichments/{enrichment_id}/run", enrichment_single, methods=["POST"]),
        Route("/v1/enrichments/{enrichment_id}/bulk-run", enrichment_bulk, methods=["POST"]),
    ]
