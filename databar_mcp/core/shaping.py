"""Fitting results into the agent's context budget, and rendering them as safe, compact text.

Data from enrichment providers is scraped third-party text: structured content keeps it exactly, while
the text rendering escapes control, bidi and invisible characters so nothing in it can pass for
instructions or hide from a reader.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

_INVISIBLE = re.compile(
    r"[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u00ad\u061c\u180e"  # C0/C1 controls except newline
    r"\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]"  # zero-width, bidi overrides and isolates, BOM
)


def compact_json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def escape_text(text: str) -> str:
    """Show control, bidi and zero-width characters as visible \\uXXXX escapes."""
    return _INVISIBLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def render_value(value: object) -> str:
    """One value as a single line of JSON, with invisible characters made visible."""
    return escape_text(compact_json(value))


def truncate_strings(value: object, max_chars: int) -> object:
    """A copy with every string longer than `max_chars` cut short (marked with its full length)."""
    if isinstance(value, str):
        if len(value) <= max_chars:
            return value
        return value[:max_chars] + f"…[truncated, {len(value)} chars]"
    if isinstance(value, dict):
        items = cast(dict[Any, Any], value).items()
        return {str(k): truncate_strings(v, max_chars) for k, v in items}
    if isinstance(value, list):
        return [truncate_strings(v, max_chars) for v in cast(list[Any], value)]
    return value


def largest_fitting(count: int, size_with: Callable[[int], int], budget: int) -> int:
    """The largest k in [0, count] with size_with(k) <= budget (size_with grows with k); binary search."""
    lo, hi = 0, count
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if size_with(mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def result_size(structured: object, text: str) -> int:
    """Characters a tool result costs the agent: the structured JSON plus its text rendering.

    Measured with json.dumps defaults (ASCII escapes, spaced separators): the most verbose way a client may
    serialize it, so the budget holds whatever the transport does.
    """
    return len(json.dumps(structured, default=str)) + len(text)


def clip(text: str, max_chars: int) -> str:
    """`text` cut to at most `max_chars` characters, the cut marked with the full length."""
    if len(text) <= max_chars:
        return text
    mark = f"…[cut, {len(text):,} chars]"
    return text[: max(0, max_chars - len(mark))] + mark


def clip_middle(text: str, max_chars: int) -> str:
    """`text` cut to at most `max_chars`, keeping its start and its end (where "Next: ..." lines are)."""
    if len(text) <= max_chars:
        return text
    mark = f"\n…[{len(text):,} chars; cut here]…\n"
    tail = min(400, max(0, max_chars - len(mark)) // 4)
    head = max(0, max_chars - len(mark) - tail)
    if head == 0:
        return clip(text, max_chars)
    return text[:head] + mark + (text[-tail:] if tail else "")


@dataclass
class Cuts:
    """What `shrink` left out, so a result can say what was cut."""

    strings: int = 0  # strings (values or keys) shortened
    items: int = 0  # list items and object entries dropped
    nested: int = 0  # values nested too deep, replaced by a marker

    def __bool__(self) -> bool:
        return bool(self.strings or self.items or self.nested)

    def describe(self) -> str:
        parts: list[str] = []
        if self.strings:
            parts.append(f"{self.strings:,} long string(s) shortened")
        if self.items:
            parts.append(f"{self.items:,} list item(s) or object entries left out")
        if self.nested:
            parts.append(f"{self.nested:,} value(s) nested too deep replaced")
        return ", ".join(parts) or "nothing"


MAX_DEPTH = 64  # nesting kept in a fitted result; deeper objects and lists are emptied
KEPT_WHOLE = frozenset({"next_call", "next_step"})  # the exact call to continue with is never cut
MIN_ENTRIES = 64  # objects keep at least this many entries: a model's fields are never dropped


def shrink(value: object, *, max_str: int, max_items: int, cuts: Cuts, depth: int = 0) -> object:
    """A copy of a JSON value with strings, keys, lists and objects capped; types kept (a string stays a string,
    a list a list), so a shrunk result still matches its output schema. Counts what it cut in `cuts`."""
    if isinstance(value, str):
        if len(value) <= max_str:
            return value
        cuts.strings += 1
        return clip(value, max_str)
    if depth >= MAX_DEPTH and isinstance(value, dict | list):
        cuts.nested += 1
        return {} if isinstance(value, dict) else []
    if isinstance(value, dict):
        entries = list(cast(dict[Any, Any], value).items())
        keep = max(max_items, MIN_ENTRIES)
        if len(entries) > keep:
            cuts.items += len(entries) - keep
            entries = entries[:keep]
        out: dict[str, object] = {}
        for key, inner in entries:
            name = str(key)
            if len(name) > max_str:
                cuts.strings += 1
                name = clip(name, max_str)
                while name in out:  # two long keys cut to the same prefix stay two entries
                    name += "'"
            if name in KEPT_WHOLE and isinstance(inner, str):
                out[name] = inner
                continue
            out[name] = shrink(inner, max_str=max_str, max_items=max_items, cuts=cuts, depth=depth + 1)
        return out
    if isinstance(value, list):
        items = cast(list[Any], value)
        if len(items) > max_items:
            cuts.items += len(items) - max_items
            items = items[:max_items]
        return [shrink(v, max_str=max_str, max_items=max_items, cuts=cuts, depth=depth + 1) for v in items]
    return value
