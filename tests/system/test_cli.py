"""The command line and the single package version: `--version`, `python -m`, initialize info, User-Agent."""

from __future__ import annotations

import gc
import subprocess
import sys
import tomllib
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import Client
from pydantic import SecretStr

from databar_mcp import __version__
from databar_mcp.api import DatabarClient
from databar_mcp.api.models import Task
from databar_mcp.app.cli import build_parser, main
from databar_mcp.app.server import build_server
from databar_mcp.config import Settings
from databar_mcp.core.ledger.store import Ledger

ROOT = Path(__file__).resolve().parents[2]
VENV_SCRIPT = Path(sys.executable).parent / "databar-mcp"


@pytest.mark.parametrize(
    "command",
    [[str(VENV_SCRIPT), "--version"], [sys.executable, "-m", "databar_mcp", "--version"]],
    ids=["console-script", "python-m"],
)
def test_version_flag(command: list[str]) -> None:
    proc = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"databar-mcp {__version__}"


def test_version_lives_only_in_init() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert "version" not in project
    assert "version" in project["dynamic"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        ([], {"command": None, "sandbox": False, "transport": "stdio"}),
        (["--sandbox"], {"command": None, "sandbox": True}),
        (["--transport", "http", "--port", "8001"], {"transport": "http", "port": 8001}),
        (["doctor"], {"command": "doctor", "json": False, "doctor_sandbox": False}),
        (["doctor", "--json", "--sandbox"], {"command": "doctor", "json": True, "doctor_sandbox": True}),
        (["--sandbox", "doctor"], {"command": "doctor", "sandbox": True}),
        (["sandbox", "--port", "8765"], {"command": "sandbox", "port": 8765}),
        (["demo"], {"command": "demo"}),
    ],
)
def test_parser_accepts(argv: list[str], expected: dict[str, object]) -> None:
    args = vars(build_parser().parse_args(argv))
    assert {k: args[k] for k in expected} == expected


@pytest.mark.anyio
async def test_initialize_reports_the_package_version(tmp_path: Path) -> None:
    settings = Settings(api_key=SecretStr("unused"), state_dir=tmp_path / "state")
    async with Client(build_server(settings)) as client:
        assert client.server_info is not None
        assert (client.server_info.name, client.server_info.version) == ("databar", __version__)


@pytest.mark.anyio
async def test_user_agent_carries_the_package_version() -> None:
    seen: list[str] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.headers["user-agent"])
        return httpx2.Response(200, json={"email": "a@b.c", "balance": 1.0})

    async with DatabarClient(
        base_url="http://databar.test/v1", api_key=SecretStr("k"), transport=httpx2.MockTransport(handler)
    ) as client:
        await client.get_user()
    assert seen == [f"databar-mcp/{__version__}"]


def test_a_start_that_exits_early_leaves_the_garbage_collector_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """serve() pauses the collector while the server is built; an exit before serving must resume it."""
    monkeypatch.setenv("DATABAR_MCP_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("DATABAR_MCP_LOG_FORMAT", "carrier-pigeon")
    assert gc.isenabled()
    assert main([]) == 2
    assert "carrier-pigeon" in capsys.readouterr().err
    assert gc.isenabled()


def test_a_port_in_use_is_refused_before_serving_with_a_hint(tmp_path: Path) -> None:
    """The bind comes first: no "serving ... at" line for a server that never served, exit 2, and what to do."""
    import socket

    from tests.served import clean_env

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(  # noqa: S603 (our own entry point)
            [sys.executable, "-m", "databar_mcp", "--sandbox", "--transport", "http", "--port", str(port)],
            capture_output=True,
            text=True,
            check=False,
            env=clean_env(DATABAR_MCP_STATE_DIR=str(tmp_path / "state")),
        )
    assert proc.returncode == 2, proc.stderr
    assert "serving MCP" not in proc.stderr
    assert f"cannot listen on 127.0.0.1 port {port}" in proc.stderr and "--port N" in proc.stderr


def test_help_names_every_toolset_and_what_healthcheck_exits_with() -> None:
    from databar_mcp.config import TOOLSETS

    text = " ".join(build_parser().format_help().split())
    assert all(name in text for name in TOOLSETS), text
    assert "always 0" not in text
    assert "2 when there is no server here to check" in text


def test_ledger_stats_and_prune_on_demand(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 26: `databar-mcp ledger prune` removes results past the retention period (the task's summary stays)
    and `ledger stats` shows what is left."""
    monkeypatch.setenv("DATABAR_MCP_STATE_DIR", str(tmp_path))

    async def fill() -> None:
        ledger = Ledger(tmp_path / "ledger.sqlite3")
        for task_id, age_days in (("old", 100), ("recent", 10)):
            made = await ledger.claim(
                tool="run_bulk_waterfall", endpoint="waterfalls/email_getter/bulk-run", fingerprint=task_id * 16,
                request={"params": [{"a": 1}]}, rows=1, estimated_credits=1.0, window_s=1800, force=False,
            )  # fmt: skip
            assert made.submission_id is not None
            await ledger.accepted(made.submission_id, task_id, "processing")
            await ledger.observe(Task(task_id=task_id, status="completed", data=[{"email": "a@b.c"}]))
            await ledger.call(
                lambda conn, t=task_id, d=age_days: conn.execute(
                    "UPDATE tasks SET completed_at = completed_at - ? WHERE task_id = ?", (d * 86400, t)
                )
            )
        await ledger.aclose()

    anyio.run(fill)
    assert main(["ledger", "prune", "--older-than-days", "90", "--vacuum"]) == 0
    pruned = capsys.readouterr().out
    assert main(["ledger", "stats"]) == 0
    stats = capsys.readouterr().out
    assert (
        pruned.startswith("pruned 1 task(s) finished more than 90 day(s) ago")
        and "(1 stored result(s) removed)" in pruned
    )
    assert "  tasks: 2 row(s)" in stats and "  results: 1 row(s)" in stats
    assert "1 compressed, 0 uncompressed" in stats and "1 pruned to a summary" in stats
