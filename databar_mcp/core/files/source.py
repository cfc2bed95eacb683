"""An input file opened for reading: what it is (format, encoding, columns, content hash) and its rows.

`open_input` looks at the file once (streaming: its hash, its encoding, its header); `iter_rows` reads the
rows again on every call, one at a time, so a pass over 100,000 rows holds one row in memory. Each row keeps
the file's own number for it (the line a CSV or JSON Lines record starts on, the sheet's row in .xlsx), which
is what every message about a row names. A file that changes between passes is refused: the rows checked
must be the rows sent.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time
from pathlib import Path

from databar_mcp.core.files.csv_layout import CsvLayout, sniff_csv
from databar_mcp.core.files.csv_reader import csv_records
from databar_mcp.core.files.formats import FileFormat, format_of
from databar_mcp.core.files.jsonl_reader import jsonl_records
from databar_mcp.core.files.paths import open_regular
from databar_mcp.core.files.problems import FileProblem, UnreadableFile
from databar_mcp.core.files.xlsx_reader import first_sheet_name, xlsx_records

JSONL_KEY_SAMPLE = 1_000  # a JSON Lines file's columns: the keys of its first objects, in order of appearance


@dataclass(frozen=True, slots=True)
class InputRow:
    position: int  # 0-based among the data rows: what parts and results are aligned to
    number: int  # the file's own number: the line a CSV/JSONL record starts on, the sheet row in .xlsx
    values: Mapping[str, object]  # by column; CSV cells are text, JSONL keeps JSON types, .xlsx cell types
    surplus: int = 0  # non-empty cells beyond the header's columns (a stray delimiter shifts a row)


@dataclass(frozen=True)
class InputFile:
    path: Path
    format: FileFormat
    header: tuple[str, ...]  # column names as the file writes them (the output repeats them)
    columns: tuple[str, ...]  # the same, each non-empty and unique ("Email (2)"): what a mapping names
    sha256: str  # of the content: parts of a job are fingerprinted with it
    size: int
    modified_ns: int
    csv: CsvLayout | None = None
    sheet: str | None = None  # .xlsx: the worksheet read

    @property
    def name(self) -> str:
        return self.path.name


def cell_text(value: object) -> str:
    """A header cell as text: Excel may hold a number or a date where a name belongs."""
    if value is None:
        return ""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return str(value)


def unique_columns(header: Sequence[str]) -> tuple[str, ...]:
    """Names a mapping can point at: blanks become 'column N', repeats 'Name (2)'."""
    seen: set[str] = set()
    out: list[str] = []
    for i, raw in enumerate(header, 1):
        base = raw.strip() or f"column {i}"
        name, n = base, 2
        while name in seen:
            name, n = f"{base} ({n})", n + 1
        seen.add(name)
        out.append(name)
    return tuple(out)


def _digest(path: Path) -> tuple[str, int, int]:
    with open_regular(path) as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
        st = os.fstat(f.fileno())
    return digest, st.st_size, st.st_mtime_ns


def _tabular(source: InputFile) -> Generator[tuple[int, Sequence[object]]]:
    """Records of a CSV or .xlsx file, the header first."""
    f = open_regular(source.path)
    with f:
        if source.format == "csv":
            assert source.csv is not None
            yield from csv_records(f, source.csv, source.name)
        else:
            assert source.sheet is not None
            yield from xlsx_records(f, source.name, source.sheet)


def _jsonl_keys(path: Path) -> tuple[str, ...]:
    keys: dict[str, None] = {}
    with open_regular(path) as f:
        for _, record in itertools.islice(jsonl_records(f, path.name), JSONL_KEY_SAMPLE):
            keys.update(dict.fromkeys(record))
    return tuple(keys)


def open_input(path: Path, *, sheet: str | None = None) -> InputFile:
    """Inspect a file the path policy allowed: format, encoding and delimiter (CSV), sheet (.xlsx), header,
    content hash. Raises FileProblem (FileRefused, UnreadableFile) with what to do."""
    fmt = format_of(path)
    digest, size, modified = _digest(path)
    base = InputFile(path, fmt, (), (), digest, size, modified)
    if fmt == "jsonl":
        keys = _jsonl_keys(path)
        if not keys:
            raise UnreadableFile(f"{path.name} holds no JSON objects with keys.", details={"file": path.name})
        return _with_header(base, keys)
    if fmt == "csv":
        base = replace(base, csv=sniff_csv(path))
    else:
        with open_regular(path) as f:
            base = replace(base, sheet=first_sheet_name(f, path.name, sheet))
    with contextlib.closing(_tabular(base)) as records:
        first = next(records, None)
    if first is None:
        raise UnreadableFile(f"{path.name} is empty: it needs a header row and rows below it.")
    return _with_header(base, tuple(cell_text(c) for c in first[1]))


def _with_header(source: InputFile, header: tuple[str, ...]) -> InputFile:
    return replace(source, header=header, columns=unique_columns(header))


def _unchanged(source: InputFile) -> None:
    try:
        st = source.path.stat()
    except OSError:
        raise FileProblem(f"{source.name} is gone since it was read.", details={"file": source.name}) from None
    if (st.st_size, st.st_mtime_ns) != (source.size, source.modified_ns):
        raise FileProblem(
            f"{source.name} changed since it was read; call again so the new content is checked before it is sent.",
            details={"file": source.name},
        )


def iter_rows(source: InputFile) -> Iterator[InputRow]:
    """Every data row, in file order, read afresh (one row in memory at a time)."""
    _unchanged(source)
    if source.format == "jsonl":
        with open_regular(source.path) as f:
            for position, (number, record) in enumerate(jsonl_records(f, source.name)):
                yield InputRow(position, number, record)
        return
    width = len(source.columns)
    with contextlib.closing(_tabular(source)) as records:  # closed when the caller stops early, too
        next(records, None)  # the header
        for position, (number, cells) in enumerate(records):
            extra = cells[width:]
            values = dict(zip(source.columns, cells, strict=False))
            surplus = sum(1 for c in extra if c is not None and cell_text(c).strip())
            yield InputRow(position, number, values, surplus)
