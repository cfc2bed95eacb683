"""A fixed 2-second poller: what Databar's MCP server and SDK do (sleep 2 s, GET the task, repeat)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import anyio
import httpx2

from bench.harness import KEY, PROVIDERS, WATERFALL

INTERVAL_S = 2.0
TERMINAL = frozenset({"completed", "partially_completed", "failed", "cancelled", "gone"})


@dataclass(frozen=True)
class Polled:
    task_id: str
    held_at: float  # epoch seconds when the finished task's data arrived
    polls: int
    rows: int


async def run_bulk(base_url: str, rows: list[dict[str, Any]], interval_s: float = INTERVAL_S) -> Polled:
    """Submit a bulk waterfall and poll it every `interval_s` until it is finished."""
    async with httpx2.AsyncClient(base_url=base_url.rstrip("/") + "/", headers={"x-apikey": KEY}) as http:
        reply = await http.post(f"waterfalls/{WATERFALL}/bulk-run", json={"params": rows, "enrichments": PROVIDERS})
        reply.raise_for_status()
        task_id = str(reply.json()["task_id"])
        polls = 0
        while True:
            await anyio.sleep(interval_s)
            reply = await http.get(f"tasks/{task_id}")
            polls += 1
            reply.raise_for_status()
            body = reply.json()
            if body["status"] in TERMINAL:
                return Polled(task_id, time.time(), polls, len(body.get("data") or []))
