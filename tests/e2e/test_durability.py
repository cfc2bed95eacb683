"""Never bill twice, never lose a task: the duplicate guard, results past expiry, recovery and full data."""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from databar_mcp import config
from databar_mcp.api import DatabarClient
from databar_mcp.api.models import BulkWaterfallRequest
from databar_mcp.app.server import build_server
from databar_mcp.config import Settings
from databar_mcp.core.fingerprint import account_id, fingerprint
from databar_mcp.core.ledger.store import Claim, ledger_for
from databar_mcp.core.runner import TaskRunner
from databar_mcp.core.tracker import track_once, track_pass
from databar_mcp.sandbox import SandboxServer
from tests.conftest import BULK_ARGS, LEADS, error_body, lead, make_settings, run_sql, structured, text_of, whole
from tests.tasks_client import poll_until, raw

pytestmark = pytest.mark.anyio

BULK_RUN = "POST /v1/waterfalls/{identifier}/bulk-run"
TASK_GET = "GET /v1/tasks/{task_id}"


# ---- duplicate guard -----------------------------------------------------------------------------------


async def test_same_run_again_returns_the_same_task_without_a_second_submission(
    mcp: Client, sandbox: SandboxServer
) -> None:
    first = structured(await mcp.call_tool("run_bulk_waterfall", BULK_ARGS))
    polls = sandbox.state.counts[TASK_GET]

    again = await mcp.call_tool("run_bulk_waterfall", BULK_ARGS)

    out = structured(again)
    assert out["task_id"] == first["task_id"]
    assert out["reused"] is True and out["served_from"] == "ledger"
    assert [r["data"] for r in out["rows"]] == [r["data"] for r in first["rows"]]
    assert "no new credits" in text_of(again)
    assert sandbox.state.counts[BULK_RUN] == 1
    assert sandbox.state.counts[TASK_GET] == polls  # served locally: not even a poll


async def test_same_run_while_the_first_is_running_joins_it(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.config.task_base_seconds = 0.8
    first = structured(await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 0}))
    assert first["done"] is False

    joined = structured(await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 10}))

    assert joined["task_id"] == first["task_id"] and joined["reused"] is True
    assert joined["status"] == "completed" and joined["rows_total"] == 4
    assert sandbox.state.counts[BULK_RUN] == 1


async def test_key_order_does_not_matter_but_rows_and_providers_do(mcp: Client, sandbox: SandboxServer) -> None:
    first = structured(await mcp.call_tool("run_bulk_waterfall", BULK_ARGS))
    shuffled_keys = [{k: row[k] for k in reversed(row)} for row in LEADS]
    same = structured(await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "params": shuffled_keys}))
    assert same["task_id"] == first["task_id"] and same["reused"] is True

    other_order = structured(await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "params": LEADS[::-1]}))
    other_providers = structured(await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "enrichments": [833]}))
    assert len({first["task_id"], other_order["task_id"], other_providers["task_id"]}) == 3
    assert sandbox.state.counts[BULK_RUN] == 3


async def test_force_submits_anew(mcp: Client, sandbox: SandboxServer) -> None:
    first = structured(await mcp.call_tool("run_bulk_waterfall", BULK_ARGS))
    forced = structured(await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "force": True}))
    assert forced["task_id"] != first["task_id"] and forced.get("reused", False) is False
    assert sandbox.state.counts[BULK_RUN] == 2


async def test_after_the_duplicate_window_the_same_run_is_sent_again(sandbox: SandboxServer, tmp_path: Path) -> None:
    async with Client(build_server(make_settings(sandbox, tmp_path, duplicate_window_s=0))) as client:
        first = structured(await client.call_tool("run_bulk_waterfall", BULK_ARGS))
        second = structured(await client.call_tool("run_bulk_waterfall", BULK_ARGS))
    assert second["task_id"] != first["task_id"]
    assert sandbox.state.counts[BULK_RUN] == 2


async def test_identical_calls_at_once_from_four_servers_sharing_a_ledger_submit_once(
    sandbox: SandboxServer, any_settings: Settings
) -> None:
    """Four servers on one ledger (one state dir's SQLite file, or one PostgreSQL database: replicas)."""
    sandbox.state.config.task_base_seconds = 0.3
    settings = any_settings
    results: list[dict[str, Any]] = []

    async def call() -> None:
        async with Client(build_server(settings)) as client:
            results.append(structured(await client.call_tool("run_bulk_waterfall", BULK_ARGS)))

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(call)

    assert len({r["task_id"] for r in results}) == 1
    assert sorted(r.get("reused", False) for r in results) == [False, True, True, True]
    assert all(r["status"] == "completed" for r in results)
    assert sandbox.state.counts[BULK_RUN] == 1


# ---- results past Databar's 24 h ------------------------------------------------------------------------


@pytest.mark.parametrize("gone_style", ["http_410", "status_gone"])
async def test_expired_task_is_served_from_the_ledger(mcp: Client, sandbox: SandboxServer, gone_style: str) -> None:
    sandbox.state.config.gone_style = gone_style  # type: ignore[assignment]
    first = structured(await mcp.call_tool("run_bulk_waterfall", BULK_ARGS))
    sandbox.state.clock.advance(25 * 3600)

    later = await mcp.call_tool("get_task", {"task_id": first["task_id"]})

    assert not later.is_error, text_of(later)
    out = structured(later)
    assert out["served_from"] == "ledger" and out["status"] == "completed"
    assert out["rows"] == first["rows"]
    assert out["credits_spent"] == first["credits_spent"]


async def test_a_task_that_expired_before_we_saw_it_finish_says_what_rerunning_costs(
    mcp: Client, sandbox: SandboxServer
) -> None:
    sandbox.state.config.task_base_seconds = 5.0
    handle = structured(await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 0}))
    sandbox.state.clock.advance(25 * 3600)

    result = await mcp.call_tool("get_task", {"task_id": handle["task_id"], "wait_seconds": 0})

    err = error_body(result)
    assert result.is_error and err["code"] == "result_expired" and err["http_status"] == 410
    assert err["details"]["rows"] == 4
    assert err["details"]["rerun_estimated_credits"] == handle["estimated_credits"] == 12.0
    assert "12 credits" in err["next_steps"][0]


# ---- recovery: list_recent_tasks, cancellation, tracking ---------------------------------------------------


async def test_list_recent_tasks_shows_status_size_and_age_newest_first(mcp: Client, sandbox: SandboxServer) -> None:
    done = structured(await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "enrichments": [833]}))
    assert done["status"] == "completed"
    sandbox.state.config.task_base_seconds = 5.0
    running = structured(await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 0}))
    requests_before = sandbox.state.total_requests()

    listing = structured(await mcp.call_tool("list_recent_tasks", {}))
    unfinished = structured(await mcp.call_tool("list_recent_tasks", {"unfinished_only": True}))
    page = structured(await mcp.call_tool("list_recent_tasks", {"limit": 1}))

    assert sandbox.state.total_requests() == requests_before  # the ledger is local: no request to Databar
    assert [t["task_id"] for t in listing["tasks"]] == [running["task_id"], done["task_id"]]
    newest, oldest = listing["tasks"]
    assert newest["waterfall"] == "email_getter" and newest["rows"] == 4 and newest["tool"] == "run_bulk_waterfall"
    assert newest["estimated_credits"] == 12.0 and newest["age_seconds"] >= 0
    assert newest["result_stored"] is False
    assert newest["next_call"] == f'get_task(task_id="{running["task_id"]}", limit=10, wait_seconds=25)'
    assert oldest["status"] == "completed" and oldest["result_stored"] is True
    assert oldest["rows_with_data"] == 2 and oldest["credits_spent"] == done["credits_spent"]
    assert oldest["next_call"] == f'get_task(task_id="{done["task_id"]}", limit=10)'
    assert [t["task_id"] for t in unfinished["tasks"]] == [running["task_id"]]
    assert page["next_call"] == "list_recent_tasks(offset=1, limit=1)" and len(page["tasks"]) == 1


async def test_a_cancelled_call_leaves_the_task_tracked_until_its_result_is_stored(
    sandbox: SandboxServer, any_settings: Settings
) -> None:
    sandbox.state.config.task_base_seconds = 0.8
    settings = any_settings.model_copy(update={"tracker_interval_s": 0.2})
    ledger = ledger_for(settings)

    async with Client(build_server(settings)) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.call_tool, "run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 20})
            while not (await ledger.recent(limit=5, offset=0))[0]:
                await anyio.sleep(0.02)
            tg.cancel_scope.cancel()  # the client gives up on the call mid-wait

        # Nobody calls get_task: the background tracker fetches and stores the result.
        while not (records := (await ledger.recent(limit=5, offset=0))[0]) or not records[0].has_result:
            await anyio.sleep(0.05)
        task_id = records[0].task_id
        polls = sandbox.state.counts[TASK_GET]
        out = structured(await client.call_tool("get_task", {"task_id": task_id}))

    await ledger.aclose()
    assert out["status"] == "completed" and out["served_from"] == "ledger" and out["rows_total"] == 4
    assert sandbox.state.counts[TASK_GET] == polls
    assert sandbox.state.counts[BULK_RUN] == 1


# ---- full data: budget, resource, export ------------------------------------------------------------------


def _leads(n: int) -> list[dict[str, str]]:
    companies = ["example.com", "acme.com", "globex.io", "none.invalid"]
    return [lead(f"First{i}", f"Last{i}", companies[i % 4]) for i in range(n)]


@pytest.fixture
async def big_task(mcp: Client, sandbox: SandboxServer) -> dict[str, Any]:
    """A finished 10,000-row run (the API's bulk maximum)."""
    sandbox.state.config.row_seconds = 0.0
    sandbox.state.balance = 1_000_000.0
    result = await mcp.call_tool(
        "run_bulk_waterfall", {"waterfall": "email_getter", "params": _leads(10_000), "enrichments": [833]}
    )
    out = structured(result)
    assert out["status"] == "completed" and out["rows_total"] == 10_000
    assert len(whole(result)) <= 40_000
    return out


async def test_ten_thousand_rows_page_within_budget_and_the_resource_holds_them_all(
    mcp: Client, big_task: dict[str, Any], settings: Settings
) -> None:
    task_id = big_task["task_id"]
    assert big_task["full_result"] == f"databar://tasks/{task_id}/result"
    seen = [row["index"] for row in big_task["rows"]]
    largest = 0
    page = big_task
    while page.get("next_offset") is not None:
        result = await mcp.call_tool("get_task", {"task_id": task_id, "offset": page["next_offset"]})
        largest = max(largest, len(whole(result)))
        page = structured(result)
        seen.extend(row["index"] for row in page["rows"])
    assert seen == list(range(10_000))
    assert largest <= settings.result_budget_chars

    resource = await mcp.read_resource(big_task["full_result"])
    body = json.loads(getattr(resource.contents[0], "text", ""))
    assert body["rows_total"] == 10_000 and len(body["data"]) == 10_000 and len(body["inputs"]) == 10_000
    assert body["inputs"][7] == lead("First7", "Last7", "none.invalid") and body["data"][7] is None
    assert body["data"][4] is not None  # example.com is always found


async def test_pages_of_a_result_just_handed_over_read_as_pages_read_back_from_the_ledger(
    mcp: Client, big_task: dict[str, Any], settings: Settings
) -> None:
    """Paging a result moments after the run answered reuses the rows it presented (decoding and presenting
    10,000 rows a page made paging twice as slow); a server that never held them reads them back from the
    ledger. The model reads the same pages either way."""
    task_id = big_task["task_id"]
    offsets = [big_task["next_offset"], 5_000, 9_990]
    held = [whole(await mcp.call_tool("get_task", {"task_id": task_id, "offset": o})) for o in offsets]
    async with Client(build_server(settings)) as fresh:  # the same ledger, nothing held
        read_back = [whole(await fresh.call_tool("get_task", {"task_id": task_id, "offset": o})) for o in offsets]
    assert held == read_back
    assert all(task_id in page for page in held)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
async def test_export_writes_every_row_joined_to_its_input(
    mcp: Client, big_task: dict[str, Any], settings: Settings, fmt: str
) -> None:
    result = await mcp.call_tool(
        "export_task_result", {"task_id": big_task["task_id"], "format": fmt, "filename": "leads_out"}
    )

    out = structured(result)
    assert not result.is_error, text_of(result)
    path = Path(out["path"])
    assert path.parent == settings.exports_dir.resolve() and path.name == f"leads_out.{fmt}"
    assert out["rows"] == 10_000 and out["inputs_joined"] is True
    if fmt == "csv":
        with path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 10_000
        assert (rows[4]["first_name"], rows[4]["company"], rows[4]["found"]) == ("First4", "example.com", "True")
        assert rows[7]["found"] == "False"
        assert sum(r["found"] == "True" for r in rows) == out["rows_with_data"]
    else:
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        assert [line["index"] for line in lines] == list(range(10_000))
        assert lines[9]["input"] == lead("First9", "Last9", "acme.com")

    again = structured(
        await mcp.call_tool(
            "export_task_result", {"task_id": big_task["task_id"], "format": fmt, "filename": "leads_out"}
        )
    )
    assert Path(again["path"]).name == f"leads_out-1.{fmt}"  # never overwrites


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "a/b", "..", ".hidden", "x" * 101, "a\\b", "ok..csv"])
async def test_export_names_can_never_leave_the_exports_folder(
    mcp: Client, sandbox: SandboxServer, settings: Settings, name: str
) -> None:
    task_id = structured(await mcp.call_tool("run_bulk_waterfall", BULK_ARGS))["task_id"]

    result = await mcp.call_tool("export_task_result", {"task_id": task_id, "filename": name})

    assert result.is_error and error_body(result)["code"] == "validation_error"
    written = list(settings.state_dir.rglob("*")) if settings.state_dir.exists() else []
    assert not [p for p in written if p.suffix in (".csv", ".jsonl")]
    assert not (settings.state_dir.parent / "escape.csv").exists()


async def test_export_of_a_running_task_says_to_wait(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.config.task_base_seconds = 5.0
    task_id = structured(await mcp.call_tool("run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 0}))["task_id"]

    err = error_body(await mcp.call_tool("export_task_result", {"task_id": task_id}))

    assert err["code"] == "conflict" and "still" in err["message"]
    assert "get_task" in err["next_steps"][0]


async def test_csv_export_defuses_spreadsheet_formulas(mcp: Client, settings: Settings) -> None:
    rows = [lead("=HYPERLINK(1)", "Doe", "example.com")]
    task_id = structured(
        await mcp.call_tool("run_bulk_waterfall", {"waterfall": "email_getter", "params": rows, "enrichments": [833]})
    )["task_id"]

    out = structured(await mcp.call_tool("export_task_result", {"task_id": task_id}))

    with Path(out["path"]).open(newline="", encoding="utf-8") as f:
        exported = list(csv.DictReader(f))
    assert exported[0]["first_name"] == "'=HYPERLINK(1)"


async def test_a_run_left_pending_by_a_dead_process_is_reported_not_waited_for(
    sandbox: SandboxServer, any_settings: Settings
) -> None:
    """A crash between sending a run and recording its task leaves it 'pending': a later identical call must
    answer submission_unknown at once (never re-send it, never wait for a sender that is gone)."""
    settings = any_settings
    ledger = ledger_for(settings)
    body = {"params": BULK_ARGS["params"], "enrichments": BULK_ARGS["enrichments"]}
    request = BulkWaterfallRequest.model_validate(body).model_dump(mode="json")
    assert settings.api_key is not None
    account = account_id(settings.api_key.get_secret_value(), settings.base_url)
    endpoint = "waterfalls/email_getter/bulk-run"
    claim = await ledger.claim(
        tool="run_bulk_waterfall",
        endpoint=endpoint,
        fingerprint=fingerprint(account=account, endpoint=endpoint, body=request),
        request=request,
        rows=4,
        estimated_credits=12.0,
        window_s=1800,
        force=False,
    )
    await ledger.aclose()
    # the crash happened a minute ago
    run_sql(settings, "UPDATE submissions SET created_at = created_at - 60 WHERE id = ?", claim.submission_id)

    async with Client(build_server(settings)) as client:
        with anyio.fail_after(3):
            result = error_body(await client.call_tool("run_bulk_waterfall", BULK_ARGS))
        recent = structured(await client.call_tool("list_recent_tasks", {}))

    assert result["code"] == "submission_unknown"
    assert [s["outcome"] for s in recent["unsettled_submissions"]] == ["pending"]
    assert sandbox.state.counts.get(BULK_RUN, 0) == 0


async def test_the_tracker_stops_tracking_a_task_databar_does_not_know_after_the_grace_period(
    sandbox: SandboxServer, any_settings: Settings
) -> None:
    settings = any_settings
    ledger = ledger_for(settings)

    async def claim_the_run() -> Claim:
        return await ledger.claim(
            tool="run_bulk_waterfall",
            endpoint="waterfalls/email_getter/bulk-run",
            fingerprint="f" * 64,
            request={},
            rows=1,
            estimated_credits=1.0,
            window_s=1800,
            force=False,
        )

    claim = await claim_the_run()
    assert claim.submission_id is not None
    await ledger.accepted(claim.submission_id, "ghost-task", "processing")  # e.g. run under another key
    async with DatabarClient.from_settings(settings) as client:
        runner = TaskRunner(
            client,
            ledger,
            account="a",
            poll_first_s=0.01,
            poll_cap_s=0.1,
            duplicate_window_s=1800,
            settle_s=1,
            unseen_grace_s=0,  # the grace for fresh tasks has passed
        )
        assert await track_once(runner, ledger) == 1
        assert await track_once(runner, ledger) == 0  # not polled again
    record = await ledger.read("ghost-task")
    assert record is not None and record.status == "unknown_to_databar" and record.is_terminal
    assert sandbox.state.counts["GET /v1/tasks/{task_id}"] == 1
    # It may still have run and billed: an identical run is not let through as if it never happened.
    again = await claim_the_run()
    assert again.submission_id is None and again.earlier is not None and again.earlier.outcome == "unknown"
    await ledger.aclose()


async def test_an_mcp_task_whose_databar_task_never_shows_ends_at_once(sandbox: SandboxServer, tmp_path: Path) -> None:
    """Regression: unknown_to_databar was not terminal to Task.is_terminal (while the ledger treated it so), so
    an MCP task watcher whose Databar task answered 404 past the grace period kept polling until its TTL."""
    sandbox.state.config.fresh_task_unseen_reads = 10_000  # Databar never shows the task it returned
    settings = make_settings(sandbox, tmp_path, task_unseen_grace_s=0.2)
    async with Client(build_server(settings), mode="legacy") as client:
        created = await raw(
            client, "tools/call", {"name": "run_bulk_waterfall", "arguments": BULK_ARGS, "task": {"ttl": 120_000}}
        )
        final, _ = await poll_until(client, created["task"]["taskId"], {"completed", "failed", "cancelled"})
        result = await raw(client, "tasks/result", {"taskId": created["task"]["taskId"]})
    assert final["status"] == "failed"
    body = json.loads(result["content"][-1]["text"])  # an error's body rides as the last text block
    assert result["isError"] is True and body["code"] == "not_found" and body["http_status"] == 404
    assert "may still have billed" in body["message"]
    assert sandbox.state.counts["POST /v1/waterfalls/{identifier}/bulk-run"] == 1


# ---- a ledger that lasts a year (issue 26) ------------------------------------------------------------------


async def test_the_tracker_reaches_every_unfinished_task_oldest_due_first(
    sandbox: SandboxServer, any_settings: Settings
) -> None:
    """Regression (issue 26 §3): the tracker polled the 50 newest unfinished tasks each pass, so with 50 newer
    ones still running, older unfinished tasks were never polled again. Now each pass takes the oldest-due and
    every one of 60 comes round in two passes, each polled once."""
    settings = any_settings
    ledger = ledger_for(settings)
    for name in [f"old-{i}" for i in range(10)] + [f"new-{i}" for i in range(50)]:
        made = await ledger.claim(
            tool="run_bulk_waterfall", endpoint="waterfalls/email_getter/bulk-run", fingerprint=f"{name:x<64}",
            request={}, rows=1, estimated_credits=1.0, window_s=1800, force=False,
        )  # fmt: skip
        assert made.submission_id is not None
        await ledger.accepted(made.submission_id, name, "processing")
    # The old ones were submitted two hours ago: Databar's 404 for them is final (past the grace period), while
    # the new ones are within it and stay unfinished however often they are polled.
    run_sql(settings, "UPDATE tasks SET submitted_at = submitted_at - 7200 WHERE task_id LIKE 'old-%'")
    async with DatabarClient.from_settings(settings) as client:
        runner = TaskRunner(
            client, ledger, account="a", poll_first_s=0.01, poll_cap_s=0.1, duplicate_window_s=1800, settle_s=1,
            unseen_grace_s=3600,
        )  # fmt: skip
        polled = [await track_once(runner, ledger), await track_once(runner, ledger)]
    old = [await ledger.read(f"old-{i}") for i in range(10)]
    unfinished, _ = await ledger.recent(limit=100, offset=0, unfinished_only=True)
    await ledger.aclose()
    assert polled == [50, 10]
    assert [r.status if r is not None else None for r in old] == ["unknown_to_databar"] * 10
    assert sorted(r.task_id for r in unfinished) == sorted(f"new-{i}" for i in range(50))
    assert sandbox.state.counts[TASK_GET] == 60  # every task once, none twice


async def test_a_pruned_task_says_so_and_points_to_its_export(
    mcp: Client, sandbox: SandboxServer, settings: Settings
) -> None:
    """Issue 26 §2: past the retention period the ledger keeps a task's summary only; reading it says the
    result was pruned, what the task was, and where its export still is."""
    first = structured(await mcp.call_tool("run_bulk_waterfall", BULK_ARGS))
    exported = structured(await mcp.call_tool("export_task_result", {"task_id": first["task_id"]}))
    sandbox.state.clock.advance(25 * 3600)
    ledger = ledger_for(settings)
    pruned = await ledger.prune(finished_before=time.time() + 1, limit=100)  # as if 90 days had passed
    await ledger.aclose()

    later = await mcp.call_tool("get_task", {"task_id": first["task_id"]})

    text = text_of(later)
    assert later.is_error and pruned.tasks == 1 and pruned.results == 1
    assert "result was pruned from the local ledger" in text and "DATABAR_MCP_RESULT_RETENTION_DAYS" in text
    assert "Status completed, 4 row(s)" in text
    assert f"Its export is still on disk: {exported['path']}" in text


async def test_a_tracker_pass_prunes_a_backlog_at_a_steady_rate_whatever_its_interval(
    sandbox: SandboxServer, any_settings: Settings
) -> None:
    """Regression (issue 26 item 2): every pass pruned up to 1,000 tasks, so with a 2 s interval a ledger holding
    a year of results spent ~15% of its writer pruning (1M-run SQLite ledger: 0.89x the calls/s of an empty one).
    A pass now prunes config.PRUNE_TASKS_PER_S x its interval, in short batches; the backlog still drains."""
    settings = any_settings
    ledger = ledger_for(settings)
    for i in range(300):
        made = await ledger.claim(
            tool="run_bulk_waterfall", endpoint="waterfalls/email_getter/bulk-run", fingerprint=f"old{i:x<61}",
            request={}, rows=1, estimated_credits=1.0, window_s=1800, force=False,
        )  # fmt: skip
        assert made.submission_id is not None
        await ledger.accepted(made.submission_id, f"old-{i}", "completed")
    run_sql(settings, "UPDATE tasks SET completed_at = 1.0")  # finished long ago: all past the retention period
    async with DatabarClient.from_settings(settings) as client:
        runner = TaskRunner(
            client, ledger, account="a", poll_first_s=0.01, poll_cap_s=0.1, duplicate_window_s=1800, settle_s=1
        )
        passes = [await track_pass(runner, ledger, interval_s=2.0, retention_s=90 * 86400) for _ in range(5)]
    await ledger.aclose()
    pruned = [p.tasks for _, p in passes]
    per_pass = math.ceil(config.PRUNE_TASKS_PER_S * 2.0 / config.PRUNE_BATCH) * config.PRUNE_BATCH
    assert pruned[0] == per_pass < 300  # before: all 300 in the first pass
    assert sum(pruned) == 300 and pruned[-1] == 0  # the backlog drains all the same
