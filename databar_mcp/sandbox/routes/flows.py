"""Flow routes: list and read saved flows, estimate a config's cost, run one input set or many (a task)."""

from __future__ import annotations

from typing import Annotated, Any, cast

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from databar_mcp.sandbox.errors import Json, field_errors, insufficient_credits, not_found
from databar_mcp.sandbox.flows import FLOWS, Flow, cost_estimate, run_flow
from databar_mcp.sandbox.routes.runs import off_loop
from databar_mcp.sandbox.state import SandboxState
from databar_mcp.sandbox.validation import parse_body

Inputs = dict[str, Any]


class RunBody(BaseModel):
    inputs: Inputs


class BulkRunBody(BaseModel):
    inputs: Annotated[list[Inputs], Field(min_length=1)]


class EstimateBody(BaseModel):
    config: Any


def routes(state: SandboxState) -> list[Route]:
    def flow_of(request: Request) -> Flow:
        flow = FLOWS.get(str(request.path_params["flow_id"]))
        if flow is None:
            raise not_found("Flow not found.")
        return flow

    async def list_flows(_request: Request) -> Response:
        return JSONResponse([f.summary_json() for f in FLOWS.values()])

    async def get_flow(request: Request) -> Response:
        return JSONResponse(flow_of(request).detail_json())

    async def estimate(request: Request) -> Response:
        body = await parse_body(EstimateBody, request)
        return JSONResponse(cost_estimate(body.config))

    def start(flow: Flow, inputs: list[Inputs], bulk: bool) -> float:
        if len(inputs) > state.config.max_bulk_rows:
            raise field_errors({"inputs": [f"Ensure this field has no more than {state.config.max_bulk_rows} items."]})
        errors: dict[str, list[str]] = {}
        for index, values in enumerate(inputs):
            errors.update(flow.input_errors(values, f"inputs[{index}]." if bulk else "inputs."))
        if errors:
            raise field_errors(errors)
        worst = float(str(cost_estimate(flow.config)["max"])) * len(inputs)
        if state.balance < worst:
            raise insufficient_credits()
        return worst

    async def run_one(request: Request) -> Response:
        body = await parse_body(RunBody, request)
        flow = flow_of(request)
        worst = start(flow, [body.inputs], bulk=False)
        task = state.submit([run_flow(flow, cast(dict[str, Json], body.inputs))], worst, bulk=False)
        return JSONResponse({"task_id": task.task_id, "status": "processing"})

    async def run_bulk(request: Request) -> Response:
        body = await parse_body(BulkRunBody, request)
        flow = flow_of(request)
        worst = start(flow, body.inputs, bulk=True)
        outcomes = await off_loop(lambda: [run_flow(flow, cast(dict[str, Json], i)) for i in body.inputs])
        task = state.submit(outcomes, worst, bulk=True)
        return JSONResponse({"task_id": task.task_id, "status": "processing"})

    return [
        Route("/v1/flows", list_flows, methods=["GET"]),
        Route("/v1/flows/cost-estimate", estimate, methods=["POST"]),
        Route("/v1/flows/{flow_id}", get_flow, methods=["GET"]),
        Route("/v1/flows/{flow_id}/run", run_one, methods=["POST"]),
        Route("/v1/flows/{flow_id}/bulk-run", run_bulk, methods=["POST"]),
    ]
