"""The ledger on its own: schema versions, the claim protocol, what a terminal task keeps; fingerprints."""

from __future__ import annotations

import json
import random
import re
import sqlite3
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import anyio
import anyio.lowlevel
import httpx2
import psycopg
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from databar_mcp.api.models import NOT_REUSABLE_STATUSES, TERMINAL_STATUSES, Task, TaskProgress, TaskStatus
from databar_mcp.app.http_app import HttpOptions, SecurityMiddleware
from databar_mcp.core.fingerprint import account_id, canonical_json, fingerprint, json_equal_form
from databar_mcp.core.ledger.backend import LedgerBackend, LedgerConn, LedgerUnavailable
from databar_mcp.core.ledger.postgres import PostgresBackend
from databar_mcp.core.ledger.retention import ledger_stats, prune_some
from databar_mcp.core.ledger.sqlite import SqliteBackend
from databar_mcp.core.ledger.store import (
    FINISHED_HANDLES_SQL,
    MIGRATIONS,
    Ledger,
    LedgerError,
    TaskIdTaken,
    compressed_json,
)
from databar_mcp.core.rounds import spend_round
from databar_mcp.core.users import acting_as
from databar_mcp.mcp_tasks.handles import TERMINAL_STATES, HandleStore, State
from tests.postgres_server import PostgresServer, free_port

pytestmark = pytest.mark.anyio

REQUEST: dict[str, Any] = {"params": [{"a": 1}], "enrichments": [833], "email_verifier": None}


async def claim(ledger: Ledger, fp: str = "f" * 64, *, window_s: float = 1800, force: bool = False) -> Any:
    return await ledger.claim(
        tool="run_bulk_waterfall",
        endpoint="waterfalls/email_getter/bulk-run",
        fingerprint=fp,
        request=REQUEST,
        rows=1,
        estimated_credits=3.0,
        window_s=window_s,
        force=force,
    )


async def test_schema_is_versioned_and_reopening_migrates_nothing(
    make_ledger: Callable[[], Ledger], database_url: str | None, tmp_path: Path
) -> None:
    first = make_ledger()
    assert await first.version() == len(MIGRATIONS)
    fresh = await claim(first)
    assert (await make_ledger().version()) == len(MIGRATIONS)
    assert fresh.submission_id == 1
    if database_url is None:
        with sqlite3.connect(tmp_path / "state" / "ledger.sqlite3") as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0] == 1
    else:
        with psycopg.connect(database_url) as conn:
            assert conn.execute("SELECT version FROM databar_ledger_schema").fetchall() == [(len(MIGRATIONS),)]
            assert conn.execute("SELECT COUNT(*) FROM submissions").fetchone() == (1,)


async def test_claim_returns_the_earlier_run_until_it_is_rejected(make_ledger: Callable[[], Ledger]) -> None:
    ledger = make_ledger()
    first = await claim(ledger)
    pending = await claim(ledger)
    assert pending.submission_id is None and pending.earlier is not None and pending.earlier.outcome == "pending"
    await ledger.failed(first.submission_id, "rejected", "HTTP 422")
    assert (await claim(ledger)).submission_id is not None  # refused runs never block a corrected retry


async def test_claim_reuses_a_running_task_past_the_window_but_not_a_failed_one(
    make_ledger: Callable[[], Ledger],
) -> None:
    ledger = make_ledger()
    first = await claim(ledger)
    await ledger.accepted(first.submission_id, "task-1", "processing")
    reused = await claim(ledger, window_s=0)
    assert reused.earlier is not None and reused.earlier.task_id == "task-1"  # still running: never run twice
    await ledger.observe(Task(task_id="task-1", status="failed", error=["provider down"]))
    assert (await claim(ledger, window_s=3600)).submission_id is not None
    assert (await claim(ledger, force=True)).submission_id is not None


async def test_a_finished_task_keeps_its_data_when_databar_later_says_gone(make_ledger: Callable[[], Ledger]) -> None:
    ledger = make_ledger()
    progress = TaskProgress(total=2, completed=1, no_data=1, failed=0, processing=0)
    await ledger.observe(
        Task(task_id="t", status="completed", data=[{"email": "x@y"}, None], credits_spent=2.5, progress=progress)
    )
    await ledger.observe(Task(task_id="t", status="gone"))

    record = await ledger.read("t")
    stored = record.stored_task() if record is not None else None
    assert stored is not None and stored.status == "completed" and stored.data == [{"email": "x@y"}, None]
    assert record is not None and (record.rows_total, record.rows_with_data) == (2, 1)
    assert await ledger.credits_spent_since(0) == 2.5


async def test_a_poll_answered_before_a_cancel_but_written_after_it_does_not_revive_the_task(
    make_ledger: Callable[[], Ledger],
) -> None:
    """A watcher's poll sent before the cancel answers 'processing' and is written after the cancel's
    'cancelled' (seen once on a busy machine as an MCP task still 'working' after tasks/cancel)."""
    ledger = make_ledger()
    await ledger.observe(Task(task_id="t", status="processing"))
    await ledger.observe(Task(task_id="t", status="cancelled"))
    await ledger.observe(Task(task_id="t", status="processing"))

    record = await ledger.read("t")
    assert record is not None and record.status == "cancelled" and record.is_terminal
    unfinished, _ = await ledger.recent(limit=10, offset=0, unfinished_only=True)
    assert unfinished == []


async def test_one_read_brings_the_task_its_run_its_estimate_and_its_result(make_ledger: Callable[[], Ledger]) -> None:
    ledger = make_ledger()
    fresh = await claim(ledger)
    await ledger.accepted(fresh.submission_id, "t", "processing")
    unfinished = await ledger.read("t")
    assert unfinished is not None and unfinished.stored_task() is None and not unfinished.has_result
    assert unfinished.submission is not None and unfinished.submission.request == REQUEST
    await ledger.observe(Task(task_id="t", status="completed", data=[{"email": "x@y"}], credits_spent=1.0))

    record = await ledger.read("t")
    assert record is not None and record.estimated_credits == 3.0 and record.has_result
    assert record.submission is not None and record.submission.tool == "run_bulk_waterfall"
    stored = record.stored_task()
    assert stored is not None and stored.data == [{"email": "x@y"}] and stored.credits_spent == 1.0
    light = await ledger.read("t", with_data=False)
    assert light is not None and light.has_result and light.stored_task() is None
    assert light.estimated_credits == 3.0
    assert await ledger.read("never-seen") is None


async def test_the_trackers_pass_reads_who_ran_a_task_but_never_its_rows(make_ledger: Callable[[], Ledger]) -> None:
    """Issue 28: each tracker pass read every due run's request, so a 10,000-row run's rows were parsed again (4 MB)
    at every pass while its result arrived; a poll needs who ran the task, never what it sent."""
    ledger = make_ledger()
    with acting_as("alice"):
        made = await claim(ledger)
        await ledger.accepted(made.submission_id, "t", "processing")
    due = await ledger.due(limit=10, next_in_s=60)
    assert [r.task_id for r in due] == ["t"]
    assert due[0].submission is not None and due[0].submission.owner == "alice"
    assert due[0].submission.request == {}
    with acting_as("alice"):
        record = await ledger.read("t", with_data=False)
    assert record is not None and record.submission is not None and record.submission.request == REQUEST


def test_unknown_to_databar_is_terminal_everywhere() -> None:
    """Regression: Task(status="unknown_to_databar").is_terminal was False while the ledger treated it as
    finished, so an MCP task watcher kept polling a task Databar does not know until its TTL ran out."""
    assert Task(task_id="t", status=TaskStatus.UNKNOWN_TO_DATABAR).is_terminal
    assert TaskStatus.UNKNOWN_TO_DATABAR in TERMINAL_STATUSES
    assert NOT_REUSABLE_STATUSES <= TERMINAL_STATUSES


async def test_the_ledgers_sql_agrees_with_the_terminal_set(make_ledger: Callable[[], Ledger]) -> None:
    """Every status observed: exactly the non-terminal ones are listed as unfinished, and finished ones get
    their completion time (an unknown_to_databar task had none before, being "not terminal" to the model)."""
    ledger = make_ledger()
    statuses = [s for s in TaskStatus if s is not TaskStatus.CREATED]  # "created" is read as processing
    for status in statuses:
        await ledger.observe(Task(task_id=f"t-{status.value}", status=status))
    unfinished, total = await ledger.recent(limit=100, offset=0, unfinished_only=True)
    assert {r.status for r in unfinished} == {s.value for s in statuses if s not in TERMINAL_STATUSES}
    assert total == len(unfinished)
    for status in statuses:
        record = await ledger.read(f"t-{status.value}")
        assert record is not None and record.is_terminal == (status in TERMINAL_STATUSES)
        assert (record.completed_at is not None) == (status in TERMINAL_STATUSES), status


async def test_identical_claims_at_once_from_many_replicas_record_one_intent(
    make_ledger: Callable[[], Ledger],
) -> None:
    """The duplicate guard across processes: ledgers on one store (replicas) claim the same run at once."""
    replicas = [make_ledger() for _ in range(4)]
    for replica in replicas:
        await replica.open()
    claims: list[Any] = []

    async def one(replica: Ledger) -> None:
        claims.append(await claim(replica))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            for replica in replicas:
                tg.start_soon(one, replica)

    fresh = [c.submission_id for c in claims if c.submission_id is not None]
    assert len(fresh) == 1, fresh
    assert all(c.earlier is not None and c.earlier.id == fresh[0] for c in claims if c.submission_id is None)


async def test_one_task_id_for_two_submissions_at_once_is_bound_to_one_only(
    make_ledger: Callable[[], Ledger],
) -> None:
    a, b = make_ledger(), make_ledger()
    first, second = await claim(a, "1" * 64), await claim(b, "2" * 64)
    outcomes: list[object] = []

    async def accept(ledger: Ledger, submission_id: int) -> None:
        try:
            outcomes.append(await ledger.accepted(submission_id, "same-task", "processing"))
        except TaskIdTaken as exc:
            outcomes.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(accept, a, first.submission_id)
        tg.start_soon(accept, b, second.submission_id)

    assert sorted(type(o).__name__ for o in outcomes) == ["TaskIdTaken", "bool"]
    record = await a.read("same-task")
    assert record is not None and record.submission is not None
    assert record.submission.id in (first.submission_id, second.submission_id)


async def test_the_trackers_turn_goes_to_one_replica_at_a_time(
    make_ledger: Callable[[], Ledger], database_url: str | None
) -> None:
    a, b = make_ledger(), make_ledger()
    async with a.tracking_turn() as first, b.tracking_turn() as second:
        pass
    async with b.tracking_turn() as later:
        pass
    assert first and later
    assert second is (database_url is None)  # SQLite processes on one host each track; replicas take turns


async def test_a_postgres_ledger_names_its_database_without_the_password(postgres: PostgresServer) -> None:
    url = postgres.new_database().replace("databar@", "databar:hunter2-secret@")
    ledger = Ledger(PostgresBackend(url))
    try:
        assert "hunter2" not in ledger.where and str(postgres.port) in ledger.where
        unreachable = Ledger(PostgresBackend(f"postgresql://databar:hunter2-secret@127.0.0.1:{free_port()}/x"))
        with pytest.raises(LedgerError) as caught:
            await unreachable.open()
        assert "hunter2" not in str(caught.value) and "cannot be reached" in str(caught.value)
        with pytest.raises(LedgerError):
            unreachable.check()  # the start-up check says the same, before anything is served
    finally:
        await ledger.aclose()


async def test_postgres_statements_time_out(postgres: PostgresServer) -> None:
    """A stuck database (here: a statement that sleeps) is an error after the timeout, never a hung call."""
    backend = PostgresBackend(postgres.new_database(), statement_timeout_s=0.2)

    async def sleep(conn: Any) -> None:
        await conn.execute("SELECT pg_sleep(5)")

    try:
        with anyio.fail_after(30), pytest.raises(LedgerUnavailable, match="statement timeout"):
            await backend.run(sleep)  # one line naming the database, which tools answer as ledger_unavailable
    finally:
        await backend.aclose()


rows_strategy = st.lists(
    st.dictionaries(
        st.text(min_size=1, max_size=8), st.one_of(st.text(max_size=8), st.integers(), st.none()), max_size=4
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=200, deadline=None)
@given(rows=rows_strategy, seed=st.integers(0, 2**32))
def test_fingerprint_ignores_key_order(rows: list[dict[str, Any]], seed: int) -> None:
    rng = random.Random(seed)
    shuffled = []
    for row in rows:
        keys = list(row)
        rng.shuffle(keys)
        shuffled.append({k: row[k] for k in keys})
    body = {"params": rows, "enrichments": [1, 2]}
    assert fingerprint(account="a", endpoint="e", body=body) == fingerprint(
        account="a", endpoint="e", body={"enrichments": [1, 2], "params": shuffled}
    )


@settings(max_examples=200, deadline=None)
@given(rows=rows_strategy)
def test_fingerprint_tells_apart_row_order_accounts_and_endpoints(rows: list[dict[str, Any]]) -> None:
    body = {"params": rows}
    base = fingerprint(account="a", endpoint="e", body=body)
    assert base != fingerprint(account="b", endpoint="e", body=body)
    assert base != fingerprint(account="a", endpoint="f", body=body)
    if canonical_json(rows) != canonical_json(rows[::-1]):
        assert base != fingerprint(account="a", endpoint="e", body={"params": rows[::-1]})


def test_account_id_is_one_way_and_depends_on_key_and_url() -> None:
    ids = {account_id("k1", "u"), account_id("k2", "u"), account_id("k1", "v"), account_id(None, "u")}
    assert len(ids) == 4
    assert all("k1" not in i for i in ids)


def test_a_runs_rows_are_fingerprinted_as_before_without_being_copied() -> None:
    """Issue 28: fingerprinting a 10,000-row run copied all its rows (twice a call) only to write 1.0 as 1; rows
    with nothing to rewrite are now read where they are. The fingerprint is the one earlier runs were recorded
    with (pinned here), or the duplicate guard would miss a run sent before an upgrade."""
    rows: list[dict[Any, Any]] = [{"first_name": "Ann", "company": "acme.com", "n": 2.5, "ok": True}] * 3
    assert json_equal_form(rows) is rows
    body = {
        "params": [{"n": 1.0, "b": True, "x": None, "s": "é"}, {"n": 2.5, 3: "int key", "a": (1.0, [2.0, False])}],
        "enrichments": [833],
        "email_verifier": None,
    }
    assert canonical_json(body) == (
        '{"email_verifier":null,"enrichments":[833],"params":[{"b":true,"n":1,"s":"é","x":null},'
        '{"3":"int key","a":[1,[2,false]],"n":2.5}]}'
    )
    assert fingerprint(account="acc", endpoint="waterfalls/w/bulk-run", body=body) == (
        "5e7d2bd91aa0db4de4974d772c30d400547c8f5f442348a4037de6b5bc561e1c"
    )


@settings(max_examples=200, deadline=None)
@given(rows=rows_strategy, data=st.data())
def test_fingerprint_changes_with_any_value(rows: list[dict[str, Any]], data: st.DataObject) -> None:
    candidates = [(i, k) for i, row in enumerate(rows) for k in row]
    if not candidates:
        return
    i, key = data.draw(st.sampled_from(candidates))
    new_value = data.draw(st.one_of(st.text(max_size=8), st.integers(), st.none()).filter(lambda v: v != rows[i][key]))
    changed = [dict(row) for row in rows]
    changed[i][key] = new_value
    assert canonical_json(changed) != canonical_json(rows)
    assert fingerprint(account="a", endpoint="e", body={"params": rows}) != fingerprint(
        account="a", endpoint="e", body={"params": changed}
    )


@settings(max_examples=200, deadline=None)
@given(rows=rows_strategy)
def test_fingerprint_treats_json_equal_numbers_as_one(rows: list[dict[str, Any]]) -> None:
    as_floats = [{k: float(v) if type(v) is int and abs(v) < 2**53 else v for k, v in row.items()} for row in rows]
    assert fingerprint(account="a", endpoint="e", body={"params": rows, "n": 1}) == fingerprint(
        account="a", endpoint="e", body={"params": as_floats, "n": 1.0}
    )
    assert fingerprint(account="a", endpoint="e", body={"v": True}) != fingerprint(
        account="a", endpoint="e", body={"v": 1}
    )


async def test_mcp_task_handles_live_in_the_ledger_on_both_backends(make_ledger: Callable[[], Ledger]) -> None:
    """Issue 16's handle table through the seam: a terminal state never changes, on SQLite and PostgreSQL."""
    from databar_mcp.mcp_tasks.handles import HandleStore

    store = HandleStore(make_ledger())
    handle = await store.create(
        scope="alice",
        generation="2025-11-25",
        tool="run_bulk_waterfall",
        request={"a": 1},
        databar_task_id=None,
        state="working",
        status_message=None,
        poll_ms=500,
        ttl_ms=60_000,
    )
    assert await store.update(handle.handle_id, databar_task_id="t-1", progress={"done": 1}, clear_input=True)
    assert await store.update(handle.handle_id, state="completed", result={"ok": True})
    assert not await store.update(handle.handle_id, state="cancelled")  # terminal: never changes
    again = await HandleStore(make_ledger()).get(handle.handle_id, "alice")
    assert again is not None and again.state == "completed" and again.databar_task_id == "t-1"
    assert again.result == {"ok": True} and again.progress == {"done": 1}
    assert await store.get(handle.handle_id, "bob") is None
    assert [h.handle_id for h in await store.page("alice", offset=0, limit=5)] == [handle.handle_id]
    assert await store.unfinished() == []


async def test_latest_submission_sees_only_the_callers_runs(make_ledger: Callable[[], Ledger]) -> None:
    """Table runs look up their latest submission: another user's run on the same table must stay invisible."""
    from databar_mcp.core.users import acting_as

    ledger = make_ledger()
    endpoint = "table/t1/run-enrichment/7"
    with acting_as("alice"):
        await ledger.claim(
            tool="run_table_enrichment",
            endpoint=endpoint,
            fingerprint="fp-alice",
            request={"run_strategy": "run_all"},
            rows=3,
            estimated_credits=3.0,
            window_s=60,
            force=False,
        )
        mine = await ledger.latest_submission(endpoint)
    with acting_as("bob"):
        theirs = await ledger.latest_submission(endpoint)
    assert mine is not None and mine.fingerprint == "fp-alice"
    assert theirs is None


def test_servers_creating_one_new_ledger_at_the_same_moment_all_start(tmp_path: Path) -> None:
    """Regression (CI, Inspector judges): four stdio servers started at once on a fresh state dir; one exited 2
    with "database is locked" because SQLite skips the busy handler for the first switch to WAL mode."""
    failures: list[str] = []
    for trial in range(200):
        path = tmp_path / f"ledger-{trial}.sqlite3"
        start = threading.Barrier(8)

        def open_at_once(path: Path = path, start: threading.Barrier = start) -> None:
            start.wait()
            try:
                Ledger(path).check()
            except LedgerError as exc:
                failures.append(str(exc))

        threads = [threading.Thread(target=open_at_once) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert failures == []
    with sqlite3.connect(tmp_path / "ledger-0.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_sealed_round_is_spent_once_on_every_ledger_sharing_the_store(
    make_ledger: Callable[[], Ledger],
) -> None:
    """One confirmation, one run (issue 22, 13): a digest is spent once, whichever replica sees it first; a spent
    digest is deleted once its state could no longer be accepted anyway."""
    from databar_mcp.core.rounds import digest_of, spend_round

    one, two = make_ledger(), make_ledger()
    digest = digest_of("v1.sealed-state")
    assert await spend_round(one, digest, keep_s=660) is True
    assert await spend_round(two, digest, keep_s=660) is False
    assert await spend_round(one, digest, keep_s=660) is False
    assert await spend_round(two, digest_of("v1.another"), keep_s=-1) is True  # expired as soon as written
    assert await spend_round(one, digest_of("v1.third"), keep_s=660) is True  # and deleted by the next spend

    async def kept(conn: Any) -> list[str]:
        return sorted(str(row[0]) for row in await conn.all("SELECT digest FROM spent_rounds"))

    assert await one.call(kept) == sorted([digest, digest_of("v1.third")])


async def test_spend_counts_every_run_by_how_its_cost_is_known(make_ledger: Callable[[], Ledger]) -> None:
    """Issue 23 §3: a run without a task (a table run) is counted too, running, then settled once; a lost
    submission counts as possibly spent and keeps the balance seen right after its reply was lost."""
    ledger = make_ledger()
    task_run = await claim(ledger, "a" * 64)
    await ledger.accepted(task_run.submission_id, "t", "processing")
    await ledger.observe(Task(task_id="t", status="completed", data=[None], credits_spent=2.0))
    table_run = await claim(ledger, "b" * 64)  # estimated at 3
    await ledger.note_balance(table_run.submission_id, 100.0)
    await ledger.accepted_without_task(table_run.submission_id, REQUEST)

    running = await ledger.spend_since(0)
    assert (running.spent, running.reported, running.running, running.running_runs, running.runs) == (2, 2, 3, 1, 2)
    record = await ledger.submission(table_run.submission_id)
    assert record is not None and record.balance_before == 100.0
    overlapped = await ledger.overlapping(table_run.submission_id, record.created_at, time.time())

    lost = await claim(ledger, "c" * 64)
    await ledger.failed(lost.submission_id, "unknown", "reply lost")
    await ledger.note_lost_balance("c" * 64, 97.5)
    assert await ledger.overlapping(table_run.submission_id, record.created_at, time.time()) == overlapped + 1
    settled = await ledger.settle(table_run.submission_id, 2.5, "measured")
    again = await ledger.settle(table_run.submission_id, 3.0, "estimate")  # the first settlement stands

    totals = await ledger.spend_since(0)
    assert settled == again and again is not None and (again.credits_spent, again.credits_basis) == (2.5, "measured")
    assert (totals.spent, totals.measured, totals.running, totals.possibly, totals.possibly_runs) == (4.5, 2.5, 0, 3, 1)
    assert [(s.error, s.balance_before) for s in await ledger.unknown_submissions(limit=5)] == [("reply lost", 97.5)]
    assert [s.id for s in await ledger.runs_without_task(since=0, limit=5)] == [table_run.submission_id]


# ---- a ledger that lasts a year (issue 26) ------------------------------------------------------------------


class RecordingConn:
    """A ledger connection that notes every statement it runs (with its values), for EXPLAIN afterwards."""

    def __init__(self, inner: LedgerConn, seen: list[tuple[str, tuple[object, ...]]]) -> None:
        self._inner = inner
        self._seen = seen

    def _note(self, sql: str, params: Sequence[object]) -> None:
        if re.search(r"\b(tasks|results|submissions|spent_rounds)\b", sql):
            self._seen.append((sql, tuple(params)))

    async def execute(self, sql: str, params: Sequence[object] = ()) -> None:
        self._note(sql, params)
        await self._inner.execute(sql, params)

    async def one(self, sql: str, params: Sequence[object] = ()) -> Any:
        self._note(sql, params)
        return await self._inner.one(sql, params)

    async def all(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        self._note(sql, params)
        return await self._inner.all(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class RecordingBackend:
    """A real backend whose connections note their statements (nothing is faked: every statement runs)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.seen: list[tuple[str, tuple[object, ...]]] = []

    async def run(self, fn: Callable[[Any], Any]) -> Any:
        return await self._inner.run(lambda conn: fn(RecordingConn(conn, self.seen)))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


FULL_SCAN_SQLITE = re.compile(r"^SCAN (tasks|results|submissions|t|r|s)$")
FULL_SCAN_PG = re.compile(r"Seq Scan on (tasks|results|submissions)\b")


async def exercise_every_query_path(ledger: Ledger, seen: list[tuple[str, tuple[object, ...]]]) -> dict[str, list[Any]]:
    """Each of the ledger's query paths once, as a user and without OAuth; the statements each one ran."""
    paths: dict[str, list[Any]] = {}

    async def path(name: str, call: Awaitable[Any]) -> Any:
        start = len(seen)
        outcome = await call
        paths[name] = seen[start:]
        return outcome

    for owner in ("alice", None):
        with acting_as(owner):
            who = owner or "anyone"
            made = await path(
                f"duplicate-guard claim ({who})",
                ledger.claim(
                    tool="run_bulk_waterfall", endpoint="waterfalls/email_getter/bulk-run",
                    fingerprint=f"{who:x<64}", request=REQUEST, rows=1, estimated_credits=3.0,
                    window_s=1800, force=False, daily_cap=100.0,
                ),
            )  # fmt: skip
            task_id = f"task-{who}"
            await path(f"accepted ({who})", ledger.accepted(made.submission_id, task_id, "processing"))
            await path(f"observe ({who})", ledger.observe(Task(task_id=task_id, status="processing")))
            await path(f"get_task read ({who})", ledger.read(task_id))
            await path(f"list_recent_tasks ({who})", ledger.recent(limit=20, offset=0))
            await path(f"list unfinished ({who})", ledger.recent(limit=20, offset=0, unfinished_only=True))
            await path(f"unsettled submissions ({who})", ledger.unknown_submissions(limit=20))
            await path(f"runs without a task ({who})", ledger.runs_without_task(since=0, limit=20))
            await path(f"latest submission ({who})", ledger.latest_submission("tables/x/run"))
            await path(f"identical earlier run ({who})", ledger.earlier_run(f"{who:x<64}", window_s=1800))
    done = Task(task_id="task-alice", status="completed", data=[{"email": "a@b.c"}], credits_spent=3.0)
    await path("observe with a result", ledger.observe(done))
    await path("tracker pass", ledger.due(limit=50, next_in_s=15))
    await path("spend today (account)", ledger.spend_since(time.time() - 86400))
    await path("credits spent since", ledger.credits_spent_since(time.time() - 86400))
    await path("overlapping runs", ledger.overlapping(1, time.time() - 60, time.time()))
    await path("lost reply's balance", ledger.note_lost_balance("f" * 64, 10.0))
    await path("settle", ledger.settle(1, 1.0, "measured"))
    await path("failed", ledger.failed(2, "unknown", "reply lost"))
    await path("disown", ledger.disown("task-anyone", "another run's task"))
    await path("spent_rounds", spend_round(ledger, "d" * 64, keep_s=60))
    await path("prune", ledger.prune(finished_before=time.time() + 1, limit=100))
    return paths


async def plans(ledger: Ledger, statements: list[tuple[str, tuple[object, ...]]], pg: bool) -> list[str]:
    async def explain(conn: LedgerConn) -> list[str]:
        found: list[str] = []
        if pg:
            await conn.execute("SET enable_seqscan = off")  # a small table: only a missing index forces a scan
        try:
            for sql, params in statements:
                rows = await conn.all(("EXPLAIN " if pg else "EXPLAIN QUERY PLAN ") + sql, params)
                found.append("\n".join(str(row[0] if pg else row[3]) for row in rows))
        finally:
            if pg:
                await conn.execute("RESET enable_seqscan")
        return found

    return await ledger.call(explain)


async def test_no_query_path_scans_tasks_results_or_submissions(database_url: str | None, tmp_path: Path) -> None:
    """Issue 26 §1: every statement of every query path (list, bounded count, unsettled submissions, tracker,
    duplicate-guard claim, per-user filters, spend sums, spent_rounds) is answered from an index, on both
    backends: EXPLAIN finds no full scan of tasks, results or submissions."""
    inner = SqliteBackend(tmp_path / "ledger.sqlite3") if database_url is None else PostgresBackend(database_url)
    backend = RecordingBackend(inner)
    ledger = Ledger(cast(LedgerBackend, backend))
    try:
        paths = await exercise_every_query_path(ledger, backend.seen)
        scans: list[str] = []
        for name, statements in paths.items():
            assert statements or name.startswith("failed"), f"{name} ran no statement"
            found = await plans(ledger, statements, database_url is not None)
            for (sql, _), plan in zip(statements, found, strict=True):
                lines = [line.strip() for line in plan.splitlines()]
                if any(FULL_SCAN_PG.search(line) or FULL_SCAN_SQLITE.match(line) for line in lines):
                    scans.append(f"{name}: {' '.join(sql.split())}\n{plan}")
        assert not scans, "full scans:\n\n" + "\n\n".join(scans)
    finally:
        await ledger.aclose()


async def test_results_are_compressed_and_pruning_keeps_a_summary_and_the_spend(
    make_ledger: Callable[[], Ledger],
) -> None:
    """Issue 26 §2: results are stored compressed, a result written before compression still reads, and a task
    past the retention period loses its result and its input rows but keeps status, counts, credits and dates:
    the spend figures before and after pruning are the same."""
    ledger = make_ledger()
    rows = [{"email": f"person{i}@example.com", "status": "valid", "provider": "hunter"} for i in range(50)]
    for task_id, fp in (("kept", "a" * 64), ("legacy", "b" * 64), ("old", "c" * 64)):
        made = await ledger.claim(
            tool="run_bulk_waterfall", endpoint="waterfalls/email_getter/bulk-run", fingerprint=fp,
            request={"params": rows}, rows=50, estimated_credits=3.0, window_s=1800, force=False,
        )  # fmt: skip
        assert made.submission_id is not None
        await ledger.accepted(made.submission_id, task_id, "processing")
        await ledger.observe(Task(task_id=task_id, status="completed", data=rows, credits_spent=2.0))
    before = await ledger_stats(ledger)
    legacy = json.dumps(rows)

    async def age(conn: LedgerConn) -> None:
        await conn.execute("UPDATE results SET data_json = ?, data_z = NULL WHERE task_id = 'legacy'", (legacy,))
        await conn.execute("UPDATE tasks SET completed_at = completed_at - 91 * 86400 WHERE task_id = 'old'")

    await ledger.call(age)
    spend = await ledger.spend_since(0)
    pruned = await prune_some(ledger, keep_s=90 * 86400)
    again = await prune_some(ledger, keep_s=90 * 86400)

    old, kept, plain = await ledger.read("old"), await ledger.read("kept"), await ledger.read("legacy")
    after = await ledger_stats(ledger)
    assert before.results_compressed == 3 and before.result_bytes < len(legacy) * 3 / 4
    assert (pruned.tasks, pruned.results, again.tasks) == (1, 1, 0)
    assert old is not None and old.data_json is None and not old.has_result and old.pruned_at is not None
    assert (old.status, old.rows_total, old.rows_with_data, old.credits_spent) == ("completed", 50, 50, 2.0)
    assert old.submission is not None and old.submission.request == {} and old.submission.estimated_credits == 3.0
    assert kept is not None and kept.stored_task() is not None and kept.pruned_at is None
    assert plain is not None and plain.data_json is not None and json.loads(plain.data_json) == rows
    assert await ledger.spend_since(0) == spend and spend.reported == 6.0
    assert (after.rows["results"], after.rows["tasks"], after.pruned_tasks, after.results_plain) == (2, 3, 1, 1)


KINDS_OF_HANDLE: tuple[tuple[str, State], ...] = (
    ("old done", "completed"),
    ("old working", "working"),
    ("recent done", "completed"),
)


async def test_pruning_takes_table_runs_and_finished_mcp_task_handles_too(make_ledger: Callable[[], Ledger]) -> None:
    """Issue 26 item 4: a run without a Databar task (a table run) keeps its outcome and measured credits but
    loses its request past the retention period, like a task's run, and a finished MCP task handle past it is
    deleted, in the same batches (before: both were kept forever). A handle still working and what is recent
    stay; the spend figures are the same before and after."""
    ledger = make_ledger()
    handles = HandleStore(ledger)
    made: dict[str, int] = {}
    for name in ("old", "recent"):
        claim = await ledger.claim(
            tool="run_table_enrichment", endpoint=f"tables/{name}/run", fingerprint=f"{name:t<64}",
            request={"body": {"rows": ["r1", "r2"]}, "scope": {"rows": 2}}, rows=2, estimated_credits=4.0,
            window_s=1800, force=False,
        )  # fmt: skip
        assert claim.submission_id is not None
        made[name] = claim.submission_id
        await ledger.settle(claim.submission_id, 3.0, "measured")
    created = {
        name: await handles.create(
            scope="s",
            generation="2025-11-25",
            tool="run_bulk_waterfall",
            request={"rows": [1, 2]},
            databar_task_id=None,
            state=state,
            status_message=None,
            poll_ms=None,
            ttl_ms=None,
            result={"a": 1},
        )
        for name, state in KINDS_OF_HANDLE
    }

    async def age(conn: LedgerConn) -> None:
        await conn.execute("UPDATE submissions SET created_at = created_at - 91 * 86400 WHERE id = ?", (made["old"],))
        for name in ("old done", "old working"):
            await conn.execute(
                "UPDATE mcp_tasks SET updated_at = updated_at - 91 * 86400 WHERE handle_id = ?",
                (created[name].handle_id,),
            )

    await ledger.call(age)
    spend = await ledger.spend_since(0)
    pruned = await prune_some(ledger, keep_s=90 * 86400)
    again = await prune_some(ledger, keep_s=90 * 86400)
    old, recent = await ledger.submission(made["old"]), await ledger.submission(made["recent"])
    left = {name: await handles.get(handle.handle_id, "s") for name, handle in created.items()}
    stats = await ledger_stats(ledger)
    assert (pruned.runs, pruned.handles, again.runs, again.handles) == (1, 1, 0, 0)
    assert old is not None and old.request == {} and (old.credits_spent, old.estimated_credits) == (3.0, 4.0)
    assert recent is not None and recent.request == {"body": {"rows": ["r1", "r2"]}, "scope": {"rows": 2}}
    assert left["old done"] is None and left["old working"] is not None and left["recent done"] is not None
    assert await ledger.spend_since(0) == spend and stats.pruned_runs == 1
    # the ledger's SQL list of finished handle states is the handles module's own
    listed = "(" + ", ".join(f"'{state}'" for state in sorted(TERMINAL_STATES)) + ")"
    assert listed == FINISHED_HANDLES_SQL


def test_readiness_never_waits_behind_the_shared_connection(tmp_path: Path) -> None:
    """Issue 26 §4: /readyz's probe reads on a connection of its own, so a long query holding the SQLite
    ledger's shared connection (a tracker pass on a huge ledger) does not make the load balancer drop us."""
    backend = SqliteBackend(tmp_path / "ledger.sqlite3")
    ledger = Ledger(backend)
    held, release = threading.Event(), threading.Event()

    def long_query(conn: sqlite3.Connection) -> None:
        held.set()
        release.wait()

    async def main() -> bool:
        await ledger.open()
        answered_while_held = False
        async with anyio.create_task_group() as tg:
            tg.start_soon(backend.run_sqlite, long_query)
            await anyio.to_thread.run_sync(held.wait)
            # The long query ends when the probe has answered, or (before the fix: the probe queued behind it)
            # after a while, so the test fails instead of hanging.
            tg.start_soon(anyio.to_thread.run_sync, lambda: release.wait(60) or release.set())
            await ledger.probe()
            answered_while_held = not release.is_set()
            release.set()
        await ledger.aclose()
        return answered_while_held

    assert anyio.run(main)


def test_a_v5_ledger_migrates_in_place_and_keeps_everything(tmp_path: Path) -> None:
    """Issue 26: an existing ledger gains v6 where it is: its uncompressed results still read, its unfinished
    tasks become due for the tracker, and each task takes its run's owner (the per-user list stays the same)."""
    path = tmp_path / "ledger.sqlite3"
    with sqlite3.connect(path) as conn:
        for script in MIGRATIONS[:5]:
            conn.executescript(script)
        conn.execute("PRAGMA user_version = 5")
        for sid, task_id, status in ((1, "done", "completed"), (2, "running", "processing")):
            conn.execute(
                """INSERT INTO submissions (id, tool, endpoint, fingerprint, request_json, rows, created_at, outcome,
                                            task_id, owner) VALUES (?, 'run_bulk_waterfall', 'w', ?, '{}', 1, 1.0,
                                            'accepted', ?, 'alice')""",
                (sid, str(sid) * 64, task_id),
            )
            conn.execute(
                """INSERT INTO tasks (task_id, submission_id, status, submitted_at, updated_at)
                   VALUES (?, ?, ?, 1.0, 2.0)""",
                (task_id, sid, status),
            )
        conn.execute("INSERT INTO results (task_id, data_json, saved_at) VALUES ('done', '[{\"a\": 1}]', 2.0)")

    async def main() -> tuple[Any, ...]:
        ledger = Ledger(path)
        with acting_as("alice"):
            done = await ledger.read("done")
            mine, total = await ledger.recent(limit=10, offset=0)
        with acting_as("bob"):
            theirs, _ = await ledger.recent(limit=10, offset=0)
        due = await ledger.due(limit=10, next_in_s=60)
        version = await ledger.version()
        await ledger.aclose()
        return done, [r.task_id for r in mine], total, theirs, [r.task_id for r in due], version

    done, mine, total, theirs, due, version = anyio.run(main)
    assert version == len(MIGRATIONS)
    assert done is not None and done.stored_task() is not None and done.data_json == '[{"a": 1}]'
    assert sorted(mine) == ["done", "running"] and total == 2 and theirs == []
    assert due == ["running"]


async def test_postgres_readiness_never_queues_behind_a_busy_pool(postgres: PostgresServer) -> None:
    """Issue 26 §4 on PostgreSQL: with every pooled connection busy (tool calls on a slow ledger), /readyz's probe
    still answers, on a connection of its own (it queued for the pool before, and failed when that timed out)."""
    ledger = Ledger(PostgresBackend(postgres.new_database(), pool_max=2))
    await ledger.open()
    busy, release = anyio.Event(), anyio.Event()
    holding = 0

    async def hold(conn: LedgerConn) -> None:
        nonlocal holding
        holding += 1
        if holding == 2:
            busy.set()
        await release.wait()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(ledger.call, hold)
            tg.start_soon(ledger.call, hold)
            await busy.wait()
            try:
                await ledger.probe()
            finally:
                release.set()
    finally:
        await ledger.aclose()


async def readyz_while(app: SecurityMiddleware, until: Callable[[httpx2.Response], bool]) -> httpx2.Response:
    """GET /readyz until its answer satisfies `until` (the watch's thread changes it; bounded, never a fixed sleep)."""
    async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://127.0.0.1:8000") as http:
        with anyio.fail_after(60):
            while not until(reply := await http.get("/readyz")):
                await anyio.sleep(0.02)
    return reply


async def test_readyz_answers_at_once_while_the_ledger_is_busy_and_reports_a_dead_one(
    database_url: str | None, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Issue 26 item 1: /readyz answers from the last check a thread of its own made, awaiting nothing, so an event
    loop busy with fifty agents (or a check that cannot finish) never makes it late: p99 was 285 ms under load.
    Before, /readyz awaited the check: with the check held up it answered 503 after 2 s. A ledger that stops
    answering is still reported: a check that hangs once the last good one is `stale_s` old, a dead database at
    its next check."""
    path = tmp_path / "ledger.sqlite3"
    make = (lambda: SqliteBackend(path)) if database_url is None else (lambda: PostgresBackend(database_url))
    busy_backend, dead_backend = make(), make()
    busy, dying = Ledger(busy_backend), Ledger(dead_backend)
    apps = [SecurityMiddleware(lambda scope, receive, send: anyio.lowlevel.checkpoint(), HttpOptions()) for _ in "ab"]  # type: ignore[arg-type]
    for app, ledger in zip(apps, (busy, dying), strict=True):
        await ledger.open()
        app.server = SimpleNamespace(services=SimpleNamespace(ledger=ledger))  # type: ignore[assignment]
    busy.readiness(interval_s=0.02, stale_s=3600)
    dying.readiness(interval_s=0.02, stale_s=0.5)
    try:
        first = await readyz_while(apps[0], lambda reply: True)
        # The check cannot finish (its connection is held, as by a read stuck on a locked file): /readyz still
        # answers at once, from the last good check.
        with busy_backend._probe_lock:
            held = await readyz_while(apps[0], lambda reply: True)
        assert first.status_code == held.status_code == 200 and held.json()["status"] == "ready"
        # The same stuck check on a ledger whose last good answer is older than stale_s: not ready, then ready again
        with dead_backend._probe_lock:
            stuck = await readyz_while(apps[1], lambda reply: reply.status_code == 503)
        again = await readyz_while(apps[1], lambda reply: reply.status_code == 200)
        assert stuck.json()["reason"] == "ledger: no answer for more than 0.5 s" and again.status_code == 200
        if database_url is not None:  # a truly dead database: gone, every connection to it closed
            server: PostgresServer = request.getfixturevalue("postgres")
            name = database_url.rsplit("/", 1)[1]
            with psycopg.connect(server.url("postgres"), autocommit=True) as admin:
                admin.execute(f"DROP DATABASE {name} WITH (FORCE)")  # type: ignore[arg-type]
            # A reconnect slower than stale_s (a busy machine) first reads as "no answer"; the failed check's own
            # reason follows at its end.
            dead = await readyz_while(apps[1], lambda reply: reply.json().get("reason") == "ledger: LedgerUnavailable")
            assert dead.status_code == 503
    finally:
        await busy.aclose()
        await dying.aclose()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)


@given(st.lists(_JSON, max_size=1_200) | _JSON)
@example([{"é": [1, None]}] * 1_001)  # across two chunk boundaries
@example([])
@settings(max_examples=60)
def test_a_result_is_compressed_a_chunk_at_a_time_into_the_same_bytes(data: Any) -> None:
    """Issue 28 (peak memory on a 10,000-row run): the stored blob was zlib of one json.dumps string of the whole
    result; it is now compressed a chunk of rows at a time, and must decompress to exactly that string."""
    assert zlib.decompress(compressed_json(data)).decode() == json.dumps(data, ensure_ascii=False)


@given(st.lists(_JSON, max_size=300), st.sampled_from([None, 1]))
@example([{"é": "x" * 300_000}], None)  # across a slice boundary
@settings(max_examples=30)
def test_a_result_sent_as_text_is_stored_as_that_text(data: Any, indent: int | None) -> None:
    """Issue 28: a finished task's data is stored as the JSON text Databar sent, not written out again (a
    10,000-row result: ~0.1-0.3 s less before the answer)."""
    text = json.dumps(data, indent=indent, ensure_ascii=False)
    assert zlib.decompress(compressed_json(data, text)).decode() == text
    assert zlib.decompress(compressed_json(data, memoryview(text.encode()))).decode() == text  # as the client keeps it


async def test_a_damaged_sqlite_ledger_is_refused_at_open_saying_what_the_check_found(tmp_path: Path) -> None:
    """A ledger whose file is damaged is refused before anything is sent, with SQLite's own finding. The check
    reads the whole file (about 7 s for a year's ledger), so it runs after the migration's write transaction:
    before, it held the write lock that long at every start, and every process sharing the ledger waited."""
    path = tmp_path / "ledger.sqlite3"
    ledger = Ledger(SqliteBackend(path))
    await ledger.open()
    await ledger.aclose()
    conn = sqlite3.connect(path)
    with conn:
        conn.executemany(
            "INSERT INTO spent_rounds(digest, expires_at) VALUES (?, ?)", [(f"d{i:06d}" * 4, i) for i in range(3000)]
        )
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    damaged = bytearray(path.read_bytes())
    last_page = len(damaged) - 4096
    damaged[last_page + 100 : last_page + 300] = b"\xff" * 200  # an index page's cells, overwritten
    path.write_bytes(bytes(damaged))

    reopened = Ledger(SqliteBackend(path))
    with pytest.raises(LedgerError, match=r"(?s)is damaged \(\*\*\* in database main \*\*\*.*move it away"):
        await reopened.open()
    await reopened.aclose()
