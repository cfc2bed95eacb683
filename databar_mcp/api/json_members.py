"""A JSON object read member by member, with where each member's value lies in the text.

A finished 10,000-row task is a 3 MB reply whose `data` the ledger stores compressed: knowing where `data` lies in
the reply, the ledger compresses that text as it came instead of writing 10,000 rows out as JSON again (issue 28).

Its rows repeat the same texts (the provider, its logo's URL, the step's action and cost, the input's company):
json gives each row its own copies, a quarter of the 13 MB the rows take once read. Read here, an equal text
is held once, in every row (issue 28: the server's peak memory on big runs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"
_SHARED_TEXT_MAX = 256  # longer texts are rarely repeated: not worth looking up


def _sharing_decoder() -> json.JSONDecoder:
    """A decoder whose objects hold one copy of each equal text (a member's value, or an item of a list that is
    one), for the span of one reply: the same values json.loads gives."""
    seen: dict[str, str] = {}

    def shared(value: Any) -> Any:
        if value.__class__ is str and len(value) <= _SHARED_TEXT_MAX:
            return seen.setdefault(value, value)
        if value.__class__ is list:
            value[:] = [
                seen.setdefault(v, v) if v.__class__ is str and len(v) <= _SHARED_TEXT_MAX else v for v in value
            ]
        return value

    def object_from(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        made: dict[str, Any] = {}
        for key, value in pairs:
            made[key] = shared(value)
        return made

    return json.JSONDecoder(object_pairs_hook=object_from)


def json_members(text: str) -> tuple[dict[str, Any], dict[str, tuple[int, int]]]:
    """The object `text` holds, as json.loads reads it (a repeated key: its last value), and for each key the
    [start, end) span of its value in `text`. ValueError when `text` is not one JSON object."""
    members: dict[str, Any] = {}
    spans: dict[str, tuple[int, int]] = {}
    values = _sharing_decoder()
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
        members[name], at = values.raw_decode(text, start)
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
