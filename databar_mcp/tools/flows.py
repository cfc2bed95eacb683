"""Flows toolset: saved multi-step pipelines (e.g. find an email, then verify it). Runs go through the same
pipeline as waterfalls: inputs checked against the flow, spend guard on the flow's worst-case cost, sent
exactly once, a task handle waited for within the deadline and paged like any task."""

from typing import Annotated, Any, cast

from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp.types import CallToolResult
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from databar_mcp import config
from databar_mcp.api import runs
from databar_mcp.api.errors import FieldIssue
from databar_mcp.api.models import BulkFlowRunRequest, Flow
from databar_mcp.config import Toolset
from databar_mcp.core.catalog import RunPlan
from databar_mcp.core.files import InputSpec
from databar_mcp.tools.kit.context import Services, ToolContext, services
from databar_mcp.tools.kit.file_runs import FileArgs, FileTarget, exactly_one, execute_file, guard_prepare
from databar_mcp.tools.kit.flow_kit import FlowId, flow_and_cost
from databar_mcp.tools.kit.params import (
    WAIT_AND_NEXT,
    WAIT_DEFAULT,
    AcknowledgeFlag,
    ColumnMap,
    ForceFlag,
    InputValue,
    OutputFilePath,
    RunInputFile,
    SkipBadRows,
    WaitSeconds,
)
from databar_mcp.tools.kit.registry import tool
from databar_mcp.tools.kit.results import ok_result
from databar_mcp.tools.kit.running import (
    Confirmation,
    Prepare,
    PreparedRun,
    ResendConfirmation,
    ResendGate,
    ResendOutcome,
    RunControls,
    SpendGate,
    SpendOutcome,
    execute,
    resend_question,
    spend_question,
)
from databar_mcp.tools.kit.task_view import TaskView


class FlowInputOut(BaseModel):
    id: str
    required: bool
    type: str | None = None
    description: str | None = None


class FlowOut(BaseModel):
    id: str
    name: str
    description: str | None = None
    inputs: list[FlowInputOut]
    outputs: list[str]


class FlowList(BaseModel):
    flows: list[FlowOut]


class FlowDetailOut(FlowOut):
    steps: int | None = Field(default=None, description="Nodes in the flow's graph.")
    cost_min: float | None = Field(default=None, description="Credits one run costs at least.")
    cost_max: float | None = Field(
        default=None, description="Credits one run costs at most (the spend guard's figure)."
    )
    runs: int = Field(default=1, description="The input sets the totals are for.")
    min_credits: float | None = Field(default=None, description="runs × cost_min.")
    max_credits: float | None = Field(default=None, description="runs × cost_max.")


def flow_out(flow: Flow) -> FlowOut:
    return FlowOut(
        id=flow.id,
        name=flow.name,
        description=flow.description,
        inputs=[
            FlowInputOut(id=i.id, required=i.required, type=i.type, description=i.description) for i in flow.inputs
        ],
        outputs=[o.id for o in flow.outputs],
    )


def input_issues(flow: Flow, rows: list[dict[str, InputValue]]) -> tuple[FieldIssue, ...]:
    declared = {i.id for i in flow.inputs}
    issues: list[FieldIssue] = []
    for index, row in enumerate(rows):
        prefix = f"inputs[{index}]."
        issues += [
            FieldIssue(prefix + k, f"not an input of this flow ({', '.join(sorted(declared))})")
            for k in row
            if k not in declared
        ]
        for flow_input in flow.inputs:
            value = row.get(flow_input.id)
            if flow_input.required and (value is None or (isinstance(value, str) and not value.strip())):
                issues.append(FieldIssue(prefix + flow_input.id, "required by the flow"))
        if len(issues) >= 20:
            break
    return tuple(issues[:20])


async def prepare_flow(ctx: ToolContext, flow_id: str, rows: list[dict[str, InputValue]]) -> PreparedRun:
    svc = services(ctx)
    flow, cost = await flow_and_cost(svc, flow_id)
    estimate = None if cost is None else round(cost.max * len(rows), 6)
    plan = RunPlan(waterfall=None, rows=len(rows), estimated_credits=estimate, issues=input_issues(flow, rows))
    return PreparedRun(
        tool="run_bulk_flow",
        target=f"flow '{flow.name}'",
        call=runs.bulk_flow(flow_id, BulkFlowRunRequest(inputs=[dict(r) for r in rows])),
        rows=len(rows),
        plan=plan,
    )


async def flow_target(ctx: ToolContext, flow_id: str) -> FileTarget:
    flow, _ = await flow_and_cost(services(ctx), flow_id)
    return FileTarget(
        tool="run_bulk_flow",
        target=f"flow '{flow.name}'",
        inputs=tuple(InputSpec(i.id, i.required) for i in flow.inputs),
        identity={"flow": flow_id},
        call_args={"flow_id": flow_id},
        prepare_part=lambda rows: prepare_flow(ctx, flow_id, [dict(r) for r in rows]),
    )


async def prepare_flow_call(
    ctx: ToolContext,
    flow_id: str,
    inputs: list[dict[str, InputValue]] | None,
    input_file: str | None,
    columns: dict[str, str] | None,
    skip_bad_rows: bool,
    force: bool = False,
) -> PreparedRun:
    """The run a call asks for, in either form: the input sets given, or the whole file as one spend."""
    exactly_one("run_bulk_flow", params_given=inputs is not None, file_given=input_file is not None, rows_name="inputs")
    if input_file is not None:
        args = FileArgs(input_file, columns, skip_bad_rows)
        return await guard_prepare(ctx, args, lambda: flow_target(ctx, flow_id), force=force)
    assert inputs is not None
    return await prepare_flow(ctx, flow_id, inputs)


# ---- resolvers: run before the tool body, so the SDK can put the spend and re-send questions to the user ----


async def bulk_flow_call(
    ctx: ToolContext,
    flow_id: str,
    inputs: list[dict[str, InputValue]] | None,
    input_file: str | None,
    columns: dict[str, str] | None,
    skip_bad_rows: bool,
    force: bool,
) -> Prepare:
    """What this call would send, prepared when asked: by its spend and re-send questions, then by its body."""
    return lambda: prepare_flow_call(ctx, flow_id, inputs, input_file, columns, skip_bad_rows, force)


async def bulk_flow_spend(
    ctx: ToolContext, call: Annotated[Prepare, Resolve(bulk_flow_call)], force: bool
) -> SpendGate | Elicit[Confirmation]:
    return await spend_question(ctx, call, force)


async def bulk_flow_resend(
    ctx: ToolContext,
    call: Annotated[Prepare, Resolve(bulk_flow_call)],
    force: bool,
    acknowledge_possible_double_billing: bool,
) -> ResendGate | Elicit[ResendConfirmation]:
    return await resend_question(ctx, call, force, acknowledge_possible_double_billing)


LIST_DESCRIPTION = "List the workspace's saved flows (multi-step pipelines) with their inputs and outputs. Free."
GET_DESCRIPTION = """\
A flow's inputs (the ids run_bulk_flow takes; which are required), outputs, steps, and min..max credits for \
`runs` input sets. Free: nothing runs."""
RUN_BULK_DESCRIPTION = (
    """\
Run a saved flow on one input set or many; results are aligned to the inputs (null where nothing was \
found). Costs credits: up to rows × the flow's max per run (estimated_credits). """
    + WAIT_AND_NEXT
)


@tool(
    Toolset.FLOWS,
    name="list_flows",
    title="List flows",
    description=LIST_DESCRIPTION,
    read_only=True,
    destructive=False,
    idempotent=True,
)
async def list_flows(svc: Services) -> Annotated[CallToolResult, FlowList]:
    flows = [flow_out(f) for f in await svc.client.list_flows()]
    lines = [f"{len(flows)} flow(s):"]
    lines += [f"- {f.id}: {f.name} (inputs {[i.id for i in f.inputs]} → {f.outputs})" for f in flows]
    return ok_result(FlowList(flows=flows), "\n".join(lines))


@tool(
    Toolset.FLOWS,
    name="get_flow",
    title="Get a flow",
    description=GET_DESCRIPTION,
    read_only=True,
    destructive=False,
    idempotent=True,
)
async def get_flow(
    flow_id: FlowId,
    svc: Services,
    runs: Annotated[int, Field(ge=1, le=config.MAX_BULK_ROWS)] = 1,
) -> Annotated[CallToolResult, FlowDetailOut]:
    flow, cost = await flow_and_cost(svc, flow_id)
    nodes = cast(Any, flow.config or {}).get("nodes")
    out = FlowDetailOut(
        **flow_out(flow).model_dump(),
        steps=len(cast(list[Any], nodes)) if isinstance(nodes, list) else None,
        cost_min=cost.min if cost else None,
        cost_max=cost.max if cost else None,
        runs=runs,
        min_credits=round(cost.min * runs, 6) if cost else None,
        max_credits=round(cost.max * runs, 6) if cost else None,
    )
    inputs = ", ".join(f"{i.id}{'*' if i.required else ''}" for i in out.inputs)
    price = ""
    if out.min_credits is not None and out.max_credits is not None:
        price = f" {runs} run(s): {out.min_credits:g}..{out.max_credits:g} credits."
    return ok_result(out, f"Flow {out.id}: {out.name}. Inputs (* required): {inputs}. Outputs: {out.outputs}.{price}")


@tool(
    Toolset.FLOWS,
    name="run_bulk_flow",
    title="Run a flow on input sets",
    description=RUN_BULK_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def run_bulk_flow(
    flow_id: FlowId,
    ctx: ToolContext,
    call: Annotated[Prepare, Resolve(bulk_flow_call)],
    spend: Annotated[SpendOutcome, Resolve(bulk_flow_spend)],
    resend: Annotated[ResendOutcome, Resolve(bulk_flow_resend)],
    input_file: RunInputFile = None,
    columns: ColumnMap = None,
    skip_bad_rows: SkipBadRows = False,
    output_file: OutputFilePath = None,
    inputs: Annotated[
        SkipJsonSchema[None] | list[dict[str, InputValue]],
        Field(min_length=1, max_length=config.MAX_BULK_ROWS, description="One input set per row."),
    ] = None,
    wait_seconds: WaitSeconds = WAIT_DEFAULT,
    force: ForceFlag = False,
    acknowledge_possible_double_billing: AcknowledgeFlag = False,
) -> Annotated[CallToolResult, TaskView]:
    run = RunControls(ctx, spend, resend, wait_seconds, force, acknowledge_possible_double_billing)
    if input_file is None or inputs is not None:
        return await execute(run, call)
    args = FileArgs(input_file, columns, skip_bad_rows, output_file)
    return await execute_file(run, args, lambda: flow_target(ctx, flow_id))
