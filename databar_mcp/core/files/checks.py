"""Every row checked before anything is sent: what each row would send, and which rows cannot be sent.

A bad row is one whose required input is empty, whose value is longer than any real name, address or URL
(FILE_VALUE_MAX_CHARS: usually a quote that swallowed the lines after it), or that has more cells than the
header (a stray delimiter shifted it). The report counts them all and names the first few by the file's own
row number; no value is quoted (a cell may be long or private). Nothing is billed while a row is bad, unless
the caller chose to skip bad rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time

from databar_mcp import config
from databar_mcp.core.files.columns import ColumnMapping, InputSpec
from databar_mcp.core.files.problems import UnreadableFile, quoted
from databar_mcp.core.files.source import InputFile, InputRow, iter_rows


def param_text(value: object) -> str:
    """A cell as the text Databar's inputs take: trimmed; 12345.0 from a spreadsheet is "12345"."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def params_of(row: InputRow, mapping: ColumnMapping) -> dict[str, str]:
    """The inputs this row sends: each mapped column's text, empty optional inputs left out."""
    params: dict[str, str] = {}
    for name, column in mapping.used.items():
        if text := param_text(row.values.get(column)):
            params[name] = text
    return params


def row_problems(
    row: InputRow,
    mapping: ColumnMapping,
    required: frozenset[str],
    *,
    max_chars: int = config.FILE_VALUE_MAX_CHARS,
) -> list[str]:
    """What keeps this row from being sent (empty when it can be)."""
    problems: list[str] = []
    for name, column in mapping.used.items():
        text = param_text(row.values.get(column))
        if not text and name in required:
            problems.append(f"no value for required {name} (column {quoted(column)})")
        elif len(text) > max_chars:
            problems.append(f"{name} is {len(text):,} characters (at most {max_chars:,}; an unclosed quote?)")
    if row.surplus:
        problems.append(f"{row.surplus} value(s) beyond the header's columns (a stray delimiter or quote?)")
    return problems


@dataclass(frozen=True)
class BadRow:
    row: int  # the file's own number for the row
    problems: tuple[str, ...]

    def text(self) -> str:
        return f"row {self.row}: {'; '.join(self.problems)}"


@dataclass(frozen=True)
class RowCheck:
    file: str
    rows: int  # data rows in the file
    bad: int  # rows that cannot be sent
    shown: tuple[BadRow, ...]  # the first of them, at most FILE_BAD_ROWS_SHOWN

    @property
    def ok(self) -> bool:
        return self.bad == 0

    @property
    def sendable(self) -> int:
        return self.rows - self.bad

    def text(self) -> str:
        """One paragraph for the answer: the counts, then the first bad rows by number."""
        if self.ok:
            return f"All {self.rows:,} rows of {self.file} can be sent."
        listed = f" (the first {len(self.shown)} listed)" if len(self.shown) < self.bad else ""
        return (
            f"{self.bad:,} of {self.rows:,} rows of {self.file} cannot be sent{listed}: "
            + "; ".join(b.text() for b in self.shown)
            + "."
        )


def check_rows(
    source: InputFile,
    mapping: ColumnMapping,
    inputs: Iterable[InputSpec],
    *,
    max_chars: int = config.FILE_VALUE_MAX_CHARS,
    shown: int = config.FILE_BAD_ROWS_SHOWN,
) -> RowCheck:
    """Read every row once (streaming) and report those that cannot be sent; a file with no rows is refused."""
    required = frozenset(i.name for i in inputs if i.required)
    rows = bad = 0
    listed: list[BadRow] = []
    for row in iter_rows(source):
        rows += 1
        if problems := row_problems(row, mapping, required, max_chars=max_chars):
            bad += 1
            if len(listed) < shown:
                listed.append(BadRow(row.number, tuple(problems)))
    if rows == 0:
        raise UnreadableFile(f"{source.name} has a header but no rows below it.", details={"file": source.name})
    return RowCheck(source.name, rows, bad, tuple(listed))
