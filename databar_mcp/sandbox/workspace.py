"""The workspace around the tables: what is attached to each table, folders, workbooks, exports and the trash."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, cast

from databar_mcp.sandbox.errors import Json, not_found
from databar_mcp.sandbox.processors import Processor, RowJob, Run, settle
from databar_mcp.sandbox.providers import RowOutcome
from databar_mcp.sandbox.tables import Column, Table
from databar_mcp.sandbox.workbooks import TrashedTable, TrashedWorkbook, Workbook


@dataclass
class Export:
    file_id: int
    format: str
    ready_at: float
    content: str


@dataclass
class Folder:
    id: int
    name: str
    created_at: str
    updated_at: str
    tables: set[str] = field(default_factory=set[str])

    def as_json(self) -> dict[str, Json]:
        return {
            "id": self.id,
            "name": self.name,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "table_count": len(self.tables),
        }


@dataclass
class Workspace:
    processors: dict[str, dict[int, Processor]] = field(default_factory=dict[str, dict[int, Processor]])
    exports: dict[str, Export] = field(default_factory=dict[str, Export])  # latest export per table
    files: dict[int, Export] = field(default_factory=dict[int, Export])
    folders: dict[int, Folder] = field(default_factory=dict[int, Folder])
    workbooks: dict[str, Workbook] = field(default_factory=dict[str, Workbook])
    trash: dict[str, TrashedTable] = field(default_factory=dict[str, TrashedTable])
    trashed_workbooks: dict[str, TrashedWorkbook] = field(default_factory=dict[str, TrashedWorkbook])
    next_id: int = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def on(self, table_uuid: str) -> dict[int, Processor]:
        return self.processors.setdefault(table_uuid, {})

    def processor(self, table_uuid: str, processor_id: int) -> Processor:
        found = self.on(table_uuid).get(processor_id)
        if found is None:
            raise not_found("Enrichment not found on this table.")
        return found

    def settle(self, tables: dict[str, Table], now: float, charge: Callable[[float], bool]) -> None:
        """Finish every queued row due by `now`, on every table (runs are charged in table order)."""
        for table_uuid, attached in self.processors.items():
            table = tables.get(table_uuid)
            if table is None:
                continue
            for processor in attached.values():
                settle(table, processor, now, charge)

    def folder(self, folder_id: int) -> Folder:
        found = self.folders.get(folder_id)
        if found is None:
            raise not_found("Folder not found.")
        return found

    def workbook(self, workbook_id: str) -> Workbook:
        found = self.workbooks.get(workbook_id)
        if found is None:
            raise not_found("Workbook not found.")
        return found

    def folder_of(self, table_ids: Iterable[str]) -> int | None:
        """The folder holding any of these tables (a workbook's folder is its sheets' folder)."""
        wanted = set(table_ids)
        return next((f.id for f in self.folders.values() if f.tables & wanted), None)

    def forget(self, table_uuid: str) -> None:
        """Drop what hangs off a table deleted forever: its enrichments, its export, its folder place."""
        self.processors.pop(table_uuid, None)
        self.exports.pop(table_uuid, None)
        for folder in self.folders.values():
            folder.tables.discard(table_uuid)


# ---- on disk (persistence.py saves this beside the tables, for `databar-mcp --sandbox`) -------------------


def to_json(workspace: Workspace) -> dict[str, Any]:
    return {
        "processors": {t: [asdict(p) for p in attached.values()] for t, attached in workspace.processors.items()},
        "exports": {t: e.file_id for t, e in workspace.exports.items()},
        "files": [asdict(e) for e in workspace.files.values()],
        "folders": [{**asdict(f), "tables": sorted(f.tables)} for f in workspace.folders.values()],
        "workbooks": [asdict(w) for w in workspace.workbooks.values()],
        "trash": [asdict(t) for t in workspace.trash.values()],
        "trashed_workbooks": [asdict(w) for w in workspace.trashed_workbooks.values()],
        "next_id": workspace.next_id,
    }


def _processor(raw: dict[str, Any]) -> Processor:
    run = raw.pop("run")
    processor = Processor(**raw)
    if run is not None:
        jobs = [
            RowJob(j["row_id"], j["due"], RowOutcome(**j["outcome"]), j["fields"])
            for j in cast(list[dict[str, Any]], run["jobs"])
        ]
        processor.run = Run(jobs, int(run["cursor"]))
    return processor


def _table(raw: dict[str, Any]) -> Table:
    columns = [Column(**c) for c in cast(list[dict[str, Any]], raw.pop("columns"))]
    return Table(**raw, columns=columns)


def _trashed(raw: dict[str, Any]) -> TrashedTable:
    if "table" not in raw:  # written before the trash kept when: a table alone
        table = _table(dict(raw))
        return TrashedTable(table, table.updated_at)
    return TrashedTable(_table(dict(raw["table"])), str(raw["trashed_at"]))


def _trashed_workbook(raw: dict[str, Any]) -> TrashedWorkbook:
    tables = [_table(dict(t)) for t in cast(list[dict[str, Any]], raw["tables"])]
    return TrashedWorkbook(Workbook(**raw["workbook"]), str(raw["trashed_at"]), tables)


def _folder(raw: dict[str, Any]) -> Folder:
    tables = set(cast(list[str], raw.pop("tables")))
    return Folder(**raw, tables=tables)


def from_json(raw: dict[str, Any]) -> Workspace:
    files = {int(f["file_id"]): Export(**f) for f in cast(list[dict[str, Any]], raw["files"])}
    trash = [_trashed(dict(t)) for t in cast(list[dict[str, Any]], raw["trash"])]
    books = [Workbook(**w) for w in cast(list[dict[str, Any]], raw.get("workbooks", []))]
    binned = [_trashed_workbook(dict(w)) for w in cast(list[dict[str, Any]], raw.get("trashed_workbooks", []))]
    return Workspace(
        processors={
            t: {p.id: p for p in (_processor(dict(item)) for item in items)}
            for t, items in cast(dict[str, list[dict[str, Any]]], raw["processors"]).items()
        },
        exports={t: files[int(i)] for t, i in cast(dict[str, int], raw["exports"]).items()},
        files=files,
        folders={f.id: f for f in (_folder(dict(f)) for f in cast(list[dict[str, Any]], raw["folders"]))},
        workbooks={w.identifier: w for w in books},
        trash={t.table.identifier: t for t in trash},
        trashed_workbooks={w.workbook.identifier: w for w in binned},
        next_id=int(raw["next_id"]),
    )
