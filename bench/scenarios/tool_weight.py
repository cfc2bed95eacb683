"""Scenario 6: what tools/list costs every conversation before its first call: ours vs Databar's MCP server.

Model-visible weight = the characters of each tool's {name, description, inputSchema} as JSON (json.dumps
defaults), summed: what a host puts in the model's context for the tool list. Output schemas are shown
apart (hosts that pass them to the model pay those too). Measured over stdio, from each server's own
tools/list answer: ours as it starts (the default listing, with enable_toolsets) and with every toolset.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from mcp import StdioServerParameters
from mcp.types import Tool

from bench import harness
from bench.context import Context
from bench.reference import databar
from bench.result import Row, ratio

DEFAULT_TARGET = 1.0  # × Databar's model-visible weight (issue 12): what every conversation pays by default
# With every toolset listed the figure is reported, not capped: every schema constraint comes first (issue 23).


def visible_chars(tool: Tool) -> int:
    """One tool's model-visible characters: name, description and input schema, as JSON."""
    return len(json.dumps({"name": tool.name, "description": tool.description or "", "inputSchema": tool.input_schema}))


def output_chars(tool: Tool) -> int:
    return len(json.dumps(tool.output_schema)) if tool.output_schema is not None else 0


def weight(tools: Iterable[Tool]) -> dict[str, Any]:
    listed = list(tools)
    return {
        "tools": len(listed),
        "visible": sum(visible_chars(t) for t in listed),
        "with_output": sum(visible_chars(t) + output_chars(t) for t in listed),
    }


async def listed(params: StdioServerParameters) -> list[Tool]:
    async with harness.connect(params) as client:
        return (await client.list_tools()).tools


async def run(ctx: Context) -> list[Row]:
    entry = ctx.databar.entry if ctx.profile.use_databar else None
    with harness.sandbox() as sb:
        default = weight(await listed(harness.ours(sb.base_url, ctx.scratch("weight-default"))))
        every = weight(await listed(harness.ours(sb.base_url, ctx.scratch("weight-all"), DATABAR_MCP_TOOLSETS="all")))
        theirs = weight(await listed(databar.params(entry, sb.base_url))) if entry is not None else None
    why = "" if theirs else f"Databar's server unavailable: {ctx.databar.why or 'skipped in this profile'}"
    ref = theirs["visible"] if theirs else None

    def row(label: str, ours: dict[str, Any], target: float | None) -> Row:
        share = ratio(ours["visible"], ref)
        counts = f"{ours['tools']} tools" + (f" vs {theirs['tools']}" if theirs else "")
        note = f"{counts}; ≈ {ours['visible'] // 4:,} tokens" + (f"; {why}" if why else "")
        met = None if share is None or target is None else share <= target
        goal = f"≤ {target:g}× ref" if target is not None else "reported"
        return Row(label, ours["visible"], ref, share, goal, "chars", met, note)

    return [
        row("6. tool definitions: model-visible chars, default listing", default, DEFAULT_TARGET),
        row("6. tool definitions: model-visible chars, every toolset", every, None),
        Row(
            "6. tool definitions: every toolset with output schemas",
            every["with_output"],
            theirs["with_output"] if theirs else None,
            ratio(every["with_output"], theirs["with_output"] if theirs else None),
            "",
            "chars",
            None,
            why,
        ),
    ]
