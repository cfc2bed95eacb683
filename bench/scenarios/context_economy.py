"""Scenario 5: what delivering rows costs the agent's context: ours vs Databar's MCP server, per row and per
result, for 1, 100, 1,000 (and in the full run 10,000) row runs.

Tokens ≈ characters / 4 of everything a result hands the agent (every text block plus the structured content
as JSON). Ours: every call it takes to run the rows and read them all (the run, any get_task waits, every
page). Databar's: its one answer, which its server cuts at 50,000 characters: only the rows it holds whole
count as delivered. Every input row is one providers find (company example.com), so a row's cost is the cost
of its data: a row with no data costs a few characters on either server, and would only measure the fixed
part of one answer.
"""

from __future__ import annotations

import re
from contextlib import AsyncExitStack
from dataclasses import dataclass

from mcp import Client

from bench import harness
from bench.context import Context
from bench.harness import PROVIDERS, WATERFALL, people, result_chars, structured
from bench.reference import databar
from bench.result import Row, ratio

TOKENS_MAX = 10_000  # the largest single result (Claude Code warns above 10k tokens; its cap is 25k)
PER_ROW_TARGET = 1.0  # × Databar's tokens per delivered row (issue 12)
CHARS_PER_TOKEN = 4
TRUNCATION_MARK = "[Result truncated"
FOUND_COMPANY = "example.com"  # the sandbox's providers always find it
# A whole top-level entry of Databar's pretty-printed results array: its closing brace, or a null.
_WHOLE_ENTRY = re.compile(r"^  (\}|null),?$", re.MULTILINE)


@dataclass(frozen=True)
class Delivery:
    chars: int  # every result's characters, summed
    largest: int  # the largest single result
    calls: int
    rows: int  # rows delivered whole

    @property
    def tokens_per_row(self) -> float:
        return self.chars / CHARS_PER_TOKEN / max(1, self.rows)


async def ours_delivery(client: Client, rows: list[dict[str, str]]) -> Delivery:
    """Run the rows and read every result row, paging as the answers say."""
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
    return Delivery(sum(sizes), max(sizes), len(sizes), seen)


def databar_rows(text: str) -> int:
    """Rows Databar's answer holds whole (its array is pretty-printed with two-space indents)."""
    return len(_WHOLE_ENTRY.findall(text.split("Results:", 1)[-1]))


async def databar_delivery(client: Client, rows: list[dict[str, str]]) -> tuple[Delivery, bool]:
    args = {"waterfall_identifier": WATERFALL, "params_list": rows, "provider_ids": PROVIDERS}
    result = await client.call_tool("run_bulk_waterfall", args)
    if result.is_error:
        raise RuntimeError(f"Databar's server failed: {harness.text_of(result)[:300]}")
    text = harness.text_of(result)
    chars = result_chars(result)
    return Delivery(chars, chars, 1, databar_rows(text)), TRUNCATION_MARK in text


async def run(ctx: Context) -> list[Row]:
    entry = ctx.databar.entry if ctx.profile.use_databar else None
    why = "" if entry else f"Databar's server unavailable: {ctx.databar.why or 'skipped in this profile'}"
    per_row: list[Row] = []
    largest: list[Row] = []
    with harness.sandbox(task_base_seconds=0.05, row_seconds=0.0002) as sb:
        async with AsyncExitStack() as stack:
            ours = await stack.enter_async_context(harness.connect(harness.ours(sb.base_url, ctx.scratch("ctx"))))
            theirs = None
            if entry is not None:
                theirs = await stack.enter_async_context(harness.connect(databar.params(entry, sb.base_url)))
            for size in ctx.profile.context_sizes:
                harness.log(f"  context economy: {size:,}-row run")
                rows = people(size, f"ctx{size}", company=FOUND_COMPANY)
                mine = await ours_delivery(ours, rows)
                note = f"ours: {mine.calls} call(s), {mine.chars:,} chars for {mine.rows:,} rows"
                ref: Delivery | None = None
                if theirs is not None:
                    ref, truncated = await databar_delivery(theirs, rows)
                    note += f"; Databar: one answer of {ref.chars:,} chars holding {ref.rows:,} whole rows" + (
                        " (truncated: the rows past the cut are lost)" if truncated else ""
                    )
                share = ratio(mine.tokens_per_row, ref.tokens_per_row if ref else None)
                per_row.append(
                    Row(
                        f"5. tokens per delivered row, {size:,}-row run",
                        mine.tokens_per_row,
                        ref.tokens_per_row if ref else None,
                        share,
                        f"≤ {PER_ROW_TARGET:g}× ref",
                        "tokens/row (chars/4)",
                        None if share is None else share <= PER_ROW_TARGET,
                        "; ".join(filter(None, [note, why])),
                    )
                )
                tokens = mine.largest / CHARS_PER_TOKEN
                largest.append(
                    Row(
                        f"5. largest tool result, {size:,}-row run",
                        tokens,
                        ref.largest / CHARS_PER_TOKEN if ref else None,
                        ratio(tokens, ref.largest / CHARS_PER_TOKEN if ref else None),
                        f"≤ {TOKENS_MAX:,} tokens",
                        "tokens (chars/4)",
                        tokens <= TOKENS_MAX,
                        why,
                    )
                )
    return per_row + largest
