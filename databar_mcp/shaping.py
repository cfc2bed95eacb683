"""Fitting results into the agent's context budget, and rendering them as safe, compact text.

Data from enrichment providers is scraped third-party text: structured content keeps it exactly, while
the text rendering escapes control, bidi and invisible characters so nothing in it can pass for
instructions or hide from a reader.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
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


def result_size(structured: dict[str, Any], text: str) -> int:
    """Characters a tool result costs the agent: the structured JSON plus its text rendering.

    Measured with json.dumps defaults (ASCII escapes, spaced separators): the most verbose way a client may
    serialize it, so the budget holds whatever the transport does.
    """
    return len(json.dumps(structured, default=str)) + len(text)
