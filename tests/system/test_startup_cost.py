"""A stdio start imports only what serving over stdio needs (issue 14 item 7: start-up at the SDK's floor).

The figures are bench scenario 2's (ours vs a bare MCP SDK server); this pins what they rest on, from the
interpreter's own record of every import (`python -X importtime`), so a top-level import that drags in the HTTP
stack, PostgreSQL, OAuth, the sandbox or rich again fails here with its name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from pydantic import SecretStr

from databar_mcp.api import DatabarClient
from databar_mcp.app.server import build_server
from databar_mcp.config import CORE_TOOLS, DEFAULT_TOOLSETS
from databar_mcp.sandbox import SandboxServer
from tests.conftest import make_settings

# Packages and modules a stdio start never needs: each is imported where its feature starts.
NOT_ON_STDIO = (
    "rich",  # the SDK's own logging set-up, which ours replaces (cli._skip_sdk_logging_setup)
    "httpcore2",  # the API client's connection pool (and its TLS context) is made on the first request
    "truststore",
    "psycopg",
    "psycopg_pool",
    "jwt",
    "hypothesis",
    "databar_mcp.sandbox",
    "databar_mcp.app.http_app",
    "databar_mcp.app.auth",
    "databar_mcp.app.doctor",
    "databar_mcp.app.demo",
    "databar_mcp.core.ledger.postgres",
)


# Modules a start serving its cached listing (spawn -> initialize -> tools/list) never runs: each is imported by the
# first tool call, task or resource read that needs it.
NOT_AT_A_CACHED_START = (
    "databar_mcp.api.models",  # a start reads no task and sends no request (api.statuses has what the ledger needs)
    "databar_mcp.core.catalog",  # Services.catalog: made by the first tool that asks
    "databar_mcp.core.tasks",  # Services.tasks, likewise
    "databar_mcp.core.table_runs",  # an MCP task watcher following a table run
    "databar_mcp.core.files.export_writing",
    "databar_mcp.core.rows",
    "databar_mcp.mcp_tasks.listen",  # the first 2026 subscriptions/listen naming tasks
    "databar_mcp.tools.task_export",  # a tool module (the resource it offered is tools/task_result.py)
    "databar_mcp.tools.kit.task_kit",
    "databar_mcp.tools.kit.task_view",
    "databar_mcp.tools.kit.table_kit",
    "databar_mcp.tools.kit.guard",  # a tool given to the SDK (Toolbox._give), or a task's final result
    "databar_mcp.tools.kit.failures",
    "databar_mcp.tools.kit.results",
    "databar_mcp.tools.kit.params",
    "databar_mcp.tools.kit.arguments",  # a call's argument check
    "databar_mcp.tools.kit.schemas",  # a listing built rather than read from the cache
)

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
LIST_TOOLS = [
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
]


def _start_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABAR_", "XDG_"))}
    return env | {
        "DATABAR_API_KEY": "sk-startup-test-key",
        "DATABAR_BASE_URL": "http://127.0.0.1:9",  # nothing listens: a start must not send a request
        "DATABAR_MCP_STATE_DIR": str(tmp_path / "state"),
    }


def served_start(tmp_path: Path) -> tuple[set[str], int]:
    """Every module a stdio server imported (`python -X importtime`) from its spawn to its tools/list answer, and
    how many tools it listed; the server reads each request as a client sends it, then its stdin is closed."""
    proc = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "databar_mcp"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_start_env(tmp_path),
    )
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(INITIALIZE) + "\n")
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["id"] == 1
        proc.stdin.write("".join(json.dumps(message) + "\n" for message in LIST_TOOLS))
        proc.stdin.flush()
        listed = json.loads(proc.stdout.readline())
        _, stderr = proc.communicate()
    finally:
        watchdog.cancel()
    assert proc.returncode == 0, stderr[-2000:]
    lines = [line.split("|") for line in stderr.splitlines() if line.startswith("import time:")]
    return {parts[2].strip() for parts in lines if len(parts) == 3} - {"package"}, len(listed["result"]["tools"])


def imported(args: list[str], tmp_path: Path) -> set[str]:
    """Every module a `python -X importtime -m databar_mcp ...` process imported, its stdin closed at once."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABAR_", "XDG_"))}
    env |= {"DATABAR_API_KEY": "sk-startup-test-key", "DATABAR_MCP_STATE_DIR": str(tmp_path / "state")}
    done = subprocess.run(  # noqa: S603 (our own entry point)
        [sys.executable, "-X", "importtime", "-m", "databar_mcp", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line.split("|") for line in done.stderr.splitlines() if line.startswith("import time:")]
    return {parts[2].strip() for parts in lines if len(parts) == 3} - {"package"}


def test_a_stdio_start_imports_nothing_it_does_not_serve_with(tmp_path: Path) -> None:
    modules = imported([], tmp_path)
    assert "databar_mcp.app.server" in modules and "mcp.server.stdio" in modules  # it did start a server
    dragged = sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in NOT_ON_STDIO))
    assert dragged == []


def test_a_start_serving_its_cached_listing_imports_no_api_model_nor_tool_kit(tmp_path: Path) -> None:
    first, listed = served_start(tmp_path)  # builds its listing and keeps it
    modules, again = served_start(tmp_path)
    assert again == listed > 0
    assert {"databar_mcp.core.tracker", "databar_mcp.mcp_tasks.service", "databar_mcp.core.ledger.sqlite"} <= modules
    assert (tmp_path / "state" / "ledger.sqlite3").exists()  # the lifespan ran: the ledger is open, the tracker started
    dragged = sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in NOT_AT_A_CACHED_START))
    assert dragged == []
    assert "databar_mcp.tools.kit.schemas" in first  # the first start built its listing: the pins are not vacuous


def test_version_imports_neither_the_sdk_nor_the_ledger(tmp_path: Path) -> None:
    modules = imported(["--version"], tmp_path)
    assert "databar_mcp.app.cli" in modules
    assert not {m for m in modules if m == "mcp" or m.startswith(("mcp.", "databar_mcp.core.ledger.store"))}


@pytest.mark.anyio
async def test_the_api_client_opens_its_pool_on_the_first_request_and_closes_even_unopened() -> None:
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.url.path)
        return httpx2.Response(200, json={"first_name": "Ann", "email": "ann@acme.com", "balance": 5, "plan": "x"})

    unused = DatabarClient(base_url="http://databar.test/v1", api_key=SecretStr("k"))
    assert (unused.base_url, unused.origin) == ("http://databar.test/v1/", "http://databar.test")
    await unused.aclose()  # never opened: nothing to close, and closed means closed
    with pytest.raises(RuntimeError, match="closed"):
        await unused.get_user()
    client = DatabarClient(
        base_url="http://databar.test/v1", api_key=SecretStr("k"), transport=httpx2.MockTransport(handler)
    )
    async with client:
        assert (await client.get_user()).balance == 5
        await client.get_user()  # the same pool
    assert seen == ["/v1/user/me", "/v1/user/me"]


@pytest.mark.anyio
async def test_a_start_gives_the_sdk_only_the_listed_tools_and_a_call_the_rest(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    server = build_server(make_settings(sandbox, tmp_path))
    box = server.toolbox
    assert box is not None
    hidden = {
        name
        for name, toolset in box.registered.items()
        if toolset not in (*DEFAULT_TOOLSETS, "toolsets") and name not in CORE_TOOLS
    }
    assert hidden and set(box.deferred) == hidden  # no schema work for tools nobody listed yet
    async with Client(server) as client:
        first = await client.list_tools()
        rows = await client.call_tool("list_tables", {})  # hidden, yet callable: registered when called
        assert (await client.list_tools()) == first  # still not listed
    assert not rows.is_error and "list_tables" not in box.deferred


SECOND_START = """
import json, sys, anyio
from databar_mcp.app.server import build_server
from databar_mcp.config import Settings
server = build_server(Settings.from_env())
tools = anyio.run(server.list_tools)
given = sorted(set(server.toolbox.registered) - set(server.toolbox.deferred))  # tools the SDK has built
print(json.dumps({"modules": sorted(sys.modules), "tools": len(tools), "given": given}))
"""


def test_a_start_whose_listing_is_cached_imports_no_toolset_module_and_builds_no_schema(tmp_path: Path) -> None:
    from databar_mcp.config import Toolset
    from databar_mcp.tools.kit.loading import modules_of

    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABAR_", "XDG_"))}
    env |= {"DATABAR_API_KEY": "sk-startup-test-key", "DATABAR_MCP_STATE_DIR": str(tmp_path / "state")}

    def start() -> dict[str, Any]:
        done = subprocess.run(  # noqa: S603 (our own code)
            [sys.executable, "-c", SECOND_START], capture_output=True, text=True, timeout=60, env=env, check=True
        )
        return json.loads(done.stdout)

    first, second = start(), start()
    toolset_modules = {f"databar_mcp.tools.{name}" for toolset in Toolset for name in modules_of(toolset)}
    toolset_modules -= {"databar_mcp.tools.task_result"}  # it registers the full-result resource
    assert toolset_modules <= set(first["modules"])  # the first start built the listing
    assert first["given"]
    assert second["tools"] == first["tools"]
    assert not toolset_modules & set(second["modules"])
    assert second["given"] == []
