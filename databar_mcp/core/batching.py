"""Chunked row writes: a long list goes out in API-sized batches, one after another, and every row is
accounted for: written (with the API's own outcome), uncertain (its batch's reply was lost) or not written.

No MCP here. The caller supplies `send`, which writes one batch and returns outcomes with batch-local
indexes; this module moves them to the caller's indexes and never loses a row: a row the API's answer does
not mention is reported `unreported`, not dropped. A failed batch stops the write (later batches are never
sent), and a batch whose fate is unknown is never re-sent.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Generic, TypeVar

from databar_mcp.api.errors import APIConnectionError, APIStatusError, DatabarError, SubmissionUnknown

T = TypeVar("T")

FAILED = "failed"
UNREPORTED = "unreported"
UNREPORTED_ERROR = "Databar's answer for this row's batch did not mention it; check the table before resending."


@dataclass(frozen=True)
class RowOutcome:
    """One row's fate. `index` is batch-local when `send` returns it, the caller's index in a WriteReport."""

    index: int
    ok: bool
    action: str
    id: str | int | None = None
    error: str | None = None


@dataclass(frozen=True)
class Chunk(Generic[T]):
    number: int  # 0-based position of this batch
    start: int  # the caller's index of its first item
    items: Sequence[T]

    @property
    def stop(self) -> int:
        return self.start + len(self.items)


@dataclass(frozen=True)
class Stop:
    """Why a write ended before its last batch: `error` on that batch, or the deadline (error None: not sent)."""

    batch: int
    start: int
    stop: int
    error: DatabarError | None
    uncertain: bool  # the batch may have been written although no good answer came back


@dataclass
class WriteReport:
    total: int
    batch_size: int
    batches: int
    sent: int = 0
    outcomes: list[RowOutcome] = field(default_factory=lambda: list[RowOutcome]())  # acknowledged rows, by index
    stop: Stop | None = None

    @property
    def complete(self) -> bool:
        return self.stop is None

    @property
    def written(self) -> list[int]:
        """Rows Databar acknowledged as done (created, updated, deleted or skipped as a duplicate)."""
        return [o.index for o in self.outcomes if o.ok]

    @property
    def failed(self) -> list[RowOutcome]:
        """Rows of acknowledged batches that Databar did not write (per-row errors, unreported rows)."""
        return [o for o in self.outcomes if not o.ok]

    @property
    def uncertain(self) -> range:
        stop = self.stop
        return range(stop.start, stop.stop) if stop is not None and stop.uncertain else range(0)

    @property
    def not_written(self) -> range:
        """Rows certainly not written because their batch failed cleanly or was never sent."""
        stop = self.stop
        if stop is None:
            return range(0)
        return range(stop.stop if stop.uncertain else stop.start, self.total)

    def counts(self) -> dict[str, int]:
        counted = Counter(
            o.action if o.ok else (UNREPORTED if o.action == UNREPORTED else FAILED) for o in self.outcomes
        )
        return dict(sorted(counted.items()))


def split(items: Sequence[T], size: int) -> list[Chunk[T]]:
    if size < 1:
        raise ValueError("batch size must be at least 1")
    return [Chunk(n, start, items[start : start + size]) for n, start in enumerate(range(0, len(items), size))]


def reply_lost(exc: DatabarError) -> bool:
    """Whether a batch that failed with `exc` may nevertheless have been written.

    False only when the API certainly did not write it: a 4xx answer, or a request that never left.
    A 5xx, a lost reply or an unreadable success answer leave the batch's fate unknown.
    """
    if isinstance(exc, SubmissionUnknown):
        return True
    if isinstance(exc, APIConnectionError):
        return exc.reached_server
    if isinstance(exc, APIStatusError):
        return exc.status_code >= 500
    return True


def place(chunk: Chunk[T], local: Sequence[RowOutcome]) -> list[RowOutcome]:
    """Batch-local outcomes at the caller's indexes, one per item; the first answer for an index wins."""
    by_index: dict[int, RowOutcome] = {}
    for outcome in local:
        if 0 <= outcome.index < len(chunk.items) and outcome.index not in by_index:
            by_index[outcome.index] = replace(outcome, index=chunk.start + outcome.index)
    return [
        by_index.get(i) or RowOutcome(chunk.start + i, ok=False, action=UNREPORTED, error=UNREPORTED_ERROR)
        for i in range(len(chunk.items))
    ]


async def write_in_chunks(
    items: Sequence[T],
    send: Callable[[Chunk[T]], Awaitable[Sequence[RowOutcome]]],
    *,
    batch_size: int,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> WriteReport:
    """Send `items` in batches of `batch_size`, sequentially, stopping at the first failed batch.

    `deadline` (a `clock()` value): after the first batch, no batch starts unless it can be expected to end
    in time (judged by the slowest batch so far); the rest are reported not written.
    """
    chunks = split(items, batch_size)
    report = WriteReport(total=len(items), batch_size=batch_size, batches=len(chunks))
    slowest = 0.0
    for chunk in chunks:
        started = clock()
        if deadline is not None and chunk.number > 0 and started + slowest > deadline:
            report.stop = Stop(chunk.number, chunk.start, chunk.stop, error=None, uncertain=False)
            break
        report.sent += 1
        try:
            local = await send(chunk)
        except DatabarError as exc:
            report.stop = Stop(chunk.number, chunk.start, chunk.stop, error=exc, uncertain=reply_lost(exc))
            break
        slowest = max(slowest, clock() - started)
        report.outcomes.extend(place(chunk, local))
    return report


def index_ranges(indexes: Iterable[int], *, limit: int | None = None) -> list[str]:
    """[0, 1, 2, 5, 7, 8] → ["0-2", "5", "7-8"]; past `limit` ranges, a last entry says how many rows remain."""
    ordered = sorted(set(indexes))
    ranges: list[tuple[int, int]] = []
    for i in ordered:
        if ranges and ranges[-1][1] == i - 1:
            ranges[-1] = (ranges[-1][0], i)
        else:
            ranges.append((i, i))
    shown = ranges if limit is None else ranges[:limit]
    out = [f"{a}-{b}" if b > a else str(a) for a, b in shown]
    rest = sum(b - a + 1 for a, b in ranges[len(shown) :])
    if rest:
        out.append(f"...and {rest} more rows")
    return out
