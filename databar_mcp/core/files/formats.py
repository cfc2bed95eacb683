"""Which reader and writer a file takes, told by its name: the extension is what the user chose it by."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from databar_mcp.core.files.problems import FileRefused

FileFormat = Literal["csv", "jsonl", "xlsx"]

EXTENSIONS: dict[str, FileFormat] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
}
# Formats people do have, with the way out, so the answer is a next step rather than "unsupported".
REFUSED_EXTENSIONS = {
    ".xls": "an Excel 97-2003 workbook (.xls): save it as .xlsx or CSV in Excel and name that file",
    ".numbers": "a Numbers document: export it as CSV or Excel (.xlsx) and name that file",
    ".ods": "an OpenDocument spreadsheet: save it as .xlsx or CSV and name that file",
    ".json": "a JSON file: write one JSON object per line and name it .jsonl, or save the list as CSV",
}


def format_of(path: Path) -> FileFormat:
    """The format a file's extension names; a file named otherwise is refused with what to do instead."""
    suffix = path.suffix.lower()
    if suffix in EXTENSIONS:
        return EXTENSIONS[suffix]
    if suffix in REFUSED_EXTENSIONS:
        raise FileRefused(f"{path.name} is {REFUSED_EXTENSIONS[suffix]}.")
    raise FileRefused(
        f"{path.name}: files are read as CSV (.csv, .tsv, .txt), JSON Lines (.jsonl) or Excel (.xlsx); "
        "rename or save the file with one of those extensions."
    )
