"""Full results beyond one tool result: the `databar://tasks/{task_id}/result` resource and CSV/JSONL export."""

import functools
import json
from typing import Annotated, Any, Literal, cast

import anyio.to_thread
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from databar_mcp.api.errors import DatabarError
from databar_mcp.api.models import Task
from databar_mcp.config import Toolset
from databar_mcp.core.exporting import SAFE_NAME, ExportFormat, UnsafeName, claim_new_file, export_stem, write_export
from databar_mcp.tools.context import Services, ToolContext, services
from databar_mcp.tools.failures import bad_filename, from_api_error
from databar_mcp.tools.params import (
    TaskId,
)
from databar_mcp.tools.registry import Toolbox, tool
from databar_mcp.tools.results import ToolFailure, ok_result
from databar_mcp.tools.task_kit import finished_task
from databar_mcp.tools.task_view import result_rows

EXPORT_DESCRIPTION = """\
Write every row of a finished task, joined to its input row, to a new file in the server's exports folder: \
CSV (nested fields as dotted columns) or JSONL ({"index", "input", "result"} per line). Free. Returns the \
path and row count, not the rows."""


class ExportResult(BaseModel):
    task_id: str
    path: str = Field(description="Absolute path of the written file.")
    format: str
    rows: int
    rows_with_data: int
    columns: list[str] = Field(description="Column names (CSV), at most 100 shown.")
    bytes: int
    inputs_joined: bool = Field(description="False when the inputs are unknown (task not submitted by this server).")
    served_from: str
    message: str


async def inputs_of(svc: Services, task_id: str) -> list[Any] | None:
    """The rows submitted for this task, as recorded in the ledger (None if it was not submitted here)."""
    record = await svc.tasks.read(task_id, with_data=False)
    if record is None or record.submission is None:
        return None
    params = record.submission.request.get("params")
    return cast(list[Any], params) if isinstance(params, list) else None


def full_result_json(task: Task, inputs: list[Any] | None, served_from: str) -> str:
    """Every row; `raw_data` adds Databar's own entries when they were reduced (waterfall steps and costs)."""
    rows = result_rows(task) or []
    data: object = task.data
    raw: list[Any] | None = None if data is None else cast(list[Any], data) if isinstance(data, list) else [data]
    return json.dumps(
        {
            "task_id": task.task_id,
            "status": task.status,
            "served_from": served_from,
            "credits_spent": task.credits_spent,
            "rows_total": len(rows),
            "rows_with_data": sum(1 for r in rows if r is not None),
            "inputs": inputs,
            "data": rows,
            **({"raw_data": raw} if raw is not None and rows != raw else {}),
        },
        ensure_ascii=False,
    )


def register_resources(box: Toolbox) -> None:
    if not box.enabled(Toolset.TASKS, read_only=True):
        return

    @box.server.resource(
        "databar://tasks/{task_id}/result",
        name="task_result",
        title="Full task result",
        description="Every row of a finished task as JSON (inputs and data aligned by position), from the ledger.",
        mime_type="application/json",
    )
    async def task_result_resource(task_id: str, ctx: ToolContext) -> str:
        if not SAFE_NAME.fullmatch(task_id):
            raise ResourceError(f"Invalid task id {task_id[:100]!r}.")
        svc = services(ctx)
        try:
            task, source = await finished_task(svc, task_id)
        except ToolFailure as failure:
            raise ResourceError(failure.body.message) from None
        except DatabarError as exc:
            raise ResourceError(from_api_error(exc, task_id=task_id).message) from None
        return full_result_json(task, await inputs_of(svc, task_id), source)


@tool(
    Toolset.TASKS,
    name="export_task_result",
    title="Export a task result to a file",
    description=EXPORT_DESCRIPTION,
    read_only=False,
    destructive=False,
    idempotent=False,
)
async def export_task_result(
    task_id: TaskId,
    svc: Services,
    format: Literal["csv", "jsonl"] = "csv",
    filename: Annotated[
        str | None,
        Field(
            max_length=100,
            description="Plain file name (the extension is added); default: the task id.",
        ),
    ] = None,
) -> Annotated[CallToolResult, ExportResult]:
    fmt: ExportFormat = format

    try:
        stem = export_stem(task_id, filename, fmt)
    except UnsafeName as exc:
        raise bad_filename(exc, "Pass a plain name such as 'leads_enriched', or omit filename.") from None
    task, source = await finished_task(svc, task_id)
    rows = result_rows(task) or []
    inputs = await inputs_of(svc, task_id)
    path = await anyio.to_thread.run_sync(claim_new_file, svc.settings.exports_dir, stem, fmt)
    try:
        size, columns = await anyio.to_thread.run_sync(functools.partial(write_export, path, fmt, inputs, rows))
    except BaseException:
        path.unlink(missing_ok=True)  # the claimed name is freed again: no empty file left behind
        raise
    found = sum(1 for r in rows if r is not None)
    out = ExportResult(
        task_id=task_id,
        path=str(path),
        format=fmt,
        rows=len(rows),
        rows_with_data=found,
        columns=columns[:100],
        bytes=size,
        inputs_joined=inputs is not None,
        served_from=source,
        message=f"Wrote {len(rows):,} rows ({found:,} with data) to {path}.",
    )
    return ok_result(out, out.message + ("" if out.inputs_joined else " Inputs unknown: results only."))
