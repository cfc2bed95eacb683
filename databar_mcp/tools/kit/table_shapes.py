"""Output shapes the table toolsets share (no toolset imports another, so what two of them answer with lives here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import BaseModel

if TYPE_CHECKING:
    from databar_mcp.api.models import Folder


class FolderOut(BaseModel):
    id: int
    name: str
    table_count: int | None = None


def folder_out(folder: Folder) -> FolderOut:
    return FolderOut(id=folder.id, name=folder.name, table_count=folder.table_count)
