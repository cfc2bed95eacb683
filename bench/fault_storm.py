"""A fault storm for the billing, loss and deadline promises (issue 13, items 1-7), with its figures.

Each run gets a fault of its own from everything the sandbox can do to a billable POST and to the polls
after it (lost and odd replies after the work, 5xx, 429 bursts, slow replies, a reused task id, fresh tasks
that answer 404), then three identical calls, as an agent re-calls after trouble, alternating between two
servers that share one state dir. The user never acknowledges a re-send, so any second task for a run is a
double billing. Runs are sequential so each task Databar created is pinned to its run.

    python -m bench.fault_storm [--runs 60] [--seed 1]

Prints faults injected, distinct runs, billable POSTs, tasks created, double billings, lost task ids (tasks
Databar created that the ledger neither holds nor records as a submission of unknown outcome), the largest
result and the slowest call against the deadline.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from mcp import Client
from pydantic import SecretStr

from databar_mcp.app.server import build_server
from databar_mcp.config import Settings
from databar_mcp.sandbox import Fault, SandboxConfig, SandboxServer
from databar_mcp.sandbox.config import FaultKind

BULK_RUN = "POST /v1/waterfalls/{identifier}/bulk-run"
TASK_GET = "GET /v1/tasks/{task_id}"
DEADLINE_S = 4.0
SLOW_S = 6.0

# (name, route, kind, status, times, retry_after)
FAULTS: list[tuple[str, str, FaultKind, int, int, float]] = [
    ("submit: reply lost after the work", BULK_RUN, "reset_after", 0, 1, 0),
    ("submit: reset before the work", BULK_RUN, "reset_before", 0, 1, 0),
    ("submit: 500", BULK_RUN, "status", 500, 1, 0),
    ("submit: 502", BULK_RUN, "status", 502, 1, 0),
    ("submit: slow past the deadline", BULK_RUN, "slow", 0, 1, 0),
    ("submit: truncated JSON after the work", BULK_RUN, "truncated_after", 0, 1, 0),
    ("submit: HTML 200 after the work", BULK_RUN, "html_after", 0, 1, 0),
    ("submit: 302 after the work", BULK_RUN, "status_after", 302, 1, 0),
    ("submit: 408 after the work", BULK_RUN, "status_after", 408, 1, 0),
    ("submit: a task id another run has", BULK_RUN, "reused_task_id", 0, 1, 0),
    ("submit: 429 Retry-After 3 x3", BULK_RUN, "rate_limit", 0, 3, 3),
    ("submit: 429 Retry-After 0", BULK_RUN, "rate_limit", 0, 1, 0),
    ("poll: 500 x3", TASK_GET, "status", 500, 3, 0),
    ("poll: reply lost x2", TASK_GET, "reset_after", 0, 2, 0),
    ("poll: slow x2", TASK_GET, "slow", 0, 2, 0),
    ("poll: 429 Retry-After 3 x3", TASK_GET, "rate_limit", 0, 3, 3),
    ("poll: fresh task answers 404 x3", TASK_GET, "status", 404, 0, 0),  # via fresh_task_unseen_reads
    ("none", "", "status", 0, 0, 0),
]


@dataclass
class Figures:
    faults: int = 0
    runs: int = 0
    posts: int = 0
    tasks: int = 0
    double_billed: int = 0
    lost: list[str] = field(default_factory=lambda: list[str]())
    unknown: int = 0
    largest: int = 0
    slowest: float = 0.0
    codes: dict[str, int] = field(default_factory=lambda: dict[str, int]())


def settings(sandbox: SandboxServer, state: Path) -> Settings:
    return Settings(
        base_url=sandbox.base_url,
        api_key=SecretStr(sandbox.api_key),
        state_dir=state,
        tool_deadline_s=DEADLINE_S,
        deadline_margin_s=0.5,
        backoff_base_s=0.05,
        backoff_cap_s=0.2,
        poll_first_s=0.05,
        poll_cap_s=0.5,
        read_timeout_s=5.0,
        connect_timeout_s=1.0,
        tracker_interval_s=0.5,
    )


async def storm(runs: int, seed: int) -> Figures:
    rng = random.Random(seed)
    figures = Figures()
    config = SandboxConfig(api_key="storm", task_base_seconds=0.3, row_seconds=0.01, balance=1e9)
    with tempfile.TemporaryDirectory() as tmp, SandboxServer(config) as sandbox:
        state = Path(tmp) / "state"
        async with (
            Client(build_server(settings(sandbox, state))) as a,
            Client(build_server(settings(sandbox, state))) as b,
        ):
            for i in range(runs):
                name, route, kind, status, times, retry_after = (
                    FAULTS[i % len(FAULTS)] if i < len(FAULTS) else rng.choice(FAULTS)
                )
                rows = [
                    {"first_name": f"P{i}x{j}", "last_name": "Storm", "company": rng.choice(["example.com", "acme.io"])}
                    for j in range(rng.randint(1, 5))
                ]
                args: dict[str, Any] = {"waterfall": "email_getter", "params": rows, "enrichments": [833, 966]}
                before_tasks, before_posts = set(sandbox.state.tasks), sandbox.state.counts[BULK_RUN]
                sandbox.state.config.fresh_task_unseen_reads = 3 if "404" in name else 0
                if name != "none":
                    figures.faults += max(1, times)
                    if "404" not in name:
                        sandbox.state.inject(
                            Fault(
                                route=route,
                                kind=kind,
                                status=status or 503,
                                times=times,
                                delay=SLOW_S,
                                retry_after=retry_after,
                            )
                        )
                for client, wait in ((a, rng.choice([0, 1, 3])), (b, 0), (a, 3)):
                    started = time.monotonic()
                    result = await client.call_tool("run_bulk_waterfall", {**args, "wait_seconds": wait})
                    figures.slowest = max(figures.slowest, time.monotonic() - started)
                    body = result.structured_content or {}
                    size = len(json.dumps(body)) + sum(len(getattr(c, "text", "")) for c in result.content)
                    figures.largest = max(figures.largest, size)
                    code = str(body.get("code") or body.get("status"))
                    figures.codes[code] = figures.codes.get(code, 0) + 1
                if kind == "slow":
                    await anyio.sleep(SLOW_S - 2)  # let the sandbox finish the slow request it is still serving
                created = set(sandbox.state.tasks) - before_tasks
                figures.runs += 1
                figures.posts += sandbox.state.counts[BULK_RUN] - before_posts
                figures.tasks += len(created)
                figures.double_billed += len(created) > 1
                await anyio.sleep(0.6)  # a tracker pass
                figures.lost += [f"{task_id} ({name})" for task_id in lost_ids(state, created)]
        figures.unknown = unknown_submissions(state)
    return figures


def lost_ids(state: Path, created: set[str]) -> list[str]:
    """Tasks Databar created for one run that the ledger neither holds nor records as of unknown outcome."""
    with sqlite3.connect(state / "ledger.sqlite3") as conn:
        held = {str(r[0]) for r in conn.execute("SELECT task_id FROM tasks")}
        last = conn.execute(
            """SELECT s.outcome, t.status FROM submissions s LEFT JOIN tasks t ON t.task_id = s.task_id
               ORDER BY s.id DESC LIMIT 1"""
        ).fetchone()
    missing = sorted(created - held)
    # Recorded as of unknown outcome: the reply was lost or odd, or the id Databar gave was not this run's task.
    recorded_unknown = last is not None and (last[0] in ("unknown", "pending") or last[1] == "unknown_to_databar")
    return [] if recorded_unknown and len(missing) <= 1 else missing


def unknown_submissions(state: Path) -> int:
    with sqlite3.connect(state / "ledger.sqlite3") as conn:
        return int(
            conn.execute("SELECT COUNT(*) FROM submissions WHERE outcome IN ('unknown', 'pending')").fetchone()[0]
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=1)
    ns = parser.parse_args()
    f = anyio.run(storm, ns.runs, ns.seed)
    print(f"faults injected       {f.faults}")
    print(f"distinct runs         {f.runs} (3 identical calls each, 2 servers, 1 state dir)")
    print(f"billable POSTs        {f.posts}")
    print(f"tasks created         {f.tasks}")
    print(f"double billings       {f.double_billed}")
    print(f"lost task ids         {len(f.lost)} {f.lost[:5]}")
    print(f"unknown submissions   {f.unknown} (recorded; never re-sent)")
    print(f"largest result        {f.largest:,} chars")
    print(f"slowest call          {f.slowest:.2f} s against a {DEADLINE_S:g} s deadline")
    print(f"outcomes              {dict(sorted(f.codes.items()))}")
    return 0 if f.double_billed == 0 and not f.lost and f.slowest < DEADLINE_S + 0.5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
