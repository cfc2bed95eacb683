"""CSV records, streamed, each with the line it starts on; a malformed file is named by its line.

The parser is strict, so an unclosed quote is found (the file ends inside it, or a quoted value runs past the
field limit) instead of silently swallowing every line after it into one cell.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import BinaryIO, TextIO

from databar_mcp.core.files.csv_layout import CsvLayout
from databar_mcp.core.files.problems import UnreadableFile


def _unreadable(exc: csv.Error, name: str, start: int, at: int) -> UnreadableFile:
    """The parser's complaint, said in the file's terms: which line, and what probably happened there."""
    text = str(exc)
    details: dict[str, object] = {"file": name, "line": start}
    if "unexpected end of data" in text:
        return UnreadableFile(
            f"{name}: unclosed quote: the quoted value that starts on line {start} is never closed (the file "
            "ends inside it). Close or remove that quote, then call again.",
            details=details,
        )
    if "field larger than field limit" in text:
        return UnreadableFile(
            f"{name}: unclosed quote on line {start}: a quoted value there runs on for more than "
            f"{csv.field_size_limit():,} characters. Close or remove that quote, then call again.",
            details=details,
        )
    if at > start + 1:  # the record ran over several lines before it broke: a quote opened on its first
        return UnreadableFile(
            f"{name}: probably an unclosed quote on line {start}: the record starting there runs to line {at}, "
            f"where the parser stopped ({text}). Close or remove that quote, then call again.",
            details={**details, "stopped_at_line": at},
        )
    return UnreadableFile(
        f"{name}: line {at} is not valid CSV ({text}): a stray '\"' in a value? Quote the whole value or "
        "remove the quote, then call again.",
        details={**details, "line": at},
    )


def csv_records(binary: BinaryIO, layout: CsvLayout, name: str) -> Iterator[tuple[int, list[str]]]:
    """(the line a record starts on, its cells) for every record that is not blank, the header included."""
    with io.TextIOWrapper(binary, encoding=layout.encoding, newline="") as text:  # closes `binary` too
        yield from _records(text, layout, name)


def _records(text: TextIO, layout: CsvLayout, name: str) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(text, delimiter=layout.delimiter, strict=True)
    end = 0  # the last physical line read so far
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise _unreadable(exc, name, end + 1, reader.line_num) from None
        except UnicodeDecodeError:
            raise UnreadableFile(
                f"{name}: the bytes after line {end} are not {layout.encoding} text; save the file as "
                "'CSV UTF-8' and call again.",
                details={"file": name, "line": end + 1},
            ) from None
        start, end = end + 1, reader.line_num
        if any(c.strip() for c in cells):
            yield start, cells
