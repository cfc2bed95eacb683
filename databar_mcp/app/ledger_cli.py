"""`databar-mcp ledger stats|prune`: what the ledger holds and how big it is, and pruning on demand.

The server prunes results past DATABAR_MCP_RESULT_RETENTION_DAYS by itself, a small batch per tracker pass; this
is for an operator who wants the figures, or the space back now (`--vacuum` returns it to the disk).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from databar_mcp.config import Settings
from databar_mcp.core.ledger.retention import LedgerStats, compact, ledger_stats, prune_all
from databar_mcp.core.ledger.store import Ledger, LedgerError, ledger_for

DAY_S = 24 * 3600.0


def size(n: int) -> str:
    """12345678 -> '11.8 MiB'."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def render_stats(stats: LedgerStats) -> str:
    lines = [f"ledger {stats.where}: {size(stats.total_bytes)}"]
    for table, rows in stats.rows.items():
        extra = f", {size(stats.table_bytes[table])} with indexes" if table in stats.table_bytes else ""
        lines.append(f"  {table}: {rows:,} row(s){extra}")
    oldest = (
        datetime.fromtimestamp(stats.oldest_result_at, UTC).strftime("%Y-%m-%d")
        if stats.oldest_result_at is not None
        else "none"
    )
    lines.append(
        f"  stored results: {stats.results_compressed:,} compressed, {stats.results_plain:,} uncompressed (from before "
        f"v6), {size(stats.result_bytes)} stored; oldest kept {oldest}"
    )
    lines.append(f"  task summaries: {stats.unfinished_tasks:,} unfinished, {stats.pruned_tasks:,} pruned to a summary")
    lines.append(f"  runs without a task (table runs): {stats.pruned_runs:,} pruned to a summary")
    return "\n".join(lines)


async def ledger_command(args: argparse.Namespace, settings: Settings) -> tuple[int, str]:
    ledger = ledger_for(settings)
    try:
        return await _act(args, settings, ledger)
    except LedgerError as exc:
        return 1, f"databar-mcp ledger: {exc}"
    finally:
        await ledger.aclose()


async def _act(args: argparse.Namespace, settings: Settings, ledger: Ledger) -> tuple[int, str]:
    if args.ledger_command == "stats":
        return 0, render_stats(await ledger_stats(ledger))
    days = args.older_than_days if args.older_than_days is not None else settings.result_retention_days
    if days is None:
        return 0, "DATABAR_MCP_RESULT_RETENTION_DAYS is 'forever': nothing pruned (pass --older-than-days N)"
    if days < 1:
        return 2, "databar-mcp ledger prune: --older-than-days must be at least 1 (Databar keeps results 24 hours)"
    started = time.monotonic()
    pruned = await prune_all(ledger, keep_s=days * DAY_S)
    lines = [
        f"pruned {pruned.tasks:,} task(s) finished more than {days:g} day(s) ago to their summary "
        f"({pruned.results:,} stored result(s) removed), {pruned.runs:,} run(s) without a task to their summary "
        f"and {pruned.handles:,} finished MCP task handle(s) in {time.monotonic() - started:.1f} s"
    ]
    if args.vacuum:
        before = (await ledger_stats(ledger)).total_bytes
        started = time.monotonic()
        await compact(ledger)
        after = (await ledger_stats(ledger)).total_bytes
        lines.append(f"vacuumed in {time.monotonic() - started:.1f} s: {size(before)} -> {size(after)}")
    return 0, "\n".join(lines) + "\n" + render_stats(await ledger_stats(ledger))
