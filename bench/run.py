"""`python -m bench [--quick] [--out DIR]`: run every scenario in one run, print the table, write the results.

The full run writes bench/results/latest.{md,json,png}; the quick run (seconds, small sizes, no npm install)
writes to bench/results/quick.tmp/ (git-ignored) unless --out says otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import anyio

from bench import machine, report
from bench.context import Context
from bench.harness import log
from bench.profile import FULL, QUICK
from bench.reference import databar
from bench.result import Row
from bench.scenarios import cold_start, context_economy, latency, overhead, scale, table_enrich, tool_weight

RESULTS = Path(__file__).resolve().parent / "results"
Scenario = Callable[[Context], Awaitable[list[Row]]]
SCENARIOS: dict[str, Scenario] = {
    "latency": latency.run,
    "cold_start": cold_start.run,
    "overhead": overhead.run,
    "scale": scale.run,
    "table_enrich": table_enrich.run,
    "context": context_economy.run,
    "tool_weight": tool_weight.run,
}


def _args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="seconds-long variant with small sizes")
    parser.add_argument("--out", type=Path, default=None, help="folder for latest.{md,json,png}")
    parser.add_argument("--only", default=None, help=f"comma-separated subset of: {', '.join(SCENARIOS)}")
    parser.add_argument("--no-install", action="store_true", help="never npm-install Databar's server")
    return parser.parse_args(argv)


def _node_version() -> str:
    node = shutil.which("node")
    if node is None:
        return "none"
    done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=False)
    return done.stdout.strip() or "unknown"


def preamble(ctx: Context, seconds: float, loads: tuple[float, float]) -> list[str]:
    ref = f"{databar.NAME} (node {_node_version()})" if ctx.databar.ok else f"unavailable ({ctx.databar.why})"
    if ctx.databar.ok and not ctx.profile.use_databar:
        ref += ", not used in this profile"
    return [
        f"# databar-mcp benchmarks ({ctx.profile.name} run)",
        "",
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {os.cpu_count()} cores · Python {platform.python_version()} "
        f"· {platform.system()} · {seconds:.0f} s in all. Every server runs over stdio against the local sandbox "
        f"on loopback. Databar's MCP server: {ref}. Load average {loads[0]:.2f} at the start, "
        f"{loads[1]:.2f} at the end (each scenario's, before → after, in its note).",
        "",
        "ratio = ours/reference for costs (latency, requests, overhead, tokens: lower is better) and "
        "bound/ours for scale (1.0 = as fast as the sandbox allows). `met` is n/a where the target needs a "
        "reference that was not measured.",
    ]


async def run_all(ctx: Context, names: Sequence[str]) -> tuple[list[Row], bool]:
    rows: list[Row] = []
    ok = True
    for name in names:
        log(f"scenario {name} ... (load average {machine.load():.2f})")
        started, load_before = time.perf_counter(), machine.load()
        try:
            measured = await SCENARIOS[name](ctx)
        except Exception as exc:
            ok = False
            traceback.print_exc()
            measured = [Row(f"{name}: failed", None, None, None, "runs", "", False, f"error: {exc!r}"[:300])]
        load_after = machine.load()
        rows += [with_load(row, load_before, load_after) for row in measured]
        log(f"scenario {name} took {time.perf_counter() - started:.1f} s (load average {load_after:.2f})")
    return rows, ok


def with_load(row: Row, before: float, after: float) -> Row:
    load = f"load {before:.2f} → {after:.2f}"
    return dataclasses.replace(row, note=f"{row.note}; {load}" if row.note else load)


def main(argv: Sequence[str] | None = None) -> int:
    args = _args(argv)
    profile = QUICK if args.quick else FULL
    names = [n.strip() for n in args.only.split(",")] if args.only else list(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}", file=sys.stderr)
        return 2
    out_dir = args.out or (RESULTS / "quick.tmp" if args.quick else RESULTS)
    busy = machine.too_busy()
    if busy is not None and out_dir == RESULTS:  # the published figures come from an idle machine only
        print(f"not writing {RESULTS}/latest.*: {busy}. Wait for an idle machine, or give --out DIR.", file=sys.stderr)
        return 3
    started, load_at_start = time.perf_counter(), machine.load()
    availability = databar.ensure(install=profile.use_databar and not args.no_install)
    with tempfile.TemporaryDirectory(prefix="databar-bench-") as tmp:
        ctx = Context(profile=profile, databar=availability, workdir=Path(tmp))
        rows, ok = anyio.run(run_all, ctx, names)
    lines = preamble(ctx, time.perf_counter() - started, (load_at_start, machine.load()))
    paths = report.write(rows, lines, out_dir)
    print(report.table(rows))
    for note in report.notes(rows):
        print(f"  * {note}")
    print(f"\nwrote {', '.join(str(p) for p in paths.values())}")
    return 0 if ok else 1
