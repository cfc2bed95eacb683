"""TaskRunner: submit a billable run exactly once, then wait for it within a deadline.

Polling is adaptive: quick at first (short tasks are detected fast), backing off to a cap; once a bulk task
reports progress counts, the completion rate predicts the end and the next poll is aimed just after it,
so long tasks cost few requests and are still noticed promptly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio

from databar_mcp import config
from databar_mcp.api import DatabarClient
from databar_mcp.api.deadline import bounded
from databar_mcp.api.errors import (
    APIConnectionError,
    APIStatusError,
    DatabarError,
    NotFoundError,
    ResultExpired,
    SubmissionUnknown,
)
from databar_mcp.api.retry import is_refusal
from databar_mcp.core.audit import AuditLog
from databar_mcp.core.fingerprint import fingerprint
from databar_mcp.core.partial_reads import PartialReads
from databar_mcp.core.store import Ledger, Outcome, Submission, TaskIdTaken, TaskNotOurs
from databar_mcp.core.users import UserAccount, UserLimitReached, Users, current_owner

if TYPE_CHECKING:  # a start builds the runner but reads no task: the API models come with the first poll
    from databar_mcp.api.models import Task, TaskHandle

DRAIN_CHECK_S = 0.1  # how soon a wait notices the server is shutting down
logger = logging.getLogger("databar_mcp.core.runner")

ProgressCallback = Callable[["Task"], Awaitable[None]]

# When the end is predictable, never sleep longer than this, so progress keeps flowing to the client.
ETA_POLL_CAP_S = 10.0
# Rows this fast, ending this soon: aim past the end in one poll rather than at the middle of the window.
QUICK_ROWS_S = 0.1
QUICK_FINISH_S = 1.0
QUICK_LATE_S = 0.1
# How many of the latest samples pin down when rows finish (older ones carry the rate's error further).
PHASE_SAMPLES = 3


@dataclass
class PollPlan:
    """Decides how long to sleep before the next poll from what the polls so far have shown.

    Without progress counts it backs off exponentially. With them, the rate since rows started finishing
    predicts the end: `finished` rows done means the last row ends between (total - finished - 1) and
    (total - finished) row intervals from now, so the poll aims at the middle of that window. If it is
    early, the next sample (one row left) aims again half an interval later: detection is always within
    half a row interval of the end, with at most one extra request.
    """

    first_s: float = config.POLL_FIRST_S
    cap_s: float = config.POLL_CAP_S
    growth: float = config.POLL_GROWTH
    min_s: float = config.POLL_MIN_S
    polls: int = 0
    samples: list[tuple[float, int]] = field(default_factory=lambda: list[tuple[float, int]]())

    def observe(self, now: float, task: Task) -> None:
        self.polls += 1
        if task.progress is not None and task.progress.total > 0:
            self.samples.append((now, task.progress.finished))

    def backoff(self) -> float:
        return min(self.cap_s, self.first_s * self.growth ** max(0, self.polls - 1))

    def next_delay(self, total: int | None) -> float:
        eta = self.eta(total)
        rate = self.rate()
        if eta is None or rate is None or self.stalled():
            return min(self.backoff(), self.latest_end(total))
        # Counts are whole rows, so the rate is uncertain by about one row over the rows seen moving; while
        # that makes the aim wider than half a row interval, land safely short and sample again.
        moving = self.samples[-1][1] - next(f for _, f in self.samples if f > 0)
        spread = eta / max(1, moving)
        interval = 1.0 / rate
        if total and interval <= QUICK_ROWS_S and interval + 2 * spread <= QUICK_LATE_S:
            # Rows finish fast and the rate is known well: aiming just past the latest end is late by less than
            # QUICK_LATE_S, and cheaper than aiming at the middle and trying again.
            latest = (total - self.samples[-1][1]) * interval + spread
            if latest <= QUICK_FINISH_S:
                return max(self.min_s, latest)
        if spread > 0.2 / rate:
            eta *= max(0.5, 1 - 2 / max(1, moving))  # at most halfway: each sample widens the baseline
        return max(self.min_s, min(eta, ETA_POLL_CAP_S))

    def latest_end(self, total: int | None) -> float:
        """With one sample showing movement: rows began after the last sample that showed none, so the rate is
        at least f / (t - t_zero) and the task ends at the latest that long from now; never wait past it."""
        moving = [(t, f) for t, f in self.samples if f > 0]
        zeros = [t for t, f in self.samples if f == 0]
        if not total or len(moving) != 1 or not zeros:
            return float("inf")
        (t1, f1), t0 = moving[0], zeros[-1]
        if t1 <= t0:
            return float("inf")
        return max(self.min_s, (total - f1) * (t1 - t0) / f1)

    def stalled(self) -> bool:
        """No row finished for several expected row intervals: the rate says little now; back off instead."""
        rate = self.rate()
        if rate is None or len(self.samples) < 2:
            return False
        (t0, f0), (t1, f1) = self.samples[-2], self.samples[-1]
        return f1 == f0 and (t1 - t0) * rate > 3.0

    def rate(self) -> float | None:
        """Rows finished per second since rows started finishing (None until two samples show movement)."""
        moving = [s for s in self.samples if s[1] > 0]
        if len(moving) < 2:
            return None
        (t0, f0), (t1, f1) = moving[0], moving[-1]
        if f1 <= f0 or t1 <= t0:
            return None
        return (f1 - f0) / (t1 - t0)

    def eta(self, total: int | None) -> float | None:
        """Seconds from the last sample until the middle of the window in which the last row finishes.

        Each sample (t, f) says row f-1 had finished by t and row f had not, so with the row interval known
        the last row's end lies in a window one interval wide; the recent samples together narrow it.
        """
        rate = self.rate()
        if not total or rate is None:
            return None
        interval = 1.0 / rate
        t_last, f_last = self.samples[-1]
        recent = [(t, f) for t, f in self.samples[-PHASE_SAMPLES:] if 0 < f < total]
        if recent:
            # The end time T = c + (total - 1) * interval, where row k ends at c + k * interval.
            low = max(t - f * interval for t, f in recent)
            high = min(t - (f - 1) * interval for t, f in recent)
            if low < high:
                end = (low + high) / 2 + (total - 1) * interval
                return max(0.0, end - t_last)
        return max(0.0, (total - f_last - 0.5) * interval)


def _failure(exc: BaseException, endpoint: str) -> tuple[Outcome, BaseException]:
    """How a failed billable POST is recorded, and what to raise: only a certain refusal is 'rejected'."""
    if isinstance(exc, SubmissionUnknown):
        return "unknown", exc
    if isinstance(exc, APIConnectionError):
        return ("unknown" if exc.reached_server else "rejected"), exc
    if isinstance(exc, APIStatusError) and is_refusal(exc.status_code, exc.body):
        return "rejected", exc
    if isinstance(exc, DatabarError):  # an answer we cannot read as a refusal: the run may have started
        message = f"{exc.message} The run may or may not have started."
        return "unknown", SubmissionUnknown(message, method="POST", path=endpoint)
    return "unknown", exc  # our own bug or a cancellation: the outcome is unknown, so say so in the ledger


class DuplicateRunUnknown(Exception):
    """An identical run was sent earlier and its outcome is unknown: sending again could bill twice."""

    def __init__(self, earlier: Submission) -> None:
        super().__init__("An identical run was submitted earlier and may have started.")
        self.earlier = earlier


@dataclass(frozen=True)
class RunOrder:
    """A billable run as the tool layer hands it over: what to record, and the one call that sends it."""

    tool: str
    endpoint: str
    request: dict[str, Any]  # the body, as fingerprinted
    rows: int
    estimated_credits: float | None
    force: bool
    send: Callable[[], Awaitable[TaskHandle]]


@dataclass(frozen=True)
class Submitted:
    """A run's task: new, or an identical earlier run returned instead of paying again."""

    task_id: str
    status: str
    fingerprint: str
    reused: Submission | None = None
    durable: bool = True  # False: the disk was full; the task id is only in memory (and the log) for now


class TaskRunner:
    """Submits runs exactly once (recorded in the ledger before and after) and waits for tasks."""

    def __init__(
        self,
        client: DatabarClient,
        ledger: Ledger,
        *,
        account: str,
        poll_first_s: float,
        poll_cap_s: float,
        duplicate_window_s: float,
        settle_s: float,
        unseen_grace_s: float = config.TASK_UNSEEN_GRACE_S,
        partial_read_interval_s: float = config.PARTIAL_READ_INTERVAL_S,
        users: Users | None = None,
        audit: AuditLog | None = None,
    ) -> None:
        self._users = users
        self._audit = audit
        self._audited: set[str] = set()  # tasks whose result this process already wrote to the audit log
        self._client = client
        self._ledger = ledger
        self._account = account
        self._poll_first_s = poll_first_s
        self._poll_cap_s = poll_cap_s
        self._window_s = duplicate_window_s
        self._settle_s = settle_s
        self._unseen_grace_s = unseen_grace_s
        self._partial_reads = PartialReads(partial_read_interval_s)
        self.waiting: set[str] = set()  # tasks a tool call is polling right now (the tracker leaves them be)
        # Set on SIGTERM: waits end at once and hand back their task ids, so a replica stops within seconds.
        self.draining = False

    def fingerprint(self, endpoint: str, request: dict[str, Any]) -> str:
        # Each user's runs are their own: an identical run by another user is never handed to them.
        owner = current_owner()
        account = self._account if owner is None else f"{self._account}|user:{owner}"
        return fingerprint(account=account, endpoint=endpoint, body=request)

    def caps(self, estimated_credits: float | None) -> float | None:
        """The calling user's own caps (users file) before a run is claimed: UserLimitReached when the run is over
        the per-call cap, or cannot be priced while a cap applies (a run that cannot be priced is counted at its
        worst case, and that case is unknown). Returns the daily cap the claim must hold the run to."""
        account = self._users.current() if self._users is not None else None
        self._check_per_call(account, estimated_credits)
        daily_cap = None if account is None else account.daily_credit_cap
        if daily_cap is None or estimated_credits == 0:
            return None  # a free run adds nothing to a day's spending
        if estimated_credits is None:
            raise UserLimitReached(
                "the cost of this run cannot be estimated, and your account has a daily credit cap (a run counts "
                "against it at its most, which is unknown here)",
                "daily_credit_cap (users file)",
            )
        return daily_cap

    @staticmethod
    def over_daily_cap(committed: float, estimated_credits: float | None, daily_cap: float) -> UserLimitReached:
        return UserLimitReached(
            f"your runs of the last 24 hours spent or committed {committed:g} credits; this one "
            f"(up to {estimated_credits or 0:g}) would pass your daily cap of {daily_cap:g}",
            "daily_credit_cap (users file)",
        )

    @staticmethod
    def _check_per_call(account: UserAccount | None, estimated_credits: float | None) -> None:
        cap = None if account is None else account.max_credits_per_call
        if cap is None:
            return
        if estimated_credits is None:
            raise UserLimitReached(
                "the cost of this run cannot be estimated, and your account has a per-call credit cap",
                "max_credits_per_call (users file)",
            )
        if estimated_credits > cap:
            raise UserLimitReached(
                f"this run may cost up to {estimated_credits:g} credits, above your limit of {cap:g} per call",
                "max_credits_per_call (users file)",
            )

    async def earlier(self, endpoint: str, request: dict[str, Any]) -> Submission | None:
        """The identical earlier run that submitting now would return instead of sending (read-only)."""
        return await self._ledger.earlier_run(self.fingerprint(endpoint, request), window_s=self._window_s)

    async def submit(self, order: RunOrder) -> Submitted:
        """Claim the run in the ledger (or find the identical earlier one), then send it exactly once.

        A user's own caps (users file) apply on top of the server's spend guard: UserLimitReached."""
        tool, endpoint, request, rows = order.tool, order.endpoint, order.request, order.rows
        estimated_credits, force, send = order.estimated_credits, order.force, order.send
        fp = self.fingerprint(endpoint, request)
        daily_cap = self.caps(estimated_credits)
        deadline = time.monotonic() + bounded(self._settle_s)  # never waited for past the call's deadline
        while True:
            claim = await self._ledger.claim(
                tool=tool,
                endpoint=endpoint,
                fingerprint=fp,
                request=request,
                rows=rows,
                estimated_credits=estimated_credits,
                window_s=self._window_s,
                force=force,
                daily_cap=daily_cap,
            )
            if claim.committed_today is not None:
                assert daily_cap is not None
                raise self.over_daily_cap(claim.committed_today, estimated_credits, daily_cap)
            earlier = claim.earlier
            if earlier is None:
                break
            if earlier.outcome == "accepted" and earlier.task_id is not None:
                self._audit_run(tool, rows, estimated_credits, earlier.task_id, reused=True)
                return Submitted(task_id=earlier.task_id, status="reused", fingerprint=fp, reused=earlier)
            in_flight = time.time() - earlier.created_at < self._settle_s  # older: its sender died mid-send
            if earlier.outcome == "pending" and in_flight and time.monotonic() < deadline:
                await anyio.sleep(0.05)  # an identical run is being sent right now: see how it ends
                continue
            raise DuplicateRunUnknown(earlier)
        assert claim.submission_id is not None
        submitted = await self._send(claim.submission_id, fp, endpoint, send)
        self._audit_run(tool, rows, estimated_credits, submitted.task_id, reused=False)
        return submitted

    def _audit_run(self, tool: str, rows: int, estimated: float | None, task_id: str, *, reused: bool) -> None:
        if self._audit is not None:
            self._audit.run(
                who=current_owner(), tool=tool, rows=rows, estimated_credits=estimated, task_id=task_id, reused=reused
            )

    async def _send(
        self, submission_id: int, fp: str, endpoint: str, send: Callable[[], Awaitable[TaskHandle]]
    ) -> Submitted:
        """The POST and its ledger record, shielded: a cancelled call must not lose a task that may bill."""
        with anyio.CancelScope(shield=True):
            try:
                handle = await send()
            except BaseException as exc:
                outcome, raised = _failure(exc, endpoint)
                await self._ledger.failed(submission_id, outcome, getattr(exc, "message", type(exc).__name__))
                if isinstance(raised, SubmissionUnknown):
                    raised.fingerprint = fp
                if raised is exc:
                    raise
                raise raised from None
            try:
                durable = await self._ledger.accepted(submission_id, handle.task_id, handle.status)
            except TaskIdTaken as exc:
                message = (
                    f"Databar answered this run with task id {handle.task_id}, which it had already given an earlier "
                    f"run (submission {exc.submission_id}): an upstream error. The two were not merged (the earlier "
                    "run's rows stay its own); this run may or may not have started."
                )
                logger.error("run %s: %s", fp[:12], message)
                await self._ledger.failed(submission_id, "unknown", message)
                unknown = SubmissionUnknown(message, method="POST", path=endpoint)
                unknown.fingerprint = fp
                raise unknown from None
            if not durable:
                logger.error("task %s (run %s) is not in the ledger yet: the disk is full", handle.task_id, fp[:12])
            return Submitted(task_id=handle.task_id, status=handle.status, fingerprint=fp, durable=durable)
        raise AssertionError("unreachable: a shielded scope is never cancelled")  # pragma: no cover

    async def poll_partial(self, task_id: str) -> Task | None:
        """One GET of a running task with the rows finished so far (include_partial), recorded like any poll;
        None, and no request, when this task's partial rows were read less than an interval ago."""
        await self._own(task_id)  # another user's task neither spends nor learns anything from the gate
        if not self._partial_reads.allow(task_id):
            return None
        return await self.poll(task_id, include_partial=True)

    async def poll(self, task_id: str, *, include_partial: bool = False) -> Task:
        """One GET of the task, recorded in the ledger (a finished task's data is stored in full).

        A task we submitted that Databar answers 404 for within the grace period is not visible there yet
        (eventual consistency): its last known state is returned, so callers keep waiting and polling.
        A user polls only their own tasks: another user's (or one never run here) is not found.
        """
        from databar_mcp.api.models import Task

        await self._own(task_id)
        try:
            task = await self._client.get_task(task_id, include_partial=include_partial)
        except ResultExpired:
            await self._ledger.observe(Task(task_id=task_id, status="gone"))
            raise
        except NotFoundError:
            record = await self._ledger.read(task_id, with_data=False)
            if record is None or record.submission is None or record.is_terminal:
                raise
            if time.time() - record.submitted_at >= self._unseen_grace_s:
                raise
            logger.info("task %s is not visible at Databar yet (404); still waiting for it", task_id)
            return Task(task_id=task_id, status=record.status, credits_spent=record.credits_spent, visible=False)
        await self.observe(task)
        if task.is_terminal and self._audit is not None and task_id not in self._audited:
            self._audited.add(task_id)
            self._audit.result(
                who=current_owner(), task_id=task_id, status=task.status, credits_spent=task.credits_spent
            )
        return task

    async def cancel(self, task_id: str) -> Task:
        """Cancel the task at Databar and record the state it answered with, as a poll would.

        A user cancels only their own tasks (as they poll only their own): another user's, or one never run
        here, is not found and nothing is sent. Who cancelled is in the audit log.
        """
        await self._own(task_id)
        task = await self._client.cancel_task(task_id)
        if self._audit is not None:
            self._audit.cancel(who=current_owner(), task_id=task_id, status=task.status)
        await self.observe(task)
        return task

    async def _own(self, task_id: str) -> None:
        """NotFoundError unless the calling user owns the task (anyone may act on any task without OAuth)."""
        if current_owner() is not None and await self._ledger.read(task_id, with_data=False) is None:
            raise NotFoundError(f"No task {task_id} of yours is known here.", status_code=404)

    async def observe(self, task: Task) -> None:
        """Record a state Databar showed (a finished task's data in full); a bulk run's task holding another
        run's rows is disowned, never stored (DatabarError)."""
        try:
            await self._ledger.observe(task)
        except TaskNotOurs as exc:
            message = (
                f"Databar's task {task.task_id} holds {exc.seen} row(s) but this run sent {exc.sent}: Databar gave "
                "this run the id of another run's task (an upstream error). Its rows were not stored or returned; "
                "this run's outcome is unknown."
            )
            logger.error("%s", message)
            await self._ledger.disown(task.task_id, message)
            raise DatabarError(message) from None

    async def wait(
        self,
        task_id: str,
        *,
        timeout_s: float,
        first: Task | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Task | None:
        """Poll until the task is terminal or `timeout_s` passes; return the last state seen (None if none).

        Never blocks past the timeout: a poll still in flight at the deadline is abandoned (polls are
        idempotent GETs, so nothing is lost; the task id is already in the ledger).
        """
        plan = PollPlan(first_s=self._poll_first_s, cap_s=max(self._poll_first_s, self._poll_cap_s))
        timeout_s = bounded(timeout_s)  # and never past the tool call's deadline
        deadline = time.monotonic() + max(0.0, timeout_s)
        last = first
        if last is not None:
            plan.observe(time.monotonic(), last)
            if last.is_terminal:
                return last
        self.waiting.add(task_id)
        try:
            with anyio.move_on_after(max(0.0, timeout_s)):
                # The submit reply already said "processing": the first poll waits like any other.
                delay = plan.first_s if last is None else plan.next_delay(self._total(last))
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    await self._sleep_unless_draining(min(delay, remaining))
                    if self.draining:
                        break
                    task = await self.poll(task_id)
                    plan.observe(time.monotonic(), task)
                    last = task
                    if on_progress is not None:
                        await on_progress(task)
                    if task.is_terminal:
                        break
                    delay = plan.next_delay(self._total(task))
        finally:
            self.waiting.discard(task_id)
        return last

    async def _sleep_unless_draining(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        # `draining` is set from a signal handler, where an anyio.Event cannot safely be set: poll the flag.
        while not self.draining and (left := end - time.monotonic()) > 0:  # noqa: ASYNC110
            await anyio.sleep(min(left, DRAIN_CHECK_S))

    @staticmethod
    def _total(task: Task) -> int | None:
        return task.progress.total if task.progress is not None else None
