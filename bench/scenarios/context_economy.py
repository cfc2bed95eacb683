"""Scenario 5: the largest single tool result an agent receives while reading every row of 1 … 10,000-row
runs (characters, and tokens ≈ chars/4): ours (paged) vs Databar's MCP server (one answer)."""

from __future__ import annotations

from contextlib import AsyncExitStack

from mcp import Client

from bench import harness
from bench.context import Context
from bench.harness import PROVIDERS, WATERFALL, people, result_chars, structured
from bench.reference import databar
from bench.result import Row, ratio

TOKENS_MAX = 10_000
CHARS_PER_TOKEN = 4
TRUNCATION_MARK = "[Result truncated"


async def ours_largest(client: Client, rows: list[dict[str, str]]) -> tuple[int, int]:
    """(largest result in characters, tool calls) to run the rows and read every result row."""
    args = {"waterfall": WATERFALL, "params": rows, "enrichments": PROVIDERS, "wait_seconds": 25}
    result = await client.call_tool("run_bulk_waterfall", args)
    sizes, out = [result_chars(result)], structured(result)
    task_id = out["task_id"]
    while not out["done"]:
        result = await client.call_tool("get_task", {"task_id": task_id, "wait_seconds": 25})
        sizes.append(result_chars(result))
        out = structured(result)
    seen = len(out["rows"])
    while out.get("next_offset") is not None:
        result = await client.call_tool("get_task", {"task_id": task_id, "offset": out["next_offset"]})
        sizes.append(result_chars(result))
        out = structured(result)
        seen += len(out["rows"])
    if seen != len(rows):
        raise RuntimeError(f"paging returned {seen} rows for {len(rows)}")
    return max(sizes), len(sizes)


async def databar_size(client: Client, rows: list[dict[str, str]]) -> tuple[int, bool]:
    args = {"waterfall_identifier": WATERFALL, "params_list": rows, "provider_ids": PROVIDERS}
    result = await client.call_tool("run_bulk_waterfall", args)
    if result.is_error:
        raise RuntimeError(f"Databar's server failed: {harness.text_of(result)[:300]}")
    return result_chars(result), TRUNCATION_MARK in harness.text_of(result)


async def run(ctx: Context) -> list[Row]:
    entry = ctx.databar.entry if ctx.profile.use_databar else None
    why = "" if entry else f"Databar's server unavailable: {ctx.databar.why or 'skipped in this profile'}"
    out: list[Row] = []
    with harness.sandbox(task_base_seconds=0.05, row_seconds=0.0002) as sb:
        async with AsyncExitStack() as stack:
            ours = await stack.enter_async_context(harness.connect(harness.ours(sb.base_url, ctx.scratch("ctx"))))
            theirs = None
            if entry is not None:
                theirs = await stack.enter_async_context(harness.connect(databar.params(entry, sb.base_url)))
            for size in ctx.profile.context_sizes:
                harness.log(f"  context economy: {size:,}-row run")
                rows = people(size, f"ctx{size}")
                chars, calls = await ours_largest(ours, rows)
                note = f"ours: {calls} call(s) to read every row, largest {chars:,} chars"
                ref_tokens = None
                if theirs is not None:
                    ref_chars, truncated = await databar_size(theirs, rows)
                    ref_tokens = ref_chars / CHARS_PER_TOKEN
                    note += f"; Databar: one answer of {ref_chars:,} chars" + (
                        ", truncated (the rows past the cut are lost)" if truncated else ""
                    )
                tokens = chars / CHARS_PER_TOKEN
                out.append(
                    Row(
                        f"5. largest tool result, {size:,}-row run",
                        tokens,
                        ref_tokens,
                        ratio(tokens, ref_tokens),
                        f"≤ {TOKENS_MAX:,} tokens",
                        "tokens (chars/4)",
                        tokens <= TOKENS_MAX,
                        "; ".join(filter(None, [note, why])),
                    )
                )
    return out
