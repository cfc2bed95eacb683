"""The one place every tool result is fitted into the context budget, error or not.

Tools shape their own results (paging, `next_call`, "n omitted"); this is the guarantee behind them, for
whatever they did not foresee: an upstream error listing 10,000 issues, a validation error quoting a 1 MB
key, a column name of 100 KB. An oversized result is shrunk without changing its types (so it still matches
the tool's output schema), says what was cut, and is kept whole, for a while, as the resource
`databar://results/{result_id}`.
"""

from __future__ import annotations

import json
import secrets
from collections import OrderedDict
from typing import Any

from mcp.types import CallToolResult, TextContent

from databar_mcp import config
from databar_mcp.core.shaping import Cuts, clip_middle, compact_json, result_size, shrink
from databar_mcp.core.users import current_owner

RESULT_URI = "databar://results/{result_id}"
CUT_META_KEY = "io.databar/cut"
# (longest string, longest list) kept, tried in turn until the result fits.
_LEVELS = ((4_000, 200), (1_000, 100), (300, 50), (120, 20), (60, 5), (24, 1), (8, 0))


class OversizedResults:
    """The last few results that were too large to return whole, kept in memory (bounded by count and size).

    Each is its user's, as their tasks are (users.current_owner when it was kept): another user reading its id
    finds nothing, so the id's randomness is not the only thing between one user and another's rows."""

    def __init__(self, *, max_results: int = config.OVERSIZED_KEPT, max_chars: int = config.OVERSIZED_KEPT_CHARS):
        self.max_results = max_results
        self.max_chars = max_chars
        self._kept: OrderedDict[str, tuple[str | None, str]] = OrderedDict()  # id -> (owner, whole JSON)
        self._chars = 0

    def keep(self, whole: str) -> str | None:
        """Store one result's full JSON for the calling user; its id, or None when it alone exceeds the memory
        allowed."""
        if len(whole) > self.max_chars:
            return None
        result_id = secrets.token_hex(8)
        self._kept[result_id] = (current_owner(), whole)
        self._chars += len(whole)
        while len(self._kept) > self.max_results or self._chars > self.max_chars:
            _, (_, dropped) = self._kept.popitem(last=False)
            self._chars -= len(dropped)
        return result_id

    def get(self, result_id: str) -> str | None:
        """The result kept under this id for the calling user (None: unknown, dropped, or another user's)."""
        kept = self._kept.get(result_id)
        if kept is None or kept[0] != current_owner():
            return None
        return kept[1]


def _texts(result: CallToolResult) -> list[str]:
    return [block.text for block in result.content if isinstance(block, TextContent)]


def size_of(structured: object, texts: list[str]) -> int:
    """Characters the agent receives: `result_size` of the blocks joined as the client shows them."""
    return result_size(structured if structured is not None else {}, "\n".join(texts))


def _json_text(text: str) -> object | None:
    """The JSON value a text block holds (an error body rendered as JSON), or None for plain text."""
    if not text.startswith(("{", "[")):
        return None
    try:
        value: object = json.loads(text)
    except ValueError:
        return None
    return value


def fit_result(result: CallToolResult, budget: int, store: OversizedResults) -> CallToolResult:
    """`result` unchanged when it fits `budget` characters; else a shrunk copy that fits and says what was cut."""
    texts = _texts(result)
    structured = result.structured_content
    original = size_of(structured, texts)
    if original <= budget:
        return result
    whole = json.dumps(
        {"is_error": bool(result.is_error), "content": texts, "structured_content": structured},
        ensure_ascii=False,
        default=str,
    )
    result_id = store.keep(whole)
    where = (
        f"the whole result is readable for a while as the resource {RESULT_URI.format(result_id=result_id)}"
        if result_id
        else "the whole result was too large to keep"
    )
    parsed = [_json_text(t) for t in texts]
    for max_str, max_items in _LEVELS:
        cuts = Cuts()
        small = shrink(structured, max_str=max_str, max_items=max_items, cuts=cuts) if structured is not None else None
        json_texts = {
            i: compact_json(shrink(v, max_str=max_str, max_items=max_items, cuts=cuts))
            for i, v in enumerate(parsed)
            if v is not None
        }
        plain = [i for i, v in enumerate(parsed) if v is None]
        note = (
            f"[This result was cut to fit the {budget:,}-character budget ({original:,} characters): "
            f"{cuts.describe() if cuts else 'text shortened'}; {where}.]"
        )
        used = size_of(small, [*json_texts.values(), note]) + len(plain)  # + a separator per plain block
        room = budget - used
        wanted = sum(len(texts[i]) for i in plain)
        if room < 0 or (wanted > room and room < min(wanted, budget // 4)):
            continue  # too little left for the text rendering: shrink the data further
        share = room // max(1, len(plain))
        fitted = {i: json_texts.get(i) or clip_middle(texts[i], share) for i in range(len(texts))}
        content: list[Any] = []
        index = 0
        for block in result.content:
            if isinstance(block, TextContent):
                content.append(TextContent(type="text", text=fitted[index]))
                index += 1
            else:
                content.append(block)
        content.append(TextContent(type="text", text=note))
        meta = {**(result.meta or {}), CUT_META_KEY: {"original_chars": original, "result_id": result_id}}
        return CallToolResult(
            content=content,
            structured_content=small if isinstance(small, dict) else None,
            is_error=result.is_error,
            _meta=meta,
        )
    # Unreachable in practice (the last level keeps only keys and scalars); never return an oversized result.
    note = f"[This result ({original:,} characters) could not be fitted into the budget; {where}.]"
    return CallToolResult(content=[TextContent(type="text", text=note)], is_error=result.is_error)
