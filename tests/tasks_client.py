"""Raw MCP task requests through the official Python client (its typed API has no task support yet).

The client validates a `tools/call` answer as a `CallToolResult`, which a `CreateTaskResult` is not, so task
requests go through the session's JSON-RPC dispatcher with the same `_meta` stamp the session applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
from mcp import Client
from mcp.client.extension import ClientExtension, NotificationBinding
from mcp.client.session import ClientSession, IncomingMessage
from mcp.shared.dispatcher import CallOptions
from mcp.types import NotificationParams, SubscriptionsAcknowledgedNotification, TaskStatusNotificationParams
from pydantic import ConfigDict

EXT = "io.modelcontextprotocol/tasks"
MODERN = "2026-07-28"


def _session(client: Client) -> ClientSession:
    return client.session


async def raw(client: Client, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Send one request as the session would (its `_meta` stamp included) and return the raw result."""
    session = _session(client)
    data: dict[str, Any] = {"method": method, "params": dict(params or {})}
    opts: CallOptions = {}
    session._stamp(data, opts)  # pyright: ignore[reportPrivateUsage]
    if method.startswith("tasks/") and "taskId" in data["params"]:
        opts.setdefault("headers", {})["Mcp-Name"] = data["params"]["taskId"]
    dispatcher = session._dispatcher  # pyright: ignore[reportPrivateUsage]
    return await dispatcher.send_raw_request(method, data["params"], opts)


async def poll_until(client: Client, task_id: str, statuses: set[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """tasks/get, honouring the server's poll interval, until the status is one of `statuses` (a task that never
    gets there is caught by the test's own timeout: a busy machine's task takes what it takes)."""
    seen: list[dict[str, Any]] = []
    while True:
        got = await raw(client, "tasks/get", {"taskId": task_id})
        seen.append(got)
        if got["status"] in statuses:
            return got, seen
        interval = got.get("pollInterval", got.get("pollIntervalMs", 100))
        await anyio.sleep(min(float(interval), 1000.0) / 1000.0)


class StatusListener(ClientExtension):
    """Collects `notifications/tasks/status` (the client's core tables drop methods it does not model)."""

    identifier = "io.databar/test-task-status"

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def notifications(self) -> Sequence[NotificationBinding[Any]]:
        async def collect(params: TaskStatusNotificationParams) -> None:
            self.seen.append(params.model_dump(by_alias=True, exclude_none=True))

        return [
            NotificationBinding(
                method="notifications/tasks/status", params_type=TaskStatusNotificationParams, handler=collect
            )
        ]


class TaskNoteParams(NotificationParams):
    model_config = ConfigDict(extra="allow")


class TaskNotes(ClientExtension):
    """Collects `notifications/tasks` frames and listen acknowledgements."""

    identifier = "io.databar/test-task-notes"

    def __init__(self) -> None:
        self.tasks: list[dict[str, Any]] = []
        self.acks: list[dict[str, Any]] = []

    def notifications(self) -> Sequence[NotificationBinding[Any]]:
        async def collect(params: TaskNoteParams) -> None:
            self.tasks.append(params.model_dump(by_alias=True, exclude_none=True))

        return [NotificationBinding(method="notifications/tasks", params_type=TaskNoteParams, handler=collect)]

    async def on_message(self, message: IncomingMessage) -> None:
        if isinstance(message, SubscriptionsAcknowledgedNotification):
            self.acks.append(message.params.model_dump(by_alias=True, exclude_none=True))


async def listen(client: Client, task_ids: list[str], **kinds: Any) -> dict[str, Any]:
    """A raw `subscriptions/listen` naming tasks (the client's listen() has no task filter); returns at its end."""
    return await raw(client, "subscriptions/listen", {"notifications": {"taskIds": task_ids, **kinds}})
