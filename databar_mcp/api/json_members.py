"""A JSON object read member by member, with where each member's value lies in the text.

A finished 10,000-row task is a 3 MB reply whose `data` the ledger stores compressed: knowing where `data` lies in
the reply, the ledger compresses that text as it came instead of writing 10,000 rows out as JSON again (issue 28).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"


def json_members(text: str) -> tuple[dict[str, Any], dict[str, tuple[int, int]]]:
    """The object `text` holds, as json.loads reads it (a repeated key: its last value), and for each key the
    [start, end) span of its value in `text`. ValueError when `text` is not one JSON object."""
    members: dict[str, Any] = {}
    spans: dict[str, tuple[int, int]] = {}
    at = _skip(text, 0)
    if text[at : at + 1] != "{":
        raise ValueError("not a JSON object")
    at = _skip(text, at + 1)
    closed = text[at : at + 1] == "}"
    while not closed:
        if text[at : at + 1] != '"':
            raise ValueError(f"a member name expected at {at}")
        key, at = _DECODER.raw_decode(text, at)  # a JSON string: the member's name
        at = _skip(text, at)
        if text[at : at + 1] != ":":
            raise ValueError(f"':' expected at {at}")
        start = _skip(text, at + 1)
        name = str(key)
        members[name], at = _DECODER.raw_decode(text, start)
        spans[name] = (start, at)
        at = _skip(text, at)
        closed = text[at : at + 1] == "}"
        if not closed:
            if text[at : at + 1] != ",":
                raise ValueError(f"',' or '}}' expected at {at}")
            at = _skip(text, at + 1)
    if _skip(text, at + 1) != len(text):
        raise ValueError("extra data after the JSON object")
    return members, spans


def _skip(text: str, at: int) -> int:
    """Past the JSON whitespace from `at`."""
    while at < len(text) and text[at] in _WHITESPACE:
        at += 1
    return at


@dataclass(frozen=True)
class TaskReply:
    """A task reply read by members: the parsed body, and its `data` as the JSON it came in (None: not kept)."""

    body: dict[str, Any]
    data_json: memoryview | None  # a view of the reply's bytes: no copy
