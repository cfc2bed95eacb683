"""Saved flows: multi-step pipelines of waterfalls and enrichments, with declared inputs and outputs.

A flow's `config` is a list of nodes run in order; a node's inputs are templates over the flow's inputs
(`{{input.domain}}`) and earlier nodes' fields (`{{find_email.email}}`); a node with `run_if` runs only when
that field has a value (so it costs nothing otherwise: the estimate's `min` leaves it out). Outputs name
node fields. The cost estimate is `{min, max, currency}` with credit amounts as strings, as the SDK reads.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from databar_mcp.sandbox.catalog import ENRICHMENTS, WATERFALLS
from databar_mcp.sandbox.errors import Json, field_errors
from databar_mcp.sandbox.providers import RowOutcome, enrichment_row, waterfall_row

_TEMPLATE = re.compile(r"^\{\{\s*([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)\s*\}\}$")


@dataclass(frozen=True)
class FlowInput:
    id: str
    description: str
    type: str = "text"
    required: bool = True

    def as_json(self) -> dict[str, Json]:
        return {"id": self.id, "description": self.description, "type": self.type, "required": self.required}


@dataclass(frozen=True)
class Flow:
    id: str
    name: str
    description: str
    inputs: tuple[FlowInput, ...]
    config: dict[str, Any]
    created_at: str = "2025-06-01T09:00:00Z"

    def outputs(self) -> dict[str, str]:
        return cast(dict[str, str], self.config["outputs"])

    def summary_json(self) -> dict[str, Json]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "inputs": [i.as_json() for i in self.inputs],
            "outputs": [{"id": o, "response_field_id": n + 1} for n, o in enumerate(self.outputs())],
            "created_at": self.created_at,
            "updated_at": self.created_at,
        }

    def detail_json(self) -> dict[str, Json]:
        out = self.summary_json()
        out["config"] = cast(Json, self.config)
        out["ui"] = {}
        out["internal_version"] = f"v1-{self.id[:8]}"
        return out

    def input_errors(self, values: Mapping[str, object], prefix: str) -> dict[str, list[str]]:
        errors: dict[str, list[str]] = {}
        declared = {i.id for i in self.inputs}
        for name in values:
            if name not in declared:
                errors[f"{prefix}{name}"] = [f"Unknown input; this flow takes: {', '.join(sorted(declared))}."]
        for flow_input in self.inputs:
            value = values.get(flow_input.id)
            if flow_input.required and (value is None or (isinstance(value, str) and not value.strip())):
                errors[f"{prefix}{flow_input.id}"] = ["This field is required."]
        return errors


def _nodes(config: object) -> list[dict[str, Any]]:
    """The config's nodes, or a 400 naming what is wrong (the checks a save would make)."""
    if not isinstance(config, dict) or not isinstance(cast(dict[str, Any], config).get("nodes"), list):
        raise field_errors({"config": ["Must be an object with a list of nodes."]})
    nodes = cast(list[Any], cast(dict[str, Any], config)["nodes"])
    if not nodes:
        raise field_errors({"config.nodes": ["A flow needs at least one node."]})
    out: list[dict[str, Any]] = []
    for index, raw in enumerate(nodes):
        node = cast(dict[str, Any], raw) if isinstance(raw, dict) else {}
        kind = node.get("type")
        if kind == "waterfall" and node.get("waterfall") in WATERFALLS:
            providers = node.get("enrichments") or WATERFALLS[str(node["waterfall"])].default_provider_ids
            if not all(p in WATERFALLS[str(node["waterfall"])].provider_ids for p in providers):
                raise field_errors({f"config.nodes[{index}].enrichments": ["Not offered by this waterfall."]})
        elif kind != "enrichment" or node.get("enrichment") not in ENRICHMENTS:
            raise field_errors({f"config.nodes[{index}]": ["Unknown node: give a known waterfall or enrichment."]})
        out.append(node)
    return out


def _node_prices(node: Mapping[str, Any]) -> tuple[float, float]:
    if node["type"] == "waterfall":
        waterfall = WATERFALLS[str(node["waterfall"])]
        prices = [ENRICHMENTS[p].price for p in node.get("enrichments") or waterfall.default_provider_ids]
        return prices[0], sum(prices)
    price = ENRICHMENTS[int(node["enrichment"])].price
    return price, price


def cost_estimate(config: object) -> dict[str, Json]:
    low = high = 0.0
    for node in _nodes(config):
        node_low, node_high = _node_prices(node)
        low += 0.0 if node.get("run_if") else node_low
        high += node_high
    return {"min": f"{low:.2f}", "max": f"{high:.2f}", "currency": "credits"}


def _resolve(template: object, scope: Mapping[str, Mapping[str, Json]]) -> Json:
    if not isinstance(template, str):
        return cast(Json, template)
    match = _TEMPLATE.match(template)
    if match is None:
        return template
    return scope.get(match.group(1), {}).get(match.group(2))


def run_flow(flow: Flow, values: Mapping[str, Json]) -> RowOutcome:
    """One input set through every node; the data is the flow's outputs (null when none has a value)."""
    scope: dict[str, Mapping[str, Json]] = {"input": dict(values)}
    cost = 0.0
    for node in _nodes(flow.config):
        run_if = node.get("run_if")
        if run_if and _resolve("{{" + str(run_if) + "}}", scope) in (None, ""):
            continue
        params = {k: _resolve(v, scope) for k, v in cast(dict[str, Any], node.get("inputs", {})).items()}
        if node["type"] == "waterfall":
            waterfall = WATERFALLS[str(node["waterfall"])]
            chosen = list(node.get("enrichments") or waterfall.default_provider_ids)
            outcome = waterfall_row(waterfall, params, chosen, None)
            found = cast(dict[str, Json], outcome.data["result"]) if outcome.data else {}
        else:
            outcome = enrichment_row(ENRICHMENTS[int(node["enrichment"])], params)
            found = outcome.data or {}
        if outcome.failed:
            return RowOutcome(None, True, cost, outcome.error)
        cost += outcome.cost
        scope[str(node["id"])] = found
    data = {name: _resolve("{{" + ref + "}}", scope) for name, ref in flow.outputs().items()}
    has_data = any(v not in (None, "") for v in data.values())
    return RowOutcome(dict[str, Json](data) if has_data else None, False, cost)


FLOWS: dict[str, Flow] = {
    f.id: f
    for f in (
        Flow(
            id="3f1c9a52-7b2e-4d8a-9c61-0e5b2a7d4f10",
            name="Find and verify work email",
            description="Find a person's work email with the email waterfall, then verify it.",
            inputs=(
                FlowInput("first_name", "First name of the person"),
                FlowInput("last_name", "Last name of the person"),
                FlowInput("domain", "Company website domain, e.g. acme.com"),
            ),
            config={
                "nodes": [
                    {
                        "id": "find_email",
                        "type": "waterfall",
                        "waterfall": "email_getter",
                        "enrichments": [833, 966],
                        "inputs": {
                            "first_name": "{{input.first_name}}",
                            "last_name": "{{input.last_name}}",
                            "company": "{{input.domain}}",
                        },
                    },
                    {
                        "id": "verify",
                        "type": "enrichment",
                        "enrichment": 10,
                        "run_if": "find_email.email",
                        "inputs": {"email": "{{find_email.email}}"},
                    },
                ],
                "outputs": {"email": "find_email.email", "email_status": "verify.status"},
            },
        ),
        Flow(
            id="8d4e2b71-0c3f-4a95-b7e8-5f6a1c2d3e40",
            name="Company research",
            description="Firmographics and technologies of a company from its domain.",
            inputs=(FlowInput("domain", "Company website domain, e.g. acme.com"),),
            config={
                "nodes": [
                    {
                        "id": "profile",
                        "type": "enrichment",
                        "enrichment": 120,
                        "inputs": {"domain": "{{input.domain}}"},
                    },
                    {"id": "tech", "type": "enrichment", "enrichment": 121, "inputs": {"domain": "{{input.domain}}"}},
                ],
                "outputs": {
                    "name": "profile.name",
                    "industry": "profile.industry",
                    "employees": "profile.employees",
                    "technologies": "tech.technologies",
                },
            },
        ),
    )
}
