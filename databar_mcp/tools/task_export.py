"""export_task_result: every row of a finished task, beyond one tool result, as a CSV or JSONL file (the same rows
as JSON are the `databar://tasks/{task_id}/result` resource: see task_result.py)."""

import functools
from typing import Annotated, Literal

import anyio.to_thread
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from databar_mcp.config import Toolset
from databar_mcp.core.files.export_writing import ExportFormat, UnsafeName, claim_new_file, export_stem, write_export
from databar_mcp.tools.kit.context import ToolContext, services
from databar_mcp.tools.kit.failures import bad_filename
from databar_mcp.tools.kit.params import (
    TaskId,
)
from databar_mcp.tools.kit.registry import tool
from databar_mcp.tools.kit.results import ok_result
from databar_mcp.tools.kit.task_kit import finished_task_record, recalled_rows, submitted_rows
from databar_mcp.tools.kit.task_view import result_rows

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
    ctx: ToolContext,
    format: Literal["csv", "jsonl"] = "csv",
    filename: Annotated[
        str | None,
        Field(
            max_length=100,
            description="Plain file name (the extension is added); default: the task id.",
        ),
    ] = None,
) -> Annotated[CallToolResult, ExportResult]:
    svc = services(ctx)
    fmt: ExportFormat = format

    try:
        stem = export_stem(task_id, filename, fmt)
    except UnsafeName as exc:
        raise bad_filename(exc, "Pass a plain name such as 'leads_enriched', or omit filename.") from None
    recalled = recalled_rows(svc, task_id)
    record = await svc.tasks.read(task_id, with_data=False) if recalled is not None else None
    if recalled is not None and record is not None:  # finished moments ago: its rows, as the answer showed them
        rows, source = recalled, "ledger"
    else:
        task, source, record = await finished_task_record(svc, task_id)
        rows = result_rows(task) or []
    inputs = submitted_rows(record)  # the record read holds the run's inputs: not read again
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
    joined = " Each row is joined to its input." if out.inputs_joined else " Inputs unknown: results only."
    return ok_result(out, out.message + joined)
