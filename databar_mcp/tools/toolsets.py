"""enable_toolsets: list more of the server's tools when the conversation needs them.

Every tool definition costs the model context in every conversation, so without a toolset choice the
server lists only the default toolsets and this tool, whose description names what else there is. Calling
it lists those tools from then on (for this server process: every client of an HTTP server sees them) and
tells the client to refresh its tool list (notifications/tools/list_changed).
"""

from __future__ import annotations

from typing import Annotated, Final, Literal

from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from databar_mcp.config import TOOLSETS
from databar_mcp.tools.context import ToolContext
from databar_mcp.tools.registry import ALWAYS_LISTED, Toolbox
from databar_mcp.tools.results import ok_result

ToolsetName = Literal[
    "discover",
    "enrich",
    "tasks",
    "tables",
    "connectors",
    "account",
    "table_enrich",
    "table_admin",
    "exporters",
    "flows",
]
# What each toolset is for, in the words the model chooses by.
PURPOSE: Final[dict[str, str]] = {
    "discover": "find waterfalls and enrichments, their inputs and prices",
    "enrich": "run waterfalls and enrichments (spends credits)",
    "tasks": "wait for, read, cancel and export run results",
    "tables": "Databar tables: list, read, filter, create, insert/update/upsert/delete rows, export",
    "connectors": "your own HTTP APIs as Databar connectors",
    "account": "balance and plan",
    "table_enrich": "enrich a whole table in place (attach an enrichment or waterfall, run it)",
    "table_admin": "columns, rename/delete/dedupe tables, folders",
    "exporters": "send table rows to CRMs and other destinations",
    "flows": "saved multi-step pipelines: inspect, estimate, run",
}


class ToolsetsListed(BaseModel):
    listed: list[str] = Field(description="Every toolset tools/list shows now.")
    new_tools: list[str] = Field(description="Tools listed by this call.")
    message: str


def description(box: Toolbox, hidden: list[str]) -> str:
    offers = "; ".join(f"{t} ({len(box.tools_of(t))} tools): {PURPOSE[t]}" for t in hidden)
    return f"List more of this server's tools (free; the client refreshes its list). Not listed yet: {offers}."


def register(box: Toolbox) -> None:
    """Register enable_toolsets when some loaded toolset is not listed (call after every other toolset)."""
    hidden = box.hidden_toolsets()
    if not hidden:
        return

    @box.tool(
        name="enable_toolsets",
        toolset=ALWAYS_LISTED,
        title="List more tools",
        description=description(box, hidden),
        read_only=True,
        destructive=False,
        idempotent=True,
        open_world=False,
    )
    async def enable_toolsets(
        ctx: ToolContext,
        toolsets: Annotated[
            list[ToolsetName], Field(min_length=1, max_length=len(TOOLSETS), description="Toolsets to list.")
        ],
    ) -> Annotated[CallToolResult, ToolsetsListed]:
        new = [t for t in dict.fromkeys(toolsets) if t in box.hidden_toolsets()]
        box.listed.update(new)
        added = [name for t in new for name in box.tools_of(t)]
        if added:
            await ctx.request_context.session.send_tool_list_changed()  # 2025 protocol versions
            await ctx.notify_tools_changed()  # 2026: subscriptions/listen
        listed = [t for t in (*box.settings.listed_toolsets, *hidden) if t in box.listed]
        text = f"Listed now: {', '.join(added)}." if added else "Nothing new: those toolsets were already listed."
        return ok_result(ToolsetsListed(listed=listed, new_tools=added, message=text), text)
