"""What every scenario needs: a sandbox, our server over stdio, MCP clients, timing and memory probes."""

from __future__ import annotations

import json
import os
import statistics
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TextIO

from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult, TextContent

from databar_mcp.sandbox import SandboxConfig, SandboxServer

KEY = "bench-key"
WATERFALL = "email_getter"
PROVIDERS = [833, 966]
ROOT = Path(__file__).resolve().parent.parent
OUR_COMMAND = str(Path(sys.executable).parent / "databar-mcp")
CALL_TIMEOUT_S = 300.0


def sandbox(**knobs: Any) -> SandboxServer:
    """A sandbox on an ephemeral loopback port with money enough for any scenario (not started yet)."""
    return SandboxServer(SandboxConfig(api_key=KEY, balance=1e12, **knobs))


def set_task_duration(sb: SandboxServer, seconds: float, rows: int) -> None:
    """Make the next bulk task of `rows` rows finish `seconds` after it is submitted (10% before the first row)."""
    base = 0.1 * seconds
    sb.state.config.task_base_seconds = base
    sb.state.config.row_seconds = (seconds - base) / max(1, rows - 1)


def people(count: int, tag: str, company: str | None = None) -> list[dict[str, Any]]:
    """Distinct input rows (the tag keeps runs apart, so the duplicate guard never reuses an earlier task)."""
    return [
        {"first_name": f"Ann{i}", "last_name": f"Lee-{tag}", "company": company or f"company{i % 97}.com"}
        for i in range(count)
    ]


def ours(base_url: str, state_dir: Path, **env: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=OUR_COMMAND,
        args=[],
        env={"DATABAR_API_KEY": KEY, "DATABAR_BASE_URL": base_url, "DATABAR_MCP_STATE_DIR": str(state_dir), **env},
    )


def _devnull() -> TextIO:
    return open(os.devnull, "w")


@asynccontextmanager
async def connect(params: StdioServerParameters) -> AsyncIterator[Client]:
    """An MCP client session with a server launched over stdio (its stderr discarded)."""
    with _devnull() as devnull:
        async with Client(stdio_client(params, errlog=devnull), read_timeout_seconds=CALL_TIMEOUT_S) as client:
            yield client


def structured(result: CallToolResult) -> dict[str, Any]:
    if result.is_error or result.structured_content is None:
        raise RuntimeError(f"tool failed: {text_of(result)[:500]}")
    return result.structured_content


def text_of(result: CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, TextContent))


def result_chars(result: CallToolResult) -> int:
    """Characters the agent is handed: every text block plus the structured content as JSON."""
    extra = 0 if result.structured_content is None else len(json.dumps(result.structured_content))
    return len(text_of(result)) + extra


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def children_matching(needle: str) -> list[int]:
    """Pids of this process's children whose command line contains `needle` (Linux /proc)."""
    me = str(os.getpid())
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[1] == me and needle in cmdline:
            found.append(int(entry.name))
    return found


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set (VmHWM) in MB, or None where /proc does not say."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
