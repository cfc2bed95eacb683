"""Exporters toolset: send a table's rows to a CRM or another destination (HubSpot, Pipedrive, a webhook).

Running an exporter changes data outside Databar, so it is confirmed by the user first, through the same
elicitation path as the spend guard; it is recorded in the ledger and never re-sent on an ambiguous reply.
"""

import json
from typing import Annotated, cast

from mcp.server.elicitation import AcceptedElicitation
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Elicit, Resolve
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from databar_mcp import config
from databar_mcp.api import runs
from databar_mcp.api.errors import ConflictError, DatabarError
from databar_mcp.api.models import ExporterDetail
from databar_mcp.config import Toolset
from databar_mcp.core.costs import balance_or_none
from databar_mcp.core.row_selection import RowSelection, select_rows
from databar_mcp.core.runner import DuplicateRunUnknown
from databar_mcp.core.table_runs import RunScope, processor_columns, submit_table_run
from databar_mcp.tools.kit.context import Services, ToolContext, services
from databar_mcp.tools.kit.params import (
    WAIT_DEFAULT,
    RowFilter,
    TableId,
    WaitSeconds,
    wait_within,
)
from databar_mcp.tools.kit.registry import tool
from databar_mcp.tools.kit.results import ErrorBody, ErrorCode, ToolFailure, ok_result
from databar_mcp.tools.kit.running import Confirmation, SpendGate, SpendOutcome, duplicate_unknown
from databar_mcp.tools.kit.table_kit import (
    Source,
    TableRunView,
    filter_call_arg,
    filter_json,
    not_attached,
    reader_of,
    report,
)

# Two ids, two names: `exporter_id` is the catalog's (list_exporters), `table_exporter_id` the one an exporter gets
# when attached to a table (add_table_exporter answers it; run_table_exporter takes it).
ExporterId = Annotated[int, Field(ge=1, le=2_000_000_000)]
RowIds = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=100)]] | None,
    Field(min_length=1, max_length=config.TABLE_RUN_ROW_IDS_MAX, description="Only these rows."),
]
SHOWN_IDS_MAX = 20  # a call-again step spells out at most this many row ids


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


class Selected(BaseModel):
    """The rows an export sends, in words and as the call's own arguments (to call again with)."""

    rows: int
    words: str  # "" (every row), " where {...}", " (the 3 row ids given)"
    args: str  # the selection's arguments as the tool takes them, e.g. ', filter={"Email":{"empty":false}}'
    filter_arg: str  # the filter alone, to read the same rows with list_table_rows


def selection_words(selection: RowSelection, row_ids: list[str] | None, conditions: RowFilter) -> Selected:
    shown = filter_call_arg(conditions)
    args = f", filter={shown}" if shown else ""
    if row_ids is not None:
        ids = json.dumps(row_ids) if len(row_ids) <= SHOWN_IDS_MAX else f"[the same {len(row_ids)} ids]"
        args += f", row_ids={ids}"
    if shown and row_ids is not None:
        words = f" where {shown}, among the {len(row_ids):,} row ids given"
    elif shown:
        words = f" where {shown}"
    elif row_ids is not None:
        words = f" (the {len(row_ids):,} row ids given)"
    else:
        words = ""
    return Selected(rows=selection.rows, words=words, args=args, filter_arg=f", filter={shown}" if shown else "")


async def selected(
    svc: Services, table_uuid: str, row_ids: list[str] | None, conditions: RowFilter
) -> tuple[RowSelection, Selected]:
    """The rows this export sends: a filter read now into the ids it matches, so the count asked is the count sent."""
    total = await svc.client.count_table_rows(table_uuid)
    selection = await select_rows(
        svc.client, table_uuid, row_ids=row_ids, filter_json=filter_json(conditions), table_rows=total
    )
    return selection, selection_words(selection, row_ids, conditions)


async def export_question(
    context: Context,  # pyright: ignore[reportMissingTypeArgument]
    table_uuid: str,
    table_exporter_id: int,
    row_ids: list[str] | None,
    filter: RowFilter,
    confirm: bool,
) -> SpendGate | Elicit[Confirmation]:
    """Ask the user before rows leave for another system; a client that cannot ask needs confirm=true."""
    ctx = cast(ToolContext, context)
    svc = services(ctx)
    try:
        attached = next(
            (e for e in await svc.client.list_table_exporters(table_uuid) if e.id == table_exporter_id), None
        )
        selection, chosen = await selected(svc, table_uuid, row_ids, filter)
    except DatabarError as exc:  # no question could be put: the body refuses unless it reports this itself
        return SpendGate(verdict="unavailable", reason=exc.message)
    if attached is None or selection.rows == 0 or selection.too_many:
        return SpendGate(verdict="unchecked")  # the body answers not_attached, or that no rows (too many) match
    what = f"{chosen.rows:,} row(s) of table {table_uuid}{chosen.words}"
    capabilities = ctx.client_capabilities
    if capabilities is not None and capabilities.elicitation is not None:
        return Elicit(f"Databar: send {what} to {attached.name}?", Confirmation)
    if confirm:
        return SpendGate(verdict="ok", reason="confirm=true: the agent says the user agreed")
    return SpendGate(
        verdict="confirm",
        reason=f"Sending {what} to {attached.name} needs the user's confirmation, and this client cannot ask the user.",
    )


def settle_export(outcome: SpendOutcome, table_uuid: str, table_exporter_id: int, selection_args: str = "") -> None:
    """Raise confirmation_required unless the user (or, where the client cannot ask, the agent for them) agreed."""
    args = f'table_uuid="{table_uuid}", table_exporter_id={table_exporter_id}{selection_args}'
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


def nothing_selected(table_uuid: str, chosen: Selected, too_many: bool) -> ToolFailure:
    """No row matches the selection, or more than one run takes by id: nothing is sent, the user is not asked."""
    if too_many:
        message = f"More than {config.TABLE_RUN_ROW_IDS_MAX:,} rows match{chosen.words}: one export sends at most that."
        step = "Narrow the filter (add a condition), or send every row without filter and row_ids."
    else:
        message = f"No row of table {table_uuid} matches{chosen.words or ' (the table is empty)'}."
        step = f'Check the selection: list_table_rows(table_uuid="{table_uuid}"{chosen.filter_arg})'
    return ToolFailure(
        ErrorBody(code=ErrorCode.VALIDATION_ERROR, message=message + " Nothing was sent.", next_steps=[step])
    )


LIST_DESCRIPTION = """\
List Databar's exporters (CRMs and other destinations for table rows), or exporter_id's params, \
destination fields and connections. Free. Next: add_table_exporter."""
ADD_DESCRIPTION = """\
Attach an exporter to a table, mapping its params to columns (or constants). Free: nothing is sent until \
run_table_exporter."""
RUN_DESCRIPTION = """\
Send the table's rows (every row, or those row_ids / filter select) to the exporter's destination (writes \
records outside Databar); the user is asked first, with the count. Submitted once; waits and counts like \
run_table_enrichment (follow next_call)."""


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
    ctx: ToolContext,
    query: Annotated[str | None, Field(max_length=200, description="Filter by name.")] = None,
    exporter_id: ExporterId | None = None,
) -> Annotated[CallToolResult, ExporterList]:
    svc = services(ctx)
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
    ctx: ToolContext,
    authorization: Annotated[int | None, Field(ge=1, description="Connection id; default: the first one.")] = None,
) -> Annotated[CallToolResult, AttachedExporterOut]:
    svc = services(ctx)
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
    confirmation: Annotated[SpendOutcome, Resolve(export_question)],
    row_ids: RowIds = None,
    filter: RowFilter = None,
    confirm: Annotated[bool, Field(description="Only where this client cannot ask: the user agreed.")] = False,
    wait_seconds: WaitSeconds = WAIT_DEFAULT,
) -> Annotated[CallToolResult, TableRunView]:
    svc = services(ctx)
    wait_seconds = wait_within(wait_seconds, svc.settings)
    columns = processor_columns(await svc.client.table_columns(table_uuid), table_exporter_id)
    attached = next((e for e in await svc.client.list_table_exporters(table_uuid) if e.id == table_exporter_id), None)
    if columns is None or attached is None:
        raise not_attached(table_uuid, table_exporter_id)
    selection, chosen = await selected(svc, table_uuid, row_ids, filter)
    if selection.rows == 0 or selection.too_many:
        raise nothing_selected(table_uuid, chosen, selection.too_many)
    settle_export(confirmation, table_uuid, table_exporter_id, chosen.args)
    before = await reader_of(svc).states(table_uuid, columns.status)
    everything = before.total - before.processing
    scope = RunScope(
        table_uuid=table_uuid,
        processor_id=table_exporter_id,
        name=attached.name,
        status_column=columns.status,
        output_columns=columns.outputs,
        strategy="run_all",
        row_ids=None if selection.row_ids is None else len(selection.row_ids),
        rows=everything if selection.row_ids is None else min(everything, selection.rows),
        before=before,
    )
    try:
        submitted = await submit_table_run(
            runner=svc.runner,
            ledger=svc.ledger,
            tool="run_table_exporter",
            call=runs.table_exporter(table_uuid, table_exporter_id, selection.row_ids),
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
