"""The 2026-07-28 HTTP routing header of the task methods: `Mcp-Name` must carry the body's taskId.

SEP-2663 makes tasks/get, tasks/update and tasks/cancel name-bearing, like tools/call (its tool name) and
resources/read (its URI): a load balancer may route on the header alone, so a header that disagrees with the
body (or is missing) would let a request reach a replica, a log line or a rate limit as another task than
the one it acts on. The SDK checks the header only for its own name-bearing methods, so the task methods are
checked here, with the answer the SDK gives for those: -32020 (HTTP 400 on the modern HTTP path).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, cast

from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import MCP_NAME_HEADER, decode_header_value
from mcp_types import HEADER_MISMATCH

TASK_ID_KEY: Final = "taskId"


def check_name_header(request: object, params: Mapping[str, Any]) -> None:
    """Raise -32020 when an HTTP request's `Mcp-Name` (decoded) is not its params' taskId.

    `request` is the transport's request: a Starlette request on HTTP, where the header is required; stdio
    and in-process requests have no headers and nothing to check. A request without a string taskId is
    left to the method's own -32602."""
    headers = cast(Mapping[str, str] | None, getattr(request, "headers", None))
    task_id = params.get(TASK_ID_KEY)
    if headers is None or not isinstance(task_id, str):
        return
    if decode_header_value(headers.get(MCP_NAME_HEADER)) != task_id:
        raise MCPError(code=HEADER_MISMATCH, message="Mcp-Name header does not match the request body's 'taskId'")
