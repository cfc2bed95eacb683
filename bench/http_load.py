"""Load on the streamable HTTP transport (issue 5): many MCP clients at once against the sandbox, run by hand.

    .venv/bin/python bench/http_load.py                            # 50 clients for 60 s (the issue's figures)
    .venv/bin/python bench/http_load.py --clients 10 --seconds 5   # a quick look
    .venv/bin/python bench/http_load.py --json out.json            # also write the figures as JSON

What it does: starts the sandbox in this process (credits without limit, its default latencies: a task's first
row after 0.3 s) and our server as its own process, exactly as a team would run it: `python -m databar_mcp
--transport http` on a free loopback port with a bearer token (`DATABAR_MCP_HTTP_TOKEN`), its ledger in a
temporary directory. It seeds a few finished tasks, then opens N sessions with the official MCP client over
streamable HTTP (each its own connection pool and session) and, once all are connected, lets each call tools
in a loop for the given time: get_task on a finished task (50%), list_table_rows of the seeded table (30%,
50 rows of a random page), run_bulk_waterfall of one fresh row (20%, waiting up to 20 s for the result).

It prints calls/s, p50/p99 latency per tool and overall, errors (tool results with isError plus exceptions:
must be 0; the exit code is 1 otherwise) and the server's RSS (VmRSS from /proc/<pid>/status) when the load
starts and when it ends, with the peak (VmHWM). The clients share this process and its core with the sandbox,
so on a small machine they, not the server, may set the ceiling on calls/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script: `python bench/http_load.py`
    sys.path.insert(0, str(ROOT))

import httpx2  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402
from mcp.types import CallToolResult, TextContent  # noqa: E402

from databar_mcp.sandbox import SandboxConfig, SandboxServer  # noqa: E402
from databar_mcp.sandbox.tables import SEED_TABLE_ID  # noqa: E402

KEY = "bench-http-key"
MIX = (("get_task", 0.5), ("list_table_rows", 0.3), ("run_bulk_waterfall", 0.2))
SEED_TASKS = 8
CALL_TIMEOUT_S = 120.0


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: list[str] = field(default_factory=list)

    def error(self, tool: str, what: str) -> None:
        self.errors[tool] += 1
        if len(self.samples) < 5:
            self.samples.append(f"{tool}: {what[:300]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int, field_name: str = "VmRSS") -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time the process has used (utime and stime from /proc/<pid>/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def text_of(result: CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, TextContent))


@asynccontextmanager
async def session(url: str, token: str) -> AsyncIterator[Client]:
    timeout = httpx2.Timeout(30.0, read=CALL_TIMEOUT_S)
    async with (
        httpx2.AsyncClient(headers={"authorization": f"Bearer {token}"}, timeout=timeout) as http,
        Client(streamable_http_client(url, http_client=http), read_timeout_seconds=CALL_TIMEOUT_S) as client,
    ):
        yield client


class Rows:
    """Fresh input rows, so the duplicate guard never answers a run from an earlier one."""

    def __init__(self) -> None:
        self.n = 0

    def next(self) -> list[dict[str, str]]:
        self.n += 1
        return [{"first_name": f"Ann{self.n}", "last_name": "Load", "company": f"company{self.n % 97}.com"}]


def arguments(tool: str, rng: random.Random, rows: Rows, task_ids: list[str]) -> dict[str, Any]:
    if tool == "get_task":
        return {"task_id": rng.choice(task_ids), "wait_seconds": 0}
    if tool == "list_table_rows":
        return {"table_uuid": SEED_TABLE_ID, "page": rng.randint(1, 40), "per_page": 50}
    return {"waterfall": "email_getter", "params": rows.next(), "enrichments": [833], "wait_seconds": 20}


async def seed(url: str, token: str, rows: Rows) -> list[str]:
    async with session(url, token) as client:
        ids: list[str] = []
        for _ in range(SEED_TASKS):
            args = {"waterfall": "email_getter", "params": rows.next(), "enrichments": [833], "wait_seconds": 20}
            result = await client.call_tool("run_bulk_waterfall", args)
            content = result.structured_content or {}
            if result.is_error or content.get("status") != "completed":
                raise RuntimeError(f"seeding failed: {text_of(result)[:500]}")
            ids.append(str(content["task_id"]))
        return ids


async def load(
    url: str, token: str, clients: int, seconds: float, task_ids: list[str], rows: Rows
) -> tuple[Stats, float]:
    """(stats, wall seconds from the moment every session was open to the last call's answer)."""
    stats = Stats()
    ready = 0
    all_ready = asyncio.Event()
    go_at: list[float] = []

    async def one(index: int) -> None:
        nonlocal ready
        rng = random.Random(index)
        tools = [name for name, _ in MIX]
        weights = [w for _, w in MIX]
        try:
            async with session(url, token) as client:
                ready += 1
                if ready == clients:
                    go_at.append(time.monotonic())
                    all_ready.set()
                await all_ready.wait()
                end = go_at[0] + seconds
                while time.monotonic() < end:
                    tool = rng.choices(tools, weights)[0]
                    started = time.perf_counter()
                    try:
                        result = await client.call_tool(tool, arguments(tool, rng, rows, task_ids))
                    except Exception as exc:
                        stats.error(tool, f"{type(exc).__name__}: {exc}")
                        continue
                    elapsed = time.perf_counter() - started
                    if result.is_error:
                        stats.error(tool, text_of(result))
                    else:
                        stats.latencies[tool].append(elapsed)
        except Exception as exc:  # a session that could not open or broke
            stats.error("session", f"{type(exc).__name__}: {exc}")
            ready += 1
            if ready == clients and not all_ready.is_set():
                go_at.append(time.monotonic())
                all_ready.set()

    await asyncio.gather(*(one(i) for i in range(clients)))
    return stats, time.monotonic() - go_at[0]


def start_server(
    sandbox: SandboxServer, state_dir: Path, token: str, stderr_path: Path
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABAR_")}
    env.update(
        DATABAR_API_KEY=sandbox.api_key,
        DATABAR_BASE_URL=sandbox.base_url,
        DATABAR_MCP_STATE_DIR=str(state_dir),
        DATABAR_MCP_TOOLSETS="all",
        DATABAR_MCP_HTTP_TOKEN=token,
        DATABAR_MCP_LOG_LEVEL="WARNING",
    )
    with stderr_path.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "databar_mcp", "--transport", "http", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx2.get(base + "/healthz", timeout=0.5).status_code == 200:
                return proc, base + "/mcp"
        except httpx2.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("server did not start:\n" + stderr_path.read_text(errors="replace")[-3000:])
        time.sleep(0.05)


def report(
    args: argparse.Namespace, stats: Stats, pid: int, rss: dict[str, float | None], wall: float
) -> dict[str, Any]:
    every = [x for values in stats.latencies.values() for x in values]
    errors = sum(stats.errors.values())
    calls = len(every) + errors
    figures: dict[str, Any] = {
        "clients": args.clients,
        "seconds": round(wall, 1),
        "calls": calls,
        "calls_per_s": round(calls / wall, 1) if wall else None,
        "errors": errors,
        "p50_ms": round(percentile(every, 0.50) * 1000, 1),
        "p99_ms": round(percentile(every, 0.99) * 1000, 1),
        "per_tool": {
            tool: {
                "calls": len(values),
                "errors": stats.errors.get(tool, 0),
                "p50_ms": round(percentile(values, 0.50) * 1000, 1),
                "p99_ms": round(percentile(values, 0.99) * 1000, 1),
            }
            for tool, values in sorted(stats.latencies.items())
        },
        "server_rss_mb": {k: (round(v, 1) if v is not None else None) for k, v in rss.items()},
        "error_samples": stats.samples,
    }
    print(f"HTTP load: {args.clients} MCP clients over streamable HTTP for {wall:.1f} s against the sandbox")
    print(f"  server pid {pid} (python -m databar_mcp --transport http, bearer token)")
    print(f"  calls      {calls}  ({figures['calls_per_s']} calls/s)")
    print(f"  errors     {errors}")
    print(f"  latency    p50 {figures['p50_ms']} ms   p99 {figures['p99_ms']} ms")
    for tool, row in figures["per_tool"].items():
        print(f"    {tool:<20} {row['calls']:>7} calls   p50 {row['p50_ms']:>7} ms   p99 {row['p99_ms']:>7} ms")
    shown = {k: ("?" if v is None else f"{v:.1f} MB") for k, v in figures["server_rss_mb"].items()}
    print(f"  server RSS start {shown['start']}   end {shown['end']}   (peak {shown['peak']})")
    for sample in stats.samples:
        print(f"  error: {sample}")
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--clients", type=int, default=50, help="concurrent MCP sessions (default 50)")
    parser.add_argument("--seconds", type=float, default=60.0, help="duration of the load (default 60)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)

    token = secrets.token_urlsafe(32)
    with (
        tempfile.TemporaryDirectory(prefix="databar-http-load-") as tmp,
        SandboxServer(SandboxConfig(api_key=KEY, balance=1e12)) as sandbox,
    ):
        proc, url = start_server(sandbox, Path(tmp) / "state", token, Path(tmp) / "server.stderr")
        try:
            rows = Rows()
            task_ids = asyncio.run(seed(url, token, rows))
            rss: dict[str, float | None] = {"start": rss_mb(proc.pid)}
            cpu_before, client_before = cpu_seconds(proc.pid), time.process_time()
            stats, wall = asyncio.run(load(url, token, args.clients, args.seconds, task_ids, rows))
            cpu_after, client_after = cpu_seconds(proc.pid), time.process_time()
            rss["end"] = rss_mb(proc.pid)
            rss["peak"] = rss_mb(proc.pid, "VmHWM")
            figures = report(args, stats, proc.pid, rss, wall)
            server_cpu = None if cpu_before is None or cpu_after is None else (cpu_after - cpu_before) / wall
            figures["server_cpu_share"] = None if server_cpu is None else round(server_cpu, 2)
            figures["bench_process_cpu_share"] = round((client_after - client_before) / wall, 2)
            print(
                f"  CPU: server {figures['server_cpu_share']} of a core, "
                f"clients + sandbox (this process) {figures['bench_process_cpu_share']} of a core"
            )
            figures["sandbox_requests"] = dict(sandbox.state.counts)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 1 if figures["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
