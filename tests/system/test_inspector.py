"""The MCP Inspector CLI (TypeScript SDK, a client nobody here wrote) reads our server correctly.

Over stdio and streamable HTTP, in both protocol eras (`legacy`: the initialize handshake of the 2025
versions; `modern`: 2026-07-28), it lists our tools under `--strict` with no error and no warning (every
toolset, and the default listing with enable_toolsets), and reads a success and an error of every toolset
(over HTTP in the modern era, on servers listing every toolset, so the client checks each result against its
tool's output schema; in the other three, one success and one error, see CASES).
The TypeScript SDK validates structuredContent against the output schema, even on errors (issue 12): a
success must pass that check, and an error must arrive as our own text (summary line, then the error body
as JSON), never as a schema complaint.

The Inspector CLI starts a process per call (and, over stdio, our server with it), so every call runs once,
all in parallel in one module fixture; the tests then judge the recorded outcomes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from databar_mcp.app.server import build_server
from databar_mcp.config import TOOLSETS, Settings
from databar_mcp.sandbox import SandboxConfig, SandboxServer
from tests.conftest import SENTINEL_KEY
from tests.judges import Judges, http_server, require, server_env

TRANSPORTS = ("stdio", "http")
ERAS = ("legacy", "modern")
CALL_TIMEOUT_S = 60
CONNECT_TIMEOUT_MS = 45_000  # the CLI's 15 s default is shorter than a stdio start on a loaded 2-core machine
WORKERS = 4
# The module's fixture makes all 26 CLI runs (~1 min on an idle 2-core machine): the suite's 120 s per-test limit
# would cut it short under load (it did in a run beside other work), so this module gets room for a slow machine.
pytestmark = pytest.mark.timeout(900)
TOOL_IS_ERROR_EXIT = 5  # the Inspector CLI's exit code for a tools/call that returned isError: true
LEAD = {"first_name": "John", "last_name": "Doe", "company": "example.com"}
SCHEMA_COMPLAINT = "must have required property"  # what the TS SDK printed for our old error results


@dataclass(frozen=True)
class Call:
    tool: str
    arguments: dict[str, Any] = field(default_factory=lambda: dict[str, Any]())
    error: str | None = None  # the error code expected; None for a success
    keyless: bool = False  # against a server with no API key configured


# A success and an error of every toolset; each error is one an agent meets for real.
FAMILIES: dict[str, tuple[Call, Call]] = {
    "discover": (
        Call("list_waterfalls"),
        Call("get_waterfall", {"waterfall": "no_such_waterfall"}, error="not_found"),
    ),
    "enrich": (
        Call("run_bulk_waterfall", {"waterfall": "email_getter", "params": [LEAD]}),
        Call(
            "run_bulk_waterfall",
            {"waterfall": "email_getter", "params": [LEAD], "enrichments": []},
            error="validation_error",
        ),
    ),
    "tasks": (
        Call("list_recent_tasks"),
        Call("get_task", {"task_id": "3f1c9b52-0000-4000-8000-000000000000"}, error="not_found"),
    ),
    "tables": (
        Call("list_tables"),
        Call("get_table_columns", {"table_uuid": "00000000-0000-4000-8000-000000000000"}, error="not_found"),
    ),
    "connectors": (
        Call("list_connectors"),
        Call("list_connectors", {"connector_id": 999_999}, error="not_found"),
    ),
    "account": (
        Call("get_account"),
        Call("get_account", error="auth_failed", keyless=True),
    ),
}
# Every toolset's success and error over HTTP in the modern era. What a result holds depends on neither the era
# nor the transport: the legacy era adds the handshake and stdio the start (its environment, a keyless server,
# the listing) and the framing, which their listings and one success and one error a start judge. Each CLI run
# is a Node process (and over stdio our server too): about a second of CPU.
WITNESSES: tuple[tuple[str, str], ...] = (("enrich", "success"), ("account", "error"))
CASES = [
    *(("http", "modern", family, kind) for family, kind in product(FAMILIES, ("success", "error"))),
    ("http", "legacy", *WITNESSES[0]),
    ("http", "legacy", *WITNESSES[1]),
    *(("stdio", era, family, kind) for era, (family, kind) in product(ERAS, WITNESSES)),
]


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str

    def result(self) -> dict[str, Any]:
        """The tools/call result the Inspector printed (its JSON output format)."""
        try:
            printed = json.loads(self.stdout)
        except ValueError:
            shown = f"{self.stdout[-500:]} {self.stderr[-1500:]}"
            raise AssertionError(f"no JSON on stdout (exit {self.exit_code}): {shown}") from None
        assert "result" in printed, printed
        return printed["result"]


@dataclass
class Recorded:
    listings: dict[tuple[str, str, str], Outcome]  # (transport, era, selection)
    calls: dict[tuple[str, str, str, str], Outcome]
    expected_tools: dict[str, int]  # selection -> how many tools it lists


SELECTIONS = ("all", "default")


def listed_count(tmp: Path, toolsets: tuple[str, ...] | None) -> int:
    """How many tools our server lists for this selection, asked in-process (no API request needed)."""

    async def count() -> int:
        settings = Settings(base_url="http://127.0.0.1:9/v1", state_dir=tmp, toolsets=toolsets)
        async with Client(build_server(settings)) as client:
            return len((await client.list_tools()).tools)

    return anyio.run(count)


def _run(judges: Judges, home: Path, argv: list[str]) -> Outcome:
    done = subprocess.run(  # noqa: S603 (the pinned Inspector on our own server)
        [str(judges.node), str(judges.inspector), "--cli", *argv, "--connect-timeout", str(CONNECT_TIMEOUT_MS)],
        capture_output=True,
        text=True,
        timeout=CALL_TIMEOUT_S,
        env=judges.env(home),
        check=False,
    )
    return Outcome(done.returncode, done.stdout, done.stderr)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recorded]:
    judges = require()
    tmp = tmp_path_factory.mktemp("inspector")
    home = tmp / "home"
    home.mkdir()
    config = SandboxConfig(api_key=SENTINEL_KEY, task_base_seconds=0.05, row_seconds=0.002)
    with (
        SandboxServer(config) as sandbox,
        http_server(server_env(sandbox.base_url, tmp / "http", SENTINEL_KEY, "all"), tmp / "http.err") as url,
        # keyless, and with the default listing (get_account, its one call, is listed by default)
        http_server(server_env(sandbox.base_url, tmp / "keyless", None), tmp / "keyless.err") as keyless,
    ):
        console_script = str(Path(sys.executable).parent / "databar-mcp")

        def target(transport: str, era: str, call: Call | None, selection: str = "all") -> list[str]:
            keyed = call is None or not call.keyless
            everything = selection == "all" and keyed
            if transport == "http":
                return [url if everything else keyless, "--protocol-era", era, "--format", "json"]
            key = SENTINEL_KEY if keyed else None
            env = server_env(sandbox.base_url, tmp / f"stdio-{era}", key, "all" if everything else None)
            pairs = [item for key, value in env.items() for item in ("-e", f"{key}={value}")]
            return [console_script, *pairs, "--protocol-era", era, "--format", "json"]

        jobs: dict[Any, list[str]] = {}
        for transport, era, selection in product(TRANSPORTS, ERAS, SELECTIONS):
            listing = [*target(transport, era, None, selection), "--method", "tools/list", "--strict"]
            jobs[("list", transport, era, selection)] = listing
        for transport, era, family, kind in CASES:
            call = FAMILIES[family][0 if kind == "success" else 1]
            jobs[(transport, era, family, kind)] = [
                *target(transport, era, call),
                "--method",
                "tools/call",
                "--tool-name",
                call.tool,
                "--tool-args-json",
                json.dumps(call.arguments),
            ]
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            outcomes = dict(zip(jobs, pool.map(lambda argv: _run(judges, home, argv), jobs.values()), strict=True))
        yield Recorded(
            listings={(k[1], k[2], k[3]): v for k, v in outcomes.items() if k[0] == "list"},
            calls={k: v for k, v in outcomes.items() if k[0] != "list"},
            expected_tools={"all": listed_count(tmp / "all", TOOLSETS), "default": listed_count(tmp / "default", None)},
        )


@pytest.mark.parametrize(("transport", "era", "selection"), list(product(TRANSPORTS, ERAS, SELECTIONS)))
def test_strict_tools_list_has_no_error_and_no_warning(
    recorded: Recorded, transport: str, era: str, selection: str
) -> None:
    outcome = recorded.listings[(transport, era, selection)]
    assert outcome.exit_code == 0, outcome.stderr[-3000:]
    names = [tool["name"] for tool in outcome.result()["tools"]]
    assert len(names) == recorded.expected_tools[selection] and ("enable_toolsets" in names) == (selection == "default")
    # --strict prints each portability problem as "Warning: tool ..." / "Error: tool ..." with an "Issue:" line,
    # and a count line "N errors, M warnings across K tools" when there is any.
    problems = [line for line in outcome.stderr.splitlines() if line.startswith(("Warning", "Error", "  Issue:"))]
    assert problems == [], outcome.stderr[-3000:]
    assert "warnings across" not in outcome.stderr


@pytest.mark.parametrize(("transport", "era", "family", "kind"), CASES)
def test_every_toolset_reads_correctly(recorded: Recorded, transport: str, era: str, family: str, kind: str) -> None:
    call = FAMILIES[family][0 if kind == "success" else 1]
    outcome = recorded.calls[(transport, era, family, kind)]
    assert SCHEMA_COMPLAINT not in outcome.stdout + outcome.stderr, outcome.stderr[-2000:]
    assert SENTINEL_KEY not in outcome.stdout
    result = outcome.result()
    text = "\n".join(block.get("text", "") for block in result["content"])
    if call.error is None:
        assert outcome.exit_code == 0, outcome.stderr[-2000:]
        assert result.get("isError") is not True, text
        assert isinstance(result.get("structuredContent"), dict) and text
        return
    assert outcome.exit_code == TOOL_IS_ERROR_EXIT, outcome.stderr[-2000:]
    assert result["isError"] is True and "structuredContent" not in result
    summary, _, body_json = text.partition("\n")
    body = json.loads(body_json)
    assert summary.startswith(f"Error [{call.error}]") and body["code"] == call.error
    assert body["message"] and body["next_steps"]
