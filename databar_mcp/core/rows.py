"""A task's data as the rows an agent reads: one per input, waterfall entries reduced to what was found.

Databar answers a waterfall run with `{enrichment_data, result, steps[], result_field}` per input. The agent
wants `result`'s fields, the provider that found them and what the row cost; the raw entries stay in the
ledger and in the full-result resource for anyone who needs the steps.
"""

from __future__ import annotations

from typing import Any, cast

from databar_mcp.api.models import WaterfallEntry, waterfall_entry

META_KEYS = ("provider", "verified", "credits")


def is_verification(step_action: str | None) -> bool:
    return step_action is not None and "verif" in step_action.lower()


def present_entry(entry: WaterfallEntry) -> dict[str, Any] | None:
    """`result`'s fields plus provider (who found it), verified (when a verifier ran) and credits (the row's
    cost, the sum of its steps). A meta key the result already has keeps the result's value."""
    if not entry.result:
        return None
    row: dict[str, Any] = dict(entry.result)
    finders = [s for s in entry.steps if s.provider and not is_verification(s.action)]
    checks = [s for s in entry.steps if is_verification(s.action)]
    meta: dict[str, Any] = {"provider": finders[-1].provider if finders else None, "credits": entry.cost}
    if checks:
        meta["verified"] = any(bool(s.is_verified) for s in checks)
    for key, value in meta.items():
        row.setdefault(key, value)
    return row


def present_rows(data: object) -> list[Any] | None:
    """The data as a list aligned to the inputs (a single run's object becomes one row)."""
    if data is None:
        return None
    items = cast(list[Any], data) if isinstance(data, list) else [data]
    out: list[Any] = []
    for item in items:
        entry = waterfall_entry(item)
        out.append(present_entry(entry) if entry is not None else item)
    return out
