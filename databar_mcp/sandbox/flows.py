"""Saved flows: multi-step pipelines of waterfalls and enrichments, their validation and their version history.

A flow's `config` holds its declared `inputs` (`[{id, description, type, required}]`), its `nodes` run in
order, and its `outputs` (output name → "node.field"). A node's inputs are templates over the flow's inputs
(`{{input.domain}}`) and earlier nodes' fields (`{{find_email.email}}`); a node with `run_if` runs only when
that field has a value (so it costs nothing otherwise: the estimate's `min` leaves it out). The cost estimate
is `{min, max, currency}` with credit amounts as strings, as the SDK reads.

Every save that changes something is a new version (numbered from 1, never rewritten); a restore writes the
old version's config as a new version. `internal_version` is the concurrency token a config change must send
back: a stale one is a 409, as Databar answers a concurrent edit.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from databar_mcp.sandbox.catalog import ENRICHMENTS, WATERFALLS
from databar_mcp.sandbox.errors import Json, field_errors
from databar_mcp.sandbox.providers import RowOutcome, enrichment_row, waterfall_row

_TEMPLATE = re.compile(r"^\{\{\s*([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)\s*\}\}$")
_REF = re.compile(r"^([A-Za-z0-9_]+)\.([A-Za-z0-9_]+)$")
_ID = re.compile(r"^[A-Za-z0-9_]{1,64}$")
Config = dict[str, Any]
Problem = tuple[str | None, str]  # (node id when a node is at fault, what is wrong)
EDITABLE = ("name", "description", "config", "ui")


@dataclass
class Version:
    number: int
    name: str
    description: str
    changed_fields: list[str]
    source: str
    created_at: str
    config: Config
    ui: dict[str, Any] = field(default_factory=dict[str, Any])
    created_by: str | None = "sandbox@databar.ai"
    restored_from: int | None = None

    def as_json(self, detail: bool = False) -> dict[str, Json]:
        out: dict[str, Json] = {
            "number": self.number,
            "name": self.name,
            "description": self.description,
            "changed_fields": list[Json](self.changed_fields),
            "source": self.source,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "restored_from": self.restored_from,
        }
        if detail:
            out["config"] = cast(Json, copy.deepcopy(self.config))
            out["ui"] = cast(Json, copy.deepcopy(self.ui))
        return out


@dataclass
class Flow:
    id: str
    name: str
    description: str
    config: Config
    created_at: str
    updated_at: str
    ui: dict[str, Any] = field(default_factory=dict[str, Any])
    versions: list[Version] = field(default_factory=list[Version])

    @property
    def internal_version(self) -> str:
        return f"v{self.versions[-1].number if self.versions else 0}-{self.id[:8]}"

    def inputs(self) -> list[dict[str, Any]]:
        return [cast(dict[str, Any], i) for i in cast(list[Any], self.config.get("inputs") or [])]

    def outputs(self) -> dict[str, str]:
        return cast(dict[str, str], self.config.get("outputs") or {})

    def summary_json(self) -> dict[str, Json]:
        inputs: list[Json] = [
            {
                "id": str(i["id"]),
                "description": str(i.get("description", "")),
                "type": str(i.get("type", "text")),
                "required": bool(i.get("required", True)),
            }
            for i in self.inputs()
        ]
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "inputs": inputs,
            "outputs": [{"id": o, "response_field_id": n + 1} for n, o in enumerate(self.outputs())],
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    def detail_json(self) -> dict[str, Json]:
        out = self.summary_json()
        out["config"] = cast(Json, copy.deepcopy(self.config))
        out["ui"] = cast(Json, copy.deepcopy(self.ui))
        out["internal_version"] = self.internal_version
        return out

    def save(self, stamp: str, changes: Mapping[str, Any], restored_from: int | None = None) -> Version | None:
        """Apply the changes that differ; a new version when any does (None when nothing changed)."""
        changed = [k for k in EDITABLE if k in changes and changes[k] is not None and changes[k] != getattr(self, k)]
        if not changed and restored_from is None:
            return None
        for key in changed:
            setattr(self, key, copy.deepcopy(changes[key]))
        self.updated_at = stamp
        version = Version(
            number=(self.versions[-1].number if self.versions else 0) + 1,
            name=self.name,
            description=self.description,
            changed_fields=changed,
            source="api",
            created_at=stamp,
            config=copy.deepcopy(self.config),
            ui=copy.deepcopy(self.ui),
            restored_from=restored_from,
        )
        self.versions.append(version)
        return version

    def input_errors(self, values: Mapping[str, object], prefix: str) -> dict[str, list[str]]:
        errors: dict[str, list[str]] = {}
        declared = {str(i["id"]) for i in self.inputs()}
        for name in values:
            if name not in declared:
                errors[f"{prefix}{name}"] = [f"Unknown input; this flow takes: {', '.join(sorted(declared))}."]
        for flow_input in self.inputs():
            value = values.get(str(flow_input["id"]))
            required = bool(flow_input.get("required", True))
            if required and (value is None or (isinstance(value, str) and not value.strip())):
                errors[f"{prefix}{flow_input['id']}"] = ["This field is required."]
        return errors


# ---- validation: the checks a save makes --------------------------------------------------------------


def _node_fields(node: Mapping[str, Any]) -> tuple[set[str], set[str], set[str]] | None:
    """(params, required params, output fields) of a node's waterfall or enrichment; None when unknown."""
    if node.get("type") == "waterfall" and node.get("waterfall") in WATERFALLS:
        waterfall = WATERFALLS[str(node["waterfall"])]
        params = {p.name for p in waterfall.input_params}
        required = {p.name for p in waterfall.input_params if p.is_required}
        return params, required, {f.name for f in waterfall.output_fields}
    enrichment = ENRICHMENTS.get(node["enrichment"]) if isinstance(node.get("enrichment"), int) else None
    if node.get("type") == "enrichment" and enrichment is not None:
        required = {p.name for p in enrichment.params if p.is_required}
        return {p.name for p in enrichment.params}, required, {f.name for f in enrichment.response_fields}
    return None


def _ref_problem(ref: str, inputs: set[str], fields: Mapping[str, set[str]]) -> str | None:
    """Why `source.field` names nothing known so far (None when it is fine)."""
    match = _REF.match(ref)
    if match is None:
        return f"{ref!r} is not of the form input.<id> or <node>.<field>."
    source, name = match.groups()
    if source == "input":
        return None if name in inputs else f"{ref!r}: the flow declares no input {name!r}."
    if source not in fields:
        return f"{ref!r}: no earlier node {source!r}."
    return None if name in fields[source] else f"{ref!r}: node {source!r} has no field {name!r}."


def _inputs_problems(config: Mapping[str, Any]) -> tuple[set[str], list[Problem]]:
    raw = config.get("inputs", [])
    if not isinstance(raw, list):
        return set(), [(None, "inputs must be a list of {id, description, type, required}.")]
    declared: set[str] = set()
    problems: list[Problem] = []
    for item in cast(list[Any], raw):
        ident = cast(dict[str, Any], item).get("id") if isinstance(item, dict) else None
        if not isinstance(ident, str) or not _ID.match(ident) or ident in declared:
            problems.append((None, f"Input {ident!r}: give each input a unique id of letters, digits or _."))
            continue
        declared.add(ident)
    return declared, problems


def _node_problems(node: Mapping[str, Any], inputs: set[str], fields: dict[str, set[str]]) -> list[Problem]:
    ident = node.get("id")
    if not isinstance(ident, str) or not _ID.match(ident) or ident == "input" or ident in fields:
        return [(None, f"Node {ident!r}: give each node a unique id of letters, digits or _ (not 'input').")]
    known = _node_fields(node)
    if known is None:
        return [(ident, "Unknown step: give type 'waterfall' with a known waterfall, or 'enrichment' with an id.")]
    params, required, outputs = known
    problems: list[Problem] = []
    if node.get("type") == "waterfall":
        offered = WATERFALLS[str(node["waterfall"])].provider_ids
        if any(p not in offered for p in cast(list[Any], node.get("enrichments") or [])):
            problems.append((ident, f"enrichments: this waterfall offers {offered}."))
    given = cast(dict[str, Any], node.get("inputs") or {})
    problems += [(ident, f"Unknown param {k!r}; this step takes {sorted(params)}.") for k in given if k not in params]
    problems += [(ident, f"Required param {k!r} is not mapped.") for k in sorted(required - set(given))]
    for value in given.values():
        match = _TEMPLATE.match(value) if isinstance(value, str) else None
        problem = _ref_problem(f"{match.group(1)}.{match.group(2)}", inputs, fields) if match else None
        if problem:
            problems.append((ident, problem))
    run_if = node.get("run_if")
    problem = _ref_problem(str(run_if), inputs, fields) if run_if else None
    if problem:
        problems.append((ident, f"run_if {problem}"))
    fields[ident] = outputs
    return problems


def config_problems(config: object) -> list[Problem]:
    """Every reason a save would refuse `config` (empty when it is valid)."""
    if not isinstance(config, dict):
        return [(None, "The config must be an object with inputs, nodes and outputs.")]
    body = cast(dict[str, Any], config)
    inputs, problems = _inputs_problems(body)
    nodes = body.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        return [*problems, (None, "A flow needs at least one node (a list under nodes).")]
    fields: dict[str, set[str]] = {}
    for raw in cast(list[Any], nodes):
        node = cast(dict[str, Any], raw) if isinstance(raw, dict) else {}
        problems += _node_problems(node, inputs, fields)
    outputs = body.get("outputs")
    if not isinstance(outputs, dict) or not outputs:
        problems.append((None, "outputs must name at least one field: {name: 'node.field'}."))
    else:
        for name, ref in cast(dict[str, Any], outputs).items():
            problem = _ref_problem(str(ref), set(), fields)
            if problem:
                problems.append((None, f"Output {name!r}: {problem}"))
    return problems


def check(config: object) -> list[dict[str, Any]]:
    """The config's nodes, or a 400 naming everything that is wrong."""
    problems = config_problems(config)
    if problems:
        raise field_errors({"config": [f"{n}: {m}" if n else m for n, m in problems]})
    return [cast(dict[str, Any], n) for n in cast(list[Any], cast(dict[str, Any], config)["nodes"])]


def _node_prices(node: Mapping[str, Any]) -> tuple[float, float]:
    if node["type"] == "waterfall":
        waterfall = WATERFALLS[str(node["waterfall"])]
        prices = [ENRICHMENTS[p].price for p in node.get("enrichments") or waterfall.default_provider_ids]
        return prices[0], sum(prices)
    price = ENRICHMENTS[int(node["enrichment"])].price
    return price, price


def cost_estimate(config: object) -> dict[str, Json]:
    low = high = 0.0
    for node in check(config):
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
    for node in check(flow.config):
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


def _input(ident: str, description: str) -> dict[str, Any]:
    return {"id": ident, "description": description, "type": "text", "required": True}


SEED_STAMP = "2025-06-01T09:00:00Z"
_SEEDS: tuple[tuple[str, str, str, Config], ...] = (
    (
        "3f1c9a52-7b2e-4d8a-9c61-0e5b2a7d4f10",
        "Find and verify work email",
        "Find a person's work email with the email waterfall, then verify it.",
        {
            "inputs": [
                _input("first_name", "First name of the person"),
                _input("last_name", "Last name of the person"),
                _input("domain", "Company website domain, e.g. acme.com"),
            ],
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
    (
        "8d4e2b71-0c3f-4a95-b7e8-5f6a1c2d3e40",
        "Company research",
        "Firmographics and technologies of a company from its domain.",
        {
            "inputs": [_input("domain", "Company website domain, e.g. acme.com")],
            "nodes": [
                {"id": "profile", "type": "enrichment", "enrichment": 120, "inputs": {"domain": "{{input.domain}}"}},
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


def seed_flows() -> dict[str, Flow]:
    """The workspace's flows at start: two saved flows, each at version 1 (fresh copies: they are edited)."""
    flows: dict[str, Flow] = {}
    for ident, name, description, config in _SEEDS:
        flow = Flow(ident, name, description, {}, SEED_STAMP, SEED_STAMP)
        flow.save(SEED_STAMP, {"name": name, "description": description, "config": config})
        flow.versions[0].changed_fields = ["name", "description", "config"]
        flows[ident] = flow
    return flows


# ---- on disk (persistence.py) -----------------------------------------------------------------------------


def flow_from_json(raw: dict[str, Any]) -> Flow:
    versions = [Version(**v) for v in cast(list[dict[str, Any]], raw.pop("versions"))]
    return Flow(**raw, versions=versions)
