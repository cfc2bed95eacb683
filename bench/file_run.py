"""A list as a file end to end (issue 25): an N-row CSV through run_bulk_waterfall(input_file=...) over stdio.

    python -m bench.file_run [--rows 10000] [--row-seconds 0.002] [--part-rows 10000] [--kills 0]

With --kills N (e.g. --rows 100000 --kills 2) the server is killed with SIGKILL N times while the job's parts
are running (each time once its progress shows rows finishing), started again, and the same call repeated:
the sandbox counts the bulk-run POSTs, which must equal the parts (none sent twice), and the output is checked.

Run by hand (not in the tests). Prints the tool calls and the characters of call arguments the model had to
write, the time against the sandbox's processing bound, the server's peak RSS, the output file's row count,
the machine's load, and the answer text the model read last. The issue's targets: <= 3 tool calls, <= 1,000
characters of arguments, >= 0.9x the bound, RSS <= 150 MB, output rows = input rows.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from bench import harness

ARGUMENT_CHARS_MAX = 1_000
CALLS_MAX = 3
BOUND_SHARE_MIN = 0.9
RSS_MAX_MB = 150.0


def write_leads(path: Path, rows: int) -> None:
    """Headers as people write them ("First Name", "Company Domain"): the mapping is the server's to find."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["First Name", "Last Name", "Company Domain", "Notes"])
        for i in range(rows):
            writer.writerow([f"Ann{i}", f"Lee{i}", f"company{i % 97}.com", f"lead {i}"])


def csv_rows(path: Path) -> int:
    with path.open(newline="", encoding="utf-8-sig") as f:
        return sum(1 for _ in csv.DictReader(f))


async def call_until_killed(client: Any, arguments: dict[str, Any]) -> None:
    """Call the file form; SIGKILL the server once its progress shows rows finishing (all parts sent by then)."""
    moving = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        if message and " rows of " in message and progress > 0:
            moving.set()

    async def call() -> None:
        with contextlib.suppress(Exception):
            await client.call_tool("run_bulk_waterfall", arguments, progress_callback=on_progress)
        moving.set()

    async with anyio.create_task_group() as group:
        group.start_soon(call)
        await moving.wait()
        for pid in harness.children_matching("databar-mcp"):
            os.kill(pid, signal.SIGKILL)
        group.cancel_scope.cancel()


async def run(rows: int, row_seconds: float, part_rows: int, kills: int = 0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-file-run-") as scratch:
        folder = Path(scratch)
        leads = folder / "leads.csv"
        write_leads(leads, rows)
        out = folder / "leads-enriched.csv"
        with harness.sandbox(task_base_seconds=0.3, row_seconds=row_seconds) as sb:
            params = harness.ours(sb.base_url, folder / "state", DATABAR_MCP_FILE_PART_ROWS=str(part_rows))
            arguments = {
                "waterfall": harness.WATERFALL,
                "input_file": str(leads),
                "output_file": str(out),
                "wait_seconds": 25,
            }
            calls, argument_chars = 0, 0
            started = time.perf_counter()
            for kill in range(kills):
                harness.log(f"  kill {kill + 1}/{kills}: SIGKILL once rows are finishing")
                calls += 1
                argument_chars += len(json.dumps(arguments))
                with contextlib.suppress(Exception):
                    async with harness.connect(params) as doomed:
                        await call_until_killed(doomed, arguments)
            async with harness.connect(params) as client:
                pids = harness.children_matching("databar-mcp")
                while True:
                    calls += 1
                    argument_chars += len(json.dumps(arguments))
                    result = await client.call_tool("run_bulk_waterfall", arguments)
                    view = harness.structured(result)
                    if view["done"]:
                        break
                elapsed = time.perf_counter() - started
                peak = harness.peak_rss_mb(pids[0]) if pids else None
            with sb.state.lock:
                tasks = list(sb.state.tasks.values())
                bound = max(t.finished_at() for t in tasks) - min(t.created for t in tasks)
                posts = sb.state.counts["POST /v1/waterfalls/{identifier}/bulk-run"]
        written = csv_rows(out)
    return {
        "rows": rows,
        "parts": -(-rows // part_rows),
        "server kills (SIGKILL)": kills,
        "bulk-run POSTs (= parts: none sent twice)": posts,
        "tool calls": calls,
        "call-argument chars": argument_chars,
        "seconds": round(elapsed, 2),
        "sandbox bound s": round(bound, 2),
        "share of bound": round(bound / elapsed, 3) if elapsed else None,
        "server peak RSS MB": None if peak is None else round(peak, 1),
        "output rows": written,
        "load average (1, 5, 15 min)": os.getloadavg(),
        "targets met": {
            "calls": calls <= CALLS_MAX,
            "argument chars": argument_chars <= ARGUMENT_CHARS_MAX,
            "bound": elapsed > 0 and bound / elapsed >= BOUND_SHARE_MIN,
            "rss": peak is not None and peak <= RSS_MAX_MB,
            "output rows": written == rows,
            "no part sent twice": posts == -(-rows // part_rows),
        },
        "answer text": harness.text_of(result),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--row-seconds", type=float, default=0.002)
    parser.add_argument("--part-rows", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=0)
    args = parser.parse_args()
    report = anyio.run(run, args.rows, args.row_seconds, args.part_rows, args.kills)
    answer = report.pop("answer text")
    print(json.dumps(report, indent=2))
    print("\nThe answer the model read:\n" + answer)


if __name__ == "__main__":
    main()
