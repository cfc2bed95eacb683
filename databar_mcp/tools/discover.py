"""Discover toolset: find enrichments and waterfalls, their inputs, outputs, providers and prices. Free."""

from typing import Annotated, Any, cast

import anyio
from mcp.types import CallToolResult
from pydantic import BaseModel, Field, PrivateAttr

from databar_mcp.api.models import Enrichment, EnrichmentParam, Waterfall, WaterfallInput
from databar_mcp.config import Toolset
from databar_mcp.core.catalog import default_in_text
from databar_mcp.core.finding import Found, find, waterfalls_for
from databar_mcp.core.shaping import escape_text
from databar_mcp.tools.kit.context import ToolContext, services
from databar_mcp.tools.kit.params import (
    EnrichmentId,
    WaterfallId,
)
from databar_mcp.tools.kit.registry import tool
from databar_mcp.tools.kit.results import fitted_result, ok_result

SEARCH_LIMIT = 10
DETAILS_SHOWN = 10  # search results fetch details (required params) for at most this many enrichments


# ---- output models -------------------------------------------------------------------------------------


class ParamOut(BaseModel):
    name: str
    required: bool
    type: str | None = None
    description: str | None = None
    choices: list[str] | None = Field(
        default=None, description="Allowed values (first ones; get_param_choices lists and searches them all)."
    )
    remote_choices: bool = Field(default=False, description="True: allowed values come from get_param_choices.")


class EnrichmentOut(BaseModel):
    id: int
    name: str
    description: str | None = None
    data_source: str | None = None
    price: float | None = Field(default=None, description="Credits per input row.")
    price_times: str | None = Field(
        default=None, description="Per-parameter pricing: the cost per row is price × the value of this param."
    )
    pages_supported: bool | None = Field(default=None, description="True: runs accept `pages` for more results.")
    category: list[str] = Field(default_factory=lambda: list[str]())
    required_params: list[str] | None = None
    params: list[ParamOut] | None = None
    response_fields: list[str] | None = None


class ChoicesOut(BaseModel):
    enrichment_id: int
    param: str
    choices: list[dict[str, Any]]
    page: int
    total: int | None = None
    omitted: int = Field(default=0, description="Values on this page left out to fit the budget: use a smaller limit.")
    next_call: str | None = None


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
    inputs: list[ParamOut] | None = Field(default=None, description="Every input with its type and description.")
    unclear_inputs: list[str] = Field(
        default_factory=lambda: list[str](),
        description="Inputs whose requiredness Databar did not state: treated as required.",
    )


class EnrichmentSearch(BaseModel):
    enrichments: list[EnrichmentOut]
    waterfalls: list[WaterfallOut] = Field(
        default_factory=lambda: list[WaterfallOut](),
        description="Matching waterfalls (several providers in turn): run with run_bulk_waterfall.",
    )
    total: int | None = None
    page: int
    next_call: str | None = None
    categories: dict[str, int] | None = Field(
        default=None, description="Nothing matched: every category with its number of enrichments."
    )
    nearest: list[str] | None = Field(default=None, description="Nothing matched: the names closest to the words.")
    message: str
    _order: list[str] = PrivateAttr(default_factory=lambda: list[str]())


class WaterfallList(BaseModel):
    waterfalls: list[WaterfallOut]
    total: int
    omitted: int = Field(default=0, description="Waterfalls left out to fit the budget; narrow with `query`.")


# ---- conversions and renderings ------------------------------------------------------------------------


def param_out(p: EnrichmentParam) -> ParamOut:
    choices = p.choices
    return ParamOut(
        name=p.name,
        required=p.is_required,
        type=p.type_field,
        description=(p.description or "")[:300] or None,
        choices=[c.name for c in choices.items[:20]] if choices is not None and choices.items else None,
        remote_choices=choices is not None and choices.mode == "remote",
    )


def input_out(p: WaterfallInput) -> ParamOut:
    return ParamOut(name=p.name, required=p.must_have, type=p.kind, description=(p.text or "")[:300] or None)


def enrichment_out(e: Enrichment, *, full: bool) -> EnrichmentOut:
    params = e.params
    return EnrichmentOut(
        id=e.id,
        name=e.name,
        description=(e.description or "")[: 600 if full else 200] or None,
        data_source=e.data_source,
        price=e.price,
        price_times=e.price_parameter,
        pages_supported=e.pagination.supported if full and e.pagination is not None else None,
        category=e.category_names,
        required_params=[p.name for p in params if p.is_required] if params is not None else None,
        params=[param_out(p) for p in params] if full and params is not None else None,
        response_fields=[f.name for f in e.response_fields] if full and e.response_fields is not None else None,
    )


def waterfall_out(w: Waterfall, *, full: bool = False) -> WaterfallOut:
    return WaterfallOut(
        identifier=w.identifier,
        name=w.name,
        description=(w.description or "")[:300] or None,
        required_inputs=[p.name for p in w.input_params if p.must_have],
        optional_inputs=[p.name for p in w.input_params if not p.must_have],
        output_fields=w.output_field_names(),
        providers=[
            ProviderOut(id=p.id, name=p.name, price=p.price, enabled_by_default=p.enabled_by_default)
            for p in w.available_enrichments
        ],
        email_verifiers=[VerifierOut(id=v.id, name=v.name, price=v.price) for v in w.email_verifiers],
        inputs=[input_out(p) for p in w.input_params] if full else None,
        unclear_inputs=w.unreadable_requiredness,
    )


def _price(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"


def render_enrichment(e: EnrichmentOut) -> str:
    per = f" × {e.price_times}" if e.price_times else ""
    line = f"- {e.id} {e.name} ({_price(e.price)}{per} cr/row, {e.data_source or 'unknown source'})"
    if e.required_params is not None:
        line += f". Needs: {', '.join(e.required_params) or 'nothing'}"
    if e.description:
        line += f". {e.description}"
    lines = [line]
    for p in e.params or []:
        choices = f" one of: {', '.join(p.choices)}" if p.choices else ""
        if p.remote_choices:
            choices = " values: get_param_choices"
        if p.name == e.price_times:  # the price is stated where the param is: what it multiplies, its default
            default = default_in_text(p.description)
            choices += f"; the price is × {p.name}" + (f", default {default:g}" if default is not None else "")
        lines.append(f"  param {p.name} ({p.type or '?'}, {'required' if p.required else 'optional'}){choices}")
    if e.response_fields:
        lines.append(f"  returns: {', '.join(e.response_fields)}")
    if e.pages_supported:
        lines.append("  paginated: pass pages (1-100) to run_bulk_enrichment for more results")
    return "\n".join(lines)


def render_search(result: EnrichmentSearch) -> str:
    """Enrichments and waterfalls in one list, best first (the order the search ranked them)."""
    enrichments = {f"e{e.id}": e for e in result.enrichments}
    waterfalls = {f"w{w.identifier}": w for w in result.waterfalls}
    lines = [result.message]
    for key in result._order or list(enrichments):  # pyright: ignore[reportPrivateUsage]
        if key in enrichments:
            lines.append(render_enrichment(enrichments[key]))
        elif key in waterfalls:
            lines.append("- waterfall " + render_waterfall(waterfalls[key]).removeprefix("- "))
    if result.next_call:
        lines.append(f"Next: {result.next_call}")
    return escape_text("\n".join(lines))


def _provider_text(p: ProviderOut) -> str:
    return f"{p.id} {p.name} ({_price(p.price)} cr{', default' if p.enabled_by_default else ''})"


def render_waterfall(w: WaterfallOut) -> str:
    providers = ", ".join(_provider_text(p) for p in w.providers)
    lines = [
        f"- {w.identifier}: {w.name}. Inputs: {', '.join(w.required_inputs)}"
        + (f" (optional: {', '.join(w.optional_inputs)})" if w.optional_inputs else "")
        + f". Outputs: {', '.join(w.output_fields)}. Providers: {providers}."
    ]
    if w.unclear_inputs:
        lines.append(f"  Treated as required (Databar does not say): {', '.join(w.unclear_inputs)}")
    if w.email_verifiers:
        verifiers = ", ".join(f"{v.id} {v.name or ''} ({_price(v.price)} cr)" for v in w.email_verifiers)
        lines.append(f"  Email verifiers: {verifiers}")
    for p in w.inputs or []:
        lines.append(f"  input {p.name} ({'required' if p.required else 'optional'}): {p.description or ''}")
    return "\n".join(lines)


def render_waterfalls(listing: WaterfallList) -> str:
    head = f"{listing.total} waterfall(s)" + (f", {listing.omitted} omitted" if listing.omitted else "") + ":"
    return escape_text("\n".join([head, *(render_waterfall(w) for w in listing.waterfalls)]))


def search_message(found: Found, query: str | None, category: str | None, page: int, total: int) -> str:
    """The first line of a search: what matched and how it is ordered, or, for nothing, where to look."""
    enrichments, waterfalls = found.searched
    within = f" in category {category!r}" if category else ""
    searched = f"{enrichments} enrichments" + (f" and {waterfalls} waterfalls" if waterfalls else "")
    if total:
        if not query:
            return f"{total} enrichment(s){within}, cheapest first."
        return f"{total} match {query!r}{within} (of {searched}), best first."
    what = f"matches {query!r}{within}" if query else f"is in category {category!r}"
    categories = ", ".join(f"{name} ({count})" for name, count in found.categories.items())
    first = next(iter(found.categories), "company")
    closest = f" Closest names: {'; '.join(found.nearest)}." if found.nearest else ""
    return (
        f"Nothing {what} among {searched}{f' (page {page})' if page > 1 else ''}. Categories: {categories}; "
        f"search_enrichments(category={first!r}) lists one.{closest} Or say what data you want in other words "
        "(e.g. email, phone, company, people)."
    )


# ---- descriptions ---------------------------------------------------------------------------------------

SEARCH_DESCRIPTION = """\
Search Databar's enrichments and waterfalls (company, people, emails, phones, socials...) in the user's own \
words (e.g. 'tech stack', 'mobile phone') or by category, best first. Free. Shows id, price per row, \
required params. Next: get_enrichment or get_waterfall, then run_bulk_enrichment or run_bulk_waterfall \
(for emails and phones prefer a waterfall)."""

GET_ENRICHMENT_DESCRIPTION = """\
Show one enrichment in full: params (type, required, allowed values), returned fields, price per row. \
Free. Next: run_bulk_enrichment."""

CHOICES_DESCRIPTION = """\
List or search one enrichment param's allowed values (e.g. countries), a page at a time. Free."""

LIST_WATERFALLS_DESCRIPTION = """\
List waterfalls: enrichments that try several providers in turn until one finds the data (e.g. a work \
email from name + company). Free. Shows inputs, outputs, providers (ids, price per row), email verifiers. \
Next: run_bulk_waterfall."""

GET_WATERFALL_DESCRIPTION = """\
Show one waterfall in full: every input (required or not), outputs, providers (ids, prices, defaults) and \
email verifiers. Free. Next: run_bulk_waterfall."""


@tool(
    Toolset.DISCOVER,
    name="search_enrichments",
    title="Search enrichments",
    description=SEARCH_DESCRIPTION,
    read_only=True,
    destructive=False,
    idempotent=True,
)
async def search_enrichments(
    ctx: ToolContext,
    query: Annotated[str | None, Field(max_length=200, description="What data, e.g. 'work email'.")] = None,
    category: Annotated[str | None, Field(max_length=100, description="Category, e.g. 'people'.")] = None,
    page: Annotated[int, Field(ge=1, le=10_000, description="Page, from 1.")] = 1,
    limit: Annotated[int, Field(ge=1, le=50, description="Results per page.")] = SEARCH_LIMIT,
) -> Annotated[CallToolResult, EnrichmentSearch]:
    svc = services(ctx)
    found = await find(svc.catalog, query, category)
    start = (page - 1) * limit
    window = found.entries[start : start + limit]
    more = start + limit < len(found.entries)
    detailed: dict[int, Enrichment] = {}

    async def detail(enrichment_id: int) -> None:
        detailed[enrichment_id] = await svc.catalog.enrichment(enrichment_id)

    async with anyio.create_task_group() as tg:
        for e in [x.enrichment for x in window if x.enrichment is not None][:DETAILS_SHOWN]:
            tg.start_soon(detail, e.id)
    shown: list[EnrichmentOut | WaterfallOut] = [
        enrichment_out(detailed.get(x.enrichment.id, x.enrichment), full=False)
        if x.enrichment is not None
        else waterfall_out(cast(Waterfall, x.waterfall))
        for x in window
    ]
    args = [
        f"query={query!r}" if query else "",
        f"category={category!r}" if category else "",
        f"page={page + 1}",
        f"limit={limit}" if limit != SEARCH_LIMIT else "",  # the next page of the same size
    ]
    next_call = f"search_enrichments({', '.join(a for a in args if a)})" if more else None
    message = search_message(found, query, category, page, len(found.entries))

    def make(k: int) -> EnrichmentSearch:
        out = EnrichmentSearch(
            enrichments=[x for x in shown[:k] if isinstance(x, EnrichmentOut)],
            waterfalls=[x for x in shown[:k] if isinstance(x, WaterfallOut)],
            total=len(found.entries),
            page=page,
            next_call=next_call,
            categories=found.categories if not found.entries else None,
            nearest=found.nearest or None,
            message=message + (f" Page {page} shows {k}." if found.entries else ""),
        )
        out._order = [f"e{x.id}" if isinstance(x, EnrichmentOut) else f"w{x.identifier}" for x in shown[:k]]  # pyright: ignore[reportPrivateUsage]
        return out

    return fitted_result(len(shown), make, render_search, svc.settings.result_budget_chars)


@tool(
    Toolset.DISCOVER,
    name="get_enrichment",
    title="Get an enrichment",
    description=GET_ENRICHMENT_DESCRIPTION,
    read_only=True,
    destructive=False,
    idempotent=True,
)
async def get_enrichment(enrichment_id: EnrichmentId, ctx: ToolContext) -> Annotated[CallToolResult, EnrichmentOut]:
    svc = services(ctx)
    out = enrichment_out(await svc.catalog.enrichment(enrichment_id), full=True)
    return ok_result(out, escape_text(render_enrichment(out)))


@tool(
    Toolset.DISCOVER,
    name="get_param_choices",
    title="List a param's allowed values",
    description=CHOICES_DESCRIPTION,
    read_only=True,
    destructive=False,
    idempotent=True,
)
async def get_param_choices(
    enrichment_id: EnrichmentId,
    param: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")],
    ctx: ToolContext,
    query: Annotated[str | None, Field(max_length=200, description="Filter values by name.")] = None,
    page: Annotated[int, Field(ge=1, le=10_000)] = 1,
    limit: Annotated[int, Field(ge=1, le=500)] = 50,
) -> Annotated[CallToolResult, ChoicesOut]:
    svc = services(ctx)
    got = await svc.client.param_choices(enrichment_id, param, q=query, page=page, limit=limit)
    items = [{"id": c.id, "name": c.name} for c in got.items]
    filtered = f", query={query!r}" if query else ""
    next_call = (
        f"get_param_choices(enrichment_id={enrichment_id}, param={param!r}{filtered}, page={page + 1}, limit={limit})"
        if got.has_next_page
        else None
    )

    def make(k: int) -> ChoicesOut:
        return ChoicesOut(
            enrichment_id=enrichment_id,
            param=param,
            choices=items[:k],
            page=page,
            total=got.total_count,
            omitted=len(items) - k,
            next_call=next_call if k == len(items) else None,
        )

    def render(out: ChoicesOut) -> str:
        values = ", ".join(str(c["name"]) for c in out.choices)
        more = f" Next: {out.next_call}" if out.next_call else ""
        return escape_text(f"{param} ({out.total if out.total is not None else '?'} values): {values}.{more}")

    return fitted_result(len(items), make, render, svc.settings.result_budget_chars)


@tool(
    Toolset.DISCOVER,
    name="list_waterfalls",
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
        Field(max_length=200, description="Words for the data wanted, e.g. 'mobile phone'; best match first."),
    ] = None,
) -> Annotated[CallToolResult, WaterfallList]:
    svc = services(ctx)
    listed = await svc.client.list_waterfalls()
    found = [waterfall_out(w) for w in (waterfalls_for(listed, query) if query else listed)]

    def make(count: int) -> WaterfallList:
        return WaterfallList(waterfalls=found[:count], total=len(found), omitted=len(found) - count)

    return fitted_result(len(found), make, render_waterfalls, svc.settings.result_budget_chars)


@tool(
    Toolset.DISCOVER,
    name="get_waterfall",
    title="Get a waterfall",
    description=GET_WATERFALL_DESCRIPTION,
    read_only=True,
    destructive=False,
    idempotent=True,
)
async def get_waterfall(waterfall: WaterfallId, ctx: ToolContext) -> Annotated[CallToolResult, WaterfallOut]:
    svc = services(ctx)
    out = waterfall_out(await svc.catalog.get(waterfall), full=True)
    return ok_result(out, escape_text(render_waterfall(out)))
