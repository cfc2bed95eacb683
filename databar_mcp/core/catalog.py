"""What the catalog knows before a run: which inputs a waterfall or enrichment needs, which providers it
offers, and what a run will cost at most. Checked before any credit can be spent; cached because it rarely
changes."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from databar_mcp.api import DatabarClient
from databar_mcp.api.errors import DatabarError, FieldIssue
from databar_mcp.api.models import Choice, Enrichment, EnrichmentParam, Waterfall
from databar_mcp.core.rows import step_cost
from databar_mcp.core.users import current_owner

logger = logging.getLogger("databar_mcp.core.catalog")


@dataclass(frozen=True)
class RunPlan:
    """A checked run: the worst-case cost and any problems with the input (nothing is sent if there are any)."""

    waterfall: Waterfall | None
    rows: int
    estimated_credits: float | None
    issues: tuple[FieldIssue, ...]
    # Why the cost is unknown (estimated_credits None) and what would make it known: a spend limit that
    # cannot price a run refuses it, and this tells the agent what to set.
    unpriced: str | None = None
    # What a per-parameter price is driven by, in words: the parameter, its value here and its default.
    price_note: str | None = None


class Catalog:
    def __init__(self, client: DatabarClient, *, ttl_s: float) -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Waterfall]] = {}
        self._enrichments: dict[int, tuple[float, Enrichment]] = {}
        self._choices: dict[tuple[int, str], tuple[float, tuple[Choice, ...] | None]] = {}
        # by acting user: a catalog listing may hold a workspace's own enrichments (connectors)
        self._listing: dict[str | None, tuple[float, list[Enrichment]]] = {}
        self._waterfalls: dict[str | None, tuple[float, list[Waterfall]]] = {}

    def _fresh(self, at: float) -> bool:
        return time.monotonic() - at < self._ttl_s

    async def enrichment_list(self) -> list[Enrichment]:
        """The whole catalog as listed (summaries), a page of LIST_PAGE at a time: searched here, so a user's
        words need not be Databar's."""
        hit = self._listing.get(current_owner())
        if hit is not None and self._fresh(hit[0]):
            return hit[1]
        found: list[Enrichment] = []
        for page in range(1, LIST_PAGES_MAX + 1):
            items, _, more = await self._client.search_enrichments(q=None, category=None, page=page, limit=LIST_PAGE)
            found.extend(items)
            if not more or not items:
                break
        self._listing[current_owner()] = (time.monotonic(), found)
        return found

    async def waterfall_list(self) -> list[Waterfall]:
        hit = self._waterfalls.get(current_owner())
        if hit is not None and self._fresh(hit[0]):
            return hit[1]
        found = await self._client.list_waterfalls()
        self._waterfalls[current_owner()] = (time.monotonic(), found)
        return found

    def known_waterfall(self, identifier: str) -> Waterfall | None:
        """The waterfall when read recently (no request)."""
        hit = self._cache.get(identifier)
        return hit[1] if hit is not None and self._fresh(hit[0]) else None

    def known(self, enrichment_id: int) -> Enrichment | None:
        """The enrichment's details when fetched recently (no request)."""
        hit = self._enrichments.get(enrichment_id)
        return hit[1] if hit is not None and self._fresh(hit[0]) else None

    async def enrichment(self, enrichment_id: int) -> Enrichment:
        hit = self._enrichments.get(enrichment_id)
        if hit is not None and time.monotonic() - hit[0] < self._ttl_s:
            return hit[1]
        enrichment = await self._client.get_enrichment(enrichment_id)
        self._enrichments[enrichment_id] = (time.monotonic(), enrichment)
        return enrichment

    async def plan_enrichment(self, enrichment_id: int, rows: Sequence[Mapping[str, object]]) -> RunPlan:
        enrichment = await self.enrichment(enrichment_id)
        fetched: dict[str, tuple[Choice, ...]] = {}
        for param in enrichment.params or []:
            choices = param.choices
            if choices is None or (choices.mode == "inline" and choices.complete):
                continue  # no choices, or the whole list is inline
            if any(_given(r.get(param.name)) for r in rows) and (
                full := await self.all_choices(enrichment_id, param.name)
            ):
                fetched[param.name] = full
        return plan_enrichment_run(enrichment, rows, fetched_choices=fetched)

    async def all_choices(self, enrichment_id: int, param: str) -> tuple[Choice, ...] | None:
        """Every allowed value of a param whose list is remote or cut short inline (the choices endpoint, paged);
        None when there are too many to check here (Databar still checks them)."""
        key = (enrichment_id, param)
        hit = self._choices.get(key)
        if hit is not None and time.monotonic() - hit[0] < self._ttl_s:
            return hit[1]
        found: list[Choice] = []
        page, more = 1, True
        while more and len(found) < CHOICES_CHECKED_MAX:
            try:
                got = await self._client.param_choices(enrichment_id, param, q=None, page=page, limit=CHOICES_PAGE)
            except DatabarError as exc:  # the check is an aid: without the list, Databar checks the value
                logger.info(
                    "choices of %s for enrichment %s unavailable (%s); not checked here", param, enrichment_id, exc
                )
                return None
            found.extend(got.items)
            more = got.has_next_page and bool(got.items)
            page += 1
        full = None if more else tuple(found)
        self._choices[key] = (time.monotonic(), full)
        return full

    async def get(self, identifier: str) -> Waterfall:
        hit = self._cache.get(identifier)
        if hit is not None and time.monotonic() - hit[0] < self._ttl_s:
            return hit[1]
        waterfall = await self._client.get_waterfall(identifier)
        self._cache[identifier] = (time.monotonic(), waterfall)
        return waterfall


MAX_ISSUES = 20
LIST_PAGE = 500  # the API's largest page of enrichments
LIST_PAGES_MAX = 20
CHOICES_PAGE = 500
CHOICES_CHECKED_MAX = 5_000  # params with more allowed values are left to Databar to check


def _given(value: object) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip())


def plan_bulk_run(
    waterfall: Waterfall,
    rows: Sequence[Mapping[str, object]],
    enrichments: Sequence[int],
    email_verifier: int | None,
) -> RunPlan:
    issues: list[FieldIssue] = []
    providers = {p.id: p for p in waterfall.available_enrichments}
    unknown = [e for e in enrichments if e not in providers]
    if unknown:
        offered = ", ".join(f"{p.id} ({p.name})" for p in waterfall.available_enrichments)
        issues.append(
            FieldIssue("enrichments", f"not offered by waterfall {waterfall.identifier}: {unknown}; use {offered}")
        )
    if len(set(enrichments)) != len(enrichments):
        issues.append(FieldIssue("enrichments", "lists a provider more than once"))
    verifiers = {v.id: v for v in waterfall.email_verifiers}
    if email_verifier is not None and email_verifier not in verifiers:
        offered = ", ".join(str(v) for v in verifiers) or "none (this waterfall does not verify emails)"
        issues.append(FieldIssue("email_verifier", f"{email_verifier} is not offered; use {offered}"))
    required = [p.name for p in waterfall.input_params if p.must_have]
    for index, row in enumerate(rows):
        if len(issues) >= MAX_ISSUES:
            break
        missing = [name for name in required if row.get(name) in (None, "")]
        if missing:
            issues.append(FieldIssue(f"params[{index}]", f"missing required input(s): {', '.join(missing)}"))
    prices = [providers[e].price for e in enrichments if e in providers]
    estimate: float | None = None
    unpriced: str | None = None
    if prices and all(p is not None for p in prices):
        per_row = sum(p for p in prices if p is not None)
        if email_verifier is not None and email_verifier in verifiers:
            per_row += verifiers[email_verifier].price or 0.0
        estimate = round(per_row * len(rows), 4)
    elif unknown := [e for e in enrichments if e in providers and providers[e].price is None]:
        names = ", ".join(f"{e} ({providers[e].name})" for e in unknown)
        unpriced = (
            f"the catalog gives no price for provider(s) {names} of waterfall {waterfall.identifier}: choose "
            "providers with a price (get_waterfall lists them)"
        )
    return RunPlan(
        waterfall=waterfall, rows=len(rows), estimated_credits=estimate, issues=tuple(issues), unpriced=unpriced
    )


def default_providers(waterfall: Waterfall) -> list[int]:
    """What Databar runs when a single waterfall run names no providers."""
    chosen = [p.id for p in waterfall.available_enrichments if p.enabled_by_default]
    return chosen or [p.id for p in waterfall.available_enrichments]


def plan_enrichment_run(
    enrichment: Enrichment,
    rows: Sequence[Mapping[str, object]],
    *,
    fetched_choices: Mapping[str, Sequence[Choice]] | None = None,
) -> RunPlan:
    """Required params present and choices respected in every row (inline lists, and the full lists fetched
    for remote or cut-short ones); cost per input = price, or price × params[parameter] for per-parameter
    pricing (unknown when that value is not a number)."""
    issues: list[FieldIssue] = []
    params = enrichment.params or []
    many = len(rows) > 1
    for index, row in enumerate(rows):
        prefix = f"params[{index}]" if many else "params"
        for param in params:
            if len(issues) >= MAX_ISSUES:
                break
            value = row.get(param.name)
            if value is None or (isinstance(value, str) and not value.strip()):
                if param.is_required:
                    issues.append(FieldIssue(f"{prefix}.{param.name}", "required"))
                continue
            problem = choice_problem(param, value, (fetched_choices or {}).get(param.name))
            if problem:
                issues.append(FieldIssue(f"{prefix}.{param.name}", problem))
    estimate = enrichment_cost(enrichment, rows)
    return RunPlan(
        waterfall=None,
        rows=len(rows),
        estimated_credits=estimate,
        issues=tuple(issues),
        unpriced=None if estimate is not None else unpriced_reason(enrichment, rows),
        price_note=price_note(enrichment, rows),
    )


def choice_problem(param: EnrichmentParam, value: object, fetched: Sequence[Choice] | None = None) -> str | None:
    """Why `value` is not an allowed choice: against the inline list when it is whole, else against the full
    list `fetched` from the choices endpoint (None: unknown here, Databar checks it)."""
    choices = param.choices
    if fetched:
        items = list(fetched)
    elif choices is None or choices.mode != "inline" or not choices.complete or not choices.items:
        return None
    else:
        items = choices.items
    allowed = {c.name.lower() for c in items} | {str(c.id).lower() for c in items if c.id is not None}
    values = cast(list[object], value) if isinstance(value, list) else [value]
    bad = [v for v in values if str(v).lower() not in allowed]
    if not bad:
        return None
    shown = ", ".join(c.name for c in items[:30])
    more = f" and {len(items) - 30} more (get_param_choices searches them)" if len(items) > 30 else ""
    return f"{str(bad[0])[:100]!r} is not one of: {shown}{more}"


def enrichment_cost(enrichment: Enrichment, rows: Sequence[Mapping[str, object]]) -> float | None:
    if enrichment.price is None:
        return None
    parameter = enrichment.price_parameter
    if parameter is None:
        if enrichment.pricing is not None and enrichment.pricing.type not in ("fixed", "per_parameter"):
            return None  # a pricing rule we do not know: never guess low
        return round(enrichment.price * len(rows), 4)
    default = price_default(enrichment)
    total = 0.0
    for row in rows:
        multiplier = _amount(row.get(parameter))
        if multiplier is None:
            multiplier = default
        if multiplier is None:
            return None
        total += enrichment.price * multiplier
    return round(total, 4)


DEFAULT_IN_TEXT = re.compile(r"\bdefault(?:s to|:| is)?\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


def default_in_text(description: str | None) -> float | None:
    """A param's default as its description states it ("default 10", "defaults to 25"): the API has no field."""
    found = DEFAULT_IN_TEXT.search(description or "")
    return float(found.group(1)) if found else None


def price_default(enrichment: Enrichment) -> float | None:
    """The value the pricing parameter takes when an input leaves it out (None: the catalog does not say)."""
    param = next((p for p in enrichment.params or [] if p.name == enrichment.price_parameter), None)
    if param is None:
        return None
    stated = cast(object, (param.model_extra or {}).get("default"))
    amount = _amount(stated)
    return amount if amount is not None else default_in_text(param.description)


def price_note(enrichment: Enrichment, rows: Sequence[Mapping[str, object]]) -> str | None:
    """The price a parameter drives, stated before the figures: 'Price: 0.2 credits × max_results per row
    (max_results 25 as given; the default 10 when left out).'"""
    parameter = enrichment.price_parameter
    if parameter is None or enrichment.price is None:
        return None
    default = price_default(enrichment)
    given = [a for a in (_amount(row.get(parameter)) for row in rows) if a is not None]
    left_out = len(rows) - len(given)
    parts: list[str] = []
    if given:
        values = ", ".join(f"{v:g}" for v in sorted(set(given))[:5])
        parts.append(f"{parameter} {values} as given" + (f" in {len(given)} of {len(rows)} rows" if left_out else ""))
    if left_out and default is not None:
        parts.append(f"left out in {left_out} row(s), so its default {default:g} applies")
    elif left_out:
        parts.append(f"left out in {left_out} row(s), and the catalog states no default: set {parameter}")
    elif default is not None:
        parts.append(f"the default {default:g} when left out")
    return f"Price: {enrichment.price:g} credits × {parameter} per row ({'; '.join(parts)})."


def unpriced_reason(enrichment: Enrichment, rows: Sequence[Mapping[str, object]]) -> str:
    """Why enrichment_cost could not price these rows, and what the caller can set so that it can."""
    name = f"enrichment {enrichment.id} ({enrichment.name})"
    if enrichment.price is None:
        return f"the catalog gives no price for {name}"
    parameter = enrichment.price_parameter
    if parameter is None:
        kind = enrichment.pricing.type if enrichment.pricing is not None else "unknown"
        return f"{name} is priced by a rule this server cannot estimate ({kind!r})"
    missing = sum(1 for row in rows if _amount(row.get(parameter)) is None)
    return (
        f"{name} costs {enrichment.price:g} credits × {parameter} per row, the catalog states no default or maximum "
        f"for {parameter}, and {missing} of {len(rows)} row(s) leave it out or give no number: set {parameter} "
        "(a number) in every row"
    )


def _amount(value: object) -> float | None:
    """A row's multiplier as a number (a number or a decimal string); None for anything else, null included."""
    return None if value is None else step_cost(value)
