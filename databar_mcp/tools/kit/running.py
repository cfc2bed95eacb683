"""The one pipeline every run tool shares: check → guard spend → submit once → wait → deliver.

Input problems stop a run before anything is sent; the spend guard refuses or asks the user; the runner
records the intent before the POST and returns an identical earlier run instead of billing again.
"""

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

import anyio
from mcp.server.elicitation import AcceptedElicitation, ElicitationResult
from mcp.server.mcpserver.resolve import Elicit
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from databar_mcp.api.deadline import deadline_in
from databar_mcp.api.errors import APIStatusError, DatabarError, InsufficientCredits, SubmissionUnknown
from databar_mcp.api.runs import RunRequest
from databar_mcp.core.catalog import RunPlan
from databar_mcp.core.durations import expected_duration
from databar_mcp.core.ledger.backend import LedgerError
from databar_mcp.core.ledger.store import Submission
from databar_mcp.core.runner import DuplicateRunUnknown, RunOrder, Submitted
from databar_mcp.core.spend import SpendCheck, check_spend, needs_balance
from databar_mcp.core.untried import untried_providers_line
from databar_mcp.core.users import UserLimitReached
from databar_mcp.tools.kit.context import Services, ToolContext, services
from databar_mcp.tools.kit.failures import from_api_error, from_issues, from_ledger_error, rows_covered, shortfall
from databar_mcp.tools.kit.guard import guarded
from databar_mcp.tools.kit.results import ErrorBody, ErrorCode, ToolFailure, ok_result, with_line
from databar_mcp.tools.kit.sdk_private import client_cancelled, stream_closed_by_client
from databar_mcp.tools.kit.task_kit import deliver, iso, note_lost_run, progress_reporter, what_to_check
from databar_mcp.tools.kit.task_view import TaskView, get_task_call, render


class Confirmation(BaseModel):
    """What the user answers when a run costs more than the confirmation threshold."""

    confirm: bool = Field(description="Run it and spend the credits?")


def check_of(earlier: Submission) -> str:
    return what_to_check(earlier.endpoint, earlier.created_at, earlier.rows, earlier.estimated_credits)


def duplicate_unknown(earlier: Submission) -> ErrorBody:
    """An identical run was sent earlier and its outcome is unknown: re-sending could bill twice."""
    age = max(0, int(time.time() - earlier.created_at))
    return ErrorBody(
        code=ErrorCode.SUBMISSION_UNKNOWN,
        message=(
            f"An identical run was sent {age} s ago and its outcome is unknown: Databar "
            "may have started and billed it. It was not sent again."
        ),
        details={"fingerprint": earlier.fingerprint, "submitted_at": earlier.created_at, "rows": earlier.rows},
        next_steps=[
            "Call list_recent_tasks: unsettled_submissions lists this run by fingerprint.",
            f"Ask the user to check: {check_of(earlier)}",
            f"Only if the user found no such run: call {earlier.tool} again with force=true (the user is asked to "
            "confirm the re-send).",
        ],
    )


async def insufficient(
    svc: Services, exc: InsufficientCredits, estimate: float | None, rows: int | None = None
) -> ErrorBody:
    """406, leading with the numbers: the balance (one extra GET, best effort), the run's estimated cost and how
    many rows the balance covers; the hedge (a plan limit) comes after them."""
    body = from_api_error(exc)
    try:
        balance: float | None = (await svc.client.get_user()).balance
    except Exception:  # the explanation must not fail because the balance could not be read
        balance = None
    covered = rows_covered(balance, estimate, rows)
    body.details.update(balance=balance, estimated_credits=estimate, rows=rows, rows_covered=covered)
    body.message = (
        shortfall(balance, estimate, rows, covered) + f" Databar refused the run: nothing was started. ({exc.message})"
    )
    if covered:
        body.next_steps.insert(
            0, f"Run at most {covered} row(s) now (what the balance covers at the worst case), or top up."
        )
    return body


def spend_limit(
    message: str, estimate: float | None, setting: str | None, *, unpriced: str | None = None, **details: Any
) -> ToolFailure:
    """Refused by a spend limit; `unpriced` says why a run without an estimate could not be priced."""
    steps = ["Run fewer rows or cheaper providers (the catalog tools show prices)."]
    if estimate is None:
        steps.insert(0, f"Make the cost knowable, then call again: {unpriced or 'choose what the catalog prices'}.")
    if setting:
        steps.append(f"Or ask the user to raise {setting} in the server's configuration and restart it.")
    return ToolFailure(
        ErrorBody(
            code=ErrorCode.SPEND_LIMIT,
            message=message + " Nothing was sent; no credits were spent.",
            details={"estimated_credits": estimate, "setting": setting, **details}
            | ({"unpriced": unpriced} if unpriced else {}),
            next_steps=steps,
        )
    )


def user_limit(exc: UserLimitReached, plan: RunPlan) -> ToolFailure:
    """Refused by the calling user's own caps (users file)."""
    message = f"Refused by your account's limit: {exc}."
    return spend_limit(message, plan.estimated_credits, exc.setting, unpriced=plan.unpriced)


class SpendGate(BaseModel):
    """The spend guard's verdict on a run (computed before the tool body runs, and again in it when it could not
    be then): `confirm` carries the question's reason; `unavailable` means the balance the guard must check
    could not be read, so the run is refused (a guard that could not check never lets a run through)."""

    verdict: Literal["ok", "refuse", "confirm", "unavailable", "unchecked"]
    reason: str = ""
    setting: str | None = None
    estimate: float | None = None
    balance: float | None = None
    unpriced: str | None = None
    http_status: int | None = None
    retry_after: float | None = None


SpendOutcome = ElicitationResult[Confirmation]


@dataclass(frozen=True)
class PreparedRun:
    """A run checked against the catalog and ready to send: one RunRequest, both sent and fingerprinted."""

    tool: str
    target: str
    call: RunRequest
    rows: int
    plan: RunPlan

    @property
    def endpoint(self) -> str:
        return self.call.endpoint

    @property
    def request(self) -> dict[str, Any]:
        return self.call.request


Prepare = Callable[[], Awaitable[PreparedRun]]


async def judge_spend(svc: Services, run: PreparedRun, *, force: bool) -> SpendGate:
    """The server-wide spend guard's verdict on a prepared run. Fails closed: when the balance it must check
    (DATABAR_MCP_MIN_BALANCE) cannot be read, the run is refused as `unavailable`, unless a rule that needs
    no balance (the per-call limit) refuses it anyway."""
    plan = run.plan
    earlier = None if force else await svc.tasks.earlier(run.endpoint, run.request)
    if earlier is not None and earlier.outcome == "accepted":
        return SpendGate(verdict="ok", reason="reuse of an identical earlier run: free")
    estimate, balance = plan.estimated_credits, None
    if needs_balance(svc.settings):
        try:
            balance = (await svc.client.get_user()).balance
        except DatabarError as exc:
            alone = check_spend(estimate, None, svc.settings)  # the rules that need no balance still apply
            if alone.verdict == "refuse":
                return _refused(alone, plan, None)
            answered = exc if isinstance(exc, APIStatusError) else None
            return SpendGate(
                verdict="unavailable",
                reason=exc.message,
                estimate=estimate,
                http_status=(answered.status_code or None) if answered else None,
                retry_after=answered.retry_after if answered else None,
            )
    verdict = check_spend(estimate, balance, svc.settings)
    if verdict.verdict == "refuse":
        return _refused(verdict, plan, balance)
    if verdict.verdict == "confirm":
        return SpendGate(verdict="confirm", reason=verdict.reason, setting=verdict.setting, estimate=estimate)
    return SpendGate(verdict="ok", estimate=estimate, balance=balance)


def _refused(verdict: SpendCheck, plan: RunPlan, balance: float | None) -> SpendGate:
    return SpendGate(
        verdict="refuse",
        reason=f"Refused by the spend guard: {verdict.reason}.",
        setting=verdict.setting,
        estimate=plan.estimated_credits,
        balance=balance,
        unpriced=plan.unpriced,
    )


async def spend_question(ctx: ToolContext, prepare: Prepare, force: bool) -> SpendGate | Elicit[Confirmation]:
    """Resolver body shared by the run tools: the verdict, or the question to put to the user.

    Runs before the tool body (the SDK asks the question on either protocol era). When the run cannot be
    prepared here the gate says "unchecked": the body prepares it again, and reports the error or judges it
    itself (settle_spend), so nothing is ever sent unjudged.
    """
    svc = services(ctx)
    try:
        run = await prepare()
        if run.plan.issues:
            return SpendGate(verdict="unchecked")  # the body reports the issues; nothing is sent
        gate = await judge_spend(svc, run, force=force)
    except (DatabarError, LedgerError, ValueError, ToolFailure):  # the body reports it as a structured error
        return SpendGate(verdict="unchecked")
    if gate.verdict != "confirm":
        return gate
    capabilities = ctx.client_capabilities
    if capabilities is None or capabilities.elicitation is None:
        return gate.model_copy(
            update={
                "verdict": "refuse",
                "reason": f"Needs the user's confirmation: {gate.reason}, and this client cannot ask the user.",
            }
        )
    return Elicit(f"Databar: {gate.reason}. Run it?", Confirmation)


async def settle_spend(svc: Services, outcome: SpendOutcome, run: PreparedRun, *, force: bool) -> None:
    """Raise unless the spend guard passed the run or the user confirmed it; a gate the resolver could not
    judge is judged here, and a guard that cannot judge refuses (it never lets a run through unchecked)."""
    estimate = run.plan.estimated_credits
    if not isinstance(outcome, AcceptedElicitation):
        action = outcome.action
        raise spend_limit(f"The user did not confirm the run ({action}).", estimate, None, answer=action)
    data = cast(object, outcome.data)  # a SpendGate when no question was asked
    if isinstance(data, Confirmation):
        if data.confirm:
            return
        raise spend_limit("The user did not confirm the run.", estimate, None, answer="accept: confirm=false")
    gate = data if isinstance(data, SpendGate) else SpendGate(verdict="unchecked")
    if gate.verdict == "unchecked":
        gate = await judge_spend(svc, run, force=force)
    if gate.verdict == "refuse":
        raise spend_limit(gate.reason, gate.estimate, gate.setting, unpriced=gate.unpriced, balance=gate.balance)
    if gate.verdict == "unavailable":
        raise ToolFailure(guard_unavailable(gate, run.tool))
    if gate.verdict == "confirm":  # judged only now: the question could not be put before the body ran
        raise ToolFailure(
            ErrorBody(
                code=ErrorCode.CONFIRMATION_REQUIRED,
                message=f"This run needs the user's confirmation ({gate.reason}), and it could not be asked in this "
                "call. Nothing was sent; no credits were spent.",
                details={"estimated_credits": gate.estimate, "setting": gate.setting},
                next_steps=[f"Call {run.tool} again with the same arguments: the user is asked to confirm first."],
            )
        )


def guard_unavailable(gate: SpendGate, tool: str) -> ErrorBody:
    """The spend guard could not read the balance it must check: refused, with when to try again."""
    if gate.retry_after is not None:
        when = f"Call {tool} again in {gate.retry_after:g} s (Databar asked to wait that long)."
    else:
        when = f"Call {tool} again in a minute: Databar did not answer the balance read."
    return ErrorBody(
        code=ErrorCode.SPEND_GUARD_UNAVAILABLE,
        http_status=gate.http_status,
        retry_after_seconds=gate.retry_after,
        message=(
            "The spend guard could not check this run: reading the account balance it must check "
            f"(DATABAR_MCP_MIN_BALANCE) failed ({gate.reason}). Nothing was sent; no credits were spent."
        ),
        details={"estimated_credits": gate.estimate, "setting": "DATABAR_MCP_MIN_BALANCE"},
        next_steps=[when, "get_account shows whether the balance can be read again."],
    )


class ResendConfirmation(BaseModel):
    """What the user answers before a run whose earlier submission is unknown is sent again."""

    resend: bool = Field(description="Send it again, accepting that it may be billed twice?")


class ResendGate(BaseModel):
    """The re-send check when no question was put to the user (computed before the tool body runs)."""

    verdict: Literal["no_risk", "acknowledged", "cannot_ask", "unchecked"]


ResendOutcome = ElicitationResult[ResendConfirmation]


async def resend_question(
    ctx: ToolContext, prepare: Prepare, force: bool, acknowledged: bool
) -> ResendGate | Elicit[ResendConfirmation]:
    """Resolver body shared by the run tools: before a forced re-send of a run whose identical earlier
    submission has an unknown outcome, ask the user, with what is known about it.

    The question names absolute times only: it must render the same on every round of the 2026-07-28 flow.
    """
    if not force:
        return ResendGate(verdict="no_risk")
    svc = services(ctx)
    try:
        run = await prepare()
        earlier = await svc.tasks.earlier(run.endpoint, run.request)
    except (DatabarError, LedgerError, ValueError, ToolFailure):  # the body reports it as a structured error
        return ResendGate(verdict="unchecked")  # the body checks again and refuses unless acknowledged
    if earlier is None or earlier.outcome == "accepted":
        return ResendGate(verdict="no_risk")
    capabilities = ctx.client_capabilities
    if capabilities is None or capabilities.elicitation is None:
        return ResendGate(verdict="acknowledged" if acknowledged else "cannot_ask")
    return Elicit(
        f"Databar: an identical run ({earlier.rows} row(s)"
        + (f", up to {earlier.estimated_credits:g} credits" if earlier.estimated_credits is not None else "")
        + f") was sent at {iso(earlier.created_at)} and its outcome is unknown: Databar may have started and "
        f"billed it. Before answering: {check_of(earlier)} Send it again anyway?",
        ResendConfirmation,
    )


def resend_refused(earlier: Submission, message: str, *, can_acknowledge: bool) -> ToolFailure:
    steps = [f"Ask the user to check: {check_of(earlier)}"]
    if can_acknowledge:
        steps.append(
            f"Only if the user found no such run: call {earlier.tool} again with force=true and "
            "acknowledge_possible_double_billing=true."
        )
    body = duplicate_unknown(earlier)
    body.message = message + " Nothing was sent."
    body.next_steps = ["Call list_recent_tasks: unsettled_submissions lists this run by fingerprint.", *steps]
    return ToolFailure(body)


@dataclass(frozen=True)
class RunControls:
    """How a run tool was asked to run: the answers its spend and re-send resolvers got before the body, and the
    run arguments every run tool declares (the wait, force, the caller's acknowledgement of a possible double
    bill). Each run tool builds it from its own parameters."""

    ctx: ToolContext
    spend: SpendOutcome
    resend: ResendOutcome
    wait_seconds: float
    force: bool
    acknowledged: bool


def settle_resend(outcome: ResendOutcome, earlier: Submission | None, *, acknowledged: bool) -> None:
    """Raise unless a forced re-send is safe: no unknown earlier run, the user confirmed, or (when the client
    cannot ask) the caller acknowledged the risk explicitly."""
    if earlier is None or earlier.outcome == "accepted":
        return
    if isinstance(outcome, AcceptedElicitation):
        data = cast(object, outcome.data)
        if isinstance(data, ResendConfirmation):
            if data.resend:
                return
            raise resend_refused(earlier, "The user chose not to send the run again.", can_acknowledge=False)
        verdict = data.verdict if isinstance(data, ResendGate) else "unchecked"
        if verdict == "acknowledged" or (verdict != "cannot_ask" and acknowledged):
            return
        why = "this client cannot ask the user" if verdict == "cannot_ask" else "the user has not confirmed it"
        raise resend_refused(
            earlier,
            "Not sent again: an identical run sent earlier has an unknown outcome (Databar may have billed it), "
            f"and {why}.",
            can_acknowledge=True,
        )
    raise resend_refused(earlier, f"The user did not confirm the re-send ({outcome.action}).", can_acknowledge=False)


async def execute(run: RunControls, prepare: Prepare) -> CallToolResult:
    """A run tool's whole body: prepare, then submit once and wait (structured errors for what can go wrong)."""
    started = time.monotonic()
    ctx = run.ctx
    svc = services(ctx)

    async def work() -> CallToolResult:
        prepared = await prepare()
        if run.force:  # checked again here: the resolver may have been unable to look, or a run may have begun since
            earlier = await svc.tasks.earlier(prepared.endpoint, prepared.request)
            settle_resend(run.resend, earlier, acknowledged=run.acknowledged)
        return await run_and_wait(
            ctx, svc, prepared, force=run.force, wait_seconds=run.wait_seconds, started=started, spend=run.spend
        )

    # The user may have taken a while to answer a question mid-call: the deadline counts from the answer.
    with deadline_in(svc.settings.io_deadline_s, restart=asked_user(run.spend, run.resend)):
        return await guarded(work())


def asked_user(*outcomes: object) -> bool:
    """True when a resolver put a question to the user during this call (rather than deciding alone)."""
    return any(
        isinstance(o, AcceptedElicitation) and isinstance(cast(object, o.data), Confirmation | ResendConfirmation)  # pyright: ignore[reportUnknownMemberType]
        for o in outcomes
    )


async def run_and_wait(
    ctx: ToolContext,
    svc: Services,
    run: PreparedRun,
    *,
    force: bool,
    wait_seconds: float,
    started: float,
    spend: SpendOutcome,
) -> CallToolResult:
    plan, rows = run.plan, run.rows
    if plan.issues:
        raise ToolFailure(from_issues(f"The input does not fit {run.target}; nothing was sent.", plan.issues))
    await settle_spend(svc, spend, run, force=force)
    try:
        submitted = await svc.tasks.submit(
            RunOrder(
                tool=run.tool,
                endpoint=run.endpoint,
                request=run.request,
                rows=rows,
                estimated_credits=plan.estimated_credits,
                force=force,
                send=lambda: svc.client.start_run(run.call),
            )
        )
    except InsufficientCredits as exc:
        raise ToolFailure(await insufficient(svc, exc, plan.estimated_credits, rows)) from None
    except DuplicateRunUnknown as exc:
        raise ToolFailure(duplicate_unknown(exc.earlier)) from None
    except UserLimitReached as exc:
        raise user_limit(exc, plan) from None
    except SubmissionUnknown as exc:
        await note_lost_run(svc, exc)
        body = from_api_error(exc)
        body.next_steps = [
            "Do not call the run again to retry: that could pay for the same rows twice (an identical call is "
            "refused with this error); list_recent_tasks lists it under unsettled_submissions.",
            f"Ask the user to check: {what_to_check(run.endpoint, time.time(), rows, plan.estimated_credits)}",
            f"Only if the user found no such run: call {run.tool} again with force=true (the user is asked to "
            "confirm the re-send).",
        ]
        raise ToolFailure(body) from None
    try:
        return await follow(ctx, svc, run, submitted, wait_seconds=wait_seconds, started=started)
    except LedgerError as exc:  # the run is at Databar: the answer names its task id, whatever the ledger does
        raise ToolFailure(from_ledger_error(exc, task_id=submitted.task_id)) from None


async def follow(
    ctx: ToolContext, svc: Services, run: PreparedRun, submitted: Submitted, *, wait_seconds: float, started: float
) -> CallToolResult:
    """After the submit: the reused result from the ledger, or the wait for the task and its delivery."""
    plan, rows = run.plan, run.rows
    reused = submitted.reused is not None
    if reused:
        record = await svc.tasks.read(submitted.task_id)
        stored = record.stored_task() if record is not None else None
        if stored is not None:
            return await deliver(
                svc,
                stored,
                offset=0,
                limit=None,
                estimated_credits=plan.estimated_credits,
                served_from="ledger",
                reused=True,
            )
    else:
        await ctx.report_progress(0, rows, f"submitted {rows:,} row(s)")
    remaining = max(0.0, wait_seconds - (time.monotonic() - started))
    try:
        task = await svc.tasks.wait(
            submitted.task_id, timeout_s=remaining, on_progress=lambda t: progress_reporter(ctx, t)
        )
    except anyio.get_cancelled_exc_class():
        stopped = client_cancelled(ctx) or stream_closed_by_client(ctx, draining=svc.runner.draining)
        if stopped and not reused:  # the user pressed Stop: stop the spend too
            await svc.tasks.cancel_on_stop(submitted.task_id)
        raise
    if task is None:
        view = TaskView(
            task_id=submitted.task_id,
            status="processing" if reused else submitted.status,
            done=False,
            estimated_credits=plan.estimated_credits,
            reused=reused,
            message=(
                "An identical run is already running; returning it instead of billing again."
                if reused
                else f"Submitted {rows} row(s); still running."
            )
            + (
                ""
                if submitted.durable
                else " The server's ledger could not be written (a full disk, or its database restarting): keep "
                "this task_id; the server keeps it in a spool file and writes it once the ledger answers."
            ),
            next_call=get_task_call(submitted.task_id, wait_seconds=svc.settings.tool_deadline_s),
        )
        expected = await expected_duration(svc.ledger, run.endpoint, rows)
        line = None if expected is None else f"Duration: {expected.words()} (Databar states none)."
        answer = with_line(ok_result(view, render(view)), line, svc.settings.result_budget_chars)
        return with_line(answer, plan.price_note, svc.settings.result_budget_chars, second=True)
    answer = await deliver(svc, task, offset=0, limit=None, estimated_credits=plan.estimated_credits, reused=reused)
    answer = with_line(answer, plan.price_note, svc.settings.result_budget_chars, second=True)
    return with_line(
        answer, untried_providers_line(plan.waterfall, run.request, task), svc.settings.result_budget_chars
    )
