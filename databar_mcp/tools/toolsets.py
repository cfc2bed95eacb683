"""enable_toolsets: list more of the server's tools when the conversation needs them.

Every tool definition costs the model context in every conversation, so without a toolset choice the
server lists only the default toolsets and this tool, whose description names what else there is. Calling
it lists those tools from then on for this viewer (listing_scope: the OAuth user, else the HTTP session, else
the process) and tells the client to refresh its tool list (notifications/tools/list_changed).
"""

from __future__ import annotations

from typing import Annotated, Final

from mcp.types import CallToolResult
from pydantic import BaseModel, Field, WithJsonSchema

from databar_mcp.config import TOOLSETS, Toolset
from databar_mcp.tools.kit.context import ToolContext
from databar_mcp.tools.kit.registry import ALWAYS_LISTED, Toolbox, ToolSpec

# The enum's values, inline (pydantic would put an enum under $defs): what the model may choose from.
ToolsetName = Annotated[Toolset, WithJsonSchema({"enum": [t.value for t in Toolset], "type": "string"})]
# What each toolset is for, in the words the model chooses by.
PURPOSE: Final[dict[str, str]] = {
    Toolset.DISCOVER: "find waterfalls and enrichments, their inputs and prices",
    Toolset.ENRICH: "run waterfalls and enrichments (spends credits)",
    Toolset.TASKS: "wait for, read, cancel and export run results",
    Toolset.TABLES: "Databar tables: list, read, filter, create, write rows, export",
    Toolset.CONNECTORS: "your own HTTP APIs as Databar connectors",
    Toolset.ACCOUNT: "balance and plan",
    Toolset.TABLE_ENRICH: "enrich a whole table in place (attach an enrichment or waterfall, run it)",
    Toolset.TABLE_ADMIN: "columns; copy/clear/delete tables; workbooks, folders, trash",
    Toolset.EXPORTERS: "send table rows to CRMs and other destinations",
    Toolset.FLOWS: "multi-step pipelines: build, edit, version, run",
}


ToolsetChoice = Annotated[
    list[ToolsetName], Field(min_length=1, max_length=len(TOOLSETS), description="Toolsets to list.")
]


class ToolsetsListed(BaseModel):
    listed: list[str] = Field(description="Every toolset tools/list shows now.")
    new_tools: list[str] = Field(description="Tools listed by this call.")
    message: str


def description(box: Toolbox, hidden: list[str]) -> str:
    offers = "; ".join(
        f"{t} ({sum(not box.visible(name) for name in box.tools_of(t))} tools): {PURPOSE[t]}" for t in hidden
    )
    return f"List more of this server's tools (free; the client refreshes its list). Not listed yet: {offers}."


async def enable(box: Toolbox, ctx: ToolContext, toolsets: list[ToolsetName]) -> CallToolResult:
    """enable_toolsets' body, for the Toolbox the server registered it with."""
    from databar_mcp.tools.kit.listing_scope import viewer
    from databar_mcp.tools.kit.results import ok_result  # every start imports this module; a call, the results kit

    who = viewer(ctx.headers)
    new = [t for t in dict.fromkeys(toolsets) if t in box.hidden_toolsets(who)]
    shown = {name for name in box.registered if box.visible(name, who)}
    box.list_toolsets(new, who)
    added = [name for t in new for name in box.tools_of(t) if name not in shown]
    if added:
        await ctx.request_context.session.send_tool_list_changed()  # 2025 protocol versions
        await ctx.notify_tools_changed()  # 2026: subscriptions/listen
    mine = set(box.settings.listed_toolsets) | box.enabled_for.get(who, set())
    listed = [t for t in (*box.settings.listed_toolsets, *box.offered()) if t in mine]
    text = f"Listed now: {', '.join(added)}." if added else "Nothing new: those toolsets were already listed."
    return ok_result(ToolsetsListed(listed=listed, new_tools=added, message=text), text)


def register(box: Toolbox) -> None:
    """Register enable_toolsets when some loaded toolset is not listed (call after every other toolset): its
    description names what the others loaded, so it is the one tool recorded at registration, not import."""
    hidden = box.hidden_toolsets()
    if not hidden:
        return

    async def enable_toolsets(ctx: ToolContext, toolsets: ToolsetChoice) -> Annotated[CallToolResult, ToolsetsListed]:
        return await enable(box, ctx, toolsets)

    box.register(
        ToolSpec(
            enable_toolsets,
            ALWAYS_LISTED,
            name="enable_toolsets",
            title="List more tools",
            description=description(box, hidden),
            read_only=True,
            destructive=False,
            idempotent=True,
            open_world=False,
        )
    )
