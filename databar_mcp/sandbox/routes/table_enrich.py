"""Table enrichment routes: attach enrichments, waterfalls and exporters to a table and run them on its rows.

The run is billable and answers `{status, processing_rows}` without a task id: the rows show progress
(see processors.py). 406 when the balance cannot cover the run's worst case; 409 while a run is going.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, TypeVar, cast

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from databar_mcp.sandbox.catalog import ENRICHMENTS, WATERFALLS, OutputField, Param
from databar_mcp.sandbox.errors import ApiError, Json, field_errors, insufficient_credits, not_found
from databar_mcp.sandbox.exporters import EXPORTERS
from databar_mcp.sandbox.processors import Processor, attach, inputs_of, selected_rows, start_run
from databar_mcp.sandbox.providers import RowOutcome, enrichment_row, waterfall_row
from databar_mcp.sandbox.state import SandboxState
from databar_mcp.sandbox.tables import Table
from databar_mcp.sandbox.validation import parse_body, parse_path_int

LaunchStrategy = Literal["run_on_click", "run_on_update"]
MappingEntry = dict[str, Any]
Found = tuple[RowOutcome, Mapping[str, Json] | None]
T = TypeVar("T")


async def off_loop(work: Callable[[], T]) -> T:
    """CPU work (50,000 rows of outcomes) in the loop's default executor, which asyncio.run joins."""
    return await asyncio.get_running_loop().run_in_executor(None, work)


class AddEnrichmentBody(BaseModel):
    enrichment: int
    mapping: dict[str, MappingEntry]
    launch_strategy: LaunchStrategy = "run_on_click"


class AddWaterfallBody(BaseModel):
    waterfall: str
    mapping: dict[str, str]
    enrichments: list[int] | None = None
    email_verifier: int | None = None


class AddExporterBody(BaseModel):
    exporter: int
    mapping: dict[str, MappingEntry]
    launch_strategy: LaunchStrategy = "run_on_click"
    authorization: int | None = None
    custom_body_template: Annotated[str, Field(max_length=10_000)] | None = None
    additional_mapping: dict[str, MappingEntry] | None = None


class UpdateBody(BaseModel):
    mapping: dict[str, Any] | None = None
    launch_strategy: LaunchStrategy | None = None


class RunBody(BaseModel):
    run_strategy: Literal["run_all", "run_empty", "run_errors"] = "run_all"
    row_ids: Annotated[list[str], Field(max_length=100_000)] | None = None


def _check_mapping(
    table: Table, params: Sequence[Param], mapping: Mapping[str, MappingEntry]
) -> dict[str, dict[str, Json]]:
    """Every key a param, every required param mapped, every mapped column (uuid or name, as the API resolves
    names) on the table (400 otherwise)."""
    errors: dict[str, list[str]] = {}
    names = {p.name for p in params}
    out: dict[str, dict[str, Json]] = {}
    for param, entry in mapping.items():
        kind, value = entry.get("type"), entry.get("value")
        column = _column_uuid(table, str(value)) if kind == "mapping" else None
        if param not in names:
            errors[f"mapping.{param}"] = [f"Unknown parameter; expected one of: {', '.join(sorted(names))}."]
        elif kind not in ("mapping", "simple"):
            errors[f"mapping.{param}.type"] = ['Must be "mapping" (a column) or "simple" (a constant).']
        elif kind == "mapping" and column is None:
            errors[f"mapping.{param}.value"] = [f"Column {value} not found on this table."]
        else:
            out[param] = {"type": str(kind), "value": column if kind == "mapping" else cast(Json, value)}
    for param in params:
        if param.is_required and param.name not in mapping:
            errors[f"mapping.{param.name}"] = ["This parameter is required."]
    if errors:
        raise field_errors(errors)
    return out


def _column_uuid(table: Table, ref: str) -> str | None:
    """A waterfall mapping value: a column uuid or a column name (the API resolves names)."""
    for column in table.columns:
        if ref in (column.identifier, column.name):
            return column.identifier
    return None


def routes(state: SandboxState) -> list[Route]:
    def table_of(request: Request) -> Table:
        return state.table(str(request.path_params["table_uuid"]))

    def new_processor(table: Table, **kwargs: Any) -> Processor:
        processor = Processor(id=state.workspace.new_id(), **kwargs)
        state.workspace.on(table.identifier)[processor.id] = processor
        return processor

    def attached(table: Table, processor: Processor, fields: Sequence[OutputField], name_key: str) -> Response:
        """Add the processor's status and output columns to the table; answer as Databar does for its kind."""
        attach(table, processor, [(f.name, f.type_field) for f in fields])
        return JSONResponse({"id": processor.id, name_key: processor.name})

    async def add_enrichment(request: Request) -> Response:
        body = await parse_body(AddEnrichmentBody, request)
        with state.lock:
            table = table_of(request)
            enrichment = ENRICHMENTS.get(body.enrichment)
            if enrichment is None:
                raise not_found("Enrichment not found.")
            mapping = _check_mapping(table, enrichment.params, body.mapping)
            processor = new_processor(
                table,
                kind="enrichment",
                name=enrichment.name,
                target=enrichment.id,
                mapping=mapping,
                launch_strategy=body.launch_strategy,
            )
            return attached(table, processor, enrichment.response_fields, "enrichment_name")

    async def add_waterfall(request: Request) -> Response:
        body = await parse_body(AddWaterfallBody, request)
        with state.lock:
            table = table_of(request)
            waterfall = WATERFALLS.get(body.waterfall)
            if waterfall is None:
                raise not_found("Waterfall not found.")
            entries: dict[str, MappingEntry] = {k: {"type": "mapping", "value": v} for k, v in body.mapping.items()}
            mapping = _check_mapping(table, waterfall.input_params, entries)
            chosen = list(dict.fromkeys(body.enrichments or waterfall.default_provider_ids))
            bad = [e for e in chosen if e not in waterfall.provider_ids]
            if bad:
                raise field_errors(
                    {"enrichments": [f"Enrichment {e} is not available for this waterfall." for e in bad]}
                )
            verifier = body.email_verifier
            if verifier is not None and verifier not in waterfall.email_verifiers:
                raise field_errors(
                    {"email_verifier": [f"Email verifier {verifier} is not available for this waterfall."]}
                )
            processor = new_processor(
                table,
                kind="waterfall",
                name=waterfall.name,
                target=waterfall.identifier,
                mapping=mapping,
                enrichments=chosen,
                email_verifier=verifier,
            )
            return attached(table, processor, waterfall.output_fields, "waterfall_name")

    async def add_exporter(request: Request) -> Response:
        body = await parse_body(AddExporterBody, request)
        with state.lock:
            table = table_of(request)
            exporter = EXPORTERS.get(body.exporter)
            if exporter is None:
                raise not_found("Exporter not found.")
            connections = {c[0] for c in exporter.connections}
            if body.authorization is not None and body.authorization not in connections:
                raise field_errors({"authorization": [f"Connection {body.authorization} not found."]})
            mapping = _check_mapping(table, exporter.params, body.mapping)
            processor = new_processor(
                table,
                kind="exporter",
                name=exporter.name,
                target=exporter.id,
                mapping=mapping,
                launch_strategy=body.launch_strategy,
            )
            return attached(table, processor, exporter.response_fields, "exporter_name")

    def listed(request: Request, kind: str, name_key: str) -> Response:
        with state.lock:
            table = table_of(request)
            attached = state.workspace.on(table.identifier).values()
            return JSONResponse([{"id": p.id, name_key: p.name} for p in attached if p.kind == kind])

    async def list_enrichments(request: Request) -> Response:
        return listed(request, "enrichment", "name")

    async def list_waterfalls(request: Request) -> Response:
        return listed(request, "waterfall", "waterfall_name")

    async def list_exporters(request: Request) -> Response:
        return listed(request, "exporter", "name")

    def params_of(processor: Processor) -> Sequence[Param]:
        if processor.kind == "enrichment":
            return ENRICHMENTS[int(processor.target)].params
        if processor.kind == "waterfall":
            return WATERFALLS[str(processor.target)].input_params
        return EXPORTERS[int(processor.target)].params

    async def update(request: Request) -> Response:
        body = await parse_body(UpdateBody, request)
        with state.lock:
            table = table_of(request)
            processor = state.workspace.processor(table.identifier, parse_path_int(request, "processor_id"))
            if body.mapping is not None:
                entries: dict[str, MappingEntry] = {
                    k: cast(MappingEntry, v) if isinstance(v, dict) else {"type": "mapping", "value": v}
                    for k, v in body.mapping.items()
                }
                processor.mapping = _check_mapping(table, params_of(processor), entries)
            if body.launch_strategy is not None:
                processor.launch_strategy = body.launch_strategy
            return JSONResponse({"id": processor.id, "enrichment_name": processor.name})

    def outcomes(processor: Processor, rows: Sequence[Mapping[str, Json]]) -> list[Found]:
        """What each row will yield (computed off the event loop for big tables)."""
        params = params_of(processor)
        required = [p.name for p in params if p.is_required]
        out: list[Found] = []
        for values in rows:
            missing = [n for n in required if values.get(n) in (None, "")]
            if missing:
                out.append((RowOutcome(None, True, 0.0, f"Missing input: {', '.join(missing)}."), None))
            elif processor.kind == "enrichment":
                outcome = enrichment_row(ENRICHMENTS[int(processor.target)], values)
                out.append((outcome, outcome.data))
            elif processor.kind == "waterfall":
                waterfall = WATERFALLS[str(processor.target)]
                outcome = waterfall_row(waterfall, values, processor.enrichments, processor.email_verifier)
                found = cast(Mapping[str, Json], outcome.data["result"]) if outcome.data else None
                out.append((outcome, found))
            else:
                out.append(EXPORTERS[int(processor.target)].export_row(values))
        return out

    def worst_case(processor: Processor, rows: Sequence[Mapping[str, Json]]) -> float:
        if processor.kind == "enrichment":
            enrichment = ENRICHMENTS[int(processor.target)]
            return sum(enrichment.unit_cost(dict(r)) for r in rows)
        if processor.kind == "waterfall":
            per_row = sum(ENRICHMENTS[e].price for e in processor.enrichments)
            if processor.email_verifier is not None:
                per_row += ENRICHMENTS[processor.email_verifier].price
            return per_row * len(rows)
        return 0.0

    async def run(request: Request, kind: str | None = None) -> Response:
        body = await parse_body(RunBody, request, empty_ok=True)
        processor_id = parse_path_int(request, "processor_id")
        with state.lock:
            table = table_of(request)
            processor = state.workspace.processor(table.identifier, processor_id)
            if kind is not None and processor.kind != kind:
                raise not_found("Exporter not found on this table.")
            if processor.run is not None and processor.run.running:
                raise ApiError(409, {"detail": "This enrichment is already running on the table."})
            rows = selected_rows(table, processor, body.run_strategy, body.row_ids)
            names = {c.identifier: c.name for c in table.columns}
            inputs = [inputs_of(r, processor.mapping, names) for r in rows]
            worst = worst_case(processor, inputs)
            if state.balance < worst:
                raise insufficient_credits()
        found = await off_loop(lambda: outcomes(processor, inputs))
        with state.lock:
            if processor.run is not None and processor.run.running:
                raise ApiError(409, {"detail": "This enrichment is already running on the table."})
            row_seconds = state.config.table_row_seconds
            start_run(
                processor,
                rows,
                found,
                start=state.clock.now(),
                base_seconds=state.config.task_base_seconds,
                row_seconds=state.config.row_seconds if row_seconds is None else row_seconds,
            )
            table.updated_at = state.iso_now()
        status = "processing" if rows else "completed"
        return JSONResponse({"status": status, "processing_rows": len(rows)})

    async def run_enrichment(request: Request) -> Response:
        return await run(request)

    async def run_exporter(request: Request) -> Response:
        # The same body as run-enrichment (row_ids narrows the rows sent): an assumption, since Databar documents
        # row_ids for run-enrichment only; its SDK sends run-exporter no body, which this accepts too.
        return await run(request, "exporter")

    prefix = "/v1/table/{table_uuid}"
    return [
        Route(f"{prefix}/add-enrichment", add_enrichment, methods=["POST"]),
        Route(f"{prefix}/add-waterfall", add_waterfall, methods=["POST"]),
        Route(f"{prefix}/add-exporter", add_exporter, methods=["POST"]),
        Route(f"{prefix}/enrichments", list_enrichments, methods=["GET"]),
        Route(f"{prefix}/waterfalls", list_waterfalls, methods=["GET"]),
        Route(f"{prefix}/exporters", list_exporters, methods=["GET"]),
        Route(f"{prefix}/enrichments/{{processor_id}}", update, methods=["PATCH"]),
        Route(f"{prefix}/run-enrichment/{{processor_id}}", run_enrichment, methods=["POST"]),
        Route(f"{prefix}/run-exporter/{{processor_id}}", run_exporter, methods=["POST"]),
    ]
