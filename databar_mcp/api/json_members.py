"""A JSON object read member by member, with where each member's value lies in the text.

A finished 10,000-row task is a 3 MB reply whose `data` the ledger stores compressed: knowing where `data` lies in
the reply, the ledger compresses that text as it came instead of writing 10,000 rows out as JSON again (issue 28).

Its rows repeat the same texts (the provider, its logo's URL, the step's action and cost, the input's company)
and often the same steps: json gives each row its own copies, most of the 13 MB the rows take once read. Read
here, an equal text, step or list is held once, by every row (issue 28: the server's peak memory on big runs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

_DECODER = json.JSONDecoder()
_WHITESPACE = " \t\n\r"
_SHARED_TEXT_MAX = 256  # longer texts are rarely repeated: not worth looking up
_SCALARS = (str, int, bool, type(None))  # a float is keyed by its repr: 0.0 and -0.0 are equal but not the same


def _sharing_decoder() -> json.JSONDecoder:
    """A decoder whose values hold one copy of each equal text, and of each equal list, or object in a list, made
    only of texts, numbers, booleans, nulls and such shared parts (a waterfall row's steps, its `result_field`),
    for the span of one reply: the same values json.loads gives. Nothing here changes a row it reads: a shared
    part is read by every row that holds it."""
    texts: dict[str, str] = {}
    parts: dict[tuple[Any, ...], Any] = {}  # also keeps every shared part alive, so the ids in the keys stay its
    shared_ids: set[int] = set()

    def key_of(value: Any, into: list[Any]) -> bool:
        """Append to `into` what tells `value` apart from every value not equal to it in JSON; False: `value`
        is not shareable (a long text, or an object or list that is not)."""
        kind = value.__class__
        if kind is float:
            into += (float, repr(value))
        elif kind in _SCALARS:
            if kind is str and len(value) > _SHARED_TEXT_MAX:
                return False
            into += (kind, value)
        elif id(value) in shared_ids:
            into += (kind, id(value))
        else:
            return False
        return True

    def pooled(made: Any, key: tuple[Any, ...] | None) -> Any:
        """The equal part met before (`made` itself the first time); `made` when it is not shareable."""
        if key is None:
            return made
        found = parts.setdefault(key, made)
        shared_ids.add(id(found))
        return found

    def text(value: Any) -> Any:
        return texts.setdefault(value, value) if value.__class__ is str and len(value) <= _SHARED_TEXT_MAX else value

    def object_from(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        return {name: list_from(value) if value.__class__ is list else text(value) for name, value in pairs}

    def list_from(items: list[Any]) -> list[Any]:
        """A member's list with its texts and its objects shared: a row's steps, its `result_field`. (An object
        that is a member's value, such as a row's inputs or result, rarely repeats: it is not looked up.)"""
        items[:] = [item_of(v) for v in items]
        keys: list[Any] = [list]
        return pooled(items, tuple(keys) if all(key_of(v, keys) for v in items) else None)

    def item_of(value: Any) -> Any:
        if value.__class__ is not dict:
            return text(value)
        keys: list[Any] = [dict]
        for name, member in cast(dict[str, Any], value).items():
            keys.append(name)
            if not key_of(member, keys):
                return value
        return pooled(value, tuple(keys))

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
