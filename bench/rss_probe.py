"""`python -m bench.rss_probe [ROWS]`: the scale scenario's bulk run alone, with the server's memory by phase.

Runs the 10,000-row waterfall (run_bulk_waterfall, get_task until done, export_task_result) through our server
over stdio against the sandbox, as bench/scenarios/scale.py does, and prints VmHWM/VmRSS after each call plus the
server's RSS over time (a sample whenever it moved 0.5 MB): where the peak is made (issue 28, item 2). A probe for
a developer, not a bench row: about 25 s a run.
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

import anyio

from bench import harness
from bench.harness import PROVIDERS, WATERFALL, people, structured


def memory(pid: int) -> dict[str, float]:
    """VmHWM and VmRSS of `pid` in MB."""
    found: dict[str, float] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            found[key] = int(value.split()[0]) / 1024
    return found


def said(stage: str, pid: int) -> None:
    m = memory(pid)
    print(f"{stage:10s} VmHWM {m['VmHWM']:6.1f} MB  VmRSS {m['VmRSS']:6.1f} MB", flush=True)


async def probe(rows: int, state: Path) -> None:
    with harness.sandbox(task_base_seconds=0.3, row_seconds=0.002) as sb:
        before = set(harness.children_matching("databar-mcp"))
        async with harness.connect(harness.ours(sb.base_url, state, DATABAR_MCP_TOOLSETS="all")) as client:
            pid = next(p for p in harness.children_matching("databar-mcp") if p not in before)
            await client.list_tools()
            said("listed", pid)
            samples: list[tuple[float, float]] = []
            stop = threading.Event()

            def sample() -> None:
                started, last = time.perf_counter(), 0.0
                while not stop.is_set():
                    now = memory(pid)["VmRSS"]
                    if abs(now - last) >= 0.5:
                        samples.append((time.perf_counter() - started, now))
                        last = now
                    time.sleep(0.002)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            args = {"waterfall": WATERFALL, "params": people(rows, "probe"), "enrichments": PROVIDERS}
            out = structured(await client.call_tool("run_bulk_waterfall", {**args, "wait_seconds": 25}))
            said("run", pid)
            while not out["done"]:
                out = structured(await client.call_tool("get_task", {"task_id": out["task_id"], "wait_seconds": 25}))
                said("get_task", pid)
            structured(await client.call_tool("export_task_result", {"task_id": out["task_id"], "format": "csv"}))
            said("export", pid)
            stop.set()
            sampler.join()
            print("RSS over time (s:MB):", " ".join(f"{t:.2f}:{v:.0f}" for t, v in samples))


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    with tempfile.TemporaryDirectory(prefix="rss-probe-") as tmp:
        anyio.run(probe, rows, Path(tmp))


if __name__ == "__main__":
    main()
