"""A newcomer's usual mistakes get a clear answer (issue 17), checked through the real command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


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
    assert "Read-only tools are in: account, connectors, discover, tables, tasks" in done.stderr
    assert "Traceback" not in done.stderr
