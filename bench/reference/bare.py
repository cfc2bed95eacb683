"""The bare-SDK reference: `bare_server.py` (an `MCPServer` with one tool) launched like ours, over stdio."""

from __future__ import annotations

import sys
from pathlib import Path

from mcp import StdioServerParameters

from bench.harness import KEY

NAME = "bare mcp MCPServer, one tool"
SCRIPT = Path(__file__).resolve().parent / "bare_server.py"


def params(base_url: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=sys.executable, args=[str(SCRIPT)], env={"DATABAR_API_KEY": KEY, "DATABAR_BASE_URL": base_url}
    )
