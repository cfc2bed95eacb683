"""tools/list weight: what every conversation pays before its first call stays pinned (issue 12, item 3).

Model-visible weight is measured as bench scenario 6 measures it (name, description and input schema as
JSON). A change that adds weight fails here until the pin is raised on purpose, in the same commit.
"""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client

from bench.scenarios.tool_weight import weight
from databar_mcp.app.server import build_server
from databar_mcp.config import TOOLSETS, Settings
from tests.conftest import error_body

pytestmark = pytest.mark.anyio

# As measured when pinned; a margin absorbs small wording changes, not a new tool.
# The default listing (discover, enrich, tasks, account, the four core tools, enable_toolsets), every schema
# constraint kept (issue 23: constraints come before weight); get_task's `partial`, the run tools' file form;
# every argument a tool accepts listed (issue 24: acknowledge_possible_double_billing).
PINNED_DEFAULT_CHARS = 13_321
PINNED_ALL_CHARS = 44_574  # every toolset: 58 tools, every constraint kept; reported, not capped
MARGIN = 0.03
DATABAR_VISIBLE_CHARS = 13_350  # databar-mcp-server 1.4.0, 19 tools, measured the same way (bench scenario 6)


def titles(schema: Any, path: str = "") -> list[str]:
    """Paths of pydantic `title` keywords (a property named "title" is a name, not the keyword)."""
    found: list[str] = []
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "title" and isinstance(value, str):
                found.append(path or "/")
            found += titles(value, f"{path}.{key}")
    elif isinstance(schema, list):
        for i, value in enumerate(schema):
            found += titles(value, f"{path}[{i}]")
    return found


async def test_model_visible_weight_is_pinned(mcp: Client, settings: Settings) -> None:
    default = weight((await mcp.list_tools()).tools)["visible"]
    async with Client(build_server(settings.model_copy(update={"toolsets": TOOLSETS}))) as every:
        everything = weight((await every.list_tools()).tools)["visible"]
    for name, measured, pinned in (
        ("default", default, PINNED_DEFAULT_CHARS),
        ("every toolset", everything, PINNED_ALL_CHARS),
    ):
        assert measured <= pinned * (1 + MARGIN), (
            f"tools/list ({name}) grew to {measured} model-visible chars (pinned {pinned}; Databar's server: "
            f"{DATABAR_VISIBLE_CHARS}): say it once, or raise the pin on purpose"
        )
    assert default <= DATABAR_VISIBLE_CHARS, f"the default listing ({default}) outweighs Databar's own server"
    assert default < everything * 0.6  # the default listing stays well below everything


async def test_schemas_carry_no_pydantic_titles(mcp: Client) -> None:
    for tool in (await mcp.list_tools()).tools:
        assert titles(tool.input_schema) == [], tool.name
        assert titles(tool.output_schema or {}) == [], tool.name


async def test_listed_input_schemas_carry_identifier_patterns_and_the_server_enforces_them(mcp: Client) -> None:
    """An identifier's pattern tells the model what an id looks like before it calls; the server still checks it
    and answers validation_error, with nothing sent."""
    listed = {t.name: t.input_schema for t in (await mcp.list_tools()).tools}
    assert listed["get_task"]["properties"]["task_id"]["pattern"] == "^[A-Za-z0-9_-]+$"
    assert "pattern" in listed["run_bulk_waterfall"]["properties"]["waterfall"]
    refused = await mcp.call_tool("get_task", {"task_id": "no/such id"})
    assert error_body(refused)["code"] == "validation_error"
