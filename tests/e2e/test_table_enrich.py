"""Enriching a table in place: an agent-style session, the billing guarantees of a run with no task id, and
faults on the run POST and on the progress reads (all through a real MCP client against the sandbox)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from databar_mcp.app.server import build_server
from databar_mcp.core.users import acting_as
from databar_mcp.sandbox import SandboxConfig, SandboxServer
from databar_mcp.sandbox.config import Fault
from databar_mcp.sandbox.tables import SEED_TABLE_ID
from tests.conftest import BULK_ARGS, SENTINEL_KEY, error_body, make_settings, structured, text_of
from tests.e2e.test_reply_variants import VARIANTS

pytestmark = pytest.mark.anyio

RUN = "POST /v1/table/{table_uuid}/run-enrichment/{processor_id}"
ROWS_READ = "GET /v1/table/{table_uuid}/rows"
PEOPLE_COLUMNS = ["First name", "Last name", "Domain"]
MAPPING = {"first_name": "First name", "last_name": "Last name", "company": "Domain"}
SOURCES = {param: {"column": column} for param, column in MAPPING.items()}  # the tool's mapping


def people(n: int) -> list[dict[str, str]]:
    return [
        {"First name": f"First{i}", "Last name": f"Last{i}", "Domain": "example.com" if i % 4 else "nobody.invalid"}
        for i in range(n)
    ]


async def call(mcp: Client, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    result = await mcp.call_tool(tool, args)
    assert not result.is_error, (tool, text_of(result))
    return structured(result)


async def table_with_waterfall(mcp: Client, rows: int) -> tuple[str, int]:
    table = (await call(mcp, "create_table", {"name": "Leads", "columns": PEOPLE_COLUMNS}))["identifier"]
    if rows:
        await call(mcp, "insert_rows", {"table_uuid": table, "rows": people(rows)})
    added = await call(
        mcp,
        "add_table_enrichment",
        {"table_uuid": table, "enrichment": "email_getter", "mapping": SOURCES, "enrichments": [833, 966]},
    )
    return table, int(added["enrichment_id"])


async def test_agent_enriches_a_1000_row_table_in_place(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.balance = 10_000
    sandbox.state.config.table_row_seconds = 1.0  # 1,000 rows in 1,000 s of the sandbox's clock, moved below
    table, enrichment = await table_with_waterfall(mcp, 1_000)
    sandbox.state.reset_counts()
    balance = sandbox.state.balance

    first = await call(
        mcp, "run_table_enrichment", {"table_uuid": table, "enrichment_id": enrichment, "wait_seconds": 0.5}
    )
    assert first["status"] == "processing" and first["rows_in_run"] == 1_000
    assert first["estimated_credits"] == 3_000  # the two providers attached (1 + 2 credits), no verifier
    calls, view = 1, first
    while not view["done"]:
        assert view["next_call"].startswith(f'wait_table_enrichment(table_uuid="{table}"')
        sandbox.state.clock.advance(400)  # the run ends during the third wait, however busy the machine
        view = await call(
            mcp, "wait_table_enrichment", {"table_uuid": table, "enrichment_id": enrichment, "wait_seconds": 0.7}
        )
        calls += 1
    assert calls >= 3  # the agent waited over several calls
    assert (view["rows_done"], view["still_processing"], view["errors"]) == (1_000, 0, 0)
    assert view["found"] + view["no_data"] == 1_000 and view["found"] >= 750  # every example.com row is found

    status = view["status_column"]
    read = await call(
        mcp,
        "list_table_rows",
        {"table_uuid": table, "filter": {status: {"equals": "completed"}}, "per_page": 1000},
    )
    assert read["total_count"] == view["found"]
    assert all(str(r[view["output_columns"][0]]).endswith("@example.com") for r in read["rows"])

    counts = dict(sandbox.state.counts)
    spent = balance - sandbox.state.balance
    print("\ntable enrichment requests:", counts, "credits:", spent)
    assert counts[RUN] == 1  # one run, sent once
    assert not any("bulk-run" in route or "upsert" in route or route.startswith("PATCH") for route in counts)
    assert counts[ROWS_READ] <= 40  # counts, never the 1,000 rows, until the final read
    found_cost = 1.0  # example.com is found by the first provider tried
    assert spent == pytest.approx(view["found"] * found_cost + view["no_data"] * 3.0)  # each row charged once

    again = await call(mcp, "run_table_enrichment", {"table_uuid": table, "enrichment_id": enrichment})
    assert again["reused"] is True and sandbox.state.counts[RUN] == 1
    assert sandbox.state.balance == pytest.approx(balance - spent)


@pytest.mark.parametrize(
    "fault",
    [Fault(route=RUN, kind="reset_after"), Fault(route=RUN, kind="status", status=502)],
    ids=["reply-lost-after-the-run-started", "bad-gateway"],
)
async def test_an_ambiguous_run_reply_is_submission_unknown_and_never_sent_twice(
    mcp: Client, sandbox: SandboxServer, fault: Fault
) -> None:
    sandbox.state.balance = 10_000
    table, enrichment = await table_with_waterfall(mcp, 30)
    sandbox.state.inject(fault)
    args = {"table_uuid": table, "enrichment_id": enrichment, "wait_seconds": 1}

    for _ in range(2):
        lost = await mcp.call_tool("run_table_enrichment", args)
        assert lost.is_error
        assert error_body(lost)["code"] == "submission_unknown", text_of(lost)
    assert sandbox.state.counts[RUN] == 1  # the run started once at Databar; the re-call sent nothing

    forced = await mcp.call_tool("run_table_enrichment", {**args, "force": True})
    assert forced.is_error and "acknowledge_possible_double_billing" in text_of(forced)  # this client cannot ask
    assert sandbox.state.counts[RUN] == 1

    recent = await call(mcp, "list_recent_tasks", {})
    assert any(s["tool"] == "run_table_enrichment" for s in recent["unsettled_submissions"])


async def test_rate_limited_progress_reads_slow_down_instead_of_failing(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.balance = 10_000
    sandbox.state.config.table_row_seconds = 0.01
    table, enrichment = await table_with_waterfall(mcp, 60)
    sandbox.state.inject(Fault(route=ROWS_READ, kind="rate_limit", times=6, retry_after=0, after=3))

    view = await call(
        mcp, "run_table_enrichment", {"table_uuid": table, "enrichment_id": enrichment, "wait_seconds": 10}
    )
    assert view["done"] is True and view["rows_done"] == 60
    assert view["rate_limited_reads"] >= 1


async def test_spend_guard_refuses_before_anything_is_sent(sandbox: SandboxServer, tmp_path: Path) -> None:
    sandbox.state.balance = 10_000
    async with Client(build_server(make_settings(sandbox, tmp_path, max_credits_per_call=50))) as mcp:
        table, enrichment = await table_with_waterfall(mcp, 20)  # worst case 20 x (1 + 2) = 60 credits
        refused = await mcp.call_tool("run_table_enrichment", {"table_uuid": table, "enrichment_id": enrichment})
    assert refused.is_error and "spend_limit" in text_of(refused) and "60" in text_of(refused)
    assert sandbox.state.counts[RUN] == 0


async def test_a_users_own_caps_hold_table_runs_too(sandbox: SandboxServer, tmp_path: Path) -> None:
    """Table enrichment runs skipped the users file's caps (issue 22, 11): a 60-credit run under a daily cap of 50
    went out. The caps apply to them as to every run."""
    sandbox.state.balance = 10_000
    users = tmp_path / "users.json"
    users.write_text(json.dumps({"users": {"alice": {"daily_credit_cap": 50}}}))
    with acting_as("alice"):  # the subject an OAuth token would name
        async with Client(build_server(make_settings(sandbox, tmp_path, users_file=users))) as mcp:
            table, enrichment = await table_with_waterfall(mcp, 20)  # worst case 20 x (1 + 2) = 60 credits
            refused = await mcp.call_tool("run_table_enrichment", {"table_uuid": table, "enrichment_id": enrichment})
    assert refused.is_error and "spend_limit" in text_of(refused)
    assert "would pass your daily cap of 50" in text_of(refused) and "up to 60" in text_of(refused)
    assert sandbox.state.counts[RUN] == 0


async def test_insufficient_credits_and_nothing_to_run(mcp: Client, sandbox: SandboxServer) -> None:
    table, enrichment = await table_with_waterfall(mcp, 40)
    sandbox.state.balance = 10
    short = await mcp.call_tool("run_table_enrichment", {"table_uuid": table, "enrichment_id": enrichment})
    assert short.is_error and "insufficient_credits" in text_of(short)

    errors_only = await call(
        mcp, "run_table_enrichment", {"table_uuid": table, "enrichment_id": enrichment, "run_strategy": "run_errors"}
    )
    assert errors_only["status"] == "nothing_to_run" and errors_only["estimated_credits"] == 0
    assert sandbox.state.counts[RUN] == 1  # the refused one; nothing to run sends nothing


async def test_a_second_run_while_one_is_going_is_a_conflict(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.balance = 10_000
    sandbox.state.config.table_row_seconds = 0.05
    table, enrichment = await table_with_waterfall(mcp, 40)
    first = await call(
        mcp, "run_table_enrichment", {"table_uuid": table, "enrichment_id": enrichment, "wait_seconds": 0}
    )
    assert first["done"] is False
    other = await mcp.call_tool(
        "run_table_enrichment",
        {"table_uuid": table, "enrichment_id": enrichment, "run_strategy": "run_all", "wait_seconds": 0},
    )
    assert other.is_error and "conflict" in text_of(other) and "wait_table_enrichment" in text_of(other)
    assert sandbox.state.counts[RUN] == 1


async def test_enrichment_mapping_is_checked_before_sending(mcp: Client, sandbox: SandboxServer) -> None:
    table = (await call(mcp, "create_table", {"name": "Companies", "columns": ["Website"]}))["identifier"]
    await call(
        mcp, "insert_rows", {"table_uuid": table, "rows": [{"Website": "example.com"}, {"Website": "a.invalid"}]}
    )
    bad = await mcp.call_tool(
        "add_table_enrichment",
        {"table_uuid": table, "enrichment": 120, "mapping": {"website": {"column": "Website"}}},
    )
    assert bad.is_error and "validation_error" in text_of(bad)
    assert sandbox.state.counts["POST /v1/table/{table_uuid}/add-enrichment"] == 0

    added = await call(
        mcp,
        "add_table_enrichment",
        {"table_uuid": table, "enrichment": 120, "mapping": {"domain": {"column": "Website"}}},
    )
    assert "name" in added["output_columns"] and added["kind"] == "enrichment"
    listed = await call(mcp, "list_table_enrichments", {"table_uuid": table})
    assert [e["enrichment_id"] for e in listed["enrichments"]] == [added["enrichment_id"]]
    view = await call(mcp, "run_table_enrichment", {"table_uuid": table, "enrichment_id": added["enrichment_id"]})
    assert view["done"] and view["estimated_credits"] == 2.0 and (view["found"], view["no_data"]) == (1, 1)
    updated = await call(
        mcp,
        "update_table_enrichment",
        {"table_uuid": table, "enrichment_id": added["enrichment_id"], "launch_strategy": "run_on_update"},
    )
    assert (updated["enrichment_id"], updated["kind"]) == (added["enrichment_id"], "enrichment")


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"enrichment": "email_getter", "mapping": {**SOURCES, "company": {"value": "acme.com"}}}, "mapping.company"),
        ({"enrichment": "email_getter", "mapping": SOURCES, "launch_strategy": "run_on_update"}, "launch_strategy"),
        ({"enrichment": 120, "mapping": {"domain": {"column": "Domain"}}, "enrichments": [833]}, "enrichments"),
        ({"enrichment": "120", "mapping": {"domain": {"column": "Domain"}}, "email_verifier": 7}, "email_verifier"),
    ],
)
async def test_what_only_fits_the_other_kind_is_refused_before_sending(
    mcp: Client, sandbox: SandboxServer, arguments: dict[str, Any], field: str
) -> None:
    """add_table_enrichment attaches enrichments (by id) and waterfalls (by identifier): waterfall inputs take
    columns only and run on click, and provider or verifier choices mean nothing for an enrichment."""
    table = (await call(mcp, "create_table", {"name": "Leads", "columns": PEOPLE_COLUMNS}))["identifier"]
    sandbox.state.reset_counts()
    result = await mcp.call_tool("add_table_enrichment", {"table_uuid": table, **arguments})
    body = error_body(result)
    assert body["code"] == "validation_error" and [f["field"] for f in body["fields"]] == [field]
    assert sandbox.state.total_requests() == 0


async def test_waiting_reports_progress_as_rows_fill_in(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.balance = 10_000
    sandbox.state.config.table_row_seconds = 0.01
    table, enrichment = await table_with_waterfall(mcp, 100)
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    result = await mcp.call_tool(
        "run_table_enrichment",
        {"table_uuid": table, "enrichment_id": enrichment, "wait_seconds": 10},
        progress_callback=on_progress,
    )
    assert structured(result)["done"]
    assert seen[0] == (0, 100) and seen[-1] == (100, 100)
    assert [p for p, _ in seen] == sorted(p for p, _ in seen) and len(seen) >= 3


@pytest.mark.parametrize("variant", ["sdk", "variant", "unstated"])
async def test_the_in_place_path_reads_every_reply_variant(tmp_path: Path, variant: str) -> None:
    config = SandboxConfig(api_key=SENTINEL_KEY, task_base_seconds=0.05, row_seconds=0.002, **VARIANTS[variant])
    with SandboxServer(config) as server:
        server.state.balance = 10_000
        async with Client(build_server(make_settings(server, tmp_path))) as mcp:
            table, enrichment = await table_with_waterfall(mcp, 12)
            view = await call(mcp, "run_table_enrichment", {"table_uuid": table, "enrichment_id": enrichment})
            assert view["done"] and view["rows_done"] == 12 and view["found"] == 9
            assert view["estimated_credits"] == 36  # 12 rows x (1 + 2) for the two providers attached
            bad = await mcp.call_tool(
                "add_table_enrichment",
                {
                    "table_uuid": table,
                    "enrichment": "email_getter",
                    "mapping": {**SOURCES, "company": {"column": "Nope"}},
                },
            )
            assert bad.is_error and "validation_error" in text_of(bad) and "Nope" in text_of(bad)


async def test_a_waterfall_attached_elsewhere_is_priced_at_its_worst_case(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.balance = 10_000
    table = (await call(mcp, "create_table", {"name": "Leads", "columns": PEOPLE_COLUMNS}))["identifier"]
    await call(mcp, "insert_rows", {"table_uuid": table, "rows": people(10)})
    columns = {c.name: c.identifier for c in sandbox.state.tables[table].columns}
    with sandbox.state.lock:  # attached in Databar's UI, not through this server: its providers are unknown here
        from databar_mcp.sandbox.processors import Processor, attach

        processor = Processor(
            id=sandbox.state.workspace.new_id(),
            kind="waterfall",
            name="Email getter",
            target="email_getter",
            mapping={p: {"type": "mapping", "value": columns[c]} for p, c in MAPPING.items()},
            enrichments=[833],
        )
        sandbox.state.workspace.on(table)[processor.id] = processor
        attach(sandbox.state.tables[table], processor, [("email", "email")])
    view = await call(mcp, "run_table_enrichment", {"table_uuid": table, "enrichment_id": processor.id})
    assert view["estimated_credits"] == 50  # 10 rows x (every provider email_getter offers + its verifier)
    assert view["done"] and view["rows_done"] == 10


# ---- what table runs cost (issue 23 §3) ------------------------------------------------------------------


async def test_every_billable_act_is_counted_and_a_table_run_states_what_it_spent(
    mcp: Client, sandbox: SandboxServer
) -> None:
    """Regression (issue 23 §3): get_account's spent-today and list_recent_tasks left out table runs (a model told
    the user 3,908 when the balance had fallen by 12,978.5), and the table run's answer gave only "Estimated at
    most N credits"."""
    sandbox.state.balance = 10_000
    table, enrichment = await table_with_waterfall(mcp, 20)

    run = text_of(
        await mcp.call_tool(
            "run_table_enrichment", {"table_uuid": table, "enrichment_id": enrichment, "wait_seconds": 20}
        )
    )
    table_spent = 10_000 - sandbox.state.balance
    await call(mcp, "run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 20})
    account = text_of(await mcp.call_tool("get_account", {}))
    listing = text_of(await mcp.call_tool("list_recent_tasks", {}))

    total = 10_000 - sandbox.state.balance
    assert 0 < table_spent < total
    assert f"Credits spent: {table_spent:g} (measured from the balance before and after" in run, run
    assert f"Spent today through this server: {total:g} credits over 2 run(s)" in account, account
    assert f"{table_spent:g} measured from the balance (table runs)" in account
    assert (
        f"- run_table_enrichment Email getter (enrichment_id {enrichment}) on table {table}: 20 rows, "
        f"{table_spent:g} credits measured from the balance (est ≤ 60)"
    ) in listing, listing


async def test_a_table_run_another_run_overlapped_is_counted_at_its_estimate_and_says_so(
    mcp: Client, sandbox: SandboxServer
) -> None:
    """The balance's drop over a table run measures it only when nothing else of this server ran meanwhile."""
    sandbox.state.balance = 10_000
    sandbox.state.config.table_row_seconds = 0.05
    table, enrichment = await table_with_waterfall(mcp, 20)  # worst case 20 x (1 + 2) = 60 credits
    args = {"table_uuid": table, "enrichment_id": enrichment}
    assert (await call(mcp, "run_table_enrichment", {**args, "wait_seconds": 0}))["done"] is False
    meanwhile = text_of(await mcp.call_tool("get_account", {}))
    assert "Still running: 1 run(s), up to 60 more." in meanwhile, meanwhile
    await call(mcp, "run_bulk_waterfall", {**BULK_ARGS, "wait_seconds": 20})  # overlaps the table run

    result = await mcp.call_tool("wait_table_enrichment", {**args, "wait_seconds": 20})
    while not structured(result)["done"]:
        result = await mcp.call_tool("wait_table_enrichment", {**args, "wait_seconds": 20})
    account = text_of(await mcp.call_tool("get_account", {}))

    assert "Credits spent: not measurable (another run of this server overlapped" in text_of(result)
    assert "counted at its estimate, at most 60." in text_of(result)
    assert "60 counted at the estimates of 1 run(s) with no figure" in account, account


async def test_a_whole_table_run_reads_only_the_counts_it_reports(mcp: Client, sandbox: SandboxServer) -> None:
    """Regression (issue 28, item 3): a run over a whole table larger than a page read the full breakdown (five
    filtered counts) before the run and again after it, each costing a second under the per-table pace. A run of
    every row needs only the table's size and its busy rows before, and found and errors after."""
    sandbox.state.balance = 1e9
    sandbox.state.config.table_row_seconds = 0.0002
    mapping = {p: {"column": p} for p in ("first_name", "last_name", "company")}
    args = {"table_uuid": SEED_TABLE_ID, "enrichment": "email_getter", "mapping": mapping, "enrichments": [833, 966]}
    enrichment = int((await call(mcp, "add_table_enrichment", args))["enrichment_id"])
    rows = sandbox.state.config.seed_table_rows
    assert rows > 1_000  # more than one page: counted through filtered reads
    target = {"table_uuid": SEED_TABLE_ID, "enrichment_id": enrichment}
    sandbox.state.reset_counts()

    started = await call(mcp, "run_table_enrichment", {**target, "run_strategy": "run_all", "wait_seconds": 0})
    assert started["rows_in_run"] == rows
    assert sandbox.state.counts[ROWS_READ] == 3  # total and busy rows before the run (was 5), one progress read

    view = started
    while not view["done"]:
        view = await call(mcp, "wait_table_enrichment", {**target, "wait_seconds": 5})
    sandbox.state.reset_counts()
    again = await call(mcp, "wait_table_enrichment", {**target, "wait_seconds": 0})
    assert sandbox.state.counts[ROWS_READ] == 3  # one progress read, then found and errors (was 1 + 5)
    for done in (view, again):
        assert (done["rows_done"], done["still_processing"]) == (rows, 0)
        assert done["found"] + done["no_data"] + done["errors"] == rows and done["found"] > 0
    found_filter = {view["status_column"]: {"equals": "completed"}}
    completed = await call(mcp, "list_table_rows", {"table_uuid": SEED_TABLE_ID, "filter": found_filter})
    assert completed["total_count"] == view["found"] == again["found"]
    text = text_of(await mcp.call_tool("wait_table_enrichment", {**target, "wait_seconds": 0}))
    assert f"{rows:,}/{rows:,} rows done, {view['found']:,} found, {view['no_data']:,} no data" in text
