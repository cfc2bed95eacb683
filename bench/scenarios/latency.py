"""Scenario 1: how soon after the sandbox marks a bulk task complete the agent holds the data, and at what
polling cost, for tasks of 0.5 s, 3 s, 20 s and 120 s: ours vs a fixed 2 s poller and vs Databar's MCP server."""

from __future__ import annotations

import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp import Client

from bench import harness
from bench.context import Context
from bench.harness import PROVIDERS, WATERFALL, median, people, structured
from bench.reference import databar, poller
from bench.result import Row, ratio
from databar_mcp.sandbox import SandboxServer

TASK_GET = "GET /v1/tasks/{task_id}"
LATENCY_MS_MAX = 50.0  # issue 28: every task length, median
LATENCY_SHARE_MAX = 0.05
SHORT_TASK_S = 3.0  # below this, a few more requests than the reference are allowed
SHORT_TASK_EXTRA_REQUESTS = 3


def durations(nominal: float, reps: int) -> list[float]:
    """Task durations for the repetitions: spread evenly over one poll period around `nominal`.

    A fixed poller's latency is the phase of the task's end within its poll period; with one round duration
    (20 s is a multiple of 2 s) every repetition would hit the same phase. Real tasks do not end on the poll
    clock, so the phase is sampled evenly. Tasks shorter than a period are never moved: the poller's first
    poll then always comes at 2 s whatever the phase.
    """
    period = poller.INTERVAL_S
    if nominal < period:
        return [nominal] * reps
    return [nominal + ((k + 0.5) / reps - 0.5) * period for k in range(reps)]


@dataclass
class Samples:
    latency_ms: list[float] = field(default_factory=lambda: list[float]())
    requests: list[float] = field(default_factory=lambda: list[float]())
    # Where the latency goes: the API counted the poll that saw the end this long after it (the aim and the
    # event loop's wake-up), and the answer reached the client this long after that (the reply, ledger, MCP).
    counted_ms: list[float] = field(default_factory=lambda: list[float]())

    def add(self, sb: SandboxServer, task_id: str, held_at: float, requests_before: int) -> None:
        with sb.state.lock:
            task = sb.state.tasks[task_id]
            finished, counted = task.finished_at(), task.read_at
            requests = sb.state.counts[TASK_GET] - requests_before
        self.latency_ms.append((held_at - finished) * 1000)
        self.requests.append(requests)
        if counted is not None:
            self.counted_ms.append((counted - finished) * 1000)

    def breakdown(self) -> str:
        """The median latency's two parts, when every repetition dated its last poll."""
        if len(self.counted_ms) != len(self.latency_ms) or not self.counted_ms:
            return ""
        answered = [total - counted for total, counted in zip(self.latency_ms, self.counted_ms, strict=True)]
        return (
            f"ours: last poll counted {median(self.counted_ms):.1f} ms after the end (median; range "
            f"{spread(self.counted_ms)}), answer held {median(answered):.1f} ms after that"
        )


async def ours_once(client: Client, sb: SandboxServer, rows: list[dict[str, Any]], into: Samples) -> None:
    before = sb.state.counts[TASK_GET]
    args = {"waterfall": WATERFALL, "params": rows, "enrichments": PROVIDERS, "wait_seconds": 25}
    out = structured(await client.call_tool("run_bulk_waterfall", args))
    while not out["done"]:
        out = structured(await client.call_tool("get_task", {"task_id": out["task_id"], "wait_seconds": 25}))
    held = time.time()
    if out["rows_total"] != len(rows):
        raise RuntimeError(f"ours returned {out['rows_total']} rows for {len(rows)}")
    into.add(sb, out["task_id"], held, before)


async def poller_once(sb: SandboxServer, rows: list[dict[str, Any]], into: Samples) -> None:
    before = sb.state.counts[TASK_GET]
    polled = await poller.run_bulk(sb.base_url, rows)
    into.add(sb, polled.task_id, polled.held_at, before)


async def databar_once(client: Client, sb: SandboxServer, rows: list[dict[str, Any]], into: Samples) -> None:
    with sb.state.lock:
        known = set(sb.state.tasks)
    before = sb.state.counts[TASK_GET]
    args = {"waterfall_identifier": WATERFALL, "params_list": rows, "provider_ids": PROVIDERS}
    result = await client.call_tool("run_bulk_waterfall", args)
    held = time.time()
    if result.is_error:
        raise RuntimeError(f"Databar's server failed: {harness.text_of(result)[:300]}")
    with sb.state.lock:
        (task_id,) = [t for t in sb.state.tasks if t not in known]
    into.add(sb, task_id, held, before)


def spread(values: list[float]) -> str:
    return f"{min(values):.0f}–{max(values):.0f}" if values else "—"


def latency_row(label: str, ours: Samples, ref: Samples | None, why: str, spanned: str) -> Row:
    mine = median(ours.latency_ms)
    theirs = median(ref.latency_ms) if ref else None
    share = ratio(mine, theirs)
    met = None if mine is None or share is None else mine <= LATENCY_MS_MAX and share <= LATENCY_SHARE_MAX
    target = f"≤ {LATENCY_MS_MAX:g} ms and ≤ {LATENCY_SHARE_MAX:g}× ref"
    note = f"tasks of {spanned}; range ours {spread(ours.latency_ms)} ms"
    if ref is not None:
        note += f", ref {spread(ref.latency_ms)} ms"
    return Row(
        label, mine, theirs, share, target, "ms (median)", met, "; ".join(filter(None, [note, ours.breakdown(), why]))
    )


def requests_row(label: str, duration: float, ours: Samples, ref: Samples | None, why: str) -> Row:
    mine = median(ours.requests)
    theirs = median(ref.requests) if ref else None
    short = duration < SHORT_TASK_S
    allowed = None if theirs is None else theirs + (SHORT_TASK_EXTRA_REQUESTS if short else 0)
    met = None if mine is None or allowed is None else mine <= allowed
    target = f"≤ ref + {SHORT_TASK_EXTRA_REQUESTS}" if short else "≤ ref"
    return Row(label, mine, theirs, ratio(mine, theirs), target, "task GETs (median)", met, why)


async def run(ctx: Context) -> list[Row]:
    profile = ctx.profile
    use_databar = profile.use_databar and ctx.databar.entry is not None
    db_why = "" if use_databar else f"Databar's server unavailable: {ctx.databar.why or 'skipped in this profile'}"
    out: list[Row] = []
    with harness.sandbox() as sb_ours, harness.sandbox() as sb_poll, harness.sandbox() as sb_db:
        async with AsyncExitStack() as stack:
            ours = await stack.enter_async_context(harness.connect(harness.ours(sb_ours.base_url, ctx.scratch("lat"))))
            theirs: Client | None = None
            if use_databar and ctx.databar.entry is not None:
                theirs = await stack.enter_async_context(
                    harness.connect(databar.params(ctx.databar.entry, sb_db.base_url))
                )
            for duration in profile.latency_durations:
                got_ours, got_poll, got_db = Samples(), Samples(), Samples()
                planned = durations(duration, profile.latency_reps)
                for rep, seconds in enumerate(planned):
                    harness.log(f"  latency: {seconds:g} s task, repetition {rep + 1}/{len(planned)}")
                    rows = people(profile.latency_rows, f"lat{duration:g}r{rep}", company="example.com")
                    for sb in (sb_ours, sb_poll, sb_db):
                        harness.set_task_duration(sb, seconds, len(rows))
                    async with anyio.create_task_group() as tg:  # side by side, each on its own sandbox
                        tg.start_soon(ours_once, ours, sb_ours, rows, got_ours)
                        tg.start_soon(poller_once, sb_poll, rows, got_poll)
                        if theirs is not None:
                            tg.start_soon(databar_once, theirs, sb_db, rows, got_db)
                db = got_db if theirs is not None else None
                spanned = f"{min(planned):g}–{max(planned):g} s" if len(set(planned)) > 1 else f"{duration:g} s"
                task = f"{duration:g} s task"
                out += [
                    latency_row(f"1. detection latency, {task}, vs 2 s poller", got_ours, got_poll, "", spanned),
                    requests_row(f"1. task requests, {task}, vs 2 s poller", duration, got_ours, got_poll, ""),
                    latency_row(f"1. detection latency, {task}, vs Databar MCP", got_ours, db, db_why, spanned),
                    requests_row(f"1. task requests, {task}, vs Databar MCP", duration, got_ours, db, db_why),
                ]
    return out
