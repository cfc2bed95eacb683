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
        plain = _present_plain(item)
        if plain is not _UNUSUAL:
            out.append(plain)
            continue
        entry = waterfall_entry(item)
        out.append(present_entry(entry) if entry is not None else item)
    return out


_UNUSUAL: Any = object()  # the entry needs the lenient model's reading


def _present_plain(item: object) -> Any:
    """present_entry(waterfall_entry(item)) read straight from the JSON, for the shape Databar sends (a 10,000-row
    result is presented in a tenth of the time a model per row takes); `_UNUSUAL` for anything else (a cost in
    words, a non-text provider, a missing `steps`...), which the model then reads as before."""
    if item is None:
        return None
    if not isinstance(item, dict):
        return item if not isinstance(item, list) else _UNUSUAL
    raw = cast(dict[str, Any], item)
    steps, result = raw.get("steps", _UNUSUAL), raw.get("result")
    if not isinstance(steps, list) or not (result is None or isinstance(result, dict)):
        return _UNUSUAL
    field = raw.get("result_field")
    if not (field is None or isinstance(field, str) or _all_text(field)):
        return _UNUSUAL
    cost, provider, checks, verified = 0.0, None, False, False
    for step in cast(list[Any], steps):
        if not isinstance(step, dict):
            return _UNUSUAL
        s = cast(dict[str, Any], step)
        action, name, ok, price = s.get("action"), s.get("provider"), s.get("is_verified"), s.get("cost", 0.0)
        if not (_text_or_none(action) and _text_or_none(name) and (ok is None or isinstance(ok, bool))):
            return _UNUSUAL
        amount = step_cost(price)
        if amount is None:
            return _UNUSUAL
        cost += amount
        if is_verification(action):
            checks, verified = True, verified or bool(ok)
        elif name:
            provider = name
    if not result:
        return None
    row: dict[str, Any] = dict(cast(dict[str, Any], result))
    row.setdefault("provider", provider)
    row.setdefault("credits", round(cost, 6))
    if checks:
        row.setdefault("verified", verified)
    return row


def _text_or_none(value: object) -> bool:
    return value is None or isinstance(value, str)


def _all_text(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in cast(list[Any], value))


def step_cost(value: object) -> float | None:
    """A step's cost as the model reads it (a number, a decimal string, null as 0); None for anything else."""
    if value is None:
        return 0.0
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None
