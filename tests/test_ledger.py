"""The ledger on its own: schema versions, the claim protocol, what a terminal task keeps; fingerprints."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from databar_mcp.api.models import Task, TaskProgress
from databar_mcp.fingerprint import account_id, canonical_json, fingerprint
from databar_mcp.store import MIGRATIONS, Ledger

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


async def test_schema_is_versioned_and_reopening_migrates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "state" / "ledger.sqlite3"
    first = Ledger(path)
    assert await first.version() == len(MIGRATIONS)
    fresh = await claim(first)
    assert (await Ledger(path).version()) == len(MIGRATIONS)
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT COUNT(*) FROM submissions").fetchone()[0] == 1
    assert fresh.submission_id == 1


async def test_claim_returns_the_earlier_run_until_it_is_rejected(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite3")
    first = await claim(ledger)
    pending = await claim(ledger)
    assert pending.submission_id is None and pending.earlier is not None and pending.earlier.outcome == "pending"
    await ledger.failed(first.submission_id, "rejected", "HTTP 422")
    assert (await claim(ledger)).submission_id is not None  # refused runs never block a corrected retry


async def test_claim_reuses_a_running_task_past_the_window_but_not_a_failed_one(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite3")
    first = await claim(ledger)
    await ledger.accepted(first.submission_id, "task-1", "processing")
    reused = await claim(ledger, window_s=0)
    assert reused.earlier is not None and reused.earlier.task_id == "task-1"  # still running: never run twice
    await ledger.observe(Task(task_id="task-1", status="failed", error=["provider down"]))
    assert (await claim(ledger, window_s=3600)).submission_id is not None
    assert (await claim(ledger, force=True)).submission_id is not None


async def test_a_finished_task_keeps_its_data_when_databar_later_says_gone(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "l.sqlite3")
    progress = TaskProgress(total=2, completed=1, no_data=1, failed=0, processing=0)
    await ledger.observe(
        Task(task_id="t", status="completed", data=[{"email": "x@y"}, None], credits_spent=2.5, progress=progress)
    )
    await ledger.observe(Task(task_id="t", status="gone"))

    stored = await ledger.stored_task("t")
    record = await ledger.task("t")
    assert stored is not None and stored.status == "completed" and stored.data == [{"email": "x@y"}, None]
    assert record is not None and (record.rows_total, record.rows_with_data) == (2, 1)
    assert await ledger.credits_spent_since(0) == 2.5


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
