"""The output file: every input row with its own columns, in the file's order, then the result's columns.

The output takes the input's format (or the one its name asks for): CSV keeps the input's delimiter and
writes UTF-8, with a byte-order mark when the input had one or came from Windows or Excel (Excel then reads
the accents right); .xlsx stays .xlsx; JSON Lines stays JSON Lines, each object the input's keys plus the
result's. Text that a spreadsheet would run as a formula is defused the way task exports are (exporting.cell),
header cells included. Rows stream from the input file and the results iterator in step, into a temporary
file beside the target that is renamed over it only once complete: a crash leaves no half file that looks
finished.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, cast

from databar_mcp.core.files.export_writing import cell, flatten
from databar_mcp.core.files.formats import FileFormat
from databar_mcp.core.files.problems import FileRefused
from databar_mcp.core.files.source import InputFile, InputRow, iter_rows

# Excel's own rule for characters a cell may not hold (openpyxl's ILLEGAL_CHARACTERS_RE), without importing
# openpyxl for CSV and JSON Lines.
ILLEGAL_CHARACTERS = re.compile(r"[\000-\010]|[\013-\014]|[\016-\037]")
XLSX_MAX_ROWS = 1_048_576
XLSX_MAX_CELL_CHARS = 32_767
XLSX_MAX_COLUMNS = 16_384
RESULT_PREFIX = "result."


@dataclass(frozen=True)
class WrittenFile:
    path: Path
    format: FileFormat
    rows: int
    rows_with_data: int
    columns: list[str]  # the header written (JSON Lines: the input's columns, then the result's)
    bytes: int


def result_columns(results: Iterable[object | None]) -> list[str]:
    """The result's columns, flattened ('address.city'), in order of first appearance: one pass."""
    seen: dict[str, None] = {}
    for result in results:
        if result is not None:
            seen.update(dict.fromkeys(flatten(result)))
    return list(seen)


def aligned_results(
    parts: Iterable[tuple[Sequence[int], Sequence[object | None]]], total_rows: int
) -> Iterator[object | None]:
    """One result per data row, in order: each part's results placed at the positions it sent, None for rows
    not sent (skipped as bad) or with no result. `parts` come in file order."""
    cursor = 0
    for positions, results in parts:
        for i, position in enumerate(positions):
            while cursor < position:
                yield None
                cursor += 1
            yield results[i] if i < len(results) else None
            cursor += 1
    while cursor < total_rows:
        yield None
        cursor += 1


def output_names(input_columns: Sequence[str], columns: Sequence[str]) -> list[str]:
    """The result's column names as written: 'result.<name>' where the input already has that column."""
    taken = set(input_columns)
    out: list[str] = []
    for name in columns:
        chosen, n = name, 2
        if chosen in taken:
            chosen = RESULT_PREFIX + name
        while chosen in taken:
            chosen, n = f"{RESULT_PREFIX}{name} ({n})", n + 1
        taken.add(chosen)
        out.append(chosen)
    return out


def _atomic(path: Path, write: Callable[[Path], None]) -> int:
    """Write into a temporary file beside `path`, flush it to disk, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with tmp.open("rb+") as f:
            os.fsync(f.fileno())
        tmp.chmod(0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path.stat().st_size


def _header(source: InputFile) -> Sequence[str]:
    return source.columns if source.format == "jsonl" else source.header


def _joined(source: InputFile, results: Iterable[object | None]) -> Iterator[tuple[InputRow, object | None]]:
    """Input rows and results in step; a count that differs is our bug, and no file is published."""
    return zip(iter_rows(source), results, strict=True)


def _csv_layout(source: InputFile) -> tuple[str, str]:
    """(encoding, delimiter) for CSV output: the input's delimiter; a BOM wherever Excel is likely to open it."""
    if source.csv is None:
        return ("utf-8-sig" if source.format == "xlsx" else "utf-8"), ","
    bom = source.csv.bom or source.csv.encoding not in ("utf-8", "utf-8-sig")
    return ("utf-8-sig" if bom else "utf-8"), source.csv.delimiter


def _write_csv(tmp: Path, source: InputFile, columns: Sequence[str], pairs: Iterable[tuple[InputRow, object]]) -> int:
    encoding, delimiter = _csv_layout(source)
    rows = 0
    with tmp.open("w", encoding=encoding, newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        names = output_names(source.columns, columns)
        writer.writerow([cell(h) for h in (*_header(source), *names)])
        for row, result in pairs:
            flat = flatten(result) if result is not None else {}
            writer.writerow([cell(row.values.get(c)) for c in source.columns] + [cell(flat.get(c)) for c in columns])
            rows += 1
    return rows


def _xlsx_value(value: object) -> object:
    """A value openpyxl can store, defused: no formula, no control character, within Excel's cell limit."""
    value = cell(value)
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.replace(tzinfo=None)  # Excel has no time zones
    if isinstance(value, str):
        return ILLEGAL_CHARACTERS.sub("", value)[:XLSX_MAX_CELL_CHARS]
    return value if isinstance(value, int | float | bool | datetime | date | time) else str(value)


def _write_xlsx(tmp: Path, source: InputFile, columns: Sequence[str], pairs: Iterable[tuple[InputRow, object]]) -> int:
    names = output_names(source.columns, columns)
    if len(source.columns) + len(names) > XLSX_MAX_COLUMNS:
        raise FileRefused(f"The output has more than {XLSX_MAX_COLUMNS:,} columns, Excel's limit: write CSV instead.")
    from openpyxl import Workbook  # imported when a workbook is written: a server start never pays for it

    book = Workbook(write_only=True)
    sheet = book.create_sheet(source.sheet or "Sheet1")
    sheet.append([_xlsx_value(h) for h in (*_header(source), *names)])
    rows = 0
    try:
        for row, result in pairs:
            if rows + 1 >= XLSX_MAX_ROWS:
                raise FileRefused(f"The output has more than {XLSX_MAX_ROWS - 1:,} rows, Excel's limit: write CSV.")
            flat = flatten(result) if result is not None else {}
            sheet.append(
                [_xlsx_value(row.values.get(c)) for c in source.columns] + [_xlsx_value(flat.get(c)) for c in columns]
            )
            rows += 1
    except BaseException:
        with contextlib.suppress(Exception):
            book.save(tmp)  # closes and removes the sheet's own temporary file; the caller removes `tmp`
        raise
    book.save(tmp)
    return rows


def _jsonl_object(source: InputFile, row: InputRow, result: object) -> dict[str, object]:
    obj: dict[str, object] = (
        dict(row.values) if source.format == "jsonl" else {c: row.values.get(c) for c in source.columns}
    )
    if isinstance(result, dict):
        fields = cast(dict[str, Any], result)
        for key, name in zip(fields, output_names(list(obj), list(fields)), strict=True):
            obj[name] = fields[key]
    elif result is not None:
        obj[output_names(list(obj), ["result"])[0]] = result
    return obj


def _write_jsonl(tmp: Path, source: InputFile, pairs: Iterable[tuple[InputRow, object]]) -> int:
    rows = 0
    with tmp.open("w", encoding="utf-8", newline="\n") as f:
        for row, result in pairs:
            f.write(json.dumps(_jsonl_object(source, row, result), ensure_ascii=False, default=str) + "\n")
            rows += 1
    return rows


def write_output(
    source: InputFile,
    path: Path,
    fmt: FileFormat,
    results: Iterable[object | None],
    *,
    columns: Sequence[str],
) -> WrittenFile:
    """Write the input rows joined to `results` (one per data row, in order; None: no result) to `path`.

    `columns` are the result's flattened columns for CSV and .xlsx (result_columns gives them from one pass
    over the results); JSON Lines writes each result's fields as they are.
    """
    found = 0

    def counted() -> Iterator[object | None]:
        nonlocal found
        for result in results:
            found += result is not None
            yield result

    written = 0

    def write(tmp: Path) -> None:
        nonlocal written
        pairs = _joined(source, counted())
        if fmt == "csv":
            written = _write_csv(tmp, source, columns, pairs)
        elif fmt == "xlsx":
            written = _write_xlsx(tmp, source, columns, pairs)
        else:
            written = _write_jsonl(tmp, source, pairs)

    size = _atomic(path, write)
    header = [*_header(source), *output_names(source.columns, columns)]
    return WrittenFile(path, fmt, written, found, header, size)
