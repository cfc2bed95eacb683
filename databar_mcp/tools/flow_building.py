"""Flows toolset, continued: build a flow from steps, edit it, list its versions and restore one.

A flow is checked and priced before it is saved: without confirm=true, create_flow and a step change in
update_flow only validate the steps and state what one run would cost (min..max credits); nothing is saved.
Saving costs nothing; running the flow (run_bulk_flow) spends credits. Every save is a new version at
Databar, and a restore writes the old steps as a new version, so no edit is lost.
"""

from typing import Annotated, Any

from mcp.types import CallToolResult
from pydantic import BaseModel, ConfigDict, Field

from databar_mcp.api.models import Flow, FlowCostEstimate
from databar_mcp.config import Toolset
from databar_mcp.core.shaping import escape_text
from databar_mcp.tools.kit.context import Services, ToolContext, services
from databar_mcp.tools.kit.flow_kit import FlowId, forget_flow
from databar_mcp.tools.kit.params import in_place
from databar_mcp.tools.kit.registry import tool
from databar_mcp.tools.kit.results import ErrorBody, ErrorCode, FieldProblem, ToolFailure, ok_result

Ident = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,64}$")]
Ref = Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,64}\.[A-Za-z0-9_]{1,64}$")]


class StepIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Ident = Field(description="Step name; its fields are read as <id>.<field>.")
    uses: str = Field(
        pattern=r"^(waterfall:[A-Za-z0-9_-]{1,100}|enrichment:[0-9]{1,9})$",
        description='"waterfall:<identifier>" or "enrichment:<id>".',
    )
    inputs: dict[str, Annotated[str, Field(max_length=500)]] = Field(
        description='Param → "{{input.<id>}}", "{{<step>.<field>}}" or a constant.'
    )
    providers: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: list[int](), max_length=20, description="Waterfall providers; default its own."
    )
    run_if: Ref | None = Field(default=None, description="Run only when this <step>.<field> has a value.")


class InputIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: Ident
    description: Annotated[str, Field(max_length=500)] = ""
    required: bool = True


Steps = Annotated[list[Annotated[StepIn, in_place(StepIn)]], Field(min_length=1, max_length=20)]
Inputs = Annotated[list[Annotated[InputIn, in_place(InputIn)]], Field(min_length=1, max_length=50)]
Outputs = Annotated[dict[str, Ref], Field(min_length=1, max_length=100, description="Output → <step>.<field>.")]
FlowName = Annotated[str, Field(min_length=1, max_length=256)]
Description = Annotated[str, Field(max_length=2000)]
Confirm = Annotated[bool, Field(description="Save; without it nothing is saved.")]


class FlowPlanOut(BaseModel):
    flow_id: str | None = Field(default=None, description="Set once saved.")
    name: str | None = None
    saved: bool
    cost_min: float | None = Field(default=None, description="Credits one run (one input set) costs at least.")
    cost_max: float | None = Field(default=None, description="Credits one run costs at most.")
    version: int | None = None
    message: str
    next_call: str | None = None


class VersionOut(BaseModel):
    number: int
    name: str | None = None
    changed: list[str]
    created_at: str | None = None
    restored_from: int | None = None


class VersionList(BaseModel):
    flow_id: str
    versions: list[VersionOut] = Field(description="Newest first; the first is the current one.")


def flow_config(inputs: list[InputIn], steps: list[StepIn], outputs: dict[str, str]) -> dict[str, Any]:
    """The config Databar saves: declared inputs, the steps as nodes run in order, the outputs."""
    return {
        "inputs": [i.model_dump() | {"type": "text"} for i in inputs],
        "nodes": [node(s) for s in steps],
        "outputs": dict(outputs),
    }


def node(step: StepIn) -> dict[str, Any]:
    kind, _, target = step.uses.partition(":")
    out: dict[str, Any] = {"id": step.id, "type": kind, kind: int(target) if kind == "enrichment" else target}
    out["inputs"] = dict(step.inputs)
    if step.providers:
        out["enrichments"] = list(step.providers)
    if step.run_if:
        out["run_if"] = step.run_if
    return out


def cost_text(cost: FlowCostEstimate) -> str:
    return f"One run (one input set) costs {cost.min:g}..{cost.max:g} credits"


async def checked_cost(svc: Services, config: dict[str, Any], steps: list[StepIn] | None) -> FlowCostEstimate:
    """The config's price, once Databar's save checks pass; else validation_error naming each step at fault."""
    verdict = await svc.client.validate_flow_config(config)
    if not verdict.valid:
        index = {s.id: n for n, s in enumerate(steps or [])}
        problems = [
            FieldProblem(field=f"steps[{index[p.node_id]}]" if p.node_id in index else "steps", problem=p.message)
            for p in verdict.errors[:20]
        ]
        raise ToolFailure(
            ErrorBody(
                code=ErrorCode.VALIDATION_ERROR,
                message=f"Databar would refuse these steps ({len(verdict.errors)} problem(s)); nothing was saved.",
                fields=problems,
                next_steps=["Fix them and call again; get_waterfall / get_enrichment list a step's params and fields."],
            )
        )
    return await svc.client.estimate_flow_cost(config)


async def current_version(svc: Services, flow_id: str) -> int | None:
    versions = await svc.client.list_flow_versions(flow_id, limit=1)
    return versions[0].number if versions else None


def saved(flow: Flow, cost: FlowCostEstimate | None, version: int | None, what: str) -> CallToolResult:
    price = f" {cost_text(cost)}." if cost else ""
    call = f'run_bulk_flow(flow_id="{flow.id}", inputs=[...])'
    out = FlowPlanOut(
        flow_id=flow.id,
        name=flow.name,
        saved=True,
        cost_min=cost.min if cost else None,
        cost_max=cost.max if cost else None,
        version=version,
        message=f"{what} flow {flow.id} ({flow.name}), version {version}.{price}",
        next_call=call,
    )
    return ok_result(out, escape_text(f"{out.message}\nNext: {call}"))


def draft(name: str | None, cost: FlowCostEstimate, tool_name: str, before: str = "") -> CallToolResult:
    message = f"Valid. {cost_text(cost)}{before}. Nothing saved yet."
    call = f"{tool_name}(the same arguments, confirm=true)"
    out = FlowPlanOut(name=name, saved=False, cost_min=cost.min, cost_max=cost.max, message=message, next_call=call)
    return ok_result(out, escape_text(f"{message} To save: {call}"))


CREATE_DESCRIPTION = """\
Build a flow: input ids, then steps run in order (each a waterfall or an enrichment), then outputs. Without \
confirm=true it only checks the steps and states min..max credits per run; with it, saves (free). Running \
it (run_bulk_flow) spends credits."""
UPDATE_DESCRIPTION = """\
Edit a flow: a name/description saves at once; inputs/steps/outputs given replace the old, checked and \
priced first, saved only with confirm=true. Each save is a new version."""
VERSIONS_DESCRIPTION = "A flow's saved versions, newest first (what changed, restores). Free."
RESTORE_DESCRIPTION = """\
Bring back an earlier version of a flow, saved as a new version (undoable). Free; states the cost per run."""


@tool(
    Toolset.FLOWS,
    name="create_flow",
    title="Build a flow",
    description=CREATE_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def create_flow(
    name: FlowName,
    inputs: Inputs,
    steps: Steps,
    outputs: Outputs,
    ctx: ToolContext,
    description: Description = "",
    confirm: Confirm = False,
) -> Annotated[CallToolResult, FlowPlanOut]:
    svc = services(ctx)
    config = flow_config(inputs, steps, outputs)
    cost = await checked_cost(svc, config, steps)
    if not confirm:
        return draft(name, cost, "create_flow")
    flow = await svc.client.create_flow(name, config, description)
    return saved(flow, cost, await current_version(svc, flow.id), "Saved")


@tool(
    Toolset.FLOWS,
    name="update_flow",
    title="Edit a flow",
    description=UPDATE_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def update_flow(
    flow_id: FlowId,
    ctx: ToolContext,
    name: FlowName | None = None,
    description: Description | None = None,
    inputs: Inputs | None = None,
    steps: Steps | None = None,
    outputs: Outputs | None = None,
    confirm: Confirm = False,
) -> Annotated[CallToolResult, FlowPlanOut]:
    svc = services(ctx)
    if all(v is None for v in (name, description, inputs, steps, outputs)):
        raise ToolFailure(
            ErrorBody(
                code=ErrorCode.VALIDATION_ERROR,
                message="Nothing to change: pass name, description, inputs, steps and/or outputs; nothing was sent.",
                next_steps=[f'get_flow(flow_id="{flow_id}") shows the flow as it is.'],
            )
        )
    flow = await svc.client.get_flow(flow_id)  # fresh: its internal_version guards against a concurrent edit
    config: dict[str, Any] | None = None
    cost: FlowCostEstimate | None = None
    if inputs is not None or steps is not None or outputs is not None:
        config = dict(flow.config or {})
        if inputs is not None:
            config["inputs"] = [i.model_dump() | {"type": "text"} for i in inputs]
        if steps is not None:
            config["nodes"] = [node(s) for s in steps]
        if outputs is not None:
            config["outputs"] = dict(outputs)
        cost = await checked_cost(svc, config, steps)
        if not confirm:
            now = await svc.client.estimate_flow_cost(flow.config) if flow.config else None
            return draft(flow.name, cost, "update_flow", f" (now {now.min:g}..{now.max:g})" if now else "")
    edited = await svc.client.update_flow(
        flow_id,
        name=name,
        description=description,
        flow_config=config,
        internal_version=flow.internal_version if config is not None else None,
    )
    forget_flow(svc, flow_id)
    return saved(edited, cost, await current_version(svc, flow_id), "Updated")


@tool(
    Toolset.FLOWS,
    name="list_flow_versions",
    title="List a flow's versions",
    description=VERSIONS_DESCRIPTION,
    read_only=True,
    destructive=False,
    idempotent=True,
)
async def list_flow_versions(
    flow_id: FlowId, ctx: ToolContext, limit: Annotated[int, Field(ge=1, le=50)] = 20
) -> Annotated[CallToolResult, VersionList]:
    svc = services(ctx)
    found = await svc.client.list_flow_versions(flow_id, limit=limit)
    versions = [
        VersionOut(
            number=v.number,
            name=v.name,
            changed=v.changed_fields,
            created_at=v.created_at,
            restored_from=v.restored_from,
        )
        for v in found
    ]
    lines = [f"Flow {flow_id}: {len(versions)} version(s), newest first:"]
    for v in versions:
        restored = f", restored from v{v.restored_from}" if v.restored_from else ""
        lines.append(f"- v{v.number} {v.created_at}: {', '.join(v.changed) or 'saved'} ({v.name}){restored}")
    if len(versions) > 1:
        lines.append(f'To go back: restore_flow_version(flow_id="{flow_id}", version={versions[1].number})')
    return ok_result(VersionList(flow_id=flow_id, versions=versions), escape_text("\n".join(lines)))


@tool(
    Toolset.FLOWS,
    name="restore_flow_version",
    title="Restore a flow version",
    description=RESTORE_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def restore_flow_version(
    flow_id: FlowId, version: Annotated[int, Field(ge=1)], ctx: ToolContext
) -> Annotated[CallToolResult, FlowPlanOut]:
    svc = services(ctx)
    restored = await svc.client.restore_flow_version(flow_id, version)
    forget_flow(svc, flow_id)
    flow = restored.flow
    cost = await svc.client.estimate_flow_cost(flow.config) if flow.config else None
    return saved(flow, cost, restored.version.number, f"Restored version {version} of")
