"""get_task's answers on finished tasks, kept a little while: the same page of a stored result is the same answer.

A finished task's stored result never changes, so a repeated get_task (an agent re-reading a page, a client
polling a task that is done) would read and decompress the ledger row, present every row and fit the page again
for the same text. The answer is kept per user, task and arguments, for config.FINISHED_ANSWER_TTL_S (the
retention period may prune the ledger's copy meanwhile: the next call after that says so), and only while the
catalog still holds the same waterfall the answer's untried-providers line was worked out from.
"""

from __future__ import annotations

import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass

from mcp.types import CallToolResult

from databar_mcp import config
from databar_mcp.core.catalog import Catalog
from databar_mcp.core.ledger.store import Ledger, TaskRecord
from databar_mcp.core.users import current_owner


@dataclass(frozen=True)
class AnswerKey:
    """Everything the answer depends on besides the stored task itself."""

    owner: str | None
    task_id: str
    offset: int
    limit: int | None
    detailed: bool
    budget: int


@dataclass(frozen=True)
class _Kept:
    result: CallToolResult
    until: float
    waterfall: str | None  # the waterfall the run used, whose catalog entry the answer read
    seen: object  # that entry as the catalog held it then (None: not held)


def answer_key(task_id: str, *, offset: int, limit: int | None, detailed: bool, budget: int) -> AnswerKey:
    return AnswerKey(current_owner(), task_id, offset, limit, detailed, budget)


class FinishedAnswers:
    """A small LRU of finished answers (one per ledger, so one per server and set of users)."""

    def __init__(self, size: int = config.FINISHED_ANSWERS_MAX, ttl_s: float = config.FINISHED_ANSWER_TTL_S) -> None:
        self._size = size
        self._ttl_s = ttl_s
        self._kept: OrderedDict[AnswerKey, _Kept] = OrderedDict()

    def get(self, key: AnswerKey, catalog: Catalog) -> CallToolResult | None:
        kept = self._kept.get(key)
        if kept is None:
            return None
        fresh = time.monotonic() < kept.until
        if not fresh or (kept.waterfall is not None and catalog.known_waterfall(kept.waterfall) is not kept.seen):
            del self._kept[key]
            return None
        self._kept.move_to_end(key)
        return _copy(kept.result)

    def keep(self, key: AnswerKey, result: CallToolResult, record: TaskRecord | None, catalog: Catalog) -> None:
        """Keep `result`, the answer made from `record`'s stored result (nothing kept for an error)."""
        if result.is_error or record is None:
            return
        waterfall = _waterfall_of(record)
        seen = catalog.known_waterfall(waterfall) if waterfall is not None else None
        self._kept[key] = _Kept(result.model_copy(deep=True), time.monotonic() + self._ttl_s, waterfall, seen)
        self._kept.move_to_end(key)
        while len(self._kept) > self._size:
            self._kept.popitem(last=False)


def _copy(result: CallToolResult) -> CallToolResult:
    """A copy whose text blocks are its own (a line added to the answer's text, as with_line does, stays there)."""
    return result.model_copy(update={"content": [block.model_copy() for block in result.content]})


def _waterfall_of(record: TaskRecord) -> str | None:
    sub = record.submission
    parts = sub.endpoint.strip("/").split("/") if sub is not None else []
    return parts[1] if len(parts) == 3 and parts[0] == "waterfalls" else None


_by_ledger: weakref.WeakKeyDictionary[Ledger, FinishedAnswers] = weakref.WeakKeyDictionary()


def finished_answers(ledger: Ledger) -> FinishedAnswers:
    """The answers kept for this ledger's tasks."""
    answers = _by_ledger.get(ledger)
    if answers is None:
        answers = _by_ledger[ledger] = FinishedAnswers()
    return answers
