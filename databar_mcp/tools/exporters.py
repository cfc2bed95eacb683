"""Exporters toolset: send a table's rows to a CRM or another destination (HubSpot, Pipedrive, a webhook).

Running an exporter changes data outside Databar, so it is confirmed by the user first, through the same
elicitation path as the spend guard; it is recorded in the ledger and never re-sent on an ambiguous reply.
"""

from typing import Annotated, cast

from mcp.server.elicitation import AcceptedElicitation
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from databar_mcp.api import runs
from databar_mcp.api.errors import ConflictError, DatabarError
from databar_mcp.api.models import ExporterDetail
from databar_mcp.config import Toolset
from databar_mcp.core.costs import balance_or_none
from databar_mcp.core.runner import DuplicateRunUnknown
from databar_mcp.core.table_runs import RunScope, processor_columns, submit_table_run
from databar_mcp.tools.context import Services, ToolContext, services
from databar_mcp.tools.params import (
    WAIT_DEFAULT,
    TableId,
    WaitSeconds,
)
from databar_mcp.tools.registry import tool
from databar_mcp.tools.results import ErrorBody, ErrorCode, ToolFailure, ok_result
from databar_mcp.tools.running import Confirmation, SpendGate, SpendOutcome, duplicate_unknown
from databar_mcp.tools.table_kit import (
    Source,
    TableRunView,
    not_attached,
    reader_of,
    report,
)

# Two ids, two names: `exporter_id` is the catalog's (list_exporters), `table_exporter_id` the one an exporter gets
# when attached to a table (add_table_exporter answers it; run_table_exporter takes it).
ExporterId = Annotated[int, Field(ge=1, le=2_000_000_000)]


class ExporterOut(BaseModel):
    id: int
    name: str
    description: str | None = None


class ExporterParamOut(BaseModel):
    name: str
    required: bool
    type: str | None = None
    description: str | None = None


class ExporterDetailOut(ExporterOut):
    params: list[ExporterParamOut] = Field(description="Map these to columns in add_table_exporter.")
    additional_params: list[str] = Field(description="Destination fields for additional_mapping.")
    result_fields: list[str]
    needs_connection: bool
    connections: list[str] = Field(description="Connections to pass as authorization: 'id: name'.")


class ExporterList(BaseModel):
    exporters: list[ExporterOut] = Field(description="Every exporter (empty when exporter_id was given).")
    exporter: ExporterDetailOut | None = Field(default=None, description="exporter_id's detail, when given.")


class AttachedExporterOut(BaseModel):
    table_uuid: str
    table_exporter_id: int = Field(description="The attached exporter's id: pass it to run_table_exporter.")
    name: str
    status_column: str | None = None
    next_step: str


def detail_out(e: ExporterDetail) -> ExporterDetailOut:
    return ExporterDetailOut(
        id=e.id,
        name=e.name,
        description=e.description,
        params=[
            ExporterParamOut(name=p.name, required=p.is_required, type=p.type_field, description=p.description)
            for p in e.params
        ],
        additional_params=[p.name for p in e.additional_params],
        result_fields=[f.name for f in e.response_fields],
        needs_connection=e.authorization.required,
        connections=[f"{c.id}: {c.name}" for c in e.authorization.connections],
    )


async def export_question(
    context: Context,  # pyright: ignore[reportMissingTypeArgument]
    table_uuid: str,
    table_exporter_id: int,
    confirm: bool,
) -> SpendGate | Elicit[Confirmation]:
    """Ask the user before rows leave for another system; a client that cannot ask needs confirm=true."""
    ctx = cast(ToolContext, context)
    svc = services(ctx)
    try:
        attached = next(
            (e for e in await svc.client.list_table_exporters(table_uuid) if e.id == table_exporter_id), None
        )
        rows = await svc.client.count_table_rows(table_uuid)
    except DatabarError as exc:  # no question could be put: the body refuses unless it reports this itself
        return SpendGate(verdict="unavailable", reason=exc.message)
    if attached is None:
        return SpendGate(verdict="unchecked")  # the body answers not_attached
    capabilities = ctx.client_capabilities
    if capabilities is not None and capabilities.elicitation is not None:
        return Elicit(f"Databar: send {rows:,} row(s) of table {table_uuid} to {attached.name}?", Confirmation)
    if confirm:
        return SpendGate(verdict="ok", reason="confirm=true: the agent says the user agreed")
    return SpendGate(
        verdict="confirm",
        reason=f"Sending {rows:,} row(s) of table {table_uuid} to {attached.name} needs the user's confirmation, "
        "and this client cannot ask the user.",
    )


def settle_export(outcome: SpendOutcome, table_uuid: str, table_exporter_id: int) -> None:
    """Raise confirmation_required unless the user (or, where the client cannot ask, the agent for them) agreed."""
    args = f'table_uuid="{table_uuid}", table_exporter_id={table_exporter_id}'
    data = cast(object, outcome.data) if isinstance(outcome, AcceptedElicitation) else None
    if (isinstance(data, Confirmation) and data.confirm) or (isinstance(data, SpendGate) and data.verdict == "ok"):
        return
    if isinstance(data, SpendGate) and data.verdict == "confirm":
        message = data.reason
        steps = [
            "Ask the user whether to send these rows (the count and destination are above).",
            f"Only if they agree: call run_table_exporter({args}, confirm=true).",
        ]
    elif isinstance(data, SpendGate):  # the question could not be put: reading the table failed
        message = f"The user could not be asked to confirm the export ({data.reason or 'the check failed'})."
        steps = [f"Call run_table_exporter({args}) again in a few seconds: the user is asked first."]
    else:
        answer = "did not confirm" if isinstance(data, Confirmation) else f"answered {outcome.action}"
        message = f"The user {answer} the export."
        steps = ["Do not send these rows unless the user asks for it again; do not try to get around this."]
    raise ToolFailure(
        ErrorBody(
            code=ErrorCode.CONFIRMATION_REQUIRED,
            message=message + " Nothing was sent.",
            details={"table_uuid": table_uuid, "table_exporter_id": table_exporter_id},
            next_steps=steps,
        )
    )


LIST_DESCRIPTION = """\
List Databar's exporters (CRMs and other destinations for table rows), or exporter_id's params, \
destination fields and connections. Free. Next: add_table_exporter."""
ADD_DESCRIPTION = """\
Attach an exporter to a table, mapping its params to columns (or constants). Free: nothing is sent until \
run_table_exporter."""
RUN_DESCRIPTION = """\
Send every row of the table to the exporter's destination (writes records outside Databar); the user is \
asked first. Submitted once; waits and counts like run_table_enrichment (follow next_call)."""


@tool(
    Toolset.EXPORTERS,
    name="list_exporters",
    title="List exporters",
    description=LIST_DESCRIPTION,
    read_only=True,
    destructive=False,
    idempotent=True,
)
async def list_exporters(
    svc: Services,
    query: Annotated[str | None, Field(max_length=200, description="Filter by name.")] = None,
    exporter_id: ExporterId | None = None,
) -> Annotated[CallToolResult, ExporterList]:
    if exporter_id is not None:
        detail = detail_out(await svc.client.get_exporter(exporter_id))
        params = ", ".join(f"{p.name}{'*' if p.required else ''}" for p in detail.params)
        text = f"{detail.id}: {detail.name}. Params (* required): {params}. Connections: {detail.connections}"
        return ok_result(ExporterList(exporters=[], exporter=detail), text)
    items = await svc.client.list_exporters(query)
    out = ExporterList(exporters=[ExporterOut(id=e.id, name=e.name, description=e.description) for e in items])
    text = "\n".join([f"{len(items)} exporter(s):"] + [f"- {e.id}: {e.name}" for e in items])
    return ok_result(out, text + "\nNext: list_exporters(exporter_id=...) for its params.")


@tool(
    Toolset.EXPORTERS,
    name="add_table_exporter",
    title="Attach an exporter to a table",
    description=ADD_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def add_table_exporter(
    table_uuid: TableId,
    exporter_id: Annotated[ExporterId, Field(description="The catalog id, from list_exporters.")],
    mapping: Annotated[
        dict[Annotated[str, Field(min_length=1, max_length=256)], Source],
        Field(min_length=1, max_length=50, description='Param → source, e.g. {"email": {"column": "Email"}}.'),
    ],
    svc: Services,
    authorization: Annotated[int | None, Field(ge=1, description="Connection id; default: the first one.")] = None,
) -> Annotated[CallToolResult, AttachedExporterOut]:
    attached = await svc.client.add_table_exporter(
        table_uuid, exporter_id, {k: v.as_mapping() for k, v in mapping.items()}, authorization=authorization
    )
    owned = processor_columns(await svc.client.table_columns(table_uuid), attached.id)
    call = f'run_table_exporter(table_uuid="{table_uuid}", table_exporter_id={attached.id})'
    out = AttachedExporterOut(
        table_uuid=table_uuid,
        table_exporter_id=attached.id,
        name=attached.name,
        status_column=owned.status if owned else None,
        next_step=f"Send the rows (asks the user first): {call}",
    )
    return ok_result(
        out, f"Attached {out.name} to {table_uuid} as table_exporter_id {out.table_exporter_id}. {out.next_step}"
    )


@tool(
    Toolset.EXPORTERS,
    name="run_table_exporter",
    title="Send a table's rows to a destination",
    description=RUN_DESCRIPTION,
    read_only=False,
    destructive=True,
    idempotent=False,
)
async def run_table_exporter(
    table_uuid: TableId,
    table_exporter_id: Annotated[int, Field(ge=1, le=2_000_000_000, description="From add_table_exporter.")],
    ctx: ToolContext,
    svc: Services,
    confirmation: Annotated[SpendOutcome, Resolve(export_question)],
    confirm: Annotated[bool, Field(description="Only where this client cannot ask: the user agreed.")] = False,
    wait_seconds: WaitSeconds = WAIT_DEFAULT,
) -> Annotated[CallToolResult, TableRunView]:
    columns = processor_columns(await svc.client.table_columns(table_uuid), table_exporter_id)
    attached = next((e for e in await svc.client.list_table_exporters(table_uuid) if e.id == table_exporter_id), None)
    if columns is None or attached is None:
        raise not_attached(table_uuid, table_exporter_id)
    settle_export(confirmation, table_uuid, table_exporter_id)
    before = await reader_of(svc).states(table_uuid, columns.status)
    scope = RunScope(
        table_uuid=table_uuid,
        processor_id=table_exporter_id,
        name=attached.name,
        status_column=columns.status,
        output_columns=columns.outputs,
        strategy="run_all",
        row_ids=None,
        rows=before.total - before.processing,
        before=before,
    )
    try:
        submitted = await submit_table_run(
            runner=svc.runner,
            ledger=svc.ledger,
            tool="run_table_exporter",
            call=runs.table_exporter(table_uuid, table_exporter_id),
            scope=scope,
            estimated_credits=0.0,
            force=False,
            window_s=svc.settings.duplicate_window_s,
            settle_s=svc.settings.connect_timeout_s + svc.settings.read_timeout_s + 2.0,
            send=svc.client.start_table_run,
            balance=lambda: balance_or_none(svc.client),
        )
    except DuplicateRunUnknown as exc:
        raise ToolFailure(duplicate_unknown(exc.earlier)) from None
    except ConflictError:
        raise ToolFailure(
            ErrorBody(
                code=ErrorCode.CONFLICT,
                http_status=409,
                message="This exporter is already running on the table; nothing was sent.",
                next_steps=["Wait a minute and read the status column with list_table_rows."],
            )
        ) from None
    return await report(
        ctx,
        submitted.scope,
        wait_s=wait_seconds,
        processing=None,
        estimate=0.0,
        reused=submitted.reused is not None,
    )
