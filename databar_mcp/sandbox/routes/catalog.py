"""Read-only routes: the account, the enrichment catalog and the waterfalls."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from databar_mcp.sandbox.catalog import ENRICHMENTS, WATERFALLS, Enrichment, Waterfall, choice_items
from databar_mcp.sandbox.errors import Json, field_errors, not_found
from databar_mcp.sandbox.state import SandboxState
from databar_mcp.sandbox.validation import parse_path_int, parse_query

DEFAULT_PAGE_LIMIT = 50


class CatalogQuery(BaseModel):
    q: str | None = None
    category: str | None = None
    authorized_only: bool = False
    page: Annotated[int | None, Field(ge=1)] = None
    limit: Annotated[int | None, Field(ge=1, le=500)] = None


class ChoicesQuery(BaseModel):
    q: str | None = None
    page: Annotated[int, Field(ge=1)] = 1
    limit: Annotated[int, Field(ge=1, le=500)] = DEFAULT_PAGE_LIMIT


def paged(items: list[Json], page: int, limit: int) -> dict[str, Json]:
    start = (page - 1) * limit
    return {
        "items": items[start : start + limit],
        "page": page,
        "limit": limit,
        "has_next_page": start + limit < len(items),
        "total_count": len(items),
    }


def _wanted(e: Enrichment, query: CatalogQuery) -> bool:
    if query.q and query.q.lower() not in f"{e.name}\n{e.description}".lower():
        return False
    if query.category and query.category.lower() not in e.category:
        return False
    return not (query.authorized_only and e.auth_method != "none")


def enrichment_of(request: Request) -> Enrichment:
    enrichment = ENRICHMENTS.get(parse_path_int(request, "enrichment_id"))
    if enrichment is None:
        raise not_found("Enrichment not found.")
    return enrichment


def routes(state: SandboxState) -> list[Route]:
    def waterfall_json(waterfall: Waterfall) -> dict[str, Json]:
        return waterfall.as_json(state.config.reply_variant, state.config.waterfall_required_key)

    async def me(_request: Request) -> Response:
        return JSONResponse(
            {
                "first_name": "Sandbox",
                "email": "sandbox@example.com",
                "balance": state.balance,
                "plan": "sandbox",
                "workspace": "Sandbox workspace",
            }
        )

    async def list_enrichments(request: Request) -> Response:
        query = parse_query(CatalogQuery, request)
        variant = state.config.reply_variant
        items: list[Json] = [e.summary_json(variant) for e in ENRICHMENTS.values() if _wanted(e, query)]
        if query.page is None:
            return JSONResponse(items[: query.limit] if query.limit else items)
        return JSONResponse(paged(items, query.page, query.limit or DEFAULT_PAGE_LIMIT))

    async def get_enrichment(request: Request) -> Response:
        return JSONResponse(enrichment_of(request).detail_json(state.config.reply_variant))

    async def param_choices(request: Request) -> Response:
        enrichment = enrichment_of(request)
        query = parse_query(ChoicesQuery, request)
        param = enrichment.param(str(request.path_params["slug"]))
        if param is None:
            raise not_found("Param not found.")
        if not param.choices:
            raise field_errors({"slug": [f"Param {param.name} has no choices."]})
        items: list[Json] = [c for c in choice_items(param) if not query.q or query.q.lower() in str(c["name"]).lower()]
        return JSONResponse(paged(items, query.page, query.limit))

    async def list_waterfalls(_request: Request) -> Response:
        return JSONResponse([waterfall_json(w) for w in WATERFALLS.values()])

    async def get_waterfall(request: Request) -> Response:
        waterfall = WATERFALLS.get(str(request.path_params["identifier"]))
        if waterfall is None:
            raise not_found("Waterfall not found.")
        return JSONResponse(waterfall_json(waterfall))

    return [
        Route("/v1/user/me", me, methods=["GET"]),
        Route("/v1/enrichments/", list_enrichments, methods=["GET"]),
        Route("/v1/enrichments/{enrichment_id}", get_enrichment, methods=["GET"]),
        Route("/v1/enrichments/{enrichment_id}/params/{slug}/choices", param_choices, methods=["GET"]),
        Route("/v1/waterfalls/", list_waterfalls, methods=["GET"]),
        Route("/v1/waterfalls/{identifier}", get_waterfall, methods=["GET"]),
    ]
