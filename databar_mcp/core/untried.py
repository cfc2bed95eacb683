"""What a finished waterfall run left untried: the providers it did not use, and what trying them would cost.

A run with the default providers found 25 of 40 emails; the waterfall offered one more provider that would
have found more. The model cannot weigh that unless the answer says which providers were left out and what
adding them costs at most, both for the rows that found nothing and for a run with every provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from databar_mcp.api.errors import DatabarError
from databar_mcp.api.models import Task, Waterfall
from databar_mcp.core.catalog import Catalog
from databar_mcp.core.ledger.store import TaskRecord
from databar_mcp.core.rows import present_rows
from databar_mcp.core.tasks import TaskService


def untried_providers_line(
    waterfall: Waterfall | None, request: Mapping[str, Any], task: Task, presented: list[Any] | None = None
) -> str | None:
    """One line for a finished waterfall run that did not use every provider and left rows without data;
    None otherwise (not a waterfall, every provider used, everything found, or not finished). `presented`:
    present_rows(task.data), when the caller has made them already."""
    if waterfall is None or not task.is_terminal:
        return None
    used = {e for e in cast(list[object], request.get("enrichments") or []) if isinstance(e, int)}
    untried = [p for p in waterfall.available_enrichments if p.id not in used]
    rows = presented if presented is not None else present_rows(task.data)
    if not untried or not used or not rows:
        return None
    missed = sum(1 for r in rows if r is None)
    if not missed:
        return None
    names = ", ".join(f"{p.id} {p.name} ({_credits(p.price)} cr/row)" for p in untried)
    ids = ", ".join(str(p.id) for p in untried)
    verifier = _verifier_price(waterfall, request.get("email_verifier"))
    untried_price = _total([p.price for p in untried])
    chosen_price = _total([p.price for p in waterfall.available_enrichments if p.id in used])
    all_price = _total([p.price for p in waterfall.available_enrichments])
    retry = _cost(untried_price, verifier, missed)
    every, now = _cost(all_price, verifier, len(rows)), _cost(chosen_price, verifier, len(rows))
    return (
        f"Providers not tried: {names}. {missed} of {len(rows)} rows found nothing: running those {missed} again "
        f"with enrichments=[{ids}] would cost at most {retry} credits (all {len(waterfall.available_enrichments)} "
        f"providers on all {len(rows)} rows: at most {every} instead of {now})."
    )


async def untried_providers_line_later(
    catalog: Catalog,
    tasks: TaskService,
    task: Task,
    *,
    may_ask: bool,
    record: TaskRecord | None = None,
    presented: list[Any] | None = None,
) -> str | None:
    """The same line for a waterfall run that finished after its run call returned (read with get_task), from
    the submission the ledger recorded; None for anything else or when the waterfall cannot be read.
    `may_ask` False (a result served from the ledger, which promises no request): the cached waterfall only.
    `record`: the task's ledger record when the caller has already read it (the ledger is read once a call)."""
    if not task.is_terminal:
        return None
    if record is None:
        record = await tasks.read(task.task_id, with_data=False)
    submission = record.submission if record is not None else None
    parts = submission.endpoint.strip("/").split("/") if submission is not None else []
    if submission is None or len(parts) != 3 or parts[0] != "waterfalls":
        return None
    waterfall = catalog.known_waterfall(parts[1])
    if waterfall is None and may_ask:
        try:
            waterfall = await catalog.get(parts[1])
        except DatabarError:  # a suggestion only: the rows are the answer
            return None
    return untried_providers_line(waterfall, submission.request, task, presented)


def _verifier_price(waterfall: Waterfall, chosen: object) -> float | None:
    """Each found email is verified once: the verifier's price per row (0 when none was chosen)."""
    if not isinstance(chosen, int):
        return 0.0
    return next((v.price for v in waterfall.email_verifiers if v.id == chosen), None)


def _total(prices: list[float | None]) -> float | None:
    return None if any(p is None for p in prices) else sum(p for p in prices if p is not None)


def _cost(per_row: float | None, verifier: float | None, rows: int) -> str:
    if per_row is None or verifier is None:
        return "an unknown number of"
    return _credits(round((per_row + verifier) * rows, 4))


def _credits(value: float | None) -> str:
    return "?" if value is None else f"{value:g}"
