"""A newcomer's usual mistakes get a clear answer (issue 17), checked through the real command line."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest


def databar_mcp(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABAR_MCP_STATE_DIR": str(state)}
    env.pop("DATABAR_API_KEY", None)
    return subprocess.run(  # noqa: S603 - our own entry point
        [sys.executable, "-m", "databar_mcp", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
        env=env,
    )


def test_a_selection_with_no_tool_is_refused(tmp_path: Path) -> None:
    done = databar_mcp("--sandbox", "--toolsets", "enrich", "--read-only", state=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "--read-only with toolsets enrich loads no tool" in done.stderr
    assert (
        "Read-only tools are in: account, connectors, discover, exporters, flows, table_admin, table_enrich, "
        "tables, tasks" in done.stderr
    )
    assert "Traceback" not in done.stderr


def test_sigterm_stops_the_stdio_server_cleanly(tmp_path: Path) -> None:
    """`docker stop` sends SIGTERM to PID 1: the server must end on it, cleanly (exit 0), saving its state."""
    env = {**os.environ, "DATABAR_MCP_STATE_DIR": str(tmp_path)}
    env.pop("DATABAR_API_KEY", None)
    with subprocess.Popen(
        [sys.executable, "-m", "databar_mcp", "--sandbox"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode()  # the start line: the sandbox is up
        assert "in-process Databar sandbox" in line
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=10)
        finally:
            proc.kill()
        assert code == 0, proc.stderr.read().decode()
    assert (tmp_path / "sandbox" / "sandbox-api.json").exists()  # saved at stop


def test_healthcheck_outside_a_container_does_not_guess(tmp_path: Path) -> None:
    """PID 1 here is not our server: "healthy: stdio transport" was a guess even with an HTTP server up."""
    done = databar_mcp("healthcheck", state=tmp_path)
    assert done.returncode == 2, done.stdout
    assert done.stdout.startswith("nothing to check:") and "--url" in done.stdout


def test_healthcheck_of_a_stdio_server_reads_its_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from databar_mcp.app.cli import stdio_health

    pid1 = tmp_path / "cmdline"
    pid1.write_bytes(b"/usr/local/bin/python\0/usr/local/bin/databar-mcp\0")
    monkeypatch.setenv("DATABAR_MCP_STATE_DIR", str(tmp_path / "state"))
    assert stdio_health(pid1) == 0  # no ledger yet: a fresh container
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "ledger.sqlite3").write_bytes(b"this is not a database" * 100)
    assert stdio_health(pid1) == 1
    (tmp_path / "state" / "ledger.sqlite3").unlink()
    with contextlib.closing(sqlite3.connect(tmp_path / "state" / "ledger.sqlite3")) as conn:
        conn.execute("CREATE TABLE t (x)")
    assert stdio_health(pid1) == 0


ROOT = Path(__file__).resolve().parents[2]


def test_make_and_the_dockerfile_install_the_pinned_versions() -> None:
    import tomllib

    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, line  # every line is an exact pin
            pins[name.lower().replace("_", "-")] = version
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    for requirement in wanted:
        name = re.split(r"[<>=\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        if name == project["name"]:  # an extra that includes another (dev includes postgres)
            continue
        assert name in pins, f"{name} is not pinned in constraints.txt: run make constraints"
    makefile = (ROOT / "Makefile").read_text()
    assert makefile.count("-c constraints.txt") == 2  # the runtime and the dev install
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir -c /tmp/constraints.txt /dist/*.whl" in dockerfile
    assert "source=constraints.txt" in dockerfile


@pytest.mark.parametrize("key", ["sandbox", "k"])
def test_a_short_key_never_rewrites_doctors_text(key: str, tmp_path: Path) -> None:
    """With DATABAR_API_KEY=sandbox doctor printed 'plan …'; with 'k', 'api …ey' and 'tas…(s)'."""
    from databar_mcp.sandbox import SandboxConfig, SandboxServer

    with SandboxServer(SandboxConfig(api_key=key)) as server:
        env = {**os.environ, "DATABAR_API_KEY": key, "DATABAR_BASE_URL": server.base_url}
        env["DATABAR_MCP_STATE_DIR"] = str(tmp_path)
        done = subprocess.run(
            [sys.executable, "-m", "databar_mcp", "doctor"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
        )
    out = done.stdout
    assert "plan sandbox" in out and "api key" in out and "key accepted" in out, out
    assert "too short to be a Databar API key" in out
    assert "…ey" not in out and "tas…" not in out


def test_piping_doctor_into_a_reader_that_leaves_is_quiet(tmp_path: Path) -> None:
    """`databar-mcp doctor | head` ended in a BrokenPipeError traceback."""
    env = {**os.environ, "DATABAR_MCP_STATE_DIR": str(tmp_path)}
    done = subprocess.run(  # noqa: S603 - our own entry point behind a pipe that closes at once
        ["/bin/sh", "-c", f"'{sys.executable}' -m databar_mcp doctor --sandbox | true"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr


@pytest.mark.anyio
async def test_a_closed_port_names_the_url_tried(tmp_path: Path) -> None:
    """'Could not connect (ConnectError)' said neither where nor why."""
    import socket

    from mcp import Client
    from pydantic import SecretStr

    from databar_mcp.app.server import build_server
    from databar_mcp.config import Settings

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(
        base_url=f"http://127.0.0.1:{port}/v1", api_key=SecretStr("sk-" + "x" * 30), state_dir=tmp_path / "state"
    )
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("get_account", {})
    text = "\n".join(getattr(block, "text", "") for block in result.content)
    assert result.is_error
    assert f"http://127.0.0.1:{port}" in text and "connection refused" in text


def test_a_wildcard_bind_start_line_says_all_interfaces() -> None:
    """With --host 0.0.0.0 the start line printed a 127.0.0.1 URL only."""
    from databar_mcp.app.http_app import HttpOptions

    where = HttpOptions(host="0.0.0.0", port=8123).where  # noqa: S104 - a value under test, not a bind
    assert where.startswith("0.0.0.0:8123, all interfaces") and "http://127.0.0.1:8123/mcp" in where
    assert HttpOptions(host="127.0.0.1", port=8123).where == "http://127.0.0.1:8123/mcp"
