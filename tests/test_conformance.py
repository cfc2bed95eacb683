"""The official MCP conformance suite passes our server over streamable HTTP.

The server scenarios that apply to a server without the suite's own test tools, prompts and resources
(`tools-call-*`, `prompts-get-*`, `resources-read-*` need those by name): the handshake, ping, the three
lists, completions, DNS-rebinding protection and logging/setLevel. Every scenario runs once, in parallel,
in one module fixture (each is a Node process); each test judges one scenario's checks.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from databar_mcp.sandbox import SandboxConfig, SandboxServer
from tests.conftest import SENTINEL_KEY
from tests.judges import Judges, http_server, require, server_env

SCENARIOS = (
    "server-initialize",
    "ping",
    "tools-list",
    "completion-complete",
    "resources-list",
    "prompts-list",
    "dns-rebinding-protection",
    "logging-set-level",
)
TIMEOUT_S = 60
WORKERS = 4
SUMMARY = re.compile(r"Passed: (\d+)/(\d+), (\d+) failed, (\d+) warnings")


@dataclass(frozen=True)
class Run:
    exit_code: int
    output: str
    checks: list[dict[str, Any]]


def _scenario(judges: Judges, home: Path, url: str, scenario: str, out: Path) -> Run:
    done = subprocess.run(  # noqa: S603 (the pinned suite against our own server)
        [str(judges.node), str(judges.conformance), "server", "--url", url, "--scenario", scenario, "-o", str(out)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=judges.env(home),
        check=False,
    )
    checks: list[dict[str, Any]] = []
    for path in sorted(out.glob("*/checks.json")):
        checks.extend(json.loads(path.read_text()))
    return Run(done.returncode, done.stdout + done.stderr, checks)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    judges = require()
    tmp = tmp_path_factory.mktemp("conformance")
    home = tmp / "home"
    home.mkdir()
    config = SandboxConfig(api_key=SENTINEL_KEY, task_base_seconds=0.05, row_seconds=0.002)
    with (
        SandboxServer(config) as sandbox,
        http_server(server_env(sandbox.base_url, tmp / "state", SENTINEL_KEY), tmp / "server.stderr") as url,
        ThreadPoolExecutor(max_workers=WORKERS) as pool,
    ):
        done = pool.map(lambda s: _scenario(judges, home, url, s, tmp / "results" / s), SCENARIOS)
        yield dict(zip(SCENARIOS, done, strict=True))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_conformance_scenario_passes(runs: dict[str, Run], scenario: str) -> None:
    run = runs[scenario]
    assert run.exit_code == 0, run.output[-3000:]
    summary = SUMMARY.search(run.output)
    assert summary is not None, run.output[-3000:]
    passed, total, failed, warnings = map(int, summary.groups())
    assert total > 0 and passed == total and failed == 0 and warnings == 0, run.output[-3000:]
    assert run.checks and all(check["status"] == "SUCCESS" for check in run.checks), run.checks
