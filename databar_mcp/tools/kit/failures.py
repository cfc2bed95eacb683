"""Turn API exceptions into error bodies an agent can act on."""

from __future__ import annotations

from pydantic import ValidationError

from databar_mcp.api import errors as api
from databar_mcp.core.files.export_writing import UnsafeName
from databar_mcp.core.ledger.backend import LedgerError
from databar_mcp.core.shaping import clip
from databar_mcp.tools.kit.results import ErrorBody, ErrorCode, FieldProblem, ToolFailure

FIELDS_SHOWN = 50  # field problems listed in one error
PATH_SHOWN = 200  # characters of one field path or problem (a key may be a megabyte long)


def _union_tag(part: object) -> bool:
    """pydantic's name of the branch of an optional argument's union (`list[dict[str, ...]]`): not a field."""
    return isinstance(part, str) and part.startswith(("list[", "dict[")) and part.endswith("]")


def from_validation(exc: ValidationError) -> ErrorBody:
    """Tool arguments that failed the input schema; field paths and rules only, never the values sent."""
    fields: list[FieldProblem] = []
    for err in exc.errors(include_input=False, include_url=False):
        loc = err["loc"]
        if len(loc) >= 2 and loc[1] == "none" and err["type"] == "none_required":
            continue  # the null branch of an optional argument (params when input_file is the other form)
        path = ""
        for part in loc[:1] + tuple(p for p in loc[1:2] if not _union_tag(p)) + loc[2:]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        fields.append(FieldProblem(field=clip(path or "arguments", PATH_SHOWN), problem=clip(err["msg"], PATH_SHOWN)))
    return ErrorBody(
        code=ErrorCode.VALIDATION_ERROR,
        message=f"The arguments are invalid ({len(fields)} problem(s)"
        + (f", the first {FIELDS_SHOWN} listed" if len(fields) > FIELDS_SHOWN else "")
        + "); nothing was sent to Databar.",
        fields=fields[:FIELDS_SHOWN],
        next_steps=["Fix the listed fields and call the tool again."],
    )


def from_issues(message: str, issues: tuple[api.FieldIssue, ...], *, status: int | None = None) -> ErrorBody:
    if len(issues) > FIELDS_SHOWN:
        message += f" ({len(issues):,} field problems; the first {FIELDS_SHOWN} are listed.)"
    return ErrorBody(
        code=ErrorCode.VALIDATION_ERROR,
        http_status=status,
        message=message,
        fields=[FieldProblem(field=i.path, problem=i.message) for i in issues[:FIELDS_SHOWN]],
        next_steps=["Fix the listed fields and call the tool again; no credits were spent."],
    )


def _not_found_hint(exc: api.APIStatusError, task_id: str | None) -> str:
    """Say where valid identifiers of the kind that was missing are listed."""
    text = exc.message.lower()
    if task_id is not None or "task" in text:
        return (
            "Check the task id: list_recent_tasks lists the tasks this server started. Databar knows a task "
            "only under the API key (and, for the sandbox, the sandbox instance) that started it."
        )
    if "table" in text or "row" in text:
        return "Check the table id: list_tables lists the tables of this workspace."
    if "connector" in text:
        return "Check the connector id: list_connectors lists them."
    if "enrichment" in text:
        return "Check the enrichment id: search_enrichments finds enrichments and their ids."
    return "Check the identifier; list_waterfalls shows valid waterfalls and provider ids."


def from_api_error(exc: api.DatabarError, *, task_id: str | None = None) -> ErrorBody:
    """The structured explanation of an API failure, with the next steps that fix it."""
    if isinstance(exc, api.SubmissionUnknown):
        return ErrorBody(
            code=ErrorCode.SUBMISSION_UNKNOWN,
            message=(
                f"{exc.message} Databar may have started (and billed) the run, or not. "
                "It was deliberately not re-sent, so you are never billed twice."
            ),
            next_steps=[
                "Do not simply call the run again: that may pay for the same rows twice (an identical call is "
                "refused with this same error until the duplicate window passes).",
                "Call list_recent_tasks: unsettled_submissions lists this run by fingerprint.",
                "Check the Databar dashboard for a task started just now.",
                "If no task appeared after a few minutes, call the run again with force=true.",
            ],
            details={"method": exc.method, "path": exc.path, "fingerprint": exc.fingerprint},
        )
    if isinstance(exc, api.DeadlineReached):
        return ErrorBody(
            code=ErrorCode.UPSTREAM_ERROR,
            message=f"{exc.message} Nothing was lost; Databar is answering slowly.",
            task_id=task_id,
            next_steps=["Call the same tool again in a few seconds."],
        )
    if isinstance(exc, api.APIConnectionError):
        return ErrorBody(
            code=ErrorCode.UPSTREAM_ERROR,
            message=exc.message,
            task_id=task_id,
            next_steps=["Check connectivity to the Databar API (databar-mcp doctor), then retry."],
        )
    if not isinstance(exc, api.APIStatusError):
        return ErrorBody(code=ErrorCode.UPSTREAM_ERROR, message=exc.message, task_id=task_id)
    status = exc.status_code or None
    if isinstance(exc, api.InsufficientCredits):
        return ErrorBody(
            code=ErrorCode.INSUFFICIENT_CREDITS,
            http_status=status,
            message=f"Databar refused: not enough credits, or the plan does not allow this. ({exc.message})",
            task_id=task_id,
            next_steps=[
                "Check the balance with get_account.",
                "Top up credits in the Databar workspace, or run fewer rows or cheaper providers "
                "(list_waterfalls shows prices).",
            ],
        )
    if isinstance(exc, api.ResultExpired):
        return ErrorBody(
            code=ErrorCode.RESULT_EXPIRED,
            http_status=status,
            message="Databar has deleted this task's data (results are kept 24 hours).",
            task_id=task_id,
            next_steps=["Run the enrichment again to get the data anew (it will be billed again)."],
        )
    if isinstance(exc, api.BadRequestError | api.UnprocessableEntity):
        body = from_issues(f"Databar rejected the request: {exc.message}", exc.issues, status=status)
        if exc.error_code:
            body.details["error"] = exc.error_code
        return body
    if isinstance(exc, api.RateLimited):
        wait = exc.retry_after
        return ErrorBody(
            code=ErrorCode.RATE_LIMITED,
            http_status=status,
            message="Databar is rate limiting these requests."
            + (f" Retry after {wait:.0f} s." if wait is not None else ""),
            task_id=task_id,
            retry_after_seconds=wait,
            next_steps=[f"Wait {wait:.0f} s, then retry." if wait is not None else "Wait a minute, then retry."],
        )
    if isinstance(exc, api.NotFoundError):
        return ErrorBody(
            code=ErrorCode.NOT_FOUND,
            http_status=status,
            message=f"Not found: {exc.message}",
            task_id=task_id,
            next_steps=[_not_found_hint(exc, task_id)],
        )
    if isinstance(exc, api.AuthenticationError):
        return ErrorBody(
            code=ErrorCode.AUTH_FAILED,
            http_status=status,
            message=exc.message if not status else "Databar rejected the API key (or it may not access this).",
            next_steps=[
                "Set DATABAR_API_KEY to a valid key from the Databar workspace (Integrations), "
                "then restart the server; `databar-mcp doctor` checks it.",
            ],
        )
    if isinstance(exc, api.ConflictError):
        return ErrorBody(
            code=ErrorCode.CONFLICT, http_status=status, message=exc.message, task_id=task_id, next_steps=[]
        )
    return ErrorBody(
        code=ErrorCode.UPSTREAM_ERROR,
        http_status=status,
        message=exc.message,
        task_id=task_id,
        next_steps=["Databar had a problem; retry in a minute."],
    )


def from_ledger_error(exc: LedgerError, *, task_id: str | None = None) -> ErrorBody:
    """The server's own ledger failed (a full or read-only disk, a PostgreSQL restart): nothing the agent sent
    was wrong, and a run Databar accepted is not lost (its task id is kept until the ledger takes it)."""
    steps = [
        "Do not send the run again: an identical call is answered from the ledger once it is back.",
        "If this persists, ask the user to check the server's ledger (`databar-mcp doctor`): free disk space "
        "in its state dir, or the PostgreSQL server it uses.",
    ]
    message = f"The server's ledger could not be used ({exc})."
    if task_id is not None:
        message += f" Databar's task {task_id} is not lost: the server keeps its id until the ledger takes it."
        steps.insert(0, f'Keep task_id {task_id}: call get_task(task_id="{task_id}") in a minute to continue.')
    else:
        steps.insert(0, "Call the same tool again in a minute.")
    return ErrorBody(code=ErrorCode.LEDGER_UNAVAILABLE, message=message, task_id=task_id, next_steps=steps)


def bad_filename(exc: UnsafeName, next_step: str) -> ToolFailure:
    """A filename the exports folder cannot take: a validation_error, before anything is read or written."""
    return ToolFailure(
        ErrorBody(
            code=ErrorCode.VALIDATION_ERROR,
            message=f"Invalid filename: {exc}. Nothing was read or written.",
            fields=[FieldProblem(field="filename", problem=str(exc))],
            next_steps=[next_step],
        )
    )


def rows_covered(balance: float | None, estimate: float | None, rows: int | None) -> int | None:
    """How many of the run's rows the balance pays for at the worst case (None: not knowable)."""
    if balance is None or estimate is None or not rows:
        return None
    per_row = estimate / rows
    return rows if per_row <= 0 else max(0, min(rows, int(balance // per_row)))


def shortfall(balance: float | None, estimate: float | None, rows: int | None, covered: int | None) -> str:
    """The numbers first: balance, worst-case cost, rows covered; the plan hedge only when they do not explain it."""
    have = "The balance could not be read" if balance is None else f"Balance: {balance:g} credits"
    if estimate is None:
        return f"{have}; this run's cost could not be estimated."
    cost = f"this run may cost up to {estimate:g}" + (
        f" ({rows} row(s) at up to {estimate / rows:g} each)" if rows else ""
    )
    text = f"{have}; {cost}."
    if covered is not None:
        text += f" The balance covers {covered} of the {rows} row(s)."
    if balance is not None and balance >= estimate:
        text += " The balance covers the estimate, so the plan may not allow this run."
    return text
