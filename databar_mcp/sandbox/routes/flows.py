"""Flow routes: list, read, create and edit saved flows (every change a new version), validate and price a
config, restore an old version, and run one input set or many (a task)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, cast

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from databar_mcp.sandbox.errors import ApiError, Json, field_errors, insufficient_credits, not_found
from databar_mcp.sandbox.flow_ops import apply_ops
from databar_mcp.sandbox.flows import Flow, check, config_problems, cost_estimate, run_flow
from databar_mcp.sandbox.routes.runs import off_loop
from databar_mcp.sandbox.state import SandboxState
from databar_mcp.sandbox.validation import parse_body, parse_path_int, parse_query

Inputs = dict[str, Any]
Name = Annotated[str, Field(min_length=1, max_length=256)]


class RunBody(BaseModel):
    inputs: Inputs


class BulkRunBody(BaseModel):
    inputs: Annotated[list[Inputs], Field(min_length=1)]


class ConfigBody(BaseModel):
    config: Any


class CreateBody(BaseModel):
    name: Name
    config: dict[str, Any]
    description: Annotated[str, Field(max_length=2000)] = ""
    ui: dict[str, Any] | None = None


class ReplaceBody(CreateBody):
    internal_version: str


class UpdateBody(BaseModel):
    name: Name | None = None
    description: Annotated[str, Field(max_length=2000)] | None = None
    config: dict[str, Any] | None = None
    ui: dict[str, Any] | None = None
    internal_version: str | None = None


class OpsBody(BaseModel):
    ops: Annotated[list[dict[str, Any]], Field(min_length=1, max_length=200)]
    validate_only: bool = False
    internal_version: str | None = None


class RestoreBody(BaseModel):
    internal_version: str | None = None


class VersionsQuery(BaseModel):
    page: Annotated[int, Field(ge=1)] = 1
    limit: Annotated[int, Field(ge=1, le=100)] = 50


def _stale(flow: Flow, token: str | None) -> None:
    """409 when the caller edited from an older read than the flow's current version."""
    if token is not None and token != flow.internal_version:
        raise ApiError(409, {"detail": f"The flow changed since you read it (now {flow.internal_version})."})


def _problems_json(config: object) -> list[Json]:
    return [{"node_id": n, "message": m} for n, m in config_problems(config)]


def routes(state: SandboxState) -> list[Route]:
    def flow_of(request: Request) -> Flow:
        flow = state.flows.get(str(request.path_params["flow_id"]))
        if flow is None:
            raise not_found("Flow not found.")
        return flow

    async def list_flows(_request: Request) -> Response:
        with state.lock:
            return JSONResponse([f.summary_json() for f in state.flows.values()])

    async def get_flow(request: Request) -> Response:
        with state.lock:
            return JSONResponse(flow_of(request).detail_json())

    async def estimate(request: Request) -> Response:
        body = await parse_body(ConfigBody, request)
        return JSONResponse(cost_estimate(body.config))

    async def validate(request: Request) -> Response:
        body = await parse_body(ConfigBody, request)
        problems = _problems_json(body.config)
        return JSONResponse({"valid": not problems, "errors": problems})

    async def create(request: Request) -> Response:
        body = await parse_body(CreateBody, request)
        check(body.config)
        with state.lock:
            stamp = state.iso_now()
            flow = Flow(str(uuid.uuid4()), body.name, body.description, {}, stamp, stamp)
            flow.save(stamp, {"config": body.config, "ui": body.ui})
            flow.versions[-1].changed_fields = ["name", "description", "config"]
            state.flows[flow.id] = flow
            return JSONResponse(flow.detail_json(), status_code=201)

    def edit(flow: Flow, changes: dict[str, Any], token: str | None) -> Response:
        if changes.get("config") is not None:
            if token is None:
                raise field_errors({"internal_version": ["Required when the config changes: send get_flow's."]})
            check(changes["config"])
        _stale(flow, token)
        flow.save(state.iso_now(), changes)
        return JSONResponse(flow.detail_json())

    async def update(request: Request) -> Response:
        body = await parse_body(UpdateBody, request)
        with state.lock:
            return edit(flow_of(request), body.model_dump(exclude={"internal_version"}), body.internal_version)

    async def replace(request: Request) -> Response:
        body = await parse_body(ReplaceBody, request)
        with state.lock:
            changes = body.model_dump(exclude={"internal_version"})
            changes["ui"] = changes["ui"] or {}
            return edit(flow_of(request), changes, body.internal_version)

    async def patch_config(request: Request) -> Response:
        body = await parse_body(OpsBody, request)
        with state.lock:
            flow = flow_of(request)
            _stale(flow, body.internal_version)
            config, errors = apply_ops(flow.config, body.ops)
            errors += [f"{n}: {m}" if n else m for n, m in config_problems(config)] if not errors else []
            written: Json = None
            if not errors and not body.validate_only:
                flow.save(state.iso_now(), {"config": config})
                written = flow.detail_json()
            reply: dict[str, Json] = {"valid": not errors, "errors": list[Json](errors)}
            reply.update(config=cast(Json, config), flow=written)
            return JSONResponse(reply)

    async def delete(request: Request) -> Response:
        with state.lock:
            del state.flows[flow_of(request).id]
            return Response(status_code=204)

    async def versions(request: Request) -> Response:
        query = parse_query(VersionsQuery, request)
        with state.lock:
            newest_first = list(reversed(flow_of(request).versions))
            start = (query.page - 1) * query.limit
            return JSONResponse([v.as_json() for v in newest_first[start : start + query.limit]])

    def version_of(flow: Flow, request: Request) -> int:
        number = parse_path_int(request, "number")
        if not any(v.number == number for v in flow.versions):
            raise not_found("Version not found.")
        return number

    async def version(request: Request) -> Response:
        with state.lock:
            flow = flow_of(request)
            number = version_of(flow, request)
            return JSONResponse(next(v for v in flow.versions if v.number == number).as_json(detail=True))

    async def restore(request: Request) -> Response:
        body = await parse_body(RestoreBody, request, empty_ok=True)
        with state.lock:
            flow = flow_of(request)
            old = next(v for v in flow.versions if v.number == version_of(flow, request))
            _stale(flow, body.internal_version)
            check(old.config)  # a version that no longer validates is refused, not restored
            changes = {"name": old.name, "description": old.description, "config": old.config, "ui": old.ui}
            made = flow.save(state.iso_now(), changes, restored_from=old.number)
            assert made is not None
            return JSONResponse({"flow": flow.detail_json(), "version": made.as_json()})

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
        with state.lock:
            flow = flow_of(request)
        worst = start(flow, [body.inputs], bulk=False)
        task = state.submit([run_flow(flow, cast(dict[str, Json], body.inputs))], worst, bulk=False)
        return JSONResponse({"task_id": task.task_id, "status": "processing"})

    async def run_bulk(request: Request) -> Response:
        body = await parse_body(BulkRunBody, request)
        with state.lock:
            flow = flow_of(request)
        worst = start(flow, body.inputs, bulk=True)
        outcomes = await off_loop(lambda: [run_flow(flow, cast(dict[str, Json], i)) for i in body.inputs])
        task = state.submit(outcomes, worst, bulk=True)
        return JSONResponse({"task_id": task.task_id, "status": "processing"})

    prefix = "/v1/flows/{flow_id}"
    return [
        Route("/v1/flows", list_flows, methods=["GET"]),
        Route("/v1/flows", create, methods=["POST"]),
        Route("/v1/flows/cost-estimate", estimate, methods=["POST"]),
        Route("/v1/flows/validate-config", validate, methods=["POST"]),
        Route(prefix, get_flow, methods=["GET"]),
        Route(prefix, update, methods=["PATCH"]),
        Route(prefix, replace, methods=["PUT"]),
        Route(prefix, delete, methods=["DELETE"]),
        Route(f"{prefix}/config", patch_config, methods=["PATCH"]),
        Route(f"{prefix}/versions", versions, methods=["GET"]),
        Route(f"{prefix}/versions/{{number}}", version, methods=["GET"]),
        Route(f"{prefix}/versions/{{number}}/restore", restore, methods=["POST"]),
        Route(f"{prefix}/run", run_one, methods=["POST"]),
        Route(f"{prefix}/bulk-run", run_bulk, methods=["POST"]),
    ]
