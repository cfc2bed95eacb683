"""TaskRunner: submit a billable run exactly once, then wait for it within a deadline.

Polling is adaptive: quick at first (short tasks are detected fast), backing off to a cap; once a bulk task
reports progress counts, the completion rate predicts the end and the next poll is aimed just after it,
so long tasks cost few requests and are still noticed promptly.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

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
from databar_mcp.core import pace
from databar_mcp.core.audit import AuditLog
from databar_mcp.core.fingerprint import fingerprint
from databar_mcp.core.ledger.store import Ledger, Outcome, Submission, TaskIdTaken, TaskNotOurs
from databar_mcp.core.pace import Pace, Sample, Window
from databar_mcp.core.partial_reads import PartialReads
from databar_mcp.core.users import UserAccount, UserLimitReached, Users, current_owner

if TYPE_CHECKING:  # a start builds the runner but reads no task: the API models come with the first poll
    from databar_mcp.api.models import Task, TaskHandle

DRAIN_CHECK_S = 0.1  # how soon a wait notices the server is shutting down
logger = logging.getLogger("databar_mcp.core.runner")

ProgressCallback = Callable[["Task"], Awaitable[None]]

# When the end is predictable, never sleep longer than this, so progress keeps flowing to the client.
ETA_POLL_CAP_S = 10.0
# Once the window in which the last row ends is this narrow, poll at its latest edge: detection is then at most
# this late, in one request (the benchmarks ask for a median under 50 ms).
AIM_TOLERANCE_S = 0.08
# The first task of its kind is followed more closely (a request or two more): the pace it leaves predicts the
# next one's end, whose first poll then lands this close after it.
LEARNING_TOLERANCE_S = 0.03
# A long task has requests to spare against a fixed poller's (Databar's clients poll every REFERENCE_POLL_S): its
# final approach halves the window down to this, spending some of them, so its end is seen sooner.
FINE_TOLERANCE_S = 0.03
REFERENCE_POLL_S = 2.0
# Polls the fine approach keeps in reserve beyond its halvings (the last one, at the window's edge, and one spare).
FINE_RESERVE = 2
SOONEST_S = 0.005  # the least gap between two polls (once; otherwise POLL_MIN_S)
STEPS_MAX = 30  # polls a window may be stepped through at the tolerance before it is cut in thirds instead
# A prior's pace predicts a task up to this many times slower or faster; beyond, the task's own counts do.
STRETCH_TRUSTED = 2.0
PLANS_KEPT = 1_000  # running tasks' plans and kinds' paces kept in memory (the oldest forgotten first)


def _is_rows(value: object) -> bool:
    return isinstance(value, list) and any(isinstance(item, dict) for item in cast("list[object]", value))


def kind_of(endpoint: str, request: dict[str, Any]) -> str:
    """Runs of one kind share a pace: the same endpoint and options (the provider mix), whatever the rows."""
    options: dict[str, object] = {k: v for k, v in request.items() if not _is_rows(v)}
    return endpoint + " " + json.dumps(options, sort_keys=True, default=str)


@dataclass
class PollPlan:
    """Decides how long to sleep before the next poll from what the polls so far have shown.

    Without progress counts (and no earlier task of the kind to go by) it backs off exponentially. With them,
    core.pace bounds the time the last row ends; while that window is wider than AIM_TOLERANCE_S the next poll
    lands a whole number of row intervals before its middle (the count there halves the window without risking
    a late detection), and once it is narrow the poll lands on its latest edge. A prior (an earlier task's
    pace) aims the very first poll at the predicted end, so a task like the last one costs one request.
    """

    first_s: float = config.POLL_FIRST_S
    cap_s: float = config.POLL_CAP_S
    growth: float = config.POLL_GROWTH
    min_s: float = config.POLL_MIN_S
    start: float | None = None  # when the task was sent (the plan's clock); None: unknown (a restart)
    prior: Pace | None = None  # an earlier task of the same kind
    rows: int | None = None  # the task's size, when known before its first progress count
    kind: str | None = None  # what kind of run (runner.kind_of): whose pace this task's will predict
    polls: int = 0
    samples: list[Sample] = field(default_factory=lambda: list[Sample]())
    last_t: float | None = None

    def observe(self, now: float, task: Task, *, asked: float | None = None) -> None:
        """A poll's answer, received `now`; `asked`: when the poll was sent (the count was taken in between)."""
        self.polls += 1
        self.last_t = now
        if task.progress is not None and task.progress.total > 0:
            origin = self.start or 0.0
            sent = None if asked is None else asked - origin
            self.samples.append(Sample(now - origin, task.progress.finished, task.is_terminal, sent))

    def backoff(self) -> float:
        return min(self.cap_s, self.first_s * self.growth ** max(0, self.polls - 1))

    def next_delay(self, total: int | None) -> float:
        """Seconds from the latest poll (or the sending, before any) until the next one."""
        total = total or self.rows
        target = self.target(total) if total else None
        if target is None:
            return self.backoff()
        delay = min(target - self._now() - self.lead(), ETA_POLL_CAP_S)
        # The end predicted within min_s of the last poll: aim there, once; a poll that came that soon already
        # (the prediction was early) is followed at min_s again.
        soon = len(self.samples) >= 2 and self.samples[-1].t - self.samples[-2].t < self.min_s
        return max(self.min_s if soon else SOONEST_S, delay)

    def lead(self) -> float:
        """How long before the API counts a poll it is sent: half the quickest round trip seen (the wire's part;
        a slow answer is the server's work, after the count). A poll aimed at t is sent this much earlier."""
        trips = [s.t - s.asked for s in self.samples if s.asked is not None and s.t >= s.asked]
        return min(trips) / 2 if trips else 0.0

    def next_at(self, total: int | None, now: float) -> float:
        """When (on the plan's clock, time.monotonic) to poll next; `now` anchors a plan with no poll yet."""
        anchor = self.last_t if self.last_t is not None else (self.start if self.start is not None else now)
        return anchor + self.next_delay(total)

    def _now(self) -> float:
        return 0.0 if self.last_t is None else self.last_t - (self.start or 0.0)

    def target(self, total: int) -> float | None:
        """When (on the samples' clock) the next poll should happen; None: nothing predicts the end yet."""
        now = self._now()
        sent = self.start is not None
        moving = any(s.finished > 0 for s in self.samples)
        if sent and self.prior is not None and not moving:
            guess = self.prior.end(total) + min(self.prior.spread_s, AIM_TOLERANCE_S / 2)
            if guess >= now + self.min_s:
                return guess
        bounds = self.window(total)
        if bounds is None:  # the counts fit no steady pace (a stall, a burst): the plain rate's estimate
            return self._by_rate(total, now)
        if math.isinf(bounds.hi):
            return None
        lo, hi = max(bounds.lo, now), bounds.hi
        tolerance = self.tolerance(lo, hi)
        if hi - lo <= tolerance:
            return hi
        return self._splitting(lo, hi, now, bounds.row_s, tolerance)

    def tolerance(self, lo: float = 0.0, hi: float = 0.0) -> float:
        """How late the end (now known to lie in [lo, hi]) may be seen: closer for the first task of a kind (its
        pace is learnt), and for a task long enough that a fixed poller would still spend more requests than
        halving the window down to FINE_TOLERANCE_S takes."""
        if self.fine(lo, hi):
            return FINE_TOLERANCE_S
        return AIM_TOLERANCE_S if self.prior is not None or self.kind is None else LEARNING_TOLERANCE_S

    def fine(self, lo: float, hi: float) -> bool:
        """Whether the final approach can afford to halve the window down to FINE_TOLERANCE_S."""
        coarse = AIM_TOLERANCE_S if self.prior is not None or self.kind is None else LEARNING_TOLERANCE_S
        return coarse > FINE_TOLERANCE_S and self.spare_polls(lo) >= self.halvings(hi - lo, FINE_TOLERANCE_S)

    def reference_polls(self, end: float) -> int:
        """Polls a fixed REFERENCE_POLL_S poller makes on a task ending at `end` (on the plan's clock)."""
        origin = 0.0 if self.start is not None or not self.samples else self.samples[0].t
        return max(1, math.ceil((end - origin) / REFERENCE_POLL_S))

    def spare_polls(self, end: float) -> float:
        """Polls a fixed REFERENCE_POLL_S poller would make beyond ours, were the task to end at `end`, less
        FINE_RESERVE (the edge poll and a spare)."""
        return self.reference_polls(end) - self.polls - FINE_RESERVE

    @staticmethod
    def halvings(width: float, tolerance: float) -> int:
        """Polls that halve a window of `width` to `tolerance` (one bit each)."""
        return max(0, math.ceil(math.log2(max(width, tolerance) / tolerance)))

    def window(self, total: int) -> Window | None:
        """Where the last row's end lies (the prior's stretched window when the prior still fits)."""
        if not any(s.finished > 0 or s.done for s in self.samples):
            return None
        fitted = self._stretched(total)
        if fitted is not None:
            return fitted
        return pace.window(self.samples, total, sent=self.start is not None)

    def _stretched(self, total: int) -> Window | None:
        """The prior's window stretched to this task, while the stretch is within STRETCH_TRUSTED: a prior's
        shape (how its first row's wait compares to its row interval) is known only so well, and stretching it
        many times over stretches its error too (a 0.5 s task's put a 120 s task's end a second late)."""
        if self.start is None or self.prior is None:
            return None
        fitted = pace.stretched(self.samples, total, self.prior)
        if fitted is None:
            return None
        factor = (fitted.lo + fitted.hi) / 2 / max(self.prior.end(total), 1e-9)
        return fitted if 1 / STRETCH_TRUSTED <= factor <= STRETCH_TRUSTED else None

    def _splitting(self, lo: float, hi: float, now: float, row: float, tolerance: float) -> float:
        """A poll whose count halves the window: at its middle's phase, a whole number of rows earlier (so
        a done task is never seen late by it).

        Each later halving needs an earlier row again (up to a row after this poll, and polls come at least min_s
        apart): in the fine approach the first lands early enough to leave that much for each one still to come."""
        aim = (lo + hi) / 2
        fine = self.fine(lo, hi)
        reserve = self.halvings(hi - lo, tolerance) * max(row, self.min_s) if fine else 0.0
        latest = lo + tolerance - reserve
        if row > 0:
            while aim > latest and aim - row >= now + self.min_s:
                aim -= row
        # No earlier row to sample at (the last row's own interval): step through the window by the tolerance
        # (never late by more), or, were that too many polls, by a third of it at a time.
        step = tolerance if hi - lo <= STEPS_MAX * tolerance else (hi - lo) / 3
        aim = min(aim, lo + step) if aim > lo else aim
        if aim < now + self.min_s and aim + self.min_s > hi:
            return hi  # a poll that soon is followed min_s later at the earliest, past the edge: poll at the edge
        return aim

    def _by_rate(self, total: int, now: float) -> float | None:
        rate = self.rate()
        if rate is None or not self.samples:
            return None
        return now + (total - self.samples[-1].finished) / rate

    def rate(self) -> float | None:
        """Rows finished per second between the first and the latest poll that showed rows finishing."""
        moving = [s for s in self.samples if s.finished > 0]
        if len(moving) < 2 or moving[-1].finished <= moving[0].finished or moving[-1].t <= moving[0].t:
            return None
        return (moving[-1].finished - moving[0].finished) / (moving[-1].t - moving[0].t)

    def learned(self, total: int | None) -> Pace | None:
        """The pace this (finished) task ran at, for predicting the next of its kind."""
        if not total or self.start is None or not any(s.done for s in self.samples):
            return None
        if self.prior is not None:
            if not any(s.finished > 0 and not s.done for s in self.samples):
                return self.prior  # it found the task done at the predicted end: nothing new was learnt
            fitted = self._stretched(total)
            if fitted is not None:  # the prior's shape still fits: keep it, at this task's speed
                factor = (fitted.lo + fitted.hi) / 2 / max(self.prior.end(total), 1e-9)
                spread = (fitted.hi - fitted.lo) / 2
                return Pace(base_s=self.prior.base_s * factor, row_s=self.prior.row_s * factor, spread_s=spread)
        return pace.learned(self.samples, total)


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
        # Each running task's polling plan outlives one tool call (the next get_task goes on from its samples),
        # and each kind of run (endpoint and provider mix) remembers the pace its last task ran at.
        self._plans: OrderedDict[str, PollPlan] = OrderedDict()
        self._paces: OrderedDict[str, Pace] = OrderedDict()
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
        # The task's clock starts when Databar took the POST: between its sending and its answer (not the ledger
        # write after it, whose time would skew every prediction from this start).
        sent: list[float] = []

        async def timed() -> TaskHandle:
            sent.append(time.monotonic())
            handle = await send()
            sent.append(time.monotonic())
            return handle

        submitted = await self._send(claim.submission_id, fp, endpoint, timed)
        self._planned(submitted.task_id, kind_of(endpoint, request), rows, sum(sent) / len(sent))
        self._audit_run(tool, rows, estimated_credits, submitted.task_id, reused=False)
        return submitted

    def _audit_run(self, tool: str, rows: int, estimated: float | None, task_id: str, *, reused: bool) -> None:
        if self._audit is not None:
            self._audit.run(
                who=current_owner(), tool=tool, rows=rows, estimated_credits=estimated, task_id=task_id, reused=reused
            )

    def _planned(self, task_id: str, kind: str, rows: int, sent_at: float) -> None:
        """Start a task's polling plan at its sending, with the pace its kind ran at last time as the prior."""
        plan = PollPlan(
            kind=kind,
            first_s=self._poll_first_s,
            cap_s=max(self._poll_first_s, self._poll_cap_s),
            start=sent_at,
            prior=self._paces.get(kind),
            rows=rows or None,
        )
        self._remember(self._plans, task_id, plan)

    def plan_for(self, task_id: str) -> PollPlan:
        """The task's polling plan so far (a fresh one for a task not sent by this process)."""
        plan = self._plans.get(task_id)
        if plan is None:
            plan = PollPlan(first_s=self._poll_first_s, cap_s=max(self._poll_first_s, self._poll_cap_s))
            self._remember(self._plans, task_id, plan)
        return plan

    def settled(self, task_id: str, task: Task) -> None:
        """A task seen finished: its plan is done, and its pace is the prior for the next task of its kind."""
        plan = self._plans.pop(task_id, None)
        if plan is None or plan.kind is None or task.status != "completed":
            return
        learned = plan.learned(self._total(task) or plan.rows)
        if learned is not None:
            self._remember(self._paces, plan.kind, learned)

    @staticmethod
    def _remember(table: OrderedDict[str, Any], key: str, value: Any) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(table) > PLANS_KEPT:
            table.popitem(last=False)

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
        asked = time.monotonic()
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
            unseen = Task(task_id=task_id, status=record.status, credits_spent=record.credits_spent, visible=False)
            self._sampled(task_id, unseen, asked, time.monotonic())
            return unseen
        self._sampled(task_id, task, asked, time.monotonic())
        await self.observe(task)
        if task.is_terminal and self._audit is not None and task_id not in self._audited:
            self._audited.add(task_id)
            self._audit.result(
                who=current_owner(), task_id=task_id, status=task.status, credits_spent=task.credits_spent
            )
        return task

    def _sampled(self, task_id: str, task: Task, asked: float, answered: float) -> None:
        """Every GET of a task is a sample of its plan, dated here by its own sending and answer: a read dated
        later (after the ledger write, by a caller) claimed the API counted rows after it had, and a row that
        ended in between put the predicted end where it was not (issue 28: a 120 s task seen 330 ms late)."""
        plan = self.plan_for(task_id)
        plan.observe(answered, task, asked=asked)
        if task.is_terminal:
            self.settled(task_id, task)

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
            task.keep_data_json(None)
            message = (
                f"Databar's task {task.task_id} holds {exc.seen} row(s) but this run sent {exc.sent}: Databar gave "
                "this run the id of another run's task (an upstream error). Its rows were not stored or returned; "
                "this run's outcome is unknown."
            )
            logger.error("%s", message)
            await self._ledger.disown(task.task_id, message)
            raise DatabarError(message) from None
        task.keep_data_json(None)  # stored: the reply's bytes it views are let go of before the answer is made

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
        timeout_s = bounded(timeout_s)  # and never past the tool call's deadline
        deadline = time.monotonic() + max(0.0, timeout_s)
        last = first  # read by poll(), which made it a sample of the plan already
        if last is not None and last.is_terminal:
            return last
        self.waiting.add(task_id)
        try:
            with anyio.move_on_after(max(0.0, timeout_s)):
                # The submit reply already said "processing": the first poll waits like any other.
                total = self._total(last) if last is not None else None
                while True:
                    now = time.monotonic()
                    remaining = deadline - now
                    if remaining <= 0:
                        break
                    # The plan poll() fed (looked up each time: one forgotten among PLANS_KEPT starts afresh).
                    plan = self.plan_for(task_id)
                    await self._sleep_unless_draining(min(max(0.0, plan.next_at(total, now) - now), remaining))
                    if self.draining:
                        break
                    task = await self.poll(task_id)  # a sample of the plan (and its end settles it)
                    last = task
                    if on_progress is not None:
                        await on_progress(task)
                    if task.is_terminal:
                        break
                    total = self._total(task)
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
