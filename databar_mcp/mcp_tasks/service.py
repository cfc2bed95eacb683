"""McpTaskService: runs MCP tasks on top of the run tools, for both protocol generations.

A task-augmented call runs the real tool once with `wait_seconds=0` (so validation, the spend guard, the
duplicate check and the submit-once ledger all apply unchanged), then the handle waits for the Databar task in
the background with the runner's adaptive polling plan (a table run, which has no task id, by counting the
table's rows: see tables.py). When the Databar task ends, the final result is built
exactly as the tool would have built it and stored in the handle's row before anyone is told. Watchers are
resumed at start-up, so a restart loses no task.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.abc
from mcp.server.session import ServerSession
from mcp.types import (
    CallToolResult,
    ProgressNotification,
    ProgressNotificationParams,
    ProgressToken,
    ServerNotification,
)

from databar_mcp import config
from databar_mcp.api.errors import DatabarError
from databar_mcp.core.users import acting_as
from databar_mcp.mcp_tasks.handles import Generation, Handle, HandleStore, State
from databar_mcp.mcp_tasks.tables import NO_CANCEL, TABLE_TOOLS

if TYPE_CHECKING:
    from databar_mcp.api.models import Task
    from databar_mcp.tools.kit.context import Services

# A start constructs the service and resumes the watchers of unfinished handles; what following a task and
# building its final result need (the runner's polling plan, the table and task kits of the tools) is imported
# by the watcher that needs it, so a start with nothing to resume imports none of it (issue 14).

logger = logging.getLogger("databar_mcp.mcp_tasks")
FILE_JOB_PREFIX = "fj-"  # core.jobs.JOB_PREFIX, not imported: a start imports no job code

# Tools that may answer as a task: the billable bulk runs (Databar tasks, or table runs followed by their rows),
# get_task and wait_table_enrichment when they would wait.
DATABAR_TASK_TOOLS: frozenset[str] = frozenset(
    {"run_bulk_waterfall", "run_bulk_enrichment", "run_bulk_flow", "get_task"}
)
TASK_TOOLS: frozenset[str] = DATABAR_TASK_TOOLS | TABLE_TOOLS


def clamp_ttl(requested: int | None) -> int:
    if requested is None:
        return config.MCP_TASK_TTL_DEFAULT_MS
    return max(config.MCP_TASK_TTL_MIN_MS, min(int(requested), config.MCP_TASK_TTL_MAX_MS))


def poll_ms(seconds: float) -> int:
    if math.isinf(seconds) or math.isnan(seconds):
        return config.MCP_TASK_POLL_MAX_MS
    return max(config.MCP_TASK_POLL_MIN_MS, min(int(seconds * 1000), config.MCP_TASK_POLL_MAX_MS))


def progress_of(task: Task) -> tuple[dict[str, Any] | None, str | None]:
    p = task.progress
    if p is None or p.total <= 0:
        return None, None
    progress = {"total": p.total, "finished": p.finished, "found": p.completed, "credits_spent": task.credits_spent}
    return progress, f"{p.finished:,}/{p.total:,} rows, {p.completed:,} found so far"


def still_running(tool: str, first: dict[str, Any]) -> bool:
    """Whether the tool's immediate (wait 0) answer leaves work to follow: a Databar task, or a table's rows."""
    structured = cast(dict[str, Any], first.get("structuredContent") or {})
    if first.get("isError") or structured.get("done") is not False:
        return False
    task_id = structured.get("task_id")
    # a file job (issue 25) is no Databar task to follow: its answer names the same call that continues it
    return tool in TABLE_TOOLS or (isinstance(task_id, str) and not task_id.startswith(FILE_JOB_PREFIX))


def follows(handle: Handle) -> bool:
    """Whether a watcher can follow the handle: it waits on a Databar task or on a table run."""
    return handle.databar_task_id is not None or handle.tool in TABLE_TOOLS


@dataclass
class Listener:
    """Where 2025-11-25 notifications for a handle go: the creating connection, while it lives."""

    session: ServerSession
    progress_token: ProgressToken | None


StatusCallback = Callable[[Handle], Awaitable[None]]
Fit = Callable[[CallToolResult], CallToolResult]


class McpTaskService:
    """Owns every MCP task's lifecycle; the wire modules only translate."""

    def __init__(self) -> None:
        self._svc: Services | None = None
        self._group: anyio.abc.TaskGroup | None = None
        self._finished: dict[str, anyio.Event] = {}
        self._watchers: dict[str, anyio.CancelScope] = {}
        self._cancel_refused: set[str] = set()  # table handles whose cancel Databar cannot honour
        self._subscribers: dict[str, dict[object, Callable[[str], None]]] = {}  # subscriptions/listen streams
        self.listeners: dict[str, Listener] = {}
        self.on_status: StatusCallback | None = None  # set by the 2025-11-25 wire: notifications/tasks/status
        # the server's result fitting, so a final result passes the same budget guarantee as a tool's answer
        self.fit: Fit = lambda result: result

    @property
    def services(self) -> Services:
        if self._svc is None:
            raise RuntimeError("the task service is not running (the server lifespan starts it)")
        return self._svc

    @property
    def store(self) -> HandleStore:
        return HandleStore(self.services.ledger)

    async def serve(
        self, svc: Services, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run for the server's lifetime: resume the watchers of unfinished handles, then host new ones."""
        async with anyio.create_task_group() as group:
            self._svc, self._group = svc, group
            try:
                for handle in await self.store.unfinished():
                    if handle.state == "working" and follows(handle):
                        self.watch(handle)
                task_status.started()
                await anyio.sleep_forever()
            finally:
                self._group = None

    # ---- subscribers (subscriptions/listen) ---------------------------------------------------------------

    def subscribe(self, handle_ids: list[str], tell: Callable[[str], None]) -> Callable[[], None]:
        """Call `tell(handle_id)` whenever one of these handles changes; returns the unsubscribe."""
        token = object()
        for handle_id in handle_ids:
            self._subscribers.setdefault(handle_id, {})[token] = tell

        def unsubscribe() -> None:
            for handle_id in handle_ids:
                listeners = self._subscribers.get(handle_id)
                if listeners is not None:
                    listeners.pop(token, None)
                    if not listeners:
                        del self._subscribers[handle_id]

        return unsubscribe

    def publish(self, handle_id: str) -> None:
        """The handle changed: tell its listen streams (nothing is read or sent when nobody listens)."""
        for tell in list(self._subscribers.get(handle_id, {}).values()):
            try:
                tell(handle_id)
            except Exception:  # one broken stream must not stop a watcher
                logger.exception("listen stream for %s failed", handle_id)

    # ---- creating ----------------------------------------------------------------------------------------

    async def adopt(
        self,
        *,
        scope: str,
        generation: Generation,
        tool: str,
        request: dict[str, Any],
        first: dict[str, Any],
        ttl_ms: int | None,
    ) -> Handle:
        """Make a handle from the tool's immediate (wait 0) result: finished already, or waiting on its task."""
        structured = cast(dict[str, Any], first.get("structuredContent") or {})
        if first.get("isError"):
            state, dbid, message = "tool_error", cast(str | None, structured.get("task_id")), "The tool failed."
            result: dict[str, Any] | None = first
        elif still_running(tool, first):
            # a table run keeps its immediate answer (which run, reused or not) until the final result replaces it
            state, dbid = "working", cast(str | None, structured.get("task_id"))
            result = first if tool in TABLE_TOOLS else None
            message = str(structured.get("message") or "Submitted; running at Databar.")
        else:
            state, dbid, message, result = "completed", cast(str | None, structured.get("task_id")), "Done.", first
        handle = await self.store.create(
            scope=scope,
            generation=generation,
            tool=tool,
            request=request,
            databar_task_id=dbid,
            state=cast(State, state),
            status_message=message,
            poll_ms=poll_ms(self.services.settings.poll_first_s),
            ttl_ms=clamp_ttl(ttl_ms),
            result=result,
        )
        if state == "working":
            self.watch(handle)
        return handle

    async def awaiting_input(
        self,
        *,
        scope: str,
        tool: str,
        request: dict[str, Any],
        input_request: dict[str, Any],
        ttl_ms: int | None,
        message: str,
    ) -> Handle:
        """A 2026 handle that must ask the user before it may spend (nothing was sent yet)."""
        return await self.store.create(
            scope=scope,
            generation="2026-07-28",
            tool=tool,
            request=request,
            databar_task_id=None,
            state="input_required",
            status_message=message,
            poll_ms=config.MCP_TASK_POLL_MIN_MS * 4,
            ttl_ms=clamp_ttl(ttl_ms),
            input_request=input_request,
        )

    async def resumed(self, handle: Handle, first: dict[str, Any]) -> None:
        """The tool ran after the user answered: the handle now waits on its task (or is finished)."""
        structured = cast(dict[str, Any], first.get("structuredContent") or {})
        if still_running(handle.tool, first):
            await self.store.update(
                handle.handle_id,
                state="working",
                databar_task_id=cast(str | None, structured.get("task_id")),
                result=first if handle.tool in TABLE_TOOLS else None,
                status_message=str(structured.get("message") or "Submitted; running at Databar."),
                poll_ms=poll_ms(self.services.settings.poll_first_s),
                clear_input=True,
            )
            self.publish(handle.handle_id)
            updated = await self.store.by_id(handle.handle_id)
            if updated is not None:
                self.watch(updated)
            return
        state: State = "tool_error" if first.get("isError") else "completed"
        await self.finish(handle.handle_id, state, first, "The tool failed." if state == "tool_error" else "Done.")

    # ---- watching ----------------------------------------------------------------------------------------

    def watch(self, handle: Handle) -> None:
        """Start waiting on the handle's Databar task, once per process."""
        if self._group is None or handle.handle_id in self._watchers or not follows(handle):
            return
        scope = anyio.CancelScope()
        self._watchers[handle.handle_id] = scope
        self._group.start_soon(self._watch, handle, scope)

    async def _watch(self, handle: Handle, scope: anyio.CancelScope) -> None:
        try:
            with scope:
                if handle.tool in TABLE_TOOLS:  # keyed by tool name: the tools know nothing of tasks
                    await self._follow_table(handle)
                else:
                    await self._follow(handle)
        except Exception:  # a crash here must not end the server; the handle stays "working" and resumes
            logger.exception("watching MCP task %s failed", handle.handle_id)
        finally:
            self._watchers.pop(handle.handle_id, None)

    async def _follow(self, handle: Handle) -> None:
        from databar_mcp.api.errors import NotFoundError, ResultExpired
        from databar_mcp.api.models import Task
        from databar_mcp.core.ledger.store import UNKNOWN_TO_DATABAR

        svc = self.services
        dbid = handle.databar_task_id
        assert dbid is not None
        plan = svc.runner.plan_for(dbid)  # the run's own plan: aimed from its sending and its kind's last pace
        delay = max(0.0, plan.next_at(None, time.monotonic()) - time.monotonic())
        ttl_end = handle.created_at + (handle.ttl_ms or config.MCP_TASK_TTL_MAX_MS) / 1000.0
        svc.runner.waiting.add(dbid)
        # Watchers run outside any request: poll as the run's owner (their Databar key, their tasks only).
        record = await svc.ledger.read(dbid, with_data=False)
        owner = record.submission.owner if record is not None and record.submission is not None else None
        try:
            while time.time() < ttl_end:
                await anyio.sleep(delay)
                try:
                    with acting_as(owner):
                        task = await svc.runner.poll(dbid)  # a sample of the plan (its end settles it)
                except ResultExpired:
                    task = Task(task_id=dbid, status="gone")
                except NotFoundError:
                    task = Task(task_id=dbid, status=UNKNOWN_TO_DATABAR)
                except DatabarError as exc:  # transient: keep the plan's pace and try again
                    logger.info("polling %s for MCP task failed: %s", dbid, type(exc).__name__)
                    delay = min(plan.cap_s, max(delay * 2, plan.first_s))
                    continue
                if task.is_terminal:
                    svc.runner.settled(dbid, task)  # gone or unknown to Databar: its plan is done too
                    with acting_as(owner):  # its result (and a cut result kept whole) is the owner's
                        await self._settle(handle, task)
                    return
                now = time.monotonic()
                plan = svc.runner.plan_for(dbid)  # the one poll() fed (afresh, were it forgotten among many)
                delay = max(0.0, plan.next_at(task.progress.total if task.progress else None, now) - now)
                progress, message = progress_of(task)
                await self.store.update(
                    handle.handle_id, progress=progress, status_message=message, poll_ms=poll_ms(delay)
                )
                self.publish(handle.handle_id)
                if task.progress is not None and task.progress.total > 0:
                    await self._notify_progress(handle.handle_id, task.progress.finished, task.progress.total, message)
        finally:
            svc.runner.waiting.discard(dbid)

    async def _follow_table(self, handle: Handle) -> None:
        """Count the table's rows still processing until none are, then report as the tool would have."""
        from databar_mcp.core.table_runs import wait_for_rows
        from databar_mcp.mcp_tasks.tables import table_follow, table_progress
        from databar_mcp.tools.kit.guard import guarded
        from databar_mcp.tools.kit.table_kit import reader_of, report_for

        svc = self.services
        follow = await table_follow(svc, handle)
        scope = follow.scope
        ttl_end = handle.created_at + (handle.ttl_ms or config.MCP_TASK_TTL_MAX_MS) / 1000.0

        last_read = [time.monotonic()]

        async def progress(done: int, total: int) -> None:
            # wait_for_rows paces its reads with the runner's plan: the pause it just took is the poll interval
            now, paused = time.monotonic(), time.monotonic() - last_read[0]
            last_read[0] = now
            message = self._table_message(handle.handle_id, f"{done:,}/{total:,} rows of {scope.name} done.")
            await self.store.update(
                handle.handle_id, progress=table_progress(done, total), status_message=message, poll_ms=poll_ms(paused)
            )
            self.publish(handle.handle_id)
            await self._notify_progress(handle.handle_id, done, total, message)

        left: int | None = None
        while left != 0 and time.time() < ttl_end:
            try:
                with acting_as(follow.owner):
                    left = await wait_for_rows(
                        reader_of(svc),
                        scope,
                        timeout_s=max(0.0, ttl_end - time.time()),
                        poll_first_s=svc.settings.poll_first_s,
                        poll_cap_s=svc.settings.poll_cap_s,
                        on_progress=progress,
                    )
            except DatabarError as exc:  # transient: wait the plan's longest pause and count again
                logger.info("reading table %s for MCP task failed: %s", scope.table_uuid, type(exc).__name__)
                await anyio.sleep(max(svc.settings.poll_first_s, svc.settings.poll_cap_s))
        if left != 0:
            return  # the handle's TTL ran out first; it answers "expired" from now on
        with acting_as(follow.owner):
            final = await guarded(
                report_for(svc, scope, wait_s=0.0, processing=0, estimate=follow.estimate, reused=follow.reused)
            )
            result = self.fit(final)  # a cut result kept whole is the owner's
        dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        view = cast(dict[str, Any], dumped.get("structuredContent") or {})
        if result.is_error:
            state: State = "tool_error"
            message = "The table run's final counts could not be read."
        else:
            state = "completed"
            message = f"Done: {view.get('found', '?')} of {view.get('rows_in_run', '?')} rows found."
        done = int(view.get("rows_done") or 0)
        await self.store.update(handle.handle_id, progress=table_progress(done, int(view.get("rows_in_run") or done)))
        await self.finish(handle.handle_id, state, dumped, self._table_message(handle.handle_id, message))

    def _table_message(self, handle_id: str, message: str) -> str:
        return f"{message} {NO_CANCEL}" if handle_id in self._cancel_refused else message

    async def _settle(self, handle: Handle, task: Task) -> None:
        """The Databar task ended: store the tool's final result, then mark the handle terminal."""
        from databar_mcp.tools.kit.guard import guarded
        from databar_mcp.tools.kit.task_kit import deliver

        svc = self.services
        result = self.fit(await guarded(deliver(svc, task, offset=0, limit=None), task_id=task.task_id))
        dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        progress, _ = progress_of(task)
        if result.is_error:
            state: State = "tool_error"
        elif task.status == "cancelled":
            state = "cancelled"
        else:
            state = "completed"
        message = {
            "tool_error": "The Databar task ended without a usable result.",
            "cancelled": "Cancelled at Databar; rows finished before the cancel are in the result.",
            "completed": f"Done: {progress['found'] if progress else '?'} of "
            f"{progress['total'] if progress else '?'} rows found.",
        }[state]
        if progress is not None:
            await self.store.update(handle.handle_id, progress=progress)
        await self.finish(handle.handle_id, state, dumped, message)

    async def finish(self, handle_id: str, state: State, result: dict[str, Any], message: str) -> None:
        """Store the final result and state, wake tasks/result, then tell the client (best effort, bounded)."""
        changed = await self.store.update(
            handle_id, state=state, result=result, status_message=message, clear_input=True
        )
        self._event(handle_id).set()
        if changed:
            self.publish(handle_id)
        final = await self.store.by_id(handle_id) if changed else None
        if final is not None and self.on_status is not None:
            with anyio.move_on_after(config.MCP_TASK_NOTIFY_TIMEOUT_S):
                try:
                    await self.on_status(final)
                except Exception:  # a gone client must not stop the bookkeeping
                    logger.debug("status notification for %s not delivered", handle_id, exc_info=True)

    async def _notify_progress(self, handle_id: str, done: int, total: int, message: str | None) -> None:
        listener = self.listeners.get(handle_id)
        if listener is None or listener.progress_token is None:
            return
        note = ProgressNotification(
            params=ProgressNotificationParams(
                progress_token=listener.progress_token, progress=done, total=total, message=message
            )
        )
        with anyio.move_on_after(config.MCP_TASK_NOTIFY_TIMEOUT_S):  # a stalled stream must not stall the watcher
            try:
                await listener.session.send_notification(cast(ServerNotification, note))
            except Exception:  # the client may be gone; the handle keeps the progress for tasks/get
                logger.debug("progress for %s not delivered", handle_id, exc_info=True)

    def _event(self, handle_id: str) -> anyio.Event:
        event = self._finished.get(handle_id)
        if event is None:
            event = self._finished[handle_id] = anyio.Event()
        return event

    # ---- reading and cancelling --------------------------------------------------------------------------

    async def wait_terminal(self, handle: Handle, timeout_s: float) -> Handle:
        """Block until the handle is terminal (tasks/result), at most `timeout_s`; returns its latest state."""
        if handle.terminal:
            return handle
        if handle.state == "working":
            self.watch(handle)  # after a restart the watcher may not be running in this process yet
        event = self._event(handle.handle_id)
        with anyio.move_on_after(timeout_s):
            while True:
                current = await self.store.by_id(handle.handle_id)
                if current is None or current.terminal:
                    break
                with anyio.move_on_after(1.0):  # another process may finish it: look at the ledger now and then
                    await event.wait()
        return await self.store.by_id(handle.handle_id) or handle

    async def cancel(self, handle: Handle) -> Handle:
        """Cancel at Databar (refunding unfinished work) and mark the handle cancelled."""
        svc = self.services
        if handle.tool in TABLE_TOOLS and handle.state == "working":
            # Databar cannot stop a table run: say so, and keep following the rows (cancel is cooperative)
            self._cancel_refused.add(handle.handle_id)
            await self.store.update(handle.handle_id, status_message=NO_CANCEL)
            self.publish(handle.handle_id)
        elif handle.databar_task_id is None:
            await self.finish(handle.handle_id, "cancelled", _cancelled_before_start(), "Cancelled before it started.")
        else:
            try:
                task = await svc.tasks.cancel(handle.databar_task_id)  # recorded as a poll's would be
            except DatabarError as exc:  # finished meanwhile (409) or unreachable: read where it stands
                logger.info("cancel of %s at Databar failed: %s", handle.databar_task_id, type(exc).__name__)
                task = await svc.runner.poll(handle.databar_task_id)
            scope = self._watchers.get(handle.handle_id)
            if scope is not None:
                scope.cancel()
            if task.is_terminal:
                await self._settle(handle, task)
        return await self.store.by_id(handle.handle_id) or handle


def _cancelled_before_start() -> dict[str, Any]:
    return {
        "content": [{"type": "text", "text": "Cancelled before anything was sent to Databar; nothing was spent."}],
        "isError": True,
    }
