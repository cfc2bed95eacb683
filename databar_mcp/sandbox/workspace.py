"""The workspace around the tables: what is attached to each table, folders, exports and the trash."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from databar_mcp.sandbox.errors import Json, not_found
from databar_mcp.sandbox.processors import Processor, settle
from databar_mcp.sandbox.tables import Table


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
    trash: dict[str, Table] = field(default_factory=dict[str, Table])
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
