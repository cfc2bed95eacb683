"""Enrichments, waterfalls and exporters attached to a table, and their runs over the table's rows.

How the sandbox shows a run (Databar documents no more than `{status, processing_rows}` for it; the SDK's
`Column.data_processor_id` ties a column to what fills it):
- attaching adds a status column named after the enrichment (type_of_value "enrichment", "waterfall" or
  "exporter") and, for enrichments and waterfalls, one column per output field, all with
  `data_processor_id` = the table-enrichment id;
- a run marks each selected row's status cell "processing"; rows then finish one by one
  (`task_base_seconds` + i × `table_row_seconds` on the sandbox clock), writing "completed" (found, the
  output cells filled), "no_data" or "error: <reason>";
- each row is charged when it finishes; a row whose cost the balance no longer covers ends the run: it and
  every row still queued become "error: Insufficient credits." and are not charged.
Outcomes are fixed when the run starts (the deterministic fake providers); nothing runs in the background:
rows are settled whenever the table or the balance is read.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from databar_mcp.sandbox.errors import Json
from databar_mcp.sandbox.providers import RowOutcome
from databar_mcp.sandbox.tables import Column, Table

Kind = Literal["enrichment", "waterfall", "exporter"]
PROCESSING = "processing"
COMPLETED = "completed"
NO_DATA = "no_data"
ERROR_PREFIX = "error: "
OUT_OF_CREDITS = ERROR_PREFIX + "Insufficient credits."


@dataclass
class RowJob:
    row_id: str
    due: float
    outcome: RowOutcome
    fields: Mapping[str, Json] | None  # what the output columns get when the row is found


@dataclass
class Run:
    jobs: list[RowJob]
    cursor: int = 0  # jobs before it have finished

    @property
    def running(self) -> bool:
        return self.cursor < len(self.jobs)


@dataclass
class Processor:
    """One enrichment, waterfall or exporter on one table (its id is the table-enrichment id)."""

    id: int
    kind: Kind
    name: str
    target: int | str  # enrichment id, waterfall identifier or exporter id
    mapping: dict[str, dict[str, Json]]  # param -> {"type": "mapping", "value": column uuid} | {"type": "simple", ...}
    launch_strategy: str = "run_on_click"
    enrichments: list[int] = field(default_factory=list[int])
    email_verifier: int | None = None
    status_column: str = ""  # column name
    output_columns: dict[str, str] = field(default_factory=dict[str, str])  # output field -> column name
    run: Run | None = None

    def summary(self) -> dict[str, Json]:
        return {"id": self.id, "name": self.name}


def free_name(table: Table, wanted: str) -> str:
    """`wanted`, or `wanted (2)`, `wanted (3)`... when a column already has that name."""
    taken = set(table.column_names)
    if wanted not in taken:
        return wanted
    n = 2
    while f"{wanted} ({n})" in taken:
        n += 1
    return f"{wanted} ({n})"


def add_column(table: Table, name: str, type_of_value: str, processor_id: int | None = None) -> Column:
    index = len(table.columns) + 1
    ident = str(uuid.uuid5(uuid.UUID(table.identifier), f"column:{name}:{index}"))
    column = Column(ident, f"column_{index}", name, type_of_value, data_processor_id=processor_id)
    table.columns.append(column)
    for row in table.rows:
        row.setdefault(name, None)
    return column


def attach(table: Table, processor: Processor, outputs: Sequence[tuple[str, str]]) -> None:
    """Give a processor its status column and one column per (output field, type)."""
    status = add_column(table, free_name(table, processor.name), processor.kind, processor.id)
    processor.status_column = status.name
    for name, type_of_value in outputs:
        processor.output_columns[name] = add_column(table, free_name(table, name), type_of_value, processor.id).name


def cell(value: Json) -> Json:
    """Table cells hold scalars: lists and objects are stored as JSON text."""
    if isinstance(value, list | dict):
        return json.dumps(value, separators=(",", ":"))
    return value


def is_empty(value: Json) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def selected_rows(
    table: Table, processor: Processor, strategy: str, row_ids: Sequence[str] | None
) -> list[dict[str, Json]]:
    """The rows a run with this strategy would process (row ids narrow it; unknown ids are ignored)."""
    rows = table.rows
    if row_ids is not None:
        wanted = set(row_ids)
        rows = [r for r in rows if r["id"] in wanted]
    status = processor.status_column
    if strategy == "run_empty":
        return [r for r in rows if is_empty(r.get(status))]
    if strategy == "run_errors":
        return [r for r in rows if str(r.get(status) or "").startswith(ERROR_PREFIX)]
    return [r for r in rows if r.get(status) != PROCESSING]


def start_run(
    processor: Processor,
    rows: Sequence[dict[str, Json]],
    outcomes: Sequence[tuple[RowOutcome, Mapping[str, Json] | None]],
    *,
    start: float,
    base_seconds: float,
    row_seconds: float,
) -> None:
    jobs: list[RowJob] = []
    for index, (row, (outcome, found)) in enumerate(zip(rows, outcomes, strict=True)):
        row[processor.status_column] = PROCESSING
        jobs.append(RowJob(str(row["id"]), start + base_seconds + index * row_seconds, outcome, found))
    processor.run = Run(jobs)


def settle(table: Table, processor: Processor, now: float, charge: Callable[[float], bool]) -> None:
    """Write every row that has finished by `now`; `charge(cost)` takes the credits or says they are short."""
    run = processor.run
    if run is None or not run.running:
        return
    by_id = {str(r["id"]): r for r in table.rows} if run.cursor < len(run.jobs) else {}
    while run.running and run.jobs[run.cursor].due <= now:
        job = run.jobs[run.cursor]
        row = by_id.get(job.row_id)
        run.cursor += 1
        if row is None:  # deleted while queued: nothing to do, nothing to charge
            continue
        if job.outcome.cost > 0 and not charge(job.outcome.cost):
            row[processor.status_column] = OUT_OF_CREDITS
            for rest in run.jobs[run.cursor :]:
                queued = by_id.get(rest.row_id)
                if queued is not None:
                    queued[processor.status_column] = OUT_OF_CREDITS
            run.cursor = len(run.jobs)
            return
        write(row, processor, job)


def write(row: dict[str, Json], processor: Processor, job: RowJob) -> None:
    outcome = job.outcome
    if outcome.failed:
        row[processor.status_column] = ERROR_PREFIX + (outcome.error or "Provider error.")
        return
    found = job.fields
    for name, column in processor.output_columns.items():
        row[column] = cell(found.get(name)) if found else None
    row[processor.status_column] = COMPLETED if found else NO_DATA


def inputs_of(
    row: Mapping[str, Json], mapping: Mapping[str, Mapping[str, Json]], names: Mapping[str, str]
) -> dict[str, Json]:
    """A row's inputs for the mapped params: a column's value (by uuid, via `names`) or the constant."""
    values: dict[str, Json] = {}
    for param, entry in mapping.items():
        if entry.get("type") == "mapping":
            column = names.get(str(entry.get("value")))
            values[param] = row.get(column) if column is not None else None
        else:
            values[param] = entry.get("value")
    return values
