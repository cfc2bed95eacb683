"""The Toolbox: tools are plain functions whose definitions @tool records; what it injects never reaches the
input schema; toolsets are constants and no toolset imports another."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from databar_mcp.app.server import build_server
from databar_mcp.config import TOOLSETS, Settings, Toolset
from databar_mcp.sandbox import SandboxServer
from databar_mcp.tools.kit.loading import MORE_MODULES, modules_of
from databar_mcp.tools.kit.registry import DEFINED
from tests.conftest import BULK_ARGS, structured, text_of

pytestmark = pytest.mark.anyio

TOOLS = Path(__file__).resolve().parents[2] / "databar_mcp" / "tools"
TOOLSET_MODULES = {name for ts in Toolset for name in modules_of(ts)}
INJECTED = {"svc", "ctx", "box", "run", "spend", "resend", "call"}


async def listed(settings: Settings, **overrides: Any) -> dict[str, dict[str, Any]]:
    """tools/list of a server with every toolset loaded, through a real client session."""
    async with Client(build_server(settings.model_copy(update={"toolsets": TOOLSETS, **overrides}))) as client:
        return {t.name: t.model_dump(mode="json", by_alias=True) for t in (await client.list_tools()).tools}


def test_a_tool_is_a_plain_function_whose_definition_is_recorded() -> None:
    from databar_mcp.tools.account import get_account
    from databar_mcp.tools.kit.context import ToolContext

    spec = next(s for s in DEFINED["databar_mcp.tools.account"] if s.fn is get_account)
    assert (spec.toolset, spec.name, spec.read_only, spec.destructive, spec.idempotent) == (
        Toolset.ACCOUNT,
        "get_account",
        True,
        False,
        True,
    )
    assert inspect.iscoroutinefunction(get_account)
    assert next(iter(inspect.signature(get_account, eval_str=True).parameters.values())).annotation is ToolContext


async def test_what_the_toolbox_injects_never_reaches_the_input_schema(settings: Settings) -> None:
    tools = await listed(settings)
    assert len(tools) == sum(len(specs) for specs in DEFINED.values())  # every recorded tool, all toolsets loaded
    for name, tool in tools.items():
        assert not INJECTED & set(tool["inputSchema"].get("properties", {})), name


async def test_the_listed_wait_is_the_same_whatever_the_configured_deadline(settings: Settings) -> None:
    """The listing says what the tool's signature says: a deadline setting never rewrites a schema."""
    for deadline in (10.0, 30.0):
        tools = await listed(settings, tool_deadline_s=deadline)
        for name in ("run_bulk_waterfall", "run_table_enrichment", "get_task", "run_table_exporter"):
            wait = tools[name]["inputSchema"]["properties"]["wait_seconds"]
            assert (wait["minimum"], wait["maximum"], wait["default"]) == (0, 25, 25), (deadline, name)


async def test_a_deadline_set_below_the_listed_wait_cuts_the_wait(sandbox: SandboxServer, settings: Settings) -> None:
    """get_task's default wait (25 s) under a 6 s deadline: it answers "processing" for a task that finishes
    well within 25 s, and names the deadline as the next wait. (At 2 s, a machine at load 11 spent the call's
    whole I/O budget before its first read: the deadline error, right for the server, wrong for this test.)"""
    sandbox.state.config.task_base_seconds = 12  # done long after the deadline, long before the listed wait
    async with Client(build_server(settings.model_copy(update={"tool_deadline_s": 6.0}))) as client:
        first = structured(await client.call_tool("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 0}))
        result = await client.call_tool("get_task", {"task_id": first["task_id"]})

    assert structured(result)["status"] == "processing", text_of(result)
    assert "wait_seconds=6)" in text_of(result)


def test_every_tool_names_its_toolset_by_the_constant() -> None:
    for specs in DEFINED.values():
        for spec in specs:
            assert isinstance(spec.toolset, Toolset), spec.name
    for path in TOOLS.glob("*.py"):
        assert "toolset=" not in path.read_text(encoding="utf-8"), path.name


def test_no_toolset_imports_another() -> None:
    wrong: list[str] = []
    for name in sorted(TOOLSET_MODULES):
        tree = ast.parse((TOOLS / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("databar_mcp.tools."):
                imported = node.module.removeprefix("databar_mcp.tools.")
                if imported in TOOLSET_MODULES and imported != name:
                    wrong.append(f"{name} imports {imported}")
    assert wrong == []
    assert set(MORE_MODULES) <= set(Toolset)
