"""The ledger's query paths on a year of a team's runs (issue 26), both backends, one run.

    .venv/bin/python -m bench.ledger_scale                      # 1,000,000 runs, SQLite then PostgreSQL
    .venv/bin/python -m bench.ledger_scale --runs 1000000 --sqlite-ledger-cache /tmp/ledger-1M.sqlite3
    .venv/bin/python -m bench.ledger_scale --runs 100000 --json /tmp/ledger_scale.json

The figures go to bench/results/ledger_scale.json unless --json says elsewhere (ledger_scale.md tells their story).

Builds the ledger itself (bench/big_ledger.py: SQL bulk insert of rows copied from real sandbox runs, 50 users),
then times with the project's own Ledger methods: get_task's read, list_recent_tasks' reads as a user and
without OAuth, the tracker's share of a pass; for comparison the statements main ran for the same paths (the
full COUNT, the per-user IN filter, the tracker's newest-50 scan) on the same ledger. Then it prunes the year
down to the 90-day retention and reports the size and the spend figures before and after. The machine's load
average is recorded next to the figures (targets: list p50 <= 20 ms, tracker pass <= 50 ms, get_task <= 5 ms).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio

from bench.big_ledger import USERS, build_postgres, sample_runs, sqlite_ledger
from databar_mcp.api.models import Task
from databar_mcp.core.ledger.backend import LedgerConn
from databar_mcp.core.ledger.postgres import PostgresBackend
from databar_mcp.core.ledger.retention import batches_per_pass, compact, ledger_stats, prune_all, prune_some
from databar_mcp.core.ledger.store import TERMINAL_SQL, Ledger
from databar_mcp.core.users import acting_as

DAY_S = 24 * 3600.0
RESULTS = Path(__file__).resolve().parent / "results" / "ledger_scale.json"
MAIN_SQL = {  # what main ran on the same paths (the statements of store.py before issue 26)
    "count as a user (main)": (
        "SELECT COUNT(*) FROM tasks t WHERE 1 = 1 AND t.submission_id IN (SELECT id FROM submissions WHERE owner = ?)"
    ),
    "count without OAuth (main)": "SELECT COUNT(*) FROM tasks t WHERE 1 = 1",
    "tracker's count (main)": f"SELECT COUNT(*) FROM tasks t WHERE 1 = 1 AND t.status NOT IN {TERMINAL_SQL}",  # noqa: S608
    "tracker pass (main)": (
        f"SELECT t.* FROM tasks t LEFT JOIN submissions s ON s.id = t.submission_id "  # noqa: S608
        f"LEFT JOIN results r ON r.task_id = t.task_id WHERE 1 = 1 AND t.status NOT IN {TERMINAL_SQL} "
        "ORDER BY t.submitted_at DESC LIMIT 50"
    ),
}


async def timed(samples: int, call: Callable[[int], Awaitable[Any]]) -> dict[str, float]:
    took: list[float] = []
    for i in range(samples):
        started = time.perf_counter()
        await call(i)
        took.append((time.perf_counter() - started) * 1000)
    took.sort()
    return {
        "p50_ms": round(statistics.median(took), 2),
        "p99_ms": round(took[min(len(took) - 1, round(0.99 * (len(took) - 1)))], 2),
        "samples": samples,
    }


async def measure(ledger: Ledger, task_ids: list[str], owners: dict[str, str], *, main_samples: int) -> dict[str, Any]:
    rng = random.Random(7)
    now = time.time()
    figures: dict[str, Any] = {}

    async def get_task(i: int) -> None:
        task_id = task_ids[rng.randrange(len(task_ids))]
        with acting_as(owners[task_id]):
            assert await ledger.read(task_id) is not None

    async def listing(owner: str | None) -> None:
        with acting_as(owner):
            await ledger.recent(limit=20, offset=0)
            await ledger.unknown_submissions(limit=20)
            await ledger.runs_without_task(since=now - DAY_S, limit=20)

    figures["get_task"] = await timed(200, get_task)
    figures["list_recent_tasks as a user"] = await timed(50, lambda i: listing(f"user{i % USERS:02d}"))
    figures["list_recent_tasks without OAuth"] = await timed(50, lambda i: listing(None))
    figures["list unfinished as a user"] = await timed(
        50, lambda i: _as(f"user{i % USERS:02d}", ledger.recent(limit=20, offset=0, unfinished_only=True))
    )
    figures["tracker pass (ledger's share)"] = await timed(20, lambda i: ledger.due(limit=50, next_in_s=0))

    async def writes(i: int) -> None:  # what each run_bulk_waterfall call writes: the e2e load's ledger work
        with acting_as(f"user{i % USERS:02d}"):
            name = uuid.uuid4().hex
            claim = await ledger.claim(
                tool="run_bulk_waterfall", endpoint="waterfalls/email_getter/bulk-run", fingerprint=name * 2,
                request={"params": [{"n": i}]}, rows=1, estimated_credits=1.0, window_s=1800, force=False,
            )  # fmt: skip
            assert claim.submission_id is not None
            await ledger.accepted(claim.submission_id, name, "processing")
            await ledger.observe(Task(task_id=name, status="completed", data=[{"n": i}], credits_spent=1.0))

    figures["a run's writes (claim, accepted, observe)"] = await timed(100, writes)
    batches = batches_per_pass(2.0)
    figures["tracker pass's pruning (2 s interval)"] = await timed(
        5, lambda i: prune_some(ledger, keep_s=90 * DAY_S, batches=batches)
    )
    figures["spend today"] = await timed(20, lambda i: ledger.spend_since(now - DAY_S))
    for name, sql in MAIN_SQL.items():
        params = ("user07",) if "?" in sql else ()
        figures[name] = await timed(main_samples, lambda i, sql=sql, params=params: _sql(ledger, sql, params))
    return figures


async def _as(owner: str, call: Awaitable[Any]) -> None:
    with acting_as(owner):
        await call


async def _sql(ledger: Ledger, sql: str, params: tuple[object, ...]) -> None:
    async def run(conn: LedgerConn) -> None:
        await conn.all(sql, params)

    await ledger.call(run)


async def ids_and_owners(ledger: Ledger, limit: int = 5000) -> tuple[list[str], dict[str, str]]:
    async def read(conn: LedgerConn) -> list[Any]:
        # a spread of tasks: every n-th submission id (an indexed look-up each, not a scan)
        row = await conn.one("SELECT MAX(id) FROM submissions")
        top = int(row[0]) if row is not None and row[0] is not None else 0
        picks = list(range(1, top + 1, max(1, top // limit)))[:limit]
        found: list[Any] = []
        for start in range(0, len(picks), 500):
            part = picks[start : start + 500]
            marks = ", ".join("?" * len(part))
            found += await conn.all(f"SELECT task_id, owner FROM submissions WHERE id IN ({marks})", part)  # noqa: S608
        return found

    rows = await ledger.call(read)
    owners = {str(r[0]): str(r[1]) for r in rows}
    return list(owners), owners


async def scenario(ledger: Ledger, *, main_samples: int, prune: bool) -> dict[str, Any]:
    task_ids, owners = await ids_and_owners(ledger)
    out: dict[str, Any] = {"load_before": round(os.getloadavg()[0], 2)}
    out["paths"] = await measure(ledger, task_ids, owners, main_samples=main_samples)
    out["load_after"] = round(os.getloadavg()[0], 2)
    if not prune:
        return out
    before = await ledger_stats(ledger)
    spend_before = await ledger.spend_since(0)
    recent_before = await ledger.spend_since(time.time() - 30 * DAY_S)
    started = time.monotonic()
    pruned = await prune_all(ledger, keep_s=90 * DAY_S)
    prune_s = time.monotonic() - started
    started = time.monotonic()
    await compact(ledger)
    vacuum_s = time.monotonic() - started
    after = await ledger_stats(ledger)
    spend_after = await ledger.spend_since(0)
    out["prune"] = {
        "tasks_pruned": pruned.tasks,
        "results_removed": pruned.results,
        "taskless_runs_pruned": pruned.runs,
        "mcp_task_handles_removed": pruned.handles,
        "prune_s": round(prune_s, 1),
        "vacuum_s": round(vacuum_s, 1),
        "bytes_before": before.total_bytes,
        "bytes_after": after.total_bytes,
        "results_before": before.rows["results"],
        "results_after": after.rows["results"],
        "tasks_kept": after.rows["tasks"],
        "spend_year_before": round(spend_before.spent, 1),
        "spend_year_after": round(spend_after.spent, 1),
        "runs_counted_before": spend_before.runs,
        "runs_counted_after": spend_after.runs,
        "spend_last_30_days": round(recent_before.spent, 1),
    }
    out["after_prune"] = await measure(ledger, task_ids, owners, main_samples=1)
    return out


async def closing(ledger: Ledger, *, main_samples: int, prune: bool) -> dict[str, Any]:
    try:
        return await scenario(ledger, main_samples=main_samples, prune=prune)
    finally:
        await ledger.aclose()
        ledger.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--main-samples", type=int, default=5, help="samples of main's (slow) statements")
    parser.add_argument("--no-prune", action="store_true")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where the figures go (default: bench/results/)")
    parser.add_argument(
        "--sqlite-ledger-cache",
        type=Path,
        default=None,
        help="keep the built SQLite ledger here and copy it on later runs (built first when missing)",
    )
    args = parser.parse_args()
    began = time.monotonic()
    samples = anyio.run(sample_runs)
    report: dict[str, Any] = {
        "runs": args.runs,
        "zlib_ratio_of_real_sandbox_results": round(samples.ratio, 2),
        "sample_json_bytes": samples.json_bytes,
        "sample_zlib_bytes": samples.zlib_bytes,
    }
    print(f"real sandbox results compress {samples.ratio:.1f}x ({samples.json_bytes:,} -> {samples.zlib_bytes:,} B)")
    now = time.time()
    for backend in args.backends.split(","):
        with tempfile.TemporaryDirectory(prefix="ledger-scale-") as tmp:
            if backend == "sqlite":
                path = Path(tmp) / "ledger.sqlite3"
                started = time.monotonic()
                sqlite_ledger(path, args.runs, samples, args.sqlite_ledger_cache)
                built = time.monotonic() - started
                ledger = Ledger(path)
                server = None
            else:
                from tests.postgres_server import start_postgres

                server = start_postgres()
                url = server.new_database()
                built = build_postgres(url, args.runs, samples, now)
                ledger = Ledger(PostgresBackend(url, statement_timeout_s=600))
            print(f"{backend}: built {args.runs:,} runs in {built:.0f} s; load average {os.getloadavg()[0]:.2f}")
            try:
                run = functools.partial(closing, ledger, main_samples=args.main_samples, prune=not args.no_prune)
                figures = anyio.run(run)
            finally:
                if server is not None:
                    server.stop()
            figures["build_s"] = round(built, 1)
            report[backend] = figures
            for name, f in figures["paths"].items():
                print(f"  {name:34} p50 {f['p50_ms']:9.2f} ms   p99 {f['p99_ms']:9.2f} ms")
            if "prune" in figures:
                print(f"  prune: {json.dumps(figures['prune'])}")
                for name, f in figures["after_prune"].items():
                    print(f"  after prune: {name:34} p50 {f['p50_ms']:9.2f} ms")
            print(f"  load average {figures['load_before']} before, {figures['load_after']} after")
    report["seconds_in_all"] = round(time.monotonic() - began, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"{report['seconds_in_all']:.0f} s in all; figures in {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
