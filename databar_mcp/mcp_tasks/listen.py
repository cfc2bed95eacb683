"""Task status notifications over `subscriptions/listen` (the tasks extension on SEP-2575 listen streams).

The SDK (mcp 2.3.0) serves `subscriptions/listen` with `mcp.server.subscriptions.ListenHandler`, but its event
vocabulary is closed (list_changed of tools/prompts/resources, resources/updated): a `taskIds` filter survives
parsing as an extra key yet is dropped from the acknowledgement, and no task event can ride its bus. So a listen
request that names task ids is served here, using the SDK's public pieces for the standard kinds (the server's
bus, its filter predicate and wire shapes) and the McpTaskService for the tasks; any other listen request reaches
the SDK untouched. Only the listed tasks the caller owns are honoured, and only listeners hear anything.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal, cast

import anyio
import anyio.streams.memory
from mcp.server.context import ServerRequestContext
from mcp.server.subscriptions import SubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import SUBSCRIPTION_ID_META_KEY, ServerEvent, event_matches, event_to_notification
from mcp.types import (
    ServerNotification,
    SubscriptionFilter,
    SubscriptionsAcknowledgedNotification,
    SubscriptionsAcknowledgedNotificationParams,
)
from mcp_types import INTERNAL_ERROR, INVALID_PARAMS, INVALID_REQUEST, Notification

from databar_mcp import config
from databar_mcp.mcp_tasks import wire
from databar_mcp.mcp_tasks.handles import Handle
from databar_mcp.mcp_tasks.service import McpTaskService

logger = logging.getLogger("databar_mcp.mcp_tasks")

TASK_IDS_KEY = "taskIds"


class TasksNotification(Notification[dict[str, Any], Literal["notifications/tasks"]]):
    """The extension's status notification: a DetailedTask, as tasks/get would answer at that moment."""

    method: Literal["notifications/tasks"] = "notifications/tasks"


def requested_task_ids(params: dict[str, Any]) -> list[str] | None:
    """The `taskIds` of a listen request's filter; None when it names none (the SDK serves it then)."""
    notifications = params.get("notifications")
    if not isinstance(notifications, dict):
        return None
    ids = cast(dict[str, Any], notifications).get(TASK_IDS_KEY)
    if ids is None:
        return None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in cast(list[object], ids)):
        raise MCPError(code=INVALID_PARAMS, message="notifications.taskIds must be a list of task ids")
    if len(cast(list[str], ids)) > config.MCP_TASK_LISTEN_MAX_IDS:
        raise MCPError(
            code=INVALID_PARAMS, message=f"notifications.taskIds names more than {config.MCP_TASK_LISTEN_MAX_IDS}"
        )
    return list(dict.fromkeys(cast(list[str], ids)))


def standard_kinds(params: dict[str, Any]) -> SubscriptionFilter:
    """The SDK's kinds of the filter, honoured as the SDK honours them (every one requested, falsy ones dropped)."""
    requested = SubscriptionFilter.model_validate(params.get("notifications") or {})
    return SubscriptionFilter(
        tools_list_changed=True if requested.tools_list_changed else None,
        prompts_list_changed=True if requested.prompts_list_changed else None,
        resources_list_changed=True if requested.resources_list_changed else None,
        resource_subscriptions=list(requested.resource_subscriptions) if requested.resource_subscriptions else None,
    )


def _any(kinds: SubscriptionFilter) -> bool:
    return bool(
        kinds.tools_list_changed
        or kinds.prompts_list_changed
        or kinds.resources_list_changed
        or kinds.resource_subscriptions
    )


def task_notification(handle: Handle, meta: dict[str, Any]) -> ServerNotification:
    params = {k: v for k, v in wire.modern_detailed(handle).items() if k != "resultType"}
    params["_meta"] = {**cast(dict[str, Any], params.get("_meta") or {}), **meta}
    return cast(ServerNotification, TasksNotification(params=params))


class TaskListen:
    """Serves one listen stream per call: the acknowledgement first, then each honoured task's current state,
    then every change the watchers make (and the SDK bus's events the filter asked for). A stream that only
    follows tasks ends gracefully once all of them are terminal."""

    def __init__(self, service: McpTaskService, bus: SubscriptionBus | None) -> None:
        self._service = service
        self._bus = bus
        self._streams = 0

    async def serve(
        self, ctx: ServerRequestContext[Any, Any], params: dict[str, Any], task_ids: list[str], scope: str
    ) -> dict[str, Any]:
        subscription_id = ctx.request_id
        if subscription_id is None:
            raise MCPError(code=INVALID_REQUEST, message="subscriptions/listen requires a request id")
        if self._streams >= config.MCP_TASK_LISTEN_MAX_STREAMS:
            raise MCPError(code=INTERNAL_ERROR, message="Subscription limit reached")
        kinds = standard_kinds(params)
        if _any(kinds) and self._bus is None:
            raise MCPError(code=INTERNAL_ERROR, message="This server has no subscription bus for list changes")
        store = self._service.store
        honored: list[str] = []
        for task_id in task_ids:  # the caller's own 2026 handles only; others are silently not honoured
            handle = await store.get(task_id, scope)
            if handle is not None and handle.generation == "2026-07-28" and not handle.expired(time.time()):
                honored.append(task_id)
        meta: dict[str, Any] = {SUBSCRIPTION_ID_META_KEY: subscription_id}
        uris = frozenset(kinds.resource_subscriptions or ())
        send, recv = anyio.create_memory_object_stream[ServerEvent | str](config.MCP_TASK_LISTEN_BUFFER)

        def offer(item: ServerEvent | str) -> None:
            try:
                send.send_nowait(item)
            except anyio.ClosedResourceError:
                pass
            except anyio.WouldBlock:  # a client that stopped reading: end its stream (it re-listens and refetches)
                logger.warning("listen stream %r backlog full; ending the stream", subscription_id)
                send.close()

        def on_event(event: ServerEvent) -> None:
            if event_matches(kinds, uris, event):
                offer(event)

        unsubscribe_tasks = self._service.subscribe(honored, offer)
        unsubscribe_bus = self._bus.subscribe(on_event) if self._bus is not None and _any(kinds) else None
        self._streams += 1
        try:
            acknowledged = SubscriptionFilter.model_validate(
                {**kinds.model_dump(by_alias=True, exclude_none=True), TASK_IDS_KEY: honored}
            )
            await ctx.session.send_notification(
                SubscriptionsAcknowledgedNotification(
                    params=SubscriptionsAcknowledgedNotificationParams(notifications=acknowledged, _meta=meta)
                ),
                related_request_id=subscription_id,
            )
            open_tasks: set[str] = set()
            for task_id in honored:  # where each stands now: no change between the call and the listen is missed
                handle = await store.by_id(task_id)
                if handle is not None:
                    await ctx.session.send_notification(task_notification(handle, meta), subscription_id)
                    if not handle.terminal:
                        open_tasks.add(task_id)
            if open_tasks or _any(kinds):
                await self._pump(ctx, recv, meta, open_tasks, follow_only=not _any(kinds))
        finally:
            unsubscribe_tasks()
            if unsubscribe_bus is not None:
                unsubscribe_bus()
            self._streams -= 1
            send.close()
            recv.close()
        return {"resultType": "complete", "_meta": meta}

    async def _pump(
        self,
        ctx: ServerRequestContext[Any, Any],
        recv: anyio.streams.memory.MemoryObjectReceiveStream[ServerEvent | str],
        meta: dict[str, Any],
        open_tasks: set[str],
        *,
        follow_only: bool,
    ) -> None:
        subscription_id = ctx.request_id
        async for item in recv:
            if not isinstance(item, str):
                await ctx.session.send_notification(event_to_notification(item, meta), subscription_id)
                continue
            handle = await self._service.store.by_id(item)
            if handle is None:
                continue
            await ctx.session.send_notification(task_notification(handle, meta), subscription_id)
            if handle.terminal:
                open_tasks.discard(item)
                if follow_only and not open_tasks:
                    return  # every task it follows has ended: close the stream gracefully
