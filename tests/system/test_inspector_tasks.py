"""The MCP Inspector CLI 2.12.0 (a client nobody here wrote) runs run_bulk_waterfall as an MCP task.

Its CLI has no task flags: in the modern era its ext-tasks session declares `io.modelcontextprotocol/tasks`, so
our server answers the call with a task handle and the Inspector itself polls tasks/get until the result
(create -> status -> result, visible in our server's log). Installed on first use into the git-ignored
.cache/judges/inspector with the venv's Node, like the other judges.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from databar_mcp.sandbox import SandboxServer
from tests.conftest import lead
from tests.judges import require
from tests.system.test_crash_recovery import server_process

ROWS = [lead(f"F{i}", f"L{i}", "example.com" if i % 2 == 0 else "nowhere.invalid") for i in range(12)]
ARGS = {"waterfall": "email_getter", "params": ROWS, "enrichments": [833]}


@pytest.fixture(scope="module")
def inspector() -> list[str]:
    judges = require()  # installs the pinned judges into .cache/judges when missing (skip, or fail in CI)
    return [str(judges.node), str(judges.inspector), "--cli"]


def run_inspector(command: list[str], env: dict[str, str] | None = None) -> tuple[dict[str, Any], str]:
    done = subprocess.run(  # noqa: S603 - our own judge and server
        command,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={
            **os.environ,
            "PATH": f"{Path(command[0]).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            **(env or {}),
        },
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout), done.stderr


def handles(state_dir: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(state_dir / "ledger.sqlite3") as conn:
        return conn.execute("SELECT generation, state, tool FROM mcp_tasks").fetchall()


def call_as_task(era: str) -> list[str]:
    return [
        "--connect-timeout",
        "90000",  # the Inspector's 15 s default: too short for a server on a busy machine
        "--protocol-era",
        era,
        "--format",
        "json",
        "--method",
        "tools/call",
        "--tool-name",
        "run_bulk_waterfall",
        "--tool-args-json",
        json.dumps(ARGS),
    ]


def stdio_target(sandbox: SandboxServer, state_dir: Path) -> list[str]:
    env = {
        "DATABAR_API_KEY": sandbox.api_key,
        "DATABAR_BASE_URL": sandbox.base_url,
        "DATABAR_MCP_STATE_DIR": str(state_dir),
        "DATABAR_MCP_TRACKER_INTERVAL": "3600",
        "DATABAR_MCP_LOG_LEVEL": "INFO",
    }
    flags = [part for key, value in env.items() for part in ("-e", f"{key}={value}")]
    return [*flags, sys.executable, "-m", "databar_mcp"]


def check_result(out: dict[str, Any]) -> None:
    result = out["result"]
    assert result["isError"] is False
    content = result["structuredContent"]
    assert content["status"] == "completed" and content["rows_total"] == len(ROWS)
    assert [row["data"] is not None for row in content["rows"]] == [i % 2 == 0 for i in range(len(ROWS))]


def test_inspector_runs_the_bulk_waterfall_as_a_task_over_stdio(
    inspector: list[str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    sandbox.state.config.task_base_seconds = 1.0
    sandbox.state.config.row_seconds = 0.1
    state_dir = tmp_path / "state"
    out, log = run_inspector([*inspector, *call_as_task("modern"), *stdio_target(sandbox, state_dir)])

    check_result(out)
    assert handles(state_dir) == [("2026-07-28", "completed", "run_bulk_waterfall")]
    assert "MCP task" in log and "tasks/get MCP task" in log  # the Inspector polled the handle itself
    assert sandbox.state.counts["POST /v1/waterfalls/{identifier}/bulk-run"] == 1


def test_inspector_runs_the_bulk_waterfall_as_a_task_over_http(
    inspector: list[str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    sandbox.state.config.task_base_seconds = 1.0
    sandbox.state.config.row_seconds = 0.1
    state_dir = tmp_path / "state"
    with server_process(sandbox, state_dir) as (_, url):
        out, _ = run_inspector([*inspector, *call_as_task("modern"), "--server-url", url, "--transport", "http"])

    check_result(out)
    assert handles(state_dir) == [("2026-07-28", "completed", "run_bulk_waterfall")]


def test_inspector_in_the_legacy_era_gets_todays_plain_result(
    inspector: list[str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    """2.12.0's CLI asks for a 2025-11-25 task only when a tool requires one; ours are optional."""
    state_dir = tmp_path / "state"
    out, _ = run_inspector([*inspector, *call_as_task("legacy"), *stdio_target(sandbox, state_dir)])
    check_result(out)
    assert handles(state_dir) == []


def test_inspector_app_info_shows_the_results_view(
    inspector: list[str], sandbox: SandboxServer, tmp_path: Path
) -> None:
    command = [*inspector, "--advertise-apps", "--app-info", "--method", "tools/list"]
    done = subprocess.run(  # noqa: S603 - our own judge and server
        [*command, *stdio_target(sandbox, tmp_path / "state")],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env={**os.environ, "PATH": f"{Path(inspector[0]).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    apps = {line["toolName"]: line for line in lines if line.get("hasApp")}
    assert set(apps) == {"run_bulk_waterfall", "run_bulk_enrichment", "get_task"}
    assert all(a["resourceUri"] == "ui://databar/results.html" for a in apps.values())
    assert all(a["resourceMimeType"] == "text/html;profile=mcp-app" and a["csp"] == {} for a in apps.values())
