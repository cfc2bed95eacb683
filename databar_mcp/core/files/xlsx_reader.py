"""Excel (.xlsx) rows, streamed with openpyxl in read-only mode: one sheet's rows with their sheet numbers.

Read-only mode parses the sheet's XML as it goes, so a 100,000-row workbook is never built in memory; cells
hold the values Excel last computed (formulas are not evaluated, nor returned as formula text).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO

from databar_mcp.core.files.problems import FileRefused, UnreadableFile, quoted

if TYPE_CHECKING:  # openpyxl is imported when a workbook is read: a server start never pays for it
    from openpyxl.workbook.workbook import Workbook
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

SHEETS_SHOWN = 20


def _open_workbook(binary: BinaryIO, name: str) -> Workbook:
    from openpyxl import load_workbook

    try:
        return load_workbook(binary, read_only=True, data_only=True)
    except Exception as exc:  # a third-party parser over the user's bytes: any failure means "not readable"
        raise UnreadableFile(
            f"{name} is not a readable Excel workbook (.xlsx): {type(exc).__name__}. Open it in Excel and save "
            "it again as .xlsx, or as CSV.",
            details={"file": name},
        ) from None


def _sheet(book: Workbook, name: str, sheet: str | None) -> ReadOnlyWorksheet:
    from openpyxl.worksheet._read_only import ReadOnlyWorksheet

    names = book.sheetnames
    if sheet is None:
        chosen = book.worksheets[0] if book.worksheets else None
    else:
        chosen = book[sheet] if sheet in names else None
    if not isinstance(chosen, ReadOnlyWorksheet):
        shown = ", ".join(quoted(n) for n in names[:SHEETS_SHOWN])
        raise FileRefused(
            f"{name} has no worksheet {quoted(sheet)}; its sheets: {shown}." if sheet else f"{name} has no worksheet.",
            details={"file": name, "sheets": names[:SHEETS_SHOWN]},
        )
    return chosen


def first_sheet_name(binary: BinaryIO, name: str, sheet: str | None) -> str:
    """The sheet a read takes: the one named, else the first."""
    book = _open_workbook(binary, name)
    try:
        return _sheet(book, name, sheet).title
    finally:
        book.close()


def xlsx_records(binary: BinaryIO, name: str, sheet: str) -> Iterator[tuple[int, tuple[object, ...]]]:
    """(sheet row number, cell values) for every row with a value in it, the header included."""
    book = _open_workbook(binary, name)
    try:
        ws = _sheet(book, name, sheet)
        ws.reset_dimensions()  # some writers record a wrong used range: read every row there is
        number = 0
        try:
            for number, cells in enumerate(ws.iter_rows(min_row=1, values_only=True), 1):
                if any(c is not None and (not isinstance(c, str) or c.strip()) for c in cells):
                    yield number, tuple(cells)
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, SyntaxError) as exc:  # SyntaxError: bad XML
            raise UnreadableFile(
                f"{name}: sheet {quoted(sheet)} cannot be read after row {number} ({type(exc).__name__}); open it in "
                "Excel and save it again.",
                details={"file": name, "sheet": sheet, "row": number + 1},
            ) from None
    finally:
        book.close()
