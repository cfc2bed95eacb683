"""How a CSV file is written: its encoding and its delimiter, found from the bytes themselves.

Spreadsheets write CSV many ways: Excel on a German or French machine separates with semicolons, "Unicode
Text" is tab-separated UTF-16 with a byte-order mark, "CSV UTF-8" starts with a BOM, and older Windows
exports are cp1252. A reader that assumes one of these turns the others into a single column of mojibake,
so the encoding is decided over the whole file (a cp1252 "é" may first appear on row 80,000), streamed in
blocks, and the delimiter from the first lines.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import io
from dataclasses import dataclass
from pathlib import Path

from databar_mcp.core.files.problems import FileRefused, UnreadableFile

BLOCK = 1 << 16
SAMPLE_CHARS = 1 << 16  # the delimiter is judged on the first 64 KiB of text
DELIMITERS = (",", ";", "\t", "|")
BOMS = (  # longest first: UTF-32 LE's BOM begins with UTF-16 LE's
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class CsvLayout:
    encoding: str  # the Python codec the file is read with
    delimiter: str
    bom: bool  # it began with a byte-order mark (Excel's habit): the output keeps one, so Excel reads it right


def _decodes(path: Path, encoding: str) -> bool:
    """True when the whole file decodes as `encoding`, read in blocks (never whole in memory)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        with path.open("rb") as f:
            while block := f.read(BLOCK):
                decoder.decode(block)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def sniff_encoding(path: Path) -> tuple[str, bool]:
    """(codec, had a BOM): a BOM decides; else UTF-8 when every byte is, else cp1252 (Windows' Western default).

    Latin-1 is the last resort for the five bytes cp1252 leaves undefined: it decodes anything.
    """
    with path.open("rb") as f:
        head = f.read(BLOCK)
    for bom, codec in BOMS:
        if head.startswith(bom):
            return codec, True
    if head.startswith(ZIP_MAGIC):
        raise FileRefused(f"{path.name} is an Excel workbook (or another zip archive), not CSV: name it .xlsx.")
    if b"\x00" in head:
        raise UnreadableFile(
            f"{path.name} holds NUL bytes: it is UTF-16 without a byte-order mark, or not a text file. "
            "Save it from the spreadsheet as 'CSV UTF-8' and name that file."
        )
    for codec in ("utf-8", "cp1252"):
        if _decodes(path, codec):
            return codec, False
    return "latin-1", False


def _score(sample: str, delimiter: str) -> tuple[bool, float, int]:
    """How well `delimiter` splits the sample: several columns, the same count on every line, more columns."""
    rows: list[list[str]] = []
    with contextlib.suppress(csv.Error):  # a quote the sample cut in two: judge the lines read so far
        rows.extend(row for row in csv.reader(io.StringIO(sample), delimiter=delimiter) if row)
    if not rows:
        return (False, 0.0, 0)
    width = len(rows[0])
    same = sum(1 for row in rows if len(row) == width) / len(rows)
    return (width > 1, same, width)


def sniff_delimiter(sample: str, *, prefer_tab: bool = False) -> str:
    """The delimiter that splits the first lines into the most consistent columns (comma when none does)."""
    order = ("\t", ",", ";", "|") if prefer_tab else DELIMITERS
    best = max(order, key=lambda d: _score(sample, d))  # max keeps the first of equals: the preferred one
    return best if _score(sample, best)[0] else ("\t" if prefer_tab else ",")


def sniff_csv(path: Path) -> CsvLayout:
    encoding, bom = sniff_encoding(path)
    with path.open(encoding=encoding, newline="") as f:
        head = f.read(SAMPLE_CHARS)
    if len(head) == SAMPLE_CHARS and (cut := head.rfind("\n")) > 0:
        head = head[: cut + 1]  # judge whole lines only
    return CsvLayout(encoding, sniff_delimiter(head, prefer_tab=path.suffix.lower() in (".tsv", ".tab")), bom)
