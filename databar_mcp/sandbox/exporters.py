"""The fixed exporter catalog: destinations (CRMs, a webhook) that table rows can be sent to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from databar_mcp.sandbox.catalog import OutputField, Param
from databar_mcp.sandbox.errors import Json
from databar_mcp.sandbox.providers import RowOutcome, unit


@dataclass(frozen=True)
class Exporter:
    id: int
    name: str
    description: str
    dataset: int
    params: tuple[Param, ...]
    additional_params: tuple[tuple[str, str], ...]  # (name, label): provider-fetched fields
    response_fields: tuple[OutputField, ...]
    connections: tuple[tuple[int, str, str], ...]  # (id, name, type)

    def summary_json(self) -> dict[str, Json]:
        return {"id": self.id, "name": self.name, "description": self.description, "dataset": self.dataset}

    def detail_json(self) -> dict[str, Json]:
        out = self.summary_json()
        out["params"] = [p.as_json(self.id) for p in self.params]
        out["additional_params"] = [{"name": n, "label": label} for n, label in self.additional_params]
        out["response_fields"] = [f.as_json() for f in self.response_fields]
        out["authorization"] = {
            "required": bool(self.connections),
            "connections": [{"id": i, "name": n, "type": t} for i, n, t in self.connections],
        }
        return out

    def export_row(self, values: Mapping[str, Json]) -> tuple[RowOutcome, dict[str, Json] | None]:
        """Send one row: refused when a required value is empty, else the destination's record id."""
        missing = [p.name for p in self.params if p.is_required and values.get(p.name) in (None, "")]
        if missing:
            return RowOutcome(None, True, 0.0, f"Missing required value: {', '.join(missing)}."), None
        record = {self.response_fields[0].name: f"{self.dataset}-{int(unit(self.id, dict(values)) * 10**8)}"}
        return RowOutcome(dict[str, Json](record), False, 0.0), dict[str, Json](record)


_EMAIL = Param("email", description="Contact email")
_FIRST = Param("first_name", False, description="First name")
_LAST = Param("last_name", False, description="Last name")
_COMPANY = Param("company", False, description="Company name or domain")

_ALL = (
    Exporter(
        id=41,
        name="HubSpot: create or update contacts",
        description="Create a HubSpot contact per row, or update the one with the same email.",
        dataset=9041,
        params=(_EMAIL, _FIRST, _LAST, _COMPANY),
        additional_params=(("lifecyclestage", "Lifecycle stage"), ("hs_lead_status", "Lead status")),
        response_fields=(OutputField("hubspot_contact_id", "HubSpot contact id"),),
        connections=((7, "HubSpot (sandbox portal)", "oauth"),),
    ),
    Exporter(
        id=42,
        name="Pipedrive: create persons",
        description="Create a Pipedrive person per row.",
        dataset=9042,
        params=(Param("name", description="Full name"), _EMAIL),
        additional_params=(),
        response_fields=(OutputField("pipedrive_person_id", "Pipedrive person id"),),
        connections=((8, "Pipedrive (sandbox)", "api_key"),),
    ),
    Exporter(
        id=43,
        name="Webhook: POST each row",
        description="POST each row as JSON to a URL of your choice.",
        dataset=9043,
        params=(Param("url", description="Where to POST, e.g. https://example.com/hook"), Param("payload", False)),
        additional_params=(),
        response_fields=(OutputField("delivery_id", "Delivery id"),),
        connections=(),
    ),
)

EXPORTERS: dict[int, Exporter] = {e.id: e for e in _ALL}
