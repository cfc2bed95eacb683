"""The retry decision as a table: every kind of outcome, for idempotent, plain and billable requests.

No sockets: `decide` is the whole policy the client's request loop follows (see DatabarClient.request).
"""

from __future__ import annotations

import pytest

from databar_mcp.api.retry import Decision, NoReply, decide, is_databar_error

BACKOFF = 0.5  # what backoff_delay gave for this attempt
CAP = 60.0  # retry_after_cap_s
MAX = 3  # max_retries

RETRY = Decision("retry", BACKOFF)
GIVE_UP = Decision("give_up")
UNKNOWN = Decision("submission_unknown")

# (method, billable, attempt, outcome, retry_after, expected)
TABLE: list[tuple[str, bool, int, int | NoReply, float | None, Decision]] = [
    # nothing reached the server: every request may be sent again, billable runs included
    ("GET", False, 0, "not_connected", None, RETRY),
    ("POST", True, 0, "not_connected", None, RETRY),
    ("POST", True, 2, "not_connected", None, RETRY),
    ("POST", True, 3, "not_connected", None, GIVE_UP),
    # a refused connection (nothing listens) is retried once only
    ("GET", False, 0, "refused", None, RETRY),
    ("GET", False, 1, "refused", None, GIVE_UP),
    ("POST", True, 0, "refused", None, RETRY),
    ("POST", True, 1, "refused", None, GIVE_UP),
    # the request went out and its reply was lost: only harmless repeats retry; a billable run is unknown
    ("GET", False, 0, "reply_lost", None, RETRY),
    ("PUT", False, 2, "reply_lost", None, RETRY),
    ("DELETE", False, 0, "reply_lost", None, RETRY),
    ("GET", False, 3, "reply_lost", None, GIVE_UP),
    ("POST", False, 0, "reply_lost", None, GIVE_UP),
    ("PATCH", False, 0, "reply_lost", None, GIVE_UP),
    ("POST", True, 0, "reply_lost", None, UNKNOWN),
    ("GET", True, 0, "reply_lost", None, UNKNOWN),  # billable is never repeated, whatever the method
    # 429 is a refusal: retried (Retry-After first) for every request, up to the cap and the retry count
    ("GET", False, 0, 429, None, RETRY),
    ("POST", True, 0, 429, 2.0, Decision("retry", 2.0)),
    ("POST", True, 0, 429, CAP, Decision("retry", CAP)),
    ("POST", True, 0, 429, CAP + 1, GIVE_UP),
    ("POST", True, 3, 429, 1.0, GIVE_UP),
    ("POST", False, 1, 429, 0.0, Decision("retry", 0.0)),
    # 5xx: harmless repeats retry (Retry-After when within the cap, else backoff); a billable run is unknown
    ("GET", False, 0, 500, None, RETRY),
    ("GET", False, 0, 502, 3.0, Decision("retry", 3.0)),
    ("GET", False, 0, 503, CAP + 1, RETRY),
    ("GET", False, 0, 504, None, RETRY),
    ("GET", False, 3, 503, None, GIVE_UP),
    ("GET", False, 0, 501, None, GIVE_UP),  # not retryable
    ("POST", False, 0, 503, None, GIVE_UP),
    ("POST", True, 0, 500, None, UNKNOWN),
    ("POST", True, 0, 503, 1.0, UNKNOWN),
    ("POST", True, 0, 501, None, UNKNOWN),
    # other replies after a billable run: only a certain refusal is a refusal
    ("POST", True, 0, 302, None, UNKNOWN),
    ("POST", True, 0, 408, None, UNKNOWN),
    ("POST", True, 0, 418, None, UNKNOWN),
    ("POST", True, 0, 400, None, GIVE_UP),
    ("POST", True, 0, 402, None, UNKNOWN),
    ("POST", True, 0, 404, None, GIVE_UP),
    ("POST", True, 0, 409, None, GIVE_UP),
    ("POST", True, 0, 422, None, GIVE_UP),
    # and after anything else: the ordinary error, never a retry
    ("GET", False, 0, 400, None, GIVE_UP),
    ("GET", False, 0, 404, None, GIVE_UP),
    ("POST", False, 0, 302, None, GIVE_UP),
    ("PATCH", False, 0, 500, None, GIVE_UP),
]


@pytest.mark.parametrize(("method", "billable", "attempt", "outcome", "retry_after", "expected"), TABLE)
def test_retry_decision(
    method: str, billable: bool, attempt: int, outcome: int | NoReply, retry_after: float | None, expected: Decision
) -> None:
    got = decide(
        method=method,
        billable=billable,
        attempt=attempt,
        outcome=outcome,
        retry_after=retry_after,
        max_retries=MAX,
        databar_body=True,  # every reply in the table is in Databar's own error shape
        retry_after_cap_s=CAP,
        backoff_s=BACKOFF,
    )
    assert (got.verdict, got.wait_s, got.final) == (expected.verdict, expected.wait_s, expected.final)


# The same statuses with a body not in Databar's error shape (a proxy's HTML page, an empty body, a gateway's
# JSON): after a billable POST none is a refusal, so none is re-sent and none is recorded as rejected.
FOREIGN: list[tuple[str, bool, int, Decision]] = [
    ("POST", True, 404, UNKNOWN),
    ("POST", True, 403, UNKNOWN),
    ("POST", True, 400, UNKNOWN),
    ("POST", True, 406, UNKNOWN),
    ("POST", True, 409, UNKNOWN),
    ("POST", True, 422, UNKNOWN),
    ("POST", True, 429, UNKNOWN),  # a proxy's 429 is not Databar's "nothing started": never sent again
    ("GET", False, 404, GIVE_UP),  # a read is the ordinary error either way
    ("GET", False, 429, RETRY),
    ("GET", False, 503, RETRY),
]


@pytest.mark.parametrize(("method", "billable", "status", "expected"), FOREIGN)
def test_a_refusal_status_without_databars_error_shape_is_no_refusal(
    method: str, billable: bool, status: int, expected: Decision
) -> None:
    got = decide(
        method=method, billable=billable, attempt=0, outcome=status, retry_after=None,
        max_retries=MAX, databar_body=False, retry_after_cap_s=CAP, backoff_s=BACKOFF,
    )  # fmt: skip
    assert (got.verdict, got.final) == (expected.verdict, expected.final)


SHAPES: list[tuple[int, object, bool]] = [
    (404, {"detail": "Not found"}, True),
    (403, {"detail": "Forbidden"}, True),
    (406, {"detail": "Check the number of remaining credits or the tariff plan."}, True),
    (400, {"detail": {"params": ["required"]}}, True),
    (422, {"detail": [{"loc": ["body", "params"], "msg": "field required", "type": "missing"}]}, True),
    (400, {"error": "BATCH_TOO_LARGE", "max_size": 50}, True),
    (422, {"error": "INVALID_DATA", "detail": "bad", "fields": []}, True),
    (404, "<!DOCTYPE html><html><body>Maintenance</body></html>", False),
    (404, None, False),  # an empty body
    (404, "", False),
    (404, {"message": "Not Found"}, False),  # a gateway's JSON
    (404, {"detail": ""}, False),
    (404, {"detail": {"x": 1}}, False),  # a dict detail is documented for 400 only
    (422, {"detail": []}, False),
    (404, ["detail"], False),
]


@pytest.mark.parametrize(("status", "body", "shaped"), SHAPES)
def test_databars_error_shape(status: int, body: object, shaped: bool) -> None:
    assert is_databar_error(status, body) is shaped


def test_a_retry_that_cannot_wait_falls_back_safely() -> None:
    """When the deadline forbids the wait, a lost billable reply is unknown and a 5xx GET is the plain error."""
    billable = decide(
        method="GET", billable=True, attempt=0, outcome="reply_lost", retry_after=None,
        max_retries=MAX, databar_body=True, retry_after_cap_s=CAP, backoff_s=BACKOFF,
    )  # fmt: skip
    assert billable.final == "submission_unknown"
    lost_get = decide(
        method="GET", billable=False, attempt=0, outcome="reply_lost", retry_after=None,
        max_retries=MAX, databar_body=True, retry_after_cap_s=CAP, backoff_s=BACKOFF,
    )  # fmt: skip
    assert (lost_get.verdict, lost_get.final) == ("retry", "give_up")
    server_error = decide(
        method="GET", billable=False, attempt=0, outcome=503, retry_after=None,
        max_retries=MAX, databar_body=True, retry_after_cap_s=CAP, backoff_s=BACKOFF,
    )  # fmt: skip
    assert (server_error.verdict, server_error.final) == ("retry", "give_up")


def test_no_retries_configured_never_retries() -> None:
    for outcome in ("refused", "not_connected", "reply_lost", 429, 503):
        got = decide(
            method="GET", billable=False, attempt=0, outcome=outcome, retry_after=None,
            max_retries=0, databar_body=True, retry_after_cap_s=CAP, backoff_s=BACKOFF,
        )  # fmt: skip
        assert got.verdict != "retry", outcome
