"""What the catalog knows before a run: which inputs a waterfall needs, which providers it offers, and what
a run will cost at most. Checked before any credit can be spent; cached because it rarely changes."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from databar_mcp.api import DatabarClient
from databar_mcp.api.errors import FieldIssue
from databar_mcp.api.models import Waterfall


@dataclass(frozen=True)
class RunPlan:
    """A validated bulk waterfall run: the worst-case cost and any problems with the input."""

    waterfall: Waterfall
    rows: int
    estimated_credits: float | None
    issues: tuple[FieldIssue, ...]


class WaterfallCatalog:
    def __init__(self, client: DatabarClient, *, ttl_s: float) -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Waterfall]] = {}

    async def get(self, identifier: str) -> Waterfall:
        hit = self._cache.get(identifier)
        if hit is not None and time.monotonic() - hit[0] < self._ttl_s:
            return hit[1]
        waterfall = await self._client.get_waterfall(identifier)
        self._cache[identifier] = (time.monotonic(), waterfall)
        return waterfall

    async def plan_bulk(
        self,
        identifier: str,
        rows: Sequence[Mapping[str, object]],
        enrichments: Sequence[int],
        email_verifier: int | None,
    ) -> RunPlan:
        waterfall = await self.get(identifier)
        return plan_bulk_run(waterfall, rows, enrichments, email_verifier)


MAX_ISSUES = 20


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
    required = [p.name for p in waterfall.input_params if p.is_required]
    for index, row in enumerate(rows):
        if len(issues) >= MAX_ISSUES:
            break
        missing = [name for name in required if row.get(name) in (None, "")]
        if missing:
            issues.append(FieldIssue(f"params[{index}]", f"missing required input(s): {', '.join(missing)}"))
    prices = [providers[e].price for e in enrichments if e in providers]
    estimate: float | None = None
    if prices and all(p is not None for p in prices):
        per_row = sum(p for p in prices if p is not None)
        if email_verifier is not None and email_verifier in verifiers:
            per_row += verifiers[email_verifier].price or 0.0
        estimate = round(per_row * len(rows), 4)
    return RunPlan(waterfall=waterfall, rows=len(rows), estimated_credits=estimate, issues=tuple(issues))
