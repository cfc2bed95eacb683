"""Property tests for the pure pieces: Retry-After parsing, backoff, budget fitting, page arithmetic."""

from __future__ import annotations

import math
import random
import sys
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from databar_mcp.api.errors import (
    BadRequestError,
    InsufficientCredits,
    RateLimited,
    UnprocessableEntity,
    parse_issues,
    status_error,
)
from databar_mcp.api.models import Task, TaskProgress
from databar_mcp.api.pacing import WINDOW_S, TableWindows, table_of
from databar_mcp.api.retry import backoff_delay, parse_retry_after
from databar_mcp.core.costs import credits_words, measured
from databar_mcp.core.pace import Pace
from databar_mcp.core.partial_reads import PartialReads
from databar_mcp.core.runner import (
    AIM_TOLERANCE_S,
    ETA_POLL_CAP_S,
    FINE_TOLERANCE_S,
    LEARNING_TOLERANCE_S,
    REFERENCE_POLL_S,
    PollPlan,
)
from databar_mcp.core.shaping import escape_text, largest_fitting, result_size
from databar_mcp.startup import LazyModule
from databar_mcp.tools.kit.task_view import build_view
from databar_mcp.tools.tables import next_page_call


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_retry_after_seconds(seconds: float) -> None:
    assert parse_retry_after(repr(seconds), now=0) == seconds


@given(st.integers(min_value=0, max_value=10_000))
def test_retry_after_http_date(delta: int) -> None:
    now = 1_800_000_000.0
    header = format_datetime(datetime.fromtimestamp(now + delta, tz=UTC), usegmt=True)
    assert parse_retry_after(header, now=now) == delta


@given(st.text(max_size=40))
def test_retry_after_never_raises(junk: str) -> None:
    value = parse_retry_after(junk, now=0)
    assert value is None or value >= 0


def test_retry_after_rejects_nan_and_negative() -> None:
    assert parse_retry_after("nan", now=0) is None
    assert parse_retry_after("-5", now=0) == 0
    assert parse_retry_after(None, now=0) is None


@given(st.integers(min_value=0, max_value=100), st.integers(min_value=0, max_value=2**32))
def test_backoff_is_capped_and_jittered(attempt: int, seed: int) -> None:
    delay = backoff_delay(attempt, base=0.5, cap=8.0, rng=random.Random(seed))
    raw = min(8.0, 0.5 * 2**attempt)
    assert 0.75 * raw <= delay <= raw


@given(st.lists(st.integers(min_value=0, max_value=500), max_size=200), st.integers(min_value=0, max_value=20_000))
def test_largest_fitting_is_the_largest_prefix_within_budget(sizes: list[int], budget: int) -> None:
    def size_with(k: int) -> int:
        return sum(sizes[:k])

    k = largest_fitting(len(sizes), size_with, budget)
    assert size_with(k) <= budget or k == 0
    assert k == len(sizes) or size_with(k + 1) > budget


@given(
    st.integers(min_value=1, max_value=500),
    st.integers(min_value=1, max_value=1000),
    st.data(),
)
def test_table_paging_reads_every_row_once_in_full_pages(page: int, per_page: int, data: st.DataObject) -> None:
    """Whatever the budget cuts, following next_call visits each row of the page once, then the next page."""
    skip = 0
    seen = 0
    for _ in range(per_page + 1):
        shown = data.draw(st.integers(min_value=1, max_value=per_page - skip))
        seen += shown
        call = next_page_call(
            "t", page=page, per_page=per_page, skip=skip, shown=shown, page_rows=per_page, has_next_page=True
        )
        assert call is not None and f"per_page={per_page}" in call  # the page size never shrinks
        if seen == per_page:
            assert f"page={page + 1}," in call and "skip" not in call
            break
        assert f"page={page}," in call and call.endswith(f"skip={seen})")
        skip = seen
    assert seen == per_page


def test_error_bodies_of_every_shape_are_parsed() -> None:
    four_hundred = status_error(400, {"detail": {"params[3].first_name": ["This field is required."]}})
    assert isinstance(four_hundred, BadRequestError)
    assert four_hundred.issues[0].path == "params[3].first_name"
    unprocessable = status_error(
        422, {"detail": [{"loc": ["body", "params"], "msg": "field required", "type": "value_error.missing"}]}
    )
    assert isinstance(unprocessable, UnprocessableEntity)
    assert [(i.path, i.message) for i in unprocessable.issues] == [("params", "field required")]
    batch = status_error(400, {"error": "BATCH_TOO_LARGE", "max_size": 50})
    assert batch.error_code == "BATCH_TOO_LARGE"
    assert "BATCH_TOO_LARGE" in batch.message
    credits = status_error(406, {"detail": "Check the number of remaining credits or the tariff plan."})
    assert isinstance(credits, InsufficientCredits)
    assert isinstance(status_error(429, {"detail": "slow down"}, retry_after=3), RateLimited)
    assert parse_issues("not json") == ()


def test_fastapi_422_input_values_are_never_kept() -> None:
    body = {"detail": [{"loc": ["body", "headers", 0, "value"], "msg": "too long", "input": "sk-secret-123"}]}
    err = status_error(422, body)
    assert "sk-secret" not in err.message
    assert all("sk-secret" not in i.message for i in err.issues)


def test_text_rendering_makes_bidi_and_invisible_characters_visible() -> None:
    shown = escape_text("ok\u202eevil\u200b\x00")
    assert "\u202e" not in shown
    assert "\\u202e" in shown
    assert "\\u200b" in shown
    assert "\\u0000" in shown


def _linear_run(plan: PollPlan, base: float, row_s: float, rows: int) -> tuple[float, int]:
    """Poll a task of the sandbox's model (row i ends at base + i·row_s after sending) as the plan says;
    (how late the end was seen, polls)."""
    now = plan.next_at(None, 0.0)
    for _ in range(1_000):
        done = 0 if now < base else min(rows, int((now - base) // row_s) + 1)
        status = "completed" if done == rows else "processing"
        plan.observe(now, Task(task_id="t", status=status, progress=TaskProgress(total=rows, completed=done)))
        if status == "completed":
            break
        now = plan.next_at(rows, now)
    return now - (base + (rows - 1) * row_s), plan.polls


def test_poll_plan_aims_at_the_predicted_end() -> None:
    plan = PollPlan(first_s=0.1, cap_s=2.0, start=0.0)
    for t, finished in ((1.0, 10), (2.0, 20)):
        plan.observe(t, Task(task_id="t", status="processing", progress=TaskProgress(total=100, completed=finished)))
    bounds = plan.window(100)
    assert bounds is not None and bounds.lo < 10.0 < bounds.hi < bounds.lo + 1.5  # rows 0.1 s apart: ends near 10 s
    assert plan.next_delay(100) <= ETA_POLL_CAP_S  # far off: capped so progress keeps flowing
    slow = PollPlan(first_s=0.1, cap_s=2.0, start=0.0)
    for t, finished in ((1.0, 1), (2.0, 2)):
        slow.observe(t, Task(task_id="t", status="processing", progress=TaskProgress(total=100, completed=finished)))
    assert slow.next_delay(100) == ETA_POLL_CAP_S


def test_poll_plan_with_the_pace_of_the_last_task_polls_once() -> None:
    """A task like the last of its kind is seen done by the first poll, soon after its end (issue 28)."""
    first = PollPlan(start=0.0, rows=50, kind="waterfall x")
    late, polls = _linear_run(first, 0.05, 0.45 / 49, 50)
    learned = first.learned(50)
    assert learned is not None and polls >= 2
    assert 0 <= late <= LEARNING_TOLERANCE_S  # the first of its kind is followed closely: its pace is learnt
    again = PollPlan(start=0.0, rows=50, prior=learned, kind="waterfall x")
    late, polls = _linear_run(again, 0.05, 0.45 / 49, 50)
    assert polls == 1 and 0 <= late <= LEARNING_TOLERANCE_S


@settings(deadline=None)
@given(
    seconds=st.floats(min_value=0.5, max_value=150.0),
    slower=st.floats(min_value=0.7, max_value=1.3),
    rows=st.integers(min_value=5, max_value=500),
)
def test_poll_plan_with_a_prior_sees_the_end_within_the_tolerance(seconds: float, slower: float, rows: int) -> None:
    """The last task of the kind ran `seconds`; this one runs `slower` times as long: the end is still seen within
    AIM_TOLERANCE_S (half a row where rows are few and slow) in fewer polls than a 2 s poller's (issue 28)."""
    prior = Pace(base_s=0.1 * seconds, row_s=0.9 * seconds / max(1, rows - 1))
    duration = seconds * slower
    plan = PollPlan(start=0.0, rows=rows, prior=prior)
    late, polls = _linear_run(plan, 0.1 * duration, 0.9 * duration / max(1, rows - 1), rows)
    row_s = 0.9 * duration / max(1, rows - 1)
    # within the tolerance, or half a row interval where few slow rows say little; a shorter task: seen at once
    assert 0 <= late <= max(AIM_TOLERANCE_S, row_s / 2) + 1e-6 or (slower < 1 and polls == 1)
    assert polls <= 20 + duration / 2


@settings(deadline=None)
@given(
    base=st.floats(min_value=0.0, max_value=5.0),
    row_s=st.floats(min_value=0.01, max_value=1.0),
    rows=st.integers(min_value=5, max_value=500),
)
def test_poll_plan_detects_a_linear_task_within_the_tolerance(base: float, row_s: float, rows: int) -> None:
    """Against the sandbox's model with no earlier task to go by, the end is seen within AIM_TOLERANCE_S (half a
    row where rows are slow) once rows have been seen finishing, in a bounded number of polls."""
    plan = PollPlan(start=0.0)
    late, polls = _linear_run(plan, base, row_s, rows)
    end = base + (rows - 1) * row_s
    assert late >= 0
    moving = [s for s in plan.samples if 0 < s.finished < rows]
    if len(moving) >= 2 and rows >= 20:  # counts seen moving before the end: they give the pace
        assert late <= max(AIM_TOLERANCE_S, row_s / 2) + 1e-6
    assert polls <= 20 + end / 2


def _run_with_trips(plan: PollPlan, base: float, row_s: float, rows: int, trip: float) -> tuple[float, int]:
    """Poll a task of the sandbox's model over a wire whose every poll takes `trip` seconds, counted halfway;
    (how long after the end the API counted the poll that saw it, polls)."""
    end = base + (rows - 1) * row_s
    now = plan.next_at(None, 0.0)
    for _ in range(1_000):
        counted = now + trip / 2
        done = 0 if counted < base else min(rows, int((counted - base) // row_s) + 1)
        status = "completed" if done == rows else "processing"
        task = Task(task_id="t", status=status, progress=TaskProgress(total=rows, completed=done))
        plan.observe(now + trip, task, asked=now)
        if status == "completed":
            return counted - end, plan.polls
        now = plan.next_at(rows, now + trip)
    raise AssertionError("never saw the end")


@settings(deadline=None)
@given(
    seconds=st.floats(min_value=20.0, max_value=150.0),
    slower=st.floats(min_value=0.95, max_value=1.05),
    rows=st.integers(min_value=20, max_value=500),
    trip=st.floats(min_value=0.0, max_value=0.01),
)
def test_poll_plan_spends_spare_polls_on_a_long_tasks_end(
    seconds: float, slower: float, rows: int, trip: float
) -> None:
    """Regression (issue 28): a long task's end was seen up to AIM_TOLERANCE_S (80 ms) late, though a 2 s poller
    would have spent many more requests. The final approach now halves the window down to FINE_TOLERANCE_S,
    with fewer polls than that poller's."""
    prior = Pace(base_s=0.1 * seconds, row_s=0.9 * seconds / max(1, rows - 1), spread_s=FINE_TOLERANCE_S / 2)
    duration = seconds * slower
    plan = PollPlan(start=0.0, rows=rows, prior=prior, kind="waterfall x")
    late, polls = _run_with_trips(plan, 0.1 * duration, 0.9 * duration / max(1, rows - 1), rows, trip)
    assert 0 <= late <= FINE_TOLERANCE_S + 1e-6 or (slower <= 1 and polls == 1)  # no longer: seen by the first poll
    assert polls <= duration / REFERENCE_POLL_S


@settings(deadline=None)
@given(seconds=st.floats(min_value=2.5, max_value=4.0), slower=st.floats(min_value=0.85, max_value=1.15))
def test_poll_plan_spends_no_more_than_a_2s_poller_on_a_short_task(seconds: float, slower: float) -> None:
    """A 3 s task has no requests to spare (a 2 s poller spends two or three): it keeps the coarse aim, not the fine
    approach's halvings."""
    prior = Pace(base_s=0.1 * seconds, row_s=0.9 * seconds / 49)
    duration = seconds * slower
    plan = PollPlan(start=0.0, rows=50, prior=prior, kind="waterfall x")
    late, polls = _run_with_trips(plan, 0.1 * duration, 0.9 * duration / 49, 50, 0.003)
    assert polls <= max(2, math.ceil(duration / REFERENCE_POLL_S)) + 1  # a window wider than the aim: split once
    assert 0 <= late <= AIM_TOLERANCE_S + 1e-6 or (slower < 1 and polls == 1)  # shorter: seen by the first poll


@pytest.mark.parametrize("shape_error", [0.8, 0.9, 1.1, 1.2])
def test_poll_plan_follows_a_task_far_longer_than_its_prior_by_its_own_counts(shape_error: float) -> None:
    """Regression (issue 28): a 3 s task's pace, its first row's wait known to 10-20%, stretched 40 times to a 120 s
    task put that task's end far off; the windows cut from it missed the end and it was seen ~0.5 s late. A prior
    now predicts tasks up to STRETCH_TRUSTED times its length; past that the task's own counts do."""
    prior = Pace(base_s=0.3 * shape_error, row_s=2.7 / 49, spread_s=0.01)
    plan = PollPlan(start=0.0, rows=50, prior=prior, kind="waterfall x")
    late, polls = _run_with_trips(plan, 12.0, 108.0 / 49, 50, 0.005)
    assert 0 <= late <= FINE_TOLERANCE_S + 1e-6
    assert polls <= 120 / REFERENCE_POLL_S


def test_poll_plan_sends_a_poll_ahead_by_the_wires_one_way_time() -> None:
    """Regression (issue 28): a poll aimed at the window's edge was sent at the edge, so the API counted it half
    a round trip later; it is now sent that much earlier (half the quickest round trip seen)."""
    plan = PollPlan(start=0.0, rows=50, prior=Pace(base_s=0.3, row_s=0.054), kind="waterfall x")
    task = Task(task_id="t", status="processing", progress=TaskProgress(total=50, completed=44))
    plan.observe(2.71, task, asked=2.69)  # a 20 ms round trip
    target = plan.target(50)
    assert target is not None and target > 2.71
    assert abs(plan.next_at(50, 2.71) - (target - 0.01)) < 1e-9


def test_poll_plan_backs_off_without_progress() -> None:
    plan = PollPlan(first_s=0.1, cap_s=2.0)
    delays = []
    for _ in range(12):
        plan.observe(0.0, Task(task_id="t", status="processing"))
        delays.append(plan.next_delay(None))
    assert delays[0] == 0.1
    assert delays == sorted(delays)
    assert delays[-1] == 2.0


row_values = st.one_of(
    st.none(),
    st.dictionaries(
        st.sampled_from(["email", "name", "note", "company"]), st.text(max_size=400), min_size=1, max_size=4
    ),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(row_values, min_size=0, max_size=120), st.integers(min_value=2_000, max_value=12_000))
def test_task_pages_cover_every_row_once_within_the_budget(rows: list[object], budget: int) -> None:
    task = Task(task_id="t", status="completed", data=rows)
    seen: list[int] = []
    offset: int | None = 0
    pages = 0
    while offset is not None:
        view, text = build_view(task, offset=offset, limit=None, budget=budget)
        assert result_size(view.model_dump(mode="json"), text) <= budget or view.truncated_values
        seen.extend(row.index for row in view.rows)
        assert view.next_offset is None or view.next_offset > offset  # paging always advances
        offset = view.next_offset
        pages += 1
        assert pages <= len(rows) + 1
    assert seen == list(range(len(rows)))


def test_a_lazy_module_is_imported_on_its_first_attribute_read() -> None:
    """The API client names api.models through one: a start reads no reply, so it must not import them."""
    sys.modules.pop("colorsys", None)
    lazy = LazyModule("colorsys")
    assert "colorsys" not in sys.modules
    assert lazy.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
    assert "colorsys" in sys.modules and lazy.hsv_to_rgb(0.0, 0.0, 1.0) == (1.0, 1.0, 1.0)


def test_a_balance_drop_measures_a_run_only_when_it_is_plausibly_that_run_alone() -> None:
    """Issue 23 §3: a table run's cost is the balance's drop over it, unless a top-up or outside spending shows."""
    assert measured(100.0, 90.0, 12.0) == 10.0
    assert measured(100.0, 90.0, None) == 10.0  # no estimate: any drop is this run's (nothing else overlapped)
    assert measured(100.0, 101.0, 12.0) is None  # a top-up meanwhile
    assert measured(100.0, 80.0, 12.0) is None  # more than the run's worst case: spending outside this server
    assert measured(None, 90.0, 12.0) is None and measured(100.0, None, 12.0) is None
    assert credits_words(10.0, "measured", 12.0).startswith("Credits spent: 10 (measured from the balance")
    assert credits_words(12.0, "estimate", 12.0).endswith("counted at its estimate, at most 12.")
    assert credits_words(None, None, 12.0) == "Credits spent: not known until the run finishes; at most 12."


def test_partial_reads_are_granted_once_per_interval_per_task() -> None:
    """Issue 23 (6): however often views poll, Databar's costly include_partial is read once per interval."""
    now = [100.0]
    gate = PartialReads(5.0, clock=lambda: now[0])
    assert gate.allow("a") and gate.allow("b")
    now[0] += 4.9
    assert not gate.allow("a") and not gate.allow("b")
    now[0] += 0.1
    assert gate.allow("a") and not gate.allow("a") and gate.allow("b")


def test_a_tables_requests_wait_for_the_one_limit_before_to_leave_the_window() -> None:
    """Once a table stated its limit, the next request over it waits until the request `limit` earlier has left
    the one-second window (counted from its answer, the latest the API can have counted it)."""
    windows = TableWindows()
    first = windows.take("t", 0.0)
    windows.answered("t", first, "2")
    first.answered = 0.01
    second = windows.take("t", 0.02)
    assert second.sent == 0.02  # two in the window: allowed
    third = windows.take("t", 0.03)
    assert abs(third.sent - (0.01 + WINDOW_S)) < 1e-9  # waits for the first to leave
    windows.answered("t", third, "not a number")  # an unreadable header changes nothing
    assert windows.take("other", 0.04).sent == 0.04  # another table, no stated limit: no wait
    assert table_of("table/abc/rows") == "abc" and table_of("tasks/abc") is None


@settings(deadline=None)
@given(
    row_s=st.floats(min_value=0.0005, max_value=0.5),
    rows=st.integers(min_value=20, max_value=20_000),
    lag=st.floats(min_value=0.0, max_value=0.1),
    counted_at=st.floats(min_value=0.0, max_value=1.0),
)
def test_poll_plan_windows_hold_the_end_when_answers_come_late(
    row_s: float, rows: int, lag: float, counted_at: float
) -> None:
    """Regression (issue 28): a count was dated when its answer arrived, though the API took it earlier (a busy
    table answers in tens of ms); the window then missed the end, the poll at its edge came early, and the plan
    fell back to a 2 s backoff. Dated by the interval between asking and answering, the window holds the end."""
    end = 0.3 + (rows - 1) * row_s
    plan = PollPlan(start=0.0, min_s=0.25)
    now = plan.next_at(None, 0.0)
    for _ in range(60):
        taken = now + counted_at * lag
        done = 0 if taken < 0.3 else min(rows, int((taken - 0.3) // row_s) + 1)
        status = "completed" if done == rows else "processing"
        task = Task(task_id="t", status=status, progress=TaskProgress(total=rows, completed=done))
        plan.observe(now + lag, task, asked=now)
        if status == "completed":
            break
        window = plan.window(rows)
        if window is not None:
            assert window.lo - 1e-6 <= end <= window.hi + 1e-6
        now = plan.next_at(rows, now + lag)
