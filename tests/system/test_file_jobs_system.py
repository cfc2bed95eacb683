"""File jobs across processes (issue 25): a stdio server killed mid-job and started again, and the CLI.

The sandbox runs in this process (real HTTP on loopback), so it counts every bulk-run POST whichever server
process sent it: a resumed job must send no part twice and still write the whole output.
"""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from databar_mcp.app.cli import main
from databar_mcp.sandbox import SandboxServer
from tests.conftest import text_of
from tests.served import clean_env, http_process

pytestmark = pytest.mark.anyio

BULK_POSTS = "POST /v1/waterfalls/{identifier}/bulk-run"


def leads_file(path: Path, rows: int) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["First Name", "Last Name", "Company Domain"])
        writer.writerows((f"P{i}", f"L{i}", "example.com" if i % 2 else "nowhere.invalid") for i in range(rows))
    return path


def server(sandbox: SandboxServer, state: Path) -> StdioServerParameters:
    env = {
        **os.environ,
        "DATABAR_BASE_URL": sandbox.base_url,
        "DATABAR_API_KEY": sandbox.api_key,
        "DATABAR_MCP_STATE_DIR": str(state),
        "DATABAR_MCP_FILE_PART_ROWS": "4",
        "DATABAR_MCP_LOG_LEVEL": "ERROR",
    }
    return StdioServerParameters(command=sys.executable, args=["-m", "databar_mcp"], env=env)


def our_servers() -> list[int]:
    """The stdio servers this test process started (children whose command line runs databar_mcp)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == os.getpid() and b"databar_mcp" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
    return found


async def test_a_job_resumes_after_kill_9_without_sending_a_part_twice(sandbox: SandboxServer, tmp_path: Path) -> None:
    leads = leads_file(tmp_path / "leads.csv", 10)
    out = tmp_path / "out.csv"
    arguments: dict[str, Any] = {"waterfall": "email_getter", "input_file": str(leads), "output_file": str(out)}
    sandbox.state.config.task_base_seconds = 600.0  # the parts stay processing until the clock moves
    all_sent = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        if message and "part 3 of 3 submitted" in message:
            all_sent.set()

    async def first_call(client: Client) -> None:
        with contextlib.suppress(Exception):
            await client.call_tool("run_bulk_waterfall", arguments, progress_callback=on_progress)

    with contextlib.suppress(Exception):
        async with Client(server(sandbox, tmp_path / "state")) as first, anyio.create_task_group() as group:
            group.start_soon(first_call, first)
            await all_sent.wait()  # every part recorded in the job: now the server dies mid-wait
            for pid in our_servers():
                os.kill(pid, signal.SIGKILL)
            group.cancel_scope.cancel()
    assert sandbox.state.counts[BULK_POSTS] == 3
    assert not out.exists()

    sandbox.state.clock.advance(3600)  # the parts finish while no server runs
    async with Client(server(sandbox, tmp_path / "state")) as second:
        result = await second.call_tool("run_bulk_waterfall", arguments)
    text = text_of(result)
    assert not result.is_error, text
    assert "completed" in text.splitlines()[0] and f"Output: {out}" in text
    assert sandbox.state.counts[BULK_POSTS] == 3  # no part sent twice
    with out.open(newline="", encoding="utf-8") as f:
        written = list(csv.DictReader(f))
    assert [r["First Name"] for r in written] == [f"P{i}" for i in range(10)]
    assert [bool(r["result.email"]) for r in written] == [i % 2 == 1 for i in range(10)]


def enrich(tmp_path: Path, *flags: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "DATABAR_MCP_STATE_DIR": str(tmp_path / "cli-state"), **env}
    environment.pop("DATABAR_API_KEY", None)
    return subprocess.run(  # noqa: S603 (our own entry point)
        [sys.executable, "-m", "databar_mcp", "enrich", *flags],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )


@pytest.fixture
def enrich_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`enrich` run through the CLI's main() in this process (its server is still a subprocess): for what the
    command says and exits with, without a Python started for the CLI each time (the end-to-end test runs the
    process)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABAR_MCP_STATE_DIR", str(tmp_path / "cli-state"))
    monkeypatch.delenv("DATABAR_API_KEY", raising=False)

    def run(*flags: str, **env: str) -> subprocess.CompletedProcess[str]:
        with monkeypatch.context() as scoped:
            for name, value in env.items():
                scoped.setenv(name, value)
            capsys.readouterr()
            code = main(["enrich", *flags])
            said = capsys.readouterr()
        return subprocess.CompletedProcess(["databar-mcp", "enrich", *flags], code, said.out, said.err)

    return run


def test_the_enrich_command_end_to_end(tmp_path: Path) -> None:
    leads = leads_file(tmp_path / "leads.csv", 6)

    done = enrich(tmp_path, "--waterfall", "email_getter", "--input", str(leads), "--output", "out.csv")

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("completed: 3/6 rows with data"), done.stdout
    assert str(tmp_path / "out.csv") in done.stdout and len(done.stdout.splitlines()) == 1
    with (tmp_path / "out.csv").open(newline="", encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) == 6

    again = enrich(tmp_path, "--waterfall", "email_getter", "--input", str(leads), "--output", "out.csv")
    assert again.returncode == 0 and again.stdout.startswith("completed: 3/6"), again.stderr  # the job, not a rerun


def test_the_enrich_command_exit_codes(
    enrich_here: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("First Name,Last Name,Company Domain\n,Doe,example.com\nAnn,Lee,example.com\n", encoding="utf-8")

    refused_rows = enrich_here("--waterfall", "email_getter", "--input", str(bad), "--output", "o1.csv")
    over_limit = enrich_here(
        "--waterfall",
        "email_getter",
        "--input",
        str(bad),
        "--skip-bad-rows",
        "--output",
        "o2.csv",
        DATABAR_MCP_MAX_CREDITS_PER_CALL="0.5",
    )
    no_file = enrich_here("--waterfall", "email_getter", "--input", "missing.csv")

    assert refused_rows.returncode == 2 and "row 2: no value for required first_name" in refused_rows.stderr
    assert over_limit.returncode == 3 and "spend_limit" in over_limit.stderr
    assert no_file.returncode == 2
    assert not (tmp_path / "o1.csv").exists() and not (tmp_path / "o2.csv").exists()


TOKEN = "file-jobs-token-0123456789abcdef"


@contextlib.asynccontextmanager
async def http_client(url: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers={"authorization": f"Bearer {TOKEN}"}, timeout=httpx2.Timeout(30, read=120)) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


def http_env(sandbox: SandboxServer, state: Path, **extra: str) -> dict[str, str]:
    return clean_env(
        DATABAR_API_KEY=sandbox.api_key,
        DATABAR_BASE_URL=sandbox.base_url,
        DATABAR_MCP_STATE_DIR=str(state),
        DATABAR_MCP_HTTP_TOKEN=TOKEN,
        **extra,
    )


async def test_over_http_files_are_read_only_from_the_import_folder(sandbox: SandboxServer, tmp_path: Path) -> None:
    imports = tmp_path / "imports"
    imports.mkdir()
    leads_file(imports / "leads.csv", 4)
    outside = leads_file(tmp_path / "private.csv", 4)
    args = {"waterfall": "email_getter"}

    with http_process(http_env(sandbox, tmp_path / "off"), tmp_path / "off.stderr") as off:
        async with http_client(off.url) as client:
            refused = await client.call_tool("run_bulk_waterfall", {**args, "input_file": str(imports / "leads.csv")})
    assert (
        refused.is_error and "reading files is off" in text_of(refused) and "DATABAR_MCP_IMPORT_DIR" in text_of(refused)
    )

    env = http_env(sandbox, tmp_path / "on", DATABAR_MCP_IMPORT_DIR=str(imports))
    with http_process(env, tmp_path / "on.stderr") as on:
        async with http_client(on.url) as client:
            ok = await client.call_tool("run_bulk_waterfall", {**args, "input_file": "leads.csv"})
            escape = await client.call_tool("run_bulk_waterfall", {**args, "input_file": "../private.csv"})
            absolute = await client.call_tool("run_bulk_waterfall", {**args, "input_file": str(outside)})
            written_out = await client.call_tool(
                "run_bulk_waterfall", {**args, "input_file": "leads.csv", "output_file": str(tmp_path / "x.csv")}
            )
    text = text_of(ok)
    assert not ok.is_error, text
    assert "completed" in text.splitlines()[0] and "Output: " in text
    assert str(tmp_path / "on") in text  # the output went to the server's exports folder
    assert escape.is_error and "'..' is not allowed" in text_of(escape)
    assert absolute.is_error and "outside the import folder" in text_of(absolute)
    assert written_out.is_error and "must be a plain file name" in text_of(written_out)
    assert sandbox.state.counts[BULK_POSTS] == 1
