"""Deterministic fake data providers: the same input always gives the same outcome and cost.

Magic inputs (checked on the fields company, domain, linkedin_url and email, case-insensitive):
- a value ending in `.fail` makes the row fail (no data, no charge);
- a value ending in `.invalid` is never found by any provider (each provider tried still costs);
- company/domain `example.com` (or an email `@example.com`) is always found by the first provider tried.
Otherwise a provider finds a row iff sha256(provider id, canonical JSON of the row) falls under its hit rate.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar

from databar_mcp.sandbox.catalog import ENRICHMENTS, Enrichment, Waterfall
from databar_mcp.sandbox.errors import Json

Row = Mapping[str, Json]
T = TypeVar("T")
Magic = Literal["fail", "invalid", "found", None]
_KEY_FIELDS = ("company", "domain", "linkedin_url", "email")
VERIFIED_RATE = 0.85

_FIRST_NAMES = ("Ada", "Ben", "Chloe", "Dmitri", "Elena", "Farah", "Goran", "Hana", "Ivan", "Julia")
_LAST_NAMES = ("Novak", "Smith", "Garcia", "Kowalski", "Okafor", "Tanaka", "Muller", "Rossi", "Silva", "Kim")
_TITLES = ("Head of Sales", "CTO", "Marketing Manager", "Account Executive", "VP Engineering", "Founder")
_INDUSTRIES = ("Software", "Fintech", "Healthcare", "Retail", "Logistics", "Manufacturing", "Media")
_COUNTRIES = ("United States", "United Kingdom", "Germany", "France", "Canada", "Netherlands", "Spain")
_TECH = ("Google Analytics", "HubSpot", "Salesforce", "Stripe", "Shopify", "AWS", "Cloudflare", "Segment")
_SIZES = (8, 25, 60, 140, 320, 850, 2400, 12000)


@dataclass(frozen=True)
class RowOutcome:
    """What one input row yields; fixed at submit time and revealed as the task progresses."""

    data: dict[str, Json] | None  # a table cell or a flow step reads the first result
    failed: bool
    cost: float
    error: str | None = None
    items: list[Json] | None = None  # every result of a list-style enrichment (the task's reply for this input)

    @property
    def reply(self) -> Json:
        """What a task's data holds for this input: the list of results, or the one result."""
        return self.items if self.items is not None else self.data


def canonical(row: Row) -> str:
    return json.dumps(row, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def unit(*parts: object) -> float:
    """A stable number in [0, 1) derived from the parts."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _pick(options: Sequence[T], *parts: object) -> T:
    return options[int(unit(*parts) * len(options))]


def _text(row: Row, key: str) -> str:
    value = row.get(key)
    return "" if value is None else str(value).strip()


def magic(row: Row) -> Magic:
    values = [_text(row, k).lower().rstrip("/") for k in _KEY_FIELDS]
    if any(v.endswith(".fail") for v in values):
        return "fail"
    if any(v.endswith(".invalid") for v in values):
        return "invalid"
    if any(v == "example.com" or v.endswith("@example.com") for v in values):
        return "found"
    return None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _domain(row: Row) -> str:
    for key in ("domain", "company"):
        value = _text(row, key).lower()
        value = re.sub(r"^[a-z]+://", "", value).removeprefix("www.").split("/")[0]
        if "." in value:
            return value
        if _slug(value):
            return _slug(value) + ".com"
    email = _text(row, "email")
    return email.split("@")[-1].lower() if "@" in email else "example.org"


def _names(row: Row) -> tuple[str, str]:
    first, last = _text(row, "first_name"), _text(row, "last_name")
    if first or last:
        return first, last
    handle = _text(row, "linkedin_url").rstrip("/").split("/")[-1] or _text(row, "email").split("@")[0]
    parts = [p for p in re.split(r"[-._]", handle) if p.isalpha()]
    if len(parts) >= 2:
        return parts[0].title(), parts[1].title()
    salt = canonical(row)
    return _pick(_FIRST_NAMES, "first", salt), _pick(_LAST_NAMES, "last", salt)


def _email(row: Row) -> str:
    if "@" in _text(row, "email") and not _text(row, "first_name"):
        return _text(row, "email").lower()
    first, last = _names(row)
    local = ".".join(p for p in (_slug(first), _slug(last)) if p) or "info"
    return f"{local}@{_domain(row)}"


def is_verified(verifier_id: int, email: str) -> bool:
    return unit("verify", verifier_id, email) < VERIFIED_RATE


def field_value(name: str, row: Row, salt: int) -> Json:
    """A plausible, deterministic value for one response field."""
    key = canonical(row)
    first, last = _names(row)
    domain = _domain(row)
    match name:
        case "email":
            return _email(row)
        case "phone":
            n = int(unit("phone", salt, key) * 10**7)
            return f"+1 {200 + n % 700} 555 {n // 1000 % 10000:04d}"
        case "full_name":
            return f"{first} {last}".strip()
        case "title" | "headline":
            return _pick(_TITLES, "title", key)
        case "company" | "name":
            return domain.split(".")[0].replace("-", " ").title()
        case "linkedin_url":
            return f"https://www.linkedin.com/in/{_slug(first)}-{_slug(last)}"
        case "industry":
            return _pick(_INDUSTRIES, "industry", domain)
        case "employees":
            return _pick(_SIZES, "size", domain)
        case "country" | "location":
            return _pick(_COUNTRIES, "country", key)
        case "founded":
            return 1950 + int(unit("founded", domain) * 74)
        case "technologies":
            return list[Json](sorted({_pick(_TECH, "tech", domain, i) for i in range(3)}))
        case "connections" | "followers":
            return int(unit(name, key) * 5000)
        case "bio":
            return f"{_pick(_TITLES, 'title', key)} at {domain}"
        case "verified":
            return is_verified(salt, _email(row))
        case "status":
            return "valid" if is_verified(salt, _email(row)) else "invalid"
        case _:
            return f"{name}-{int(unit(name, key) * 10**6)}"


def _finds(enrichment: Enrichment, row: Row, kind: Magic, first: bool) -> bool:
    if kind == "invalid":
        return False
    if kind == "found" and first:
        return True
    return unit(enrichment.id, canonical(row)) < enrichment.hit_rate


def _failure(row: Row) -> RowOutcome:
    host = next(v for v in (_text(row, k) for k in _KEY_FIELDS) if v.lower().endswith(".fail"))
    return RowOutcome(None, True, 0.0, f"Provider error: upstream timed out for {host}.")


def _step(action: str, enrichment: Enrichment, result: str, cost: float, verified: bool) -> dict[str, Json]:
    return {
        "action": action,
        "provider": enrichment.name,
        "provider_logo": f"https://static.databar.ai/logos/{_slug(enrichment.data_source)}.png",
        "result": result,
        "details": None,
        "cost": f"{cost:.2f}",
        "is_verified": verified,
    }


def waterfall_row(waterfall: Waterfall, row: Row, chosen: Sequence[int], verifier: int | None) -> RowOutcome:
    """Try the chosen providers in order, stop at the first hit; every provider tried is paid.

    A hit is Databar's waterfall entry `{enrichment_data, result, steps[], result_field}`; a miss is null.
    """
    kind = magic(row)
    if kind == "fail":
        return _failure(row)
    cost = 0.0
    steps: list[Json] = []
    for index, eid in enumerate(chosen):
        enrichment = ENRICHMENTS[eid]
        cost += enrichment.price
        if not _finds(enrichment, row, kind, index == 0):
            steps.append(_step("enrichment", enrichment, "not_found", enrichment.price, False))
            continue
        steps.append(_step("enrichment", enrichment, "found", enrichment.price, False))
        result: dict[str, Json] = {out.name: field_value(out.name, row, eid) for out in waterfall.output_fields}
        if verifier is not None and isinstance(result.get("email"), str):
            check = ENRICHMENTS[verifier]
            cost += check.price
            ok = is_verified(verifier, str(result["email"]))
            steps.append(_step("email_verification", check, "valid" if ok else "invalid", check.price, ok))
        entry: dict[str, Json] = {
            "enrichment_data": dict(row),
            "result": result,
            "steps": steps,
            "result_field": list[Json](result),
        }
        return RowOutcome(entry, False, cost)
    return RowOutcome(None, False, cost)


def enrichment_row(enrichment: Enrichment, row: Row) -> RowOutcome:
    """One enrichment call: paid whether or not it finds data (failures are free)."""
    kind = magic(row)
    if kind == "fail":
        return _failure(row)
    cost = enrichment.unit_cost(dict(row))
    if not _finds(enrichment, row, kind, True):
        return RowOutcome(None, False, cost)
    if enrichment.many_results:  # one result per unit billed, each a different (deterministic) person
        people = [{**row, "_result": i} for i in range(max(1, int(enrichment.amount(row))))]
        found = [{f.name: field_value(f.name, p, enrichment.id) for f in enrichment.response_fields} for p in people]
        return RowOutcome(found[0], False, cost, items=list[Json](found))
    data = {f.name: field_value(f.name, row, enrichment.id) for f in enrichment.response_fields}
    return RowOutcome(data, False, cost)
