"""The floor for any server on the MCP Python SDK: a bare `MCPServer` with one tool, served over stdio.

Bench scenarios 2 and 3 spawn it the way they spawn ours (this interpreter, stdio): its spawn → tools/list is
what Python and the SDK cost before any server code runs, and its `get_task` (one GET of the task from the
sandbox, the JSON handed back as structured content) is the least a tool call that reads one task can cost.
Run as a script, never imported by the bench, so nothing of databar_mcp is loaded. Reads DATABAR_API_KEY
and DATABAR_BASE_URL like ours.
"""

from __future__ import annotations

import os
from typing import Any

import httpx2
from mcp.server.mcpserver import MCPServer

server = MCPServer("bare-reference")
_clients: list[httpx2.AsyncClient] = []  # one keep-alive client, opened inside the event loop on first use


def _client() -> httpx2.AsyncClient:
    if not _clients:
        base_url = os.environ.get("DATABAR_BASE_URL", "https://api.databar.ai/v1").rstrip("/") + "/"
        _clients.append(httpx2.AsyncClient(base_url=base_url, headers={"x-apikey": os.environ["DATABAR_API_KEY"]}))
    return _clients[0]


@server.tool()
async def get_task(task_id: str, wait_seconds: float = 0) -> dict[str, Any]:
    """Read one Databar task (its status and rows) as Databar returns it."""
    reply = await _client().get(f"tasks/{task_id}")
    reply.raise_for_status()
    body: dict[str, Any] = reply.json()
    return body


if __name__ == "__main__":
    server.run()
