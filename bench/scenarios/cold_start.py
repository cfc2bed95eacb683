"""Scenario 2: process spawn → tools/list answered, over stdio: ours vs Databar's MCP server, and ours vs a bare
MCP SDK server with one tool (the floor for any server on this SDK: what Python and `mcp` cost by themselves).

Ours keeps its start's tools/list in the state dir (databar_mcp/startup.py, which also says what each of our
start-up tricks buys), so every start but the first after an install, upgrade or settings change serves it from
there: the rows measure that usual start, and one more row the first start, its cache file removed before each
spawn (what a start costs that must build its listing)."""

from __future__ import annotations

import time

from mcp import StdioServerParameters

from bench import harness
from bench.context import Context
from bench.harness import median
from bench.reference import bare, databar
from bench.result import Row, ratio
from databar_mcp.startup import CACHE_FILE

TARGET_SHARE = 1.0
BARE_TARGET = 1.0  # issue 28: a start no slower than the bare SDK server's (issue 14 allowed 1.05x)


async def spawn_to_tools(params: StdioServerParameters) -> float:
    """Milliseconds from launching the server to holding its tools/list answer (the handshake included)."""
    started = time.perf_counter()
    async with harness.connect(params) as client:
        tools = await client.list_tools()
        elapsed = time.perf_counter() - started
    if not tools.tools:
        raise RuntimeError(f"{params.command} listed no tools")
    return elapsed * 1000


async def run(ctx: Context) -> list[Row]:
    reps = ctx.profile.cold_reps
    entry = ctx.databar.entry if ctx.profile.use_databar else None
    ours_ms: list[float] = []
    theirs_ms: list[float] = []
    bare_ms: list[float] = []
    first_ms: list[float] = []
    with harness.sandbox() as sb:
        state_dir = ctx.scratch("cold")
        mine = harness.ours(sb.base_url, state_dir)
        floor = bare.params(sb.base_url)
        theirs = databar.params(entry, sb.base_url) if entry is not None else None
        await spawn_to_tools(mine)  # warm the OS file cache and .pyc files; not counted
        await spawn_to_tools(floor)
        if theirs is not None:
            await spawn_to_tools(theirs)
        for rep in range(reps):  # interleaved, so a busy moment of the machine hits every server alike
            harness.log(f"  cold start: repetition {rep + 1}/{reps}")
            ours_ms.append(await spawn_to_tools(mine))
            bare_ms.append(await spawn_to_tools(floor))
            (state_dir / CACHE_FILE).unlink(missing_ok=True)
            first_ms.append(await spawn_to_tools(mine))  # builds its listing and writes the file again
            if theirs is not None:
                theirs_ms.append(await spawn_to_tools(theirs))
    a, b = median(ours_ms), median(theirs_ms)
    share = ratio(a, b)
    why = "" if theirs_ms else f"Databar's server unavailable: {ctx.databar.why or 'skipped in this profile'}"
    met = None if share is None else share <= TARGET_SHARE
    floor_ms = median(bare_ms)
    floor_share = ratio(a, floor_ms)
    return [
        Row(
            "2. cold start: spawn → tools/list (stdio)",
            a,
            b,
            share,
            f"≤ {TARGET_SHARE:g}× ref",
            "ms (median)",
            met,
            why,
        ),
        Row(
            "2. cold start vs the bare SDK server",
            a,
            floor_ms,
            floor_share,
            f"≤ {BARE_TARGET:g}× bare",
            "ms (median)",
            None if floor_share is None else floor_share <= BARE_TARGET,
            f"reference: {bare.NAME} (bench/reference/bare_server.py), spawned the same way; ours pauses the "
            "garbage collector while it builds its server (databar_mcp/startup.py); the bare one runs with defaults",
        ),
        Row(
            "2. cold start, listing not cached yet, vs bare",
            median(first_ms),
            floor_ms,
            ratio(median(first_ms), floor_ms),
            "none (informational)",
            "ms (median)",
            None,
            "the first start after an install, upgrade or settings change builds its listing and keeps it",
        ),
    ]
