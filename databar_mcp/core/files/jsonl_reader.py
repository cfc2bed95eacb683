"""JSON Lines records, streamed: one JSON object per line; a bad line is named by its number."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, BinaryIO, cast

from databar_mcp.core.files.problems import UnreadableFile

BOM = "\ufeff"


def jsonl_records(binary: BinaryIO, name: str) -> Iterator[tuple[int, dict[str, object]]]:
    """(line number, object) for every line that is not blank. Each line is decoded alone, so a bad byte
    or bad JSON is reported on its own line rather than somewhere in a block."""
    for number, raw in enumerate(binary, 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UnreadableFile(
                f"{name}: line {number} is not UTF-8 text (JSON Lines must be); save the file as UTF-8.",
                details={"file": name, "line": number},
            ) from None
        if number == 1:
            line = line.removeprefix(BOM)
        if not line.strip():
            continue
        try:
            value: object = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UnreadableFile(
                f"{name}: line {number} is not valid JSON ({exc.msg} at column {exc.colno}).",
                details={"file": name, "line": number},
            ) from None
        if not isinstance(value, dict):
            raise UnreadableFile(
                f"{name}: line {number} is a JSON {type(value).__name__}, not an object: write one "
                '{"column": "value", ...} object per line.',
                details={"file": name, "line": number},
            )
        yield number, cast(dict[str, Any], value)
