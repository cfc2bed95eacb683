"""Tables from files (issue 25): the body of `import_rows`, and of `input_file` on insert_rows / upsert_rows.

A 50,000-row list goes file -> table with no row in the conversation: the file is read, its columns mapped to
the table's (common spellings matched, the mapping stated), every row checked before anything is sent, and
the rows written in the API's 50-row batches, each row accounted for as insert_rows accounts for it. The
import is a job in the ledger (core.jobs, one part per batch): a call that reaches its deadline answers with
the exact same call to continue, which sends only the batches not yet written. A batch whose answer was lost
may have been written: it is recorded as uncertain and never sent again by the same call (the answer names
its file rows; with dedupe_keys a new import skips rows already there).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
import anyio.to_thread
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from databar_mcp import config
from databar_mcp.api.deadline import deadline_in
from databar_mcp.api.errors import APIStatusError, DatabarError
from databar_mcp.api.models import InsertOptions, InsertRowsRequest, NewRow, RowByKey, RowDedupe, UpsertRowsRequest
from databar_mcp.core import jobs
from databar_mcp.core.batching import reply_lost
from databar_mcp.core.files import (
    ColumnMapping,
    FileProblem,
    InputFile,
    InputSpec,
    Part,
    RowCheck,
    check_rows,
    input_path,
    iter_rows,
    map_columns,
    open_input,
    params_of,
    row_problems,
    split_parts,
)
from databar_mcp.core.fingerprint import account_id
from databar_mcp.tools.kit.context import Services, ToolContext, services
from databar_mcp.tools.kit.failures import from_api_error
from databar_mcp.tools.kit.file_runs import bad_rows_body, file_failure, is_local
from databar_mcp.tools.kit.guard import guarded
from databar_mcp.tools.kit.results import ErrorBody, ToolFailure, ok_result

Mode = Literal["insert", "upsert"]
UNCERTAIN = "uncertain"  # a batch recorded without an answer: may have been written, never re-sent by the same call
WRITTEN = "written"
ROWS_NAMED = 20


class ImportOut(BaseModel):
    table_uuid: str
    job_id: str
    done: bool
    total_rows: int = Field(description="Data rows in the file.")
    rows_sent: int
    counts: dict[str, int]
    failed_rows: list[int] = Field(description="File row numbers Databar refused (the first few).")
    uncertain_rows: list[int] = Field(description="Data rows (1-based) whose batch got no answer (may be written).")
    next_call: str | None = Field(default=None, description="The exact call that continues the import.")
    message: str


@dataclass
class ImportPlan:
    source: InputFile
    mapping: ColumnMapping
    check: RowCheck
    parts: list[Part]
    job_id: str
    extra_columns: list[str] = field(default_factory=lambda: list[str]())  # file columns added as new ones


def _read(
    requested: str, table_columns: Sequence[str], given: dict[str, str] | None, *, local: bool, import_dir: Path | None
) -> tuple[InputFile, ColumnMapping, RowCheck]:
    source = open_input(input_path(requested, local=local, import_dir=import_dir))
    inputs = [InputSpec(name) for name in table_columns]
    mapping = map_columns(source.columns, inputs, given)
    return source, mapping, check_rows(source, mapping, inputs)


def batch_rows(
    source: InputFile, part: Part, mapping: ColumnMapping, extra: Sequence[str]
) -> tuple[list[int], list[dict[str, str]]]:
    """A batch's file row numbers and cells (table column -> text), bad rows left out."""
    numbers: list[int] = []
    rows: list[dict[str, str]] = []
    for row in iter_rows(source):
        if row.position >= part.stop:
            break
        if row.position < part.start or row_problems(row, mapping, frozenset()):
            continue
        cells = params_of(row, mapping)
        for column in extra:
            value = row.values.get(column)
            if value is not None and str(value).strip():
                cells[column] = str(value).strip()
        numbers.append(row.number)
        rows.append(cells)
    return numbers, rows


async def plan_import(
    ctx: ToolContext,
    table_uuid: str,
    input_file: str,
    columns: dict[str, str] | None,
    *,
    skip_bad_rows: bool,
    allow_new_columns: bool,
    identity: dict[str, Any],
    tool_name: str,
) -> ImportPlan:
    svc = services(ctx)
    known = [c.name for c in await svc.client.table_columns(table_uuid)]
    local = is_local(ctx)
    try:
        source, mapping, check = await anyio.to_thread.run_sync(
            lambda: _read(input_file, known, columns, local=local, import_dir=svc.settings.import_dir)
        )
    except FileProblem as exc:
        raise file_failure(exc) from None
    if not mapping.used and not allow_new_columns:
        raise file_failure(
            FileProblem(
                f"No column of {source.name} matches a column of table {table_uuid} "
                f"({', '.join(known[:20]) or 'it has none'}): pass columns, or allow_new_columns=true."
            )
        )
    if not check.ok and not skip_bad_rows:
        raise ToolFailure(bad_rows_body(check, mapping, tool_name))
    extra = list(mapping.ignored) if allow_new_columns else []
    key = account_id(svc.settings.api_key.get_secret_value() if svc.settings.api_key else None, "")
    target = {"table": table_uuid, **identity, "extra": extra}
    job_id = jobs.job_id_of(
        account=key, file_sha256=source.sha256, mapping=dict(mapping.used), target=target, skip_bad=skip_bad_rows
    )
    parts = list(
        split_parts(
            check.rows,
            file_sha256=source.sha256,
            mapping=dict(mapping.used),
            target=target,
            part_rows=config.ROW_WRITE_BATCH,
        )
    )
    return ImportPlan(source, mapping, check, parts, job_id, extra)


def call_text(tool_name: str, values: dict[str, Any]) -> str:
    shown = {k: v for k, v in values.items() if v not in (None, False)}
    return f"{tool_name}(" + ", ".join(f"{k}={json.dumps(v)}" for k, v in shown.items()) + ")"


async def import_file(
    ctx: ToolContext,
    *,
    tool_name: str,
    table_uuid: str,
    input_file: str,
    columns: dict[str, str] | None,
    skip_bad_rows: bool,
    mode: Mode,
    allow_new_columns: bool = False,
    dedupe_keys: list[str] | None = None,
    key_column: str | None = None,
    shape: type[BaseModel] | None = None,
) -> CallToolResult:
    """The body shared by import_rows, insert_rows(input_file=...) and upsert_rows(input_file=...)."""
    svc = services(ctx)
    started = time.monotonic()
    identity: dict[str, Any] = {"mode": mode, "dedupe": dedupe_keys, "key": key_column, "new": allow_new_columns}
    call = call_text(
        tool_name,
        {"table_uuid": table_uuid, "input_file": input_file, "columns": columns, "skip_bad_rows": skip_bad_rows}
        | {"allow_new_columns": allow_new_columns, "dedupe_keys": dedupe_keys, "key_column": key_column},
    )

    async def work() -> CallToolResult:
        plan = await plan_import(
            ctx,
            table_uuid,
            input_file,
            columns,
            skip_bad_rows=skip_bad_rows,
            allow_new_columns=allow_new_columns,
            identity=identity,
            tool_name=tool_name,
        )
        if mode == "upsert" and (key_column is None or key_column not in plan.mapping.used):
            raise file_failure(
                FileProblem(
                    f"upsert from a file needs key_column: a table column the file feeds "
                    f"({', '.join(plan.mapping.used) or 'none is mapped'}), whose value finds each row."
                )
            )
        job = await jobs.open_job(
            svc.ledger,
            job_id=plan.job_id,
            tool=tool_name,
            input_file=str(plan.source.path),
            file_sha256=plan.source.sha256,
            rows=plan.check.rows,
            parts=len(plan.parts),
            mapping=dict(plan.mapping.used),
            estimated_credits=0.0,
        )
        counts: dict[str, int] = {}
        failed: list[int] = []
        deadline = started + svc.settings.io_deadline_s
        for part in jobs.unsent(job, plan.parts):
            if time.monotonic() >= deadline:
                break
            numbers, rows = await anyio.to_thread.run_sync(
                lambda p=part: batch_rows(plan.source, p, plan.mapping, plan.extra_columns)
            )
            if not rows:
                await jobs.part_sent(svc.ledger, plan.job_id, part, task_id=WRITTEN, rows_sent=0)
                continue
            try:
                answer = await send_batch(svc, table_uuid, mode, rows, allow_new_columns, dedupe_keys, key_column)
            except DatabarError as exc:
                if reply_lost(exc):
                    await jobs.part_sent(svc.ledger, plan.job_id, part, task_id=UNCERTAIN, rows_sent=len(rows))
                raise ToolFailure(batch_failure(exc, numbers, plan, call, uncertain=reply_lost(exc))) from None
            for result in answer:
                index, ok, action, error = result
                counts[action] = counts.get(action, 0) + 1
                if not ok and 0 <= index < len(numbers) and len(failed) < ROWS_NAMED:
                    failed.append(numbers[index])
                del error
            await jobs.part_sent(svc.ledger, plan.job_id, part, task_id=WRITTEN, rows_sent=len(rows))
        job = await jobs.read_job(svc.ledger, plan.job_id)
        assert job is not None
        return await import_answer(svc, plan, job, table_uuid, counts, failed, call, shape)

    with deadline_in(svc.settings.io_deadline_s):
        return await guarded(work())


async def send_batch(
    svc: Services,
    table_uuid: str,
    mode: Mode,
    rows: list[dict[str, str]],
    allow_new_columns: bool,
    dedupe_keys: list[str] | None,
    key_column: str | None,
) -> list[tuple[int, bool, str, str | None]]:
    """One batch; each row's (index in the batch, ok, action, error)."""
    if mode == "insert":
        options = InsertOptions(
            allow_new_columns=allow_new_columns, dedupe=RowDedupe(keys=list(dedupe_keys)) if dedupe_keys else None
        )
        body = InsertRowsRequest(rows=[NewRow(fields=dict(r)) for r in rows], options=options)
        batch = await svc.client.insert_rows(table_uuid, body)
        ok_action = "created"
    else:
        assert key_column is not None
        by_key = [
            RowByKey(key={key_column: r[key_column]}, fields={k: v for k, v in r.items() if k != key_column})
            for r in rows
        ]
        batch = await svc.client.upsert_rows(table_uuid, UpsertRowsRequest(rows=by_key))
        ok_action = "upserted"
    out: list[tuple[int, bool, str, str | None]] = []
    for position, result in enumerate(batch.results):
        index = result.index if result.index is not None else position
        ok = result.ok if result.ok is not None else result.error is None
        out.append((index, ok, (result.action or ok_action) if ok else "failed", None if ok else result.error))
    reported = {i for i, *_ in out}
    out += [(i, False, "unreported", "Databar did not report this row.") for i in range(len(rows)) if i not in reported]
    return out


def batch_failure(exc: DatabarError, numbers: list[int], plan: ImportPlan, call: str, *, uncertain: bool) -> ErrorBody:
    body = from_api_error(exc)
    first, last = (numbers[0], numbers[-1]) if numbers else (0, 0)
    if uncertain:
        body.message += (
            f" The batch of file rows {first}..{last} got no answer: it may or may not have been written, and the "
            "same call will not send it again (check those rows with list_table_rows; earlier batches are written)."
        )
    else:
        body.message += f" File rows {first}..{last} were NOT written; earlier batches are."
        refused = isinstance(exc, APIStatusError) and 400 <= exc.status_code < 500
        body.next_steps.append(
            ("Once the problem above is fixed, c" if refused else "C")
            + f"all exactly {call} to continue: batches already written are not sent again."
        )
    body.details["job_id"] = plan.job_id
    return body


async def import_answer(
    svc: Services,
    plan: ImportPlan,
    job: jobs.Job,
    table_uuid: str,
    counts: dict[str, int],
    failed: list[int],
    call: str,
    shape: type[BaseModel] | None,
) -> CallToolResult:
    done = len(job.sent) == len(plan.parts)
    sent = sum(p.rows_sent for p in job.sent.values())
    uncertain = [p for p in job.sent.values() if p.task_id == UNCERTAIN]
    uncertain_rows = [
        n for p in uncertain for n in range(plan.parts[p.number].start + 1, plan.parts[p.number].stop + 1)
    ]
    uncertain_rows = uncertain_rows[:ROWS_NAMED]
    this_call = ", ".join(f"{n:,} {a}" for a, n in sorted(counts.items())) or "nothing new"
    lines = [
        f"Import {job.job_id} into table {table_uuid}: {'done' if done else 'in progress'} — {sent:,} of "
        f"{plan.check.sendable:,} rows of {plan.source.name} sent in {len(job.sent)} of {len(plan.parts)} "
        f"batch(es). This call: {this_call}."
    ]
    if plan.check.bad and not done:
        lines.append(f"{plan.check.bad:,} bad rows are skipped.")
    elif plan.check.bad:
        lines.append(f"{plan.check.bad:,} bad rows were skipped.")
    if failed:
        lines.append(f"Refused by Databar: file rows {', '.join(map(str, failed))}.")
    if uncertain:
        lines.append(
            f"UNCERTAIN (no answer; may be written, not re-sent): {sum(p.rows_sent for p in uncertain):,} rows among "
            f"data rows {uncertain_rows[0]}..; check them with list_table_rows."
        )
    lines.append(plan.mapping.text())
    if plan.extra_columns:
        lines.append(f"New columns added from the file: {', '.join(plan.extra_columns[:20])}.")
    elif plan.mapping.ignored:
        lines.append(f"File columns not imported (no such table column): {', '.join(plan.mapping.ignored[:20])}.")
    next_call = None
    if not done:
        next_call = call
        lines.append(f"Stopped at the deadline. To continue, call exactly: {call}")
    out = ImportOut(
        table_uuid=table_uuid,
        job_id=job.job_id,
        done=done,
        total_rows=plan.check.rows,
        rows_sent=sent,
        counts=counts,
        failed_rows=failed,
        uncertain_rows=uncertain_rows,
        next_call=next_call,
        message=lines[0],
    )
    if shape is None:
        return ok_result(out, "\n".join(lines))
    written = shape(  # insert_rows/upsert_rows answer in their own shape
        table_uuid=table_uuid,
        operation="insert" if job.tool == "insert_rows" else "upsert",
        complete=done,
        total_rows=plan.check.rows,
        batches_sent=len(job.sent),
        counts=counts,
        failed=[f"file row {n}" for n in failed],
        not_written=[] if done else [f"batches {len(job.sent) + 1}-{len(plan.parts)} (the call below sends them)"],
        rows=[],
        message=lines[0],
        next_steps=[f"Call exactly: {call}"] if next_call else [],
    )
    return ok_result(written, "\n".join(lines))
