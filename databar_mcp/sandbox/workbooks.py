"""Workbooks (documents that own tables, one sheet each) and the trash (what was deleted, rows and all).

Ownership lives on the tables (`Table.workbook`, `Table.position`), so a table can never be in two workbooks
and a workbook's sheets are simply its tables in position order. Every live table has a live workbook: a new
table gets its own, and a restored table whose workbook is gone gets a fresh one. Deleting a table or a
workbook moves it to the trash with its rows (and its table enrichments, which stay keyed by table id) until
it is restored or deleted forever.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from databar_mcp.sandbox.errors import Json, not_found
from databar_mcp.sandbox.processors import Processor
from databar_mcp.sandbox.tables import Column, Table


@dataclass
class Workbook:
    identifier: str
    name: str
    created_at: str
    updated_at: str


@dataclass
class TrashedTable:
    table: Table  # its `workbook` is where it was, for the restore
    trashed_at: str


@dataclass
class TrashedWorkbook:
    workbook: Workbook
    trashed_at: str
    tables: list[Table] = field(default_factory=list[Table])


def new_workbook_id() -> str:
    return f"wb_{uuid.uuid4().hex[:16]}"


def sheets(tables: Iterable[Table], workbook_id: str) -> list[Table]:
    """The workbook's live tables, in sheet order."""
    return sorted((t for t in tables if t.workbook == workbook_id), key=lambda t: t.position)


def place(tables: Iterable[Table], table: Table, workbook_id: str) -> None:
    """Make `table` the last sheet of the workbook."""
    others = [t.position for t in tables if t.workbook == workbook_id and t.identifier != table.identifier]
    table.workbook, table.position = workbook_id, max(others, default=-1) + 1


def as_json(workbook: Workbook, tables: Iterable[Table], folder_id: int | None) -> dict[str, Json]:
    """The workbook as Databar's SDK reads it (`Workbook`)."""
    owned = sheets(tables, workbook.identifier)
    listed: list[Json] = [{"identifier": t.identifier, "name": t.name, "position": i} for i, t in enumerate(owned)]
    return {
        "identifier": workbook.identifier,
        "name": workbook.name,
        "created_at": workbook.created_at,
        "updated_at": workbook.updated_at,
        "folder_id": folder_id,
        "tables": listed,
        "tables_count": len(owned),
    }


def trash_json(tables: Mapping[str, TrashedTable], books: Mapping[str, TrashedWorkbook]) -> list[Json]:
    """The trash as Databar's SDK reads it (`TrashItem`), newest first; a table names the workbook it was in."""
    items: list[tuple[str, dict[str, Json]]] = [
        (
            b.trashed_at,
            {
                "kind": "workbook",
                "identifier": b.workbook.identifier,
                "name": b.workbook.name,
                "trashed_at": b.trashed_at,
                "tables_count": len(b.tables),
                "workbook": None,
            },
        )
        for b in books.values()
    ]
    for t in tables.values():
        workbook: Json = {"identifier": t.table.workbook} if t.table.workbook else None
        item: dict[str, Json] = {"kind": "table", "identifier": t.table.identifier, "name": t.table.name}
        item.update(trashed_at=t.trashed_at, tables_count=None, workbook=workbook)
        items.append((t.trashed_at, item))
    return [item for _, item in sorted(items, key=lambda pair: pair[0], reverse=True)]


def missing(wanted: Sequence[str], present: Iterable[str], what: str) -> None:
    """404 naming every id that is not there (nothing is done then)."""
    known = set(present)
    absent = [w for w in wanted if w not in known]
    if absent:
        raise not_found(f"Not found in {what}: {', '.join(absent)}.")


def copy_table(
    source: Table, processors: Mapping[int, Processor], name: str, stamp: str, new_id: Iterable[int]
) -> tuple[Table, dict[int, Processor]]:
    """A copy with new ids for the table, its columns and rows, and its table enrichments (not their runs)."""
    ident = str(uuid.uuid4())
    base = uuid.UUID(ident)
    columns = {c.identifier: str(uuid.uuid5(base, c.identifier)) for c in source.columns}
    ids = iter(new_id)
    renumbered = {old: next(ids) for old in processors}
    copy = Table(ident, name, stamp, stamp, counter=source.counter)
    copy.columns = [
        Column(
            columns[c.identifier],
            c.internal_name,
            c.name,
            c.type_of_value,
            renumbered.get(c.data_processor_id) if c.data_processor_id is not None else None,
        )
        for c in source.columns
    ]
    copy.rows = [{**row, "id": str(uuid.uuid5(base, f"copy:{row['id']}"))} for row in source.rows]
    copied: dict[int, Processor] = {}
    for old, processor in processors.items():
        mapping = {
            param: {**entry, "value": columns.get(str(entry.get("value")), entry.get("value"))}
            if entry.get("type") == "mapping"
            else dict(entry)
            for param, entry in processor.mapping.items()
        }
        copied[renumbered[old]] = Processor(
            id=renumbered[old],
            kind=processor.kind,
            name=processor.name,
            target=processor.target,
            mapping=mapping,
            launch_strategy=processor.launch_strategy,
            enrichments=list(processor.enrichments),
            email_verifier=processor.email_verifier,
            status_column=processor.status_column,
            output_columns=dict(processor.output_columns),
        )
    return copy, copied
