"""Routes task traffic of both generations to the McpTaskService; everything else passes through untouched.

Middleware rather than extension handlers, for two reasons the SDK imposes: a 2025-11-25 `CreateTaskResult`
would fail the SDK's `CallToolResult` check on `tools/call` (a middleware's own result is trusted), and
`tasks/update` must re-run the original `tools/call` with the user's answer, which only `call_next` with a
rewritten context can do. A request that is not a task request reaches the server exactly as before.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension
from mcp.server.subscriptions import SubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp.types import ServerNotification, TaskStatusNotification, TaskStatusNotificationParams
from mcp_types import INVALID_PARAMS, METHOD_NOT_FOUND, REQUEST_TIMEOUT

from databar_mcp import config
from databar_mcp.core.ledger.backend import LedgerError
from databar_mcp.core.users import current_owner
from databar_mcp.mcp_tasks import wire
from databar_mcp.mcp_tasks.handles import Handle
from databar_mcp.mcp_tasks.routing import check_name_header
from databar_mcp.mcp_tasks.service import TASK_TOOLS, Listener, McpTaskService

if TYPE_CHECKING:
    from databar_mcp.mcp_tasks.listen import TaskListen

logger = logging.getLogger("databar_mcp.mcp_tasks")

MODERN = "2026-07-28"
CLIENT_CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities"
LEGACY_METHODS = frozenset({"tasks/get", "tasks/result", "tasks/list", "tasks/cancel"})
MODERN_METHODS = frozenset({"tasks/get", "tasks/update", "tasks/cancel"})
ACK: dict[str, Any] = {"resultType": "complete"}  # a middleware's own result skips the SDK's envelope pass


class TasksExtension(Extension):
    """Advertises `io.modelcontextprotocol/tasks` (SEP-2663); the middleware does the work."""

    identifier = wire.EXTENSION_ID


def scope_of(ctx: ServerRequestContext[Any, Any]) -> str:
    """Whose tasks these are: the OAuth user when there is one; else the HTTP session; on stdio, the local client.

    Tasks are bound to the authorization context when there is one (as the tasks spec asks), so a user's
    handles answer from any session, replica or restart, and never to another user. Without OAuth, stateless
    HTTP (2026-07-28) has no session and we strip Authorization before the MCP app, so there only the 192-bit
    handle id protects a task (the spec's fallback when no context binding is available).
    """
    if (owner := current_owner()) is not None:
        return "user:" + hashlib.sha256(owner.encode()).hexdigest()[:32]
    headers = cast(Mapping[str, str] | None, getattr(ctx.request, "headers", None))
    if headers is None:
        return "local"
    session = headers.get("mcp-session-id")
    if session:
        return "http-session:" + hashlib.sha256(session.encode()).hexdigest()[:32]
    return "http"


def _params(ctx: ServerRequestContext[Any, Any]) -> dict[str, Any]:
    return dict(ctx.params or {})


def _declares_extension(ctx: ServerRequestContext[Any, Any]) -> bool:
    meta = cast(Mapping[str, Any], _params(ctx).get("_meta") or {})
    declared = cast(Mapping[str, Any], meta.get(CLIENT_CAPABILITIES_KEY) or {})
    extensions = cast(Mapping[str, Any], declared.get("extensions") or {})
    if wire.EXTENSION_ID in extensions:
        return True
    capabilities = ctx.session.client_capabilities
    return bool(capabilities and capabilities.extensions and wire.EXTENSION_ID in capabilities.extensions)


def _without_waiting(params: dict[str, Any]) -> dict[str, Any]:
    """The call as the tool should run it inside a task: submit (or read) and return at once."""
    inner = {k: v for k, v in params.items() if k != "task"}
    inner["arguments"] = {**cast(dict[str, Any], params.get("arguments") or {}), "wait_seconds": 0}
    return inner


class TasksMiddleware:
    """ServerMiddleware: task creation on tools/call, the tasks/* methods, and the capability adverts."""

    def __init__(
        self, service: McpTaskService, task_tools: frozenset[str] = TASK_TOOLS, *, bus: SubscriptionBus | None = None
    ) -> None:
        self.service = service
        self.task_tools = task_tools
        self._bus = bus  # the server's, for the standard kinds in the same stream
        service.on_status = self._status_notification

    @cached_property
    def listen(self) -> TaskListen:
        """The listen streams' server, made on the first 2026 subscriptions/listen (a start serves none)."""
        from databar_mcp.mcp_tasks.listen import TaskListen

        return TaskListen(self.service, self._bus)

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        method, modern = ctx.method, ctx.protocol_version == MODERN
        if ctx.request_id is None:
            return await call_next(ctx)
        if method == "initialize":
            return self._advertise(await call_next(ctx))
        if method == "tools/list" and not modern:
            return self._mark_tools(await call_next(ctx))
        if method == "tools/call":
            params = _params(ctx)
            if not modern and "task" in params:
                return await self._legacy_call(ctx, call_next, params)
            if modern and params.get("name") in self.task_tools and _declares_extension(ctx):
                return await self._modern_call(ctx, call_next, params)
            return await call_next(ctx)
        if modern and method == "subscriptions/listen":
            from databar_mcp.mcp_tasks.listen import requested_task_ids

            task_ids = requested_task_ids(_params(ctx))
            if task_ids is None:
                return await call_next(ctx)  # no tasks named: the SDK's own listen stream
            if not _declares_extension(ctx):
                raise wire.missing_extension()
            return await self.listen.serve(ctx, _params(ctx), task_ids, scope_of(ctx))
        if modern and method in MODERN_METHODS:
            check_name_header(ctx.request, _params(ctx))
            if not _declares_extension(ctx):
                raise wire.missing_extension()
            return await self._modern_method(ctx, call_next, method)
        if not modern and method in LEGACY_METHODS:
            return await self._legacy_method(ctx, method)
        return await call_next(ctx)

    # ---- adverts -----------------------------------------------------------------------------------------

    @staticmethod
    def _advertise(result: HandlerResult) -> HandlerResult:
        if isinstance(result, dict) and isinstance(result.get("capabilities"), dict):
            capabilities = cast(dict[str, Any], result["capabilities"])
            capabilities["tasks"] = {"list": {}, "cancel": {}, "requests": {"tools": {"call": {}}}}
        return result

    def _mark_tools(self, result: HandlerResult) -> HandlerResult:
        if isinstance(result, dict):
            for tool in cast(list[dict[str, Any]], result.get("tools") or []):
                if tool.get("name") in self.task_tools:
                    tool["execution"] = {"taskSupport": "optional"}
        return result

    # ---- 2025-11-25 --------------------------------------------------------------------------------------

    async def _legacy_call(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext, params: dict[str, Any]
    ) -> HandlerResult:
        name = params.get("name")
        if name not in self.task_tools:
            raise MCPError(code=METHOD_NOT_FOUND, message=f"Tool {name!r} does not support task-augmented calls")
        first = cast(dict[str, Any], await call_next(replace(ctx, params=_without_waiting(params))))
        task = cast(Mapping[str, Any], params.get("task") or {})
        ttl = task.get("ttl")
        try:
            handle = await self.service.adopt(
                scope=scope_of(ctx),
                generation="2025-11-25",
                tool=str(name),
                request={k: v for k, v in params.items() if k not in ("task", "_meta")},
                first=first,
                ttl_ms=ttl if isinstance(ttl, int) else None,
            )
        except LedgerError as exc:  # no ledger to keep a handle in: the tool's own answer (its task id in the text)
            logger.warning("no MCP task for %s, the ledger failed (%s): answering with the tool's result", name, exc)
            return first
        meta = cast(Mapping[str, Any], params.get("_meta") or {})
        token = meta.get("progressToken")
        self.service.listeners[handle.handle_id] = Listener(
            session=ctx.session, progress_token=token if isinstance(token, (str, int)) else None
        )
        logger.info("MCP task %s created for %s (Databar task %s)", handle.handle_id[:6], name, handle.databar_task_id)
        return wire.legacy_created(handle)

    async def _handle(self, ctx: ServerRequestContext[Any, Any]) -> Handle:
        task_id = _params(ctx).get("taskId")
        if not isinstance(task_id, str) or not task_id:
            raise MCPError(code=INVALID_PARAMS, message="taskId is required")
        handle = await self.service.store.get(task_id, scope_of(ctx))
        if handle is None:
            logger.info("%s for an unknown MCP task (or another client's)", ctx.method)
            raise wire.not_found()
        if handle.expired(_now()):
            raise wire.expired()
        logger.info("%s MCP task %s: %s", ctx.method, task_id[:6], handle.state)
        return handle

    async def _legacy_method(self, ctx: ServerRequestContext[Any, Any], method: str) -> HandlerResult:
        if method == "tasks/list":
            return await self._legacy_list(ctx)
        handle = await self._handle(ctx)
        if method == "tasks/get":
            return wire.legacy_get(handle)
        if method == "tasks/cancel":
            if handle.terminal:
                status = wire.LEGACY_STATUS[handle.state]
                raise MCPError(
                    code=INVALID_PARAMS, message=f"Cannot cancel task: already in terminal status {status!r}"
                )
            after = await self.service.cancel(handle)
            if not after.terminal:  # a table run: Databar cannot cancel it (its status message says so)
                raise MCPError(code=INVALID_PARAMS, message=f"Cannot cancel task: {after.status_message}")
            if after.state != "cancelled":
                status = wire.LEGACY_STATUS[after.state]
                raise MCPError(code=INVALID_PARAMS, message=f"Cannot cancel task: it ended first ({status!r})")
            return wire.legacy_get(after)
        # tasks/result: what the tool call would have returned, once it has
        final = await self.service.wait_terminal(handle, config.MCP_TASK_RESULT_WAIT_S)
        if not final.terminal or final.result is None:
            raise MCPError(code=REQUEST_TIMEOUT, message="The task is still working; call tasks/result again.")
        if final.state == "protocol_error":
            raise MCPError(code=int(final.result.get("code", -32603)), message=str(final.result.get("message")))
        result = dict(final.result)
        result["_meta"] = {
            **cast(dict[str, Any], result.get("_meta") or {}),
            wire.RELATED_TASK_KEY: {"taskId": final.handle_id},
        }
        return result

    async def _legacy_list(self, ctx: ServerRequestContext[Any, Any]) -> HandlerResult:
        cursor = _params(ctx).get("cursor")
        try:
            offset = 0 if cursor is None else int(str(cursor))
        except ValueError:
            raise MCPError(code=INVALID_PARAMS, message="Invalid cursor") from None
        if offset < 0:
            raise MCPError(code=INVALID_PARAMS, message="Invalid cursor")
        size = config.MCP_TASK_LIST_PAGE
        page = await self.service.store.page(scope_of(ctx), offset=offset, limit=size + 1)
        result: dict[str, Any] = {"tasks": [wire.legacy_task(h) for h in page[:size] if not h.expired(_now())]}
        if len(page) > size:
            result["nextCursor"] = str(offset + size)
        return result

    async def _status_notification(self, handle: Handle) -> None:
        listener = self.service.listeners.pop(handle.handle_id, None)
        if listener is None or handle.generation != "2025-11-25":
            return
        note = TaskStatusNotification(params=TaskStatusNotificationParams.model_validate(wire.legacy_task(handle)))
        await listener.session.send_notification(cast(ServerNotification, note))

    # ---- 2026-07-28 extension ----------------------------------------------------------------------------

    async def _modern_call(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext, params: dict[str, Any]
    ) -> HandlerResult:
        first = cast(dict[str, Any], await call_next(replace(ctx, params=_without_waiting(params))))
        name = str(params.get("name"))
        request = {k: v for k, v in params.items() if k not in ("_meta", "inputResponses", "requestState")}
        if first.get("resultType") == "input_required":
            # The spend confirmation: asked through the task (tasks/get shows it, tasks/update answers it).
            handle = await self.service.awaiting_input(
                scope=scope_of(ctx),
                tool=name,
                request=request,
                input_request={k: first[k] for k in ("inputRequests", "requestState") if k in first},
                ttl_ms=None,
                message="Waiting for the user to confirm the spend.",
            )
            return wire.modern_created(handle)
        structured = cast(dict[str, Any], first.get("structuredContent") or {})
        if first.get("isError") or structured.get("done") is not False:
            return first  # finished already: the plain result, no task needed (the server decides)
        try:
            handle = await self.service.adopt(
                scope=scope_of(ctx), generation=MODERN, tool=name, request=request, first=first, ttl_ms=None
            )
        except LedgerError as exc:  # no ledger to keep a handle in: the tool's own answer (its task id in the text)
            logger.warning("no MCP task for %s, the ledger failed (%s): answering with the tool's result", name, exc)
            return first
        logger.info("MCP task %s created for %s (Databar task %s)", handle.handle_id[:6], name, handle.databar_task_id)
        return wire.modern_created(handle)

    async def _modern_method(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext, method: str
    ) -> HandlerResult:
        handle = await self._handle(ctx)
        if method == "tasks/get":
            if handle.state == "working":
                self.service.watch(handle)  # resumes after a restart in a process that has not watched it yet
            return wire.modern_detailed(handle)
        if method == "tasks/cancel":
            if not handle.terminal:
                await self.service.cancel(handle)
            return dict(ACK)
        return await self._modern_update(ctx, call_next, handle)

    async def _modern_update(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext, handle: Handle
    ) -> HandlerResult:
        responses = cast(Mapping[str, Any], _params(ctx).get("inputResponses") or {})
        outstanding = cast(Mapping[str, Any], (handle.input or {}).get("inputRequests") or {})
        answered = {k: v for k, v in responses.items() if k in outstanding}
        if handle.state != "input_required" or not answered:
            return dict(ACK)  # nothing outstanding matches: ignored, as the spec asks
        retry: dict[str, Any] = {**handle.request, "inputResponses": answered}
        retry["arguments"] = {**cast(dict[str, Any], retry.get("arguments") or {}), "wait_seconds": 0}
        if (state := (handle.input or {}).get("requestState")) is not None:
            retry["requestState"] = state
        if (meta := _params(ctx).get("_meta")) is not None:
            retry["_meta"] = meta
        first = cast(dict[str, Any], await call_next(replace(ctx, method="tools/call", params=retry)))
        if first.get("resultType") == "input_required":
            await self.service.store.update(
                handle.handle_id, input_request={k: first[k] for k in ("inputRequests", "requestState") if k in first}
            )
            self.service.publish(handle.handle_id)
        else:
            await self.service.resumed(handle, first)
        return dict(ACK)


def _now() -> float:
    return time.time()
