"""Retention: results past their keeping period leave the ledger in small batches; the ledger's size on demand.

A team's year of runs is about a million results; kept forever they fill the disk and slow every backup. A
finished task keeps its summary (status, counts, credits, dates: spend history and recovery need nothing else)
and its result is removed once it is `keep_s` old, by whichever replica holds the tracker's turn, a batch of
PRUNE_BATCH tasks per transaction so no other call waits behind it for more than a moment, at a steady rate
whatever the tracker's interval. Runs without a task (table runs) shrink to their summary the same way, and
finished MCP task handles are deleted. Exports are files of their own and are never touched; the audit log is
never touched either.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

from databar_mcp import config
from databar_mcp.core.ledger.backend import LedgerConn
from databar_mcp.core.ledger.sqlite import SqliteBackend
from databar_mcp.core.ledger.store import Ledger, Pruned

TABLES = ("submissions", "tasks", "results", "mcp_tasks", "spent_rounds")
PRUNED_TABLES = ("results", "tasks", "submissions", "mcp_tasks")  # what pruning deletes from or shrinks


def batches_per_pass(interval_s: float, *, batch: int = config.PRUNE_BATCH) -> int:
    """The batches a tracker pass prunes: the same rate (config.PRUNE_TASKS_PER_S) whatever the interval, so a
    backlog never takes more than about 1% of the writer from tool calls (1,000 tasks every 2 s took ~15%)."""
    return max(1, math.ceil(config.PRUNE_TASKS_PER_S * interval_s / batch))


async def prune_some(
    ledger: Ledger,
    *,
    keep_s: float,
    batches: int = batches_per_pass(config.TRACKER_INTERVAL_S),
    batch: int = config.PRUNE_BATCH,
    now: float | None = None,
) -> Pruned:
    """Prune up to `batches` batches of what ended more than `keep_s` ago; stops at the first batch that is not
    full (nothing more waits)."""
    cutoff = (time.time() if now is None else now) - keep_s
    total = Pruned()
    for _ in range(batches):
        done = await ledger.prune(finished_before=cutoff, limit=batch)
        total += done
        if not done.fills(batch):
            break
    return total


async def prune_all(ledger: Ledger, *, keep_s: float, now: float | None = None) -> Pruned:
    """Everything past `keep_s`, batch after batch (the CLI's `ledger prune`)."""
    cutoff = (time.time() if now is None else now) - keep_s
    total = Pruned()
    while True:
        done = await ledger.prune(finished_before=cutoff, limit=config.PRUNE_CLI_BATCH)
        total += done
        if not done.fills(config.PRUNE_CLI_BATCH):
            return total


@dataclass
class LedgerStats:
    """What the ledger holds and how big it is (`databar-mcp ledger stats`)."""

    where: str
    rows: dict[str, int] = field(default_factory=dict[str, int])
    table_bytes: dict[str, int] = field(default_factory=dict[str, int])  # PostgreSQL: each table with its indexes
    total_bytes: int = 0  # the file (and its WAL) or the database
    results_compressed: int = 0
    results_plain: int = 0  # written before compression (v6), still readable
    result_bytes: int = 0  # stored size of the results' data
    result_json_bytes: int = 0  # the same data as JSON (compressed rows: their uncompressed length is not kept)
    pruned_tasks: int = 0
    pruned_runs: int = 0  # runs without a task (table runs, refused runs) pruned to their summary
    unfinished_tasks: int = 0
    oldest_result_at: float | None = None


async def ledger_stats(ledger: Ledger) -> LedgerStats:
    """Counts and sizes; scans every table (a maintenance command, never on a tool call's path)."""
    stats = LedgerStats(where=ledger.where)

    async def counts(conn: LedgerConn) -> None:
        for table in TABLES:
            row = await conn.one(f"SELECT COUNT(*) FROM {table}")  # noqa: S608 - a fixed table name
            stats.rows[table] = 0 if row is None else int(row[0])
        row = await conn.one(
            """SELECT COUNT(data_z), COUNT(*) - COUNT(data_z), COALESCE(SUM(LENGTH(data_z)), 0),
                      COALESCE(SUM(LENGTH(data_json)), 0), MIN(saved_at) FROM results"""
        )
        if row is not None:
            stats.results_compressed, stats.results_plain = int(row[0]), int(row[1])
            stats.result_bytes = int(row[2]) + int(row[3])
            stats.result_json_bytes = int(row[3])
            stats.oldest_result_at = None if row[4] is None else float(row[4])
        row = await conn.one("SELECT COUNT(pruned_at), COUNT(next_poll_at) FROM tasks")
        if row is not None:
            stats.pruned_tasks, stats.unfinished_tasks = int(row[0]), int(row[1])
        row = await conn.one("SELECT COUNT(pruned_at) FROM submissions WHERE task_id IS NULL")
        stats.pruned_runs = 0 if row is None else int(row[0])
        await _sizes(conn, stats, backend.path if isinstance(backend, SqliteBackend) else None)

    backend = ledger.backend
    await ledger.call(counts)
    return stats


async def _sizes(conn: LedgerConn, stats: LedgerStats, path: Path | None) -> None:
    """The database's own size figures: the SQLite file and its WAL, or PostgreSQL's relation sizes."""
    if path is not None:
        stats.total_bytes = sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
        return
    for table in TABLES:
        row = await conn.one("SELECT pg_total_relation_size(?::regclass)", (table,))
        stats.table_bytes[table] = 0 if row is None else int(row[0])
    row = await conn.one("SELECT pg_database_size(current_database())")
    stats.total_bytes = 0 if row is None else int(row[0])


async def compact(ledger: Ledger) -> None:
    """Give pruned space back to the disk, which plain VACUUM does not do on PostgreSQL (it only marks the space
    reusable, so a pruned database stayed 3.0 GB where it had been 2.4 GB).

    SQLite: VACUUM rewrites the file (other processes wait for the writer meanwhile). PostgreSQL: VACUUM FULL
    rewrites each table the pruning shrank, holding an exclusive lock on it while it does (every replica's calls
    on that table wait: minutes for a year of results), so it runs only on demand (`ledger prune --vacuum`).
    """

    sqlite = isinstance(ledger.backend, SqliteBackend)

    async def vacuum(conn: LedgerConn) -> None:
        if sqlite:
            await conn.execute("VACUUM")
            await conn.one("PRAGMA wal_checkpoint(TRUNCATE)")  # the rewritten file went through the WAL
            return
        await conn.execute("SET statement_timeout = 0")  # a rewrite of gigabytes outlasts any call's timeout
        try:
            for table in PRUNED_TABLES:
                await conn.execute(f"VACUUM (FULL, ANALYZE) {table}")
        finally:
            await conn.execute("RESET statement_timeout")

    await ledger.call(vacuum)
