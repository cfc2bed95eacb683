"""The retry decision, backoff arithmetic and the Retry-After parser: pure, so they are easy to test exhaustively."""

from __future__ import annotations

import random
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Literal, cast

# Statuses with which the API refuses a request without acting on it (bad input, auth, credits, limits). After a
# billable POST, every other reply (a 3xx, a 408, a 5xx, a 2xx we cannot read) may have followed the work.
REFUSALS = frozenset({400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 429})
# Where Databar documents a `detail` other than a string: 400 field -> messages (dict), 422 FastAPI's loc/msg list.
STRUCTURED_DETAIL = frozenset({400, 422})


def is_databar_error(status: int, body: object) -> bool:
    """Whether an error body is in the shape Databar documents for `status` (API_NOTES.md, Databar's SDK).

    A refusal status alone proves nothing: a proxy, a CDN or a maintenance page in front of the API answers 404
    or 403 too, possibly after Databar had started the run. Databar's own refusals are JSON objects with a
    non-empty `detail` (a string; for 400 and 422 also a dict or a list) or an `error` code string.
    """
    if not isinstance(body, dict):
        return False
    data = cast(dict[str, Any], body)
    code: object = data.get("error")
    if isinstance(code, str) and code:
        return True
    detail: object = data.get("detail")
    if isinstance(detail, str):
        return bool(detail.strip())
    return status in STRUCTURED_DETAIL and isinstance(detail, dict | list) and bool(cast(object, detail))


def is_refusal(status: int, body: object) -> bool:
    """True when a billable request answered `status` with `body` certainly did not start anything."""
    return status in REFUSALS and is_databar_error(status, body)


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None if absent or junk."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN or infinite
        return None
    return max(0.0, seconds)


def backoff_delay(attempt: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Capped exponential backoff with jitter: base·2^attempt, at most `cap`, shortened by up to 25 %."""
    raw = min(cap, base * (2 ** min(attempt, 30)))
    jitter = (rng or random).random()
    return raw * (1 - 0.25 * jitter)


# What became of one attempt, when no reply came: the connection was refused (nothing listens), could not be
# made (timed out before connecting, no pool slot: nothing was sent), or was made and the reply was lost (a
# transport error after sending, or the tool call's deadline).
NoReply = Literal["refused", "not_connected", "reply_lost"]
REFUSED_RETRIES = 1  # a refused connection is retried once, quickly: nothing is listening there
RETRYABLE_5XX = frozenset({500, 502, 503, 504})
Verdict = Literal["retry", "give_up", "submission_unknown"]


@dataclass(frozen=True)
class Decision:
    """What to do after an attempt that did not end in a readable 2xx.

    `retry`: send again after `wait_s`; if that wait cannot be made (the deadline would pass first), `otherwise`
    says what to do instead. `give_up`: raise the ordinary error. `submission_unknown`: a billable request may
    have started work that bills; it must not be sent again.
    """

    verdict: Verdict
    wait_s: float = 0.0
    otherwise: Literal["give_up", "submission_unknown"] = "give_up"

    @property
    def final(self) -> Literal["give_up", "submission_unknown"]:
        """The verdict when no retry is made."""
        return self.otherwise if self.verdict == "retry" else self.verdict


def may_repeat(method: str, *, billable: bool) -> bool:
    """Whether repeating the request is harmless even if it arrived: GET, PUT, DELETE that bill nothing."""
    return method in ("GET", "PUT", "DELETE") and not billable


def decide(
    *,
    method: str,
    billable: bool,
    attempt: int,
    outcome: int | NoReply,
    retry_after: float | None,
    max_retries: int,
    databar_body: bool,
    retry_after_cap_s: float,
    backoff_s: float,
) -> Decision:
    """The retry policy (see DatabarClient): pure, so it is tested as a table.

    `outcome` is the reply's status, or why there was none; `databar_body` says whether the reply's body is in
    Databar's own error shape (is_databar_error: anything else may come from a proxy after the work); `attempt`
    counts from 0; `backoff_s` is the backoff delay for this attempt (backoff_delay). Never retries a request
    that may have arrived unless repeating it is harmless; a billable request that may have arrived and was not
    certainly refused (a refusal status in Databar's own error shape) is submission_unknown, never a refusal.
    """
    repeatable = may_repeat(method, billable=billable)
    if outcome == "refused" or outcome == "not_connected":  # nothing reached the server: any method may retry
        retries = min(max_retries, REFUSED_RETRIES) if outcome == "refused" else max_retries
        return Decision("retry", backoff_s) if attempt < retries else Decision("give_up")
    lost: Literal["give_up", "submission_unknown"] = "submission_unknown" if billable else "give_up"
    if outcome == "reply_lost":
        return Decision("retry", backoff_s, lost) if repeatable and attempt < max_retries else Decision(lost)
    refused = outcome in REFUSALS and databar_body  # Databar's own refusal: certainly nothing started
    if billable and not refused:
        return Decision("submission_unknown")
    if outcome == 429:  # a refusal: nothing started, so even a billable run may be sent again
        wait = retry_after if retry_after is not None else backoff_s
        return Decision("retry", wait) if attempt < max_retries and wait <= retry_after_cap_s else Decision("give_up")
    if outcome in RETRYABLE_5XX and repeatable and attempt < max_retries:
        wait = retry_after if retry_after is not None and retry_after <= retry_after_cap_s else backoff_s
        return Decision("retry", wait)
    return Decision("give_up")
