"""Discovery tools and every run tool (single, bulk, waterfall, enrichment) plus cancel_task, end to end."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from databar_mcp.app.server import build_server
from databar_mcp.sandbox import SandboxServer
from tests.conftest import LEADS, error_body, lead, make_settings, structured, text_of, whole

pytestmark = pytest.mark.anyio

POSTS = "POST /v1/enrichments/{enrichment_id}/bulk-run"
PEOPLE_AT = {"domain": "acme.com"}


async def test_search_ranks_name_matches_first_and_shows_price_and_required_params(mcp: Client) -> None:
    result = await mcp.call_tool("search_enrichments", {"query": "company"})
    out = structured(result)
    named = ["company" in e["name"].lower() for e in out["enrichments"]]
    assert named[0] and named == sorted(named, reverse=True)  # every name match before any other
    profile = next(e for e in out["enrichments"] if e["id"] == 120)
    assert profile["price"] == 1.0 and profile["required_params"] == ["domain"]
    assert "120 Company profile from domain (1 cr/row" in text_of(result)


async def test_search_pages_with_an_exact_next_call(mcp: Client) -> None:
    first = structured(await mcp.call_tool("search_enrichments", {"limit": 3}))
    assert len(first["enrichments"]) == 3 and first["next_call"] == "search_enrichments(page=2, limit=3)"
    second = structured(await mcp.call_tool("search_enrichments", {"limit": 3, "page": 2}))
    assert not {e["id"] for e in first["enrichments"]} & {e["id"] for e in second["enrichments"]}


async def test_get_enrichment_lists_params_with_choices_and_response_fields(mcp: Client) -> None:
    out = structured(await mcp.call_tool("get_enrichment", {"enrichment_id": 121}))
    params = {p["name"]: p for p in out["params"]}
    assert params["domain"]["required"] is True
    assert params["tech_category"]["required"] is False and "CRM" in params["tech_category"]["choices"]
    assert out["response_fields"] == ["technologies"] and out["price"] == 2.5


async def test_param_choices_search_and_page(mcp: Client) -> None:
    page = structured(await mcp.call_tool("get_param_choices", {"enrichment_id": 500, "param": "country", "limit": 5}))
    assert len(page["choices"]) == 5 and page["total"] > 5
    assert page["next_call"] == "get_param_choices(enrichment_id=500, param='country', page=2, limit=5)"
    found = structured(
        await mcp.call_tool("get_param_choices", {"enrichment_id": 500, "param": "country", "query": "germ"})
    )
    assert [c["name"] for c in found["choices"]] == ["Germany"]


async def test_get_waterfall_shows_inputs_providers_and_verifiers(mcp: Client) -> None:
    out = structured(await mcp.call_tool("get_waterfall", {"waterfall": "email_getter"}))
    assert out["required_inputs"] == ["first_name", "last_name", "company"]
    assert {p["id"]: p["price"] for p in out["providers"]}[966] == 2.0
    assert [v["id"] for v in out["email_verifiers"]] == [10]
    assert {i["name"] for i in out["inputs"]} >= {"first_name", "company"}


async def test_a_waterfall_run_without_providers_uses_the_default_ones(mcp: Client, sandbox: SandboxServer) -> None:
    result = await mcp.call_tool("run_bulk_waterfall", {"waterfall": "email_getter", "params": [LEADS[0]]})
    again = await mcp.call_tool("run_bulk_waterfall", {"waterfall": "email_getter", "params": [LEADS[0]]})
    named = await mcp.call_tool(
        "run_bulk_waterfall", {"waterfall": "email_getter", "params": [LEADS[0]], "enrichments": [833, 966]}
    )
    out = structured(result)
    assert out["status"] == "completed" and out["rows_total"] == 1
    assert "@" in str(out["rows"][0]["data"])
    assert out["estimated_credits"] == 3.0  # both default providers, 1 + 2
    # the defaults are named in the request, so the same run spelled out is the same run: billed once
    assert structured(again)["reused"] is True and structured(named)["task_id"] == out["task_id"]
    assert sandbox.state.counts["POST /v1/waterfalls/{identifier}/bulk-run"] == 1


async def test_an_enrichment_run_checks_required_params_and_choices_before_sending(
    mcp: Client, sandbox: SandboxServer
) -> None:
    missing = error_body(await mcp.call_tool("run_bulk_enrichment", {"enrichment_id": 121, "params": [{}]}))
    bad_choice = error_body(
        await mcp.call_tool(
            "run_bulk_enrichment", {"enrichment_id": 121, "params": [{"domain": "a.com", "tech_category": "X"}]}
        )
    )
    assert missing["code"] == "validation_error" and missing["fields"][0]["field"] == "params.domain"
    assert bad_choice["code"] == "validation_error" and "CRM" in bad_choice["fields"][0]["problem"]
    assert sandbox.state.counts.get(POSTS, 0) == 0

    ok = structured(
        await mcp.call_tool("run_bulk_enrichment", {"enrichment_id": 120, "params": [{"domain": "example.com"}]})
    )
    assert ok["status"] == "completed" and ok["estimated_credits"] == 1.0
    assert sandbox.state.counts[POSTS] == 1


async def test_run_bulk_enrichment_aligns_results_and_reuses_identical_runs(
    mcp: Client, sandbox: SandboxServer
) -> None:
    rows = [{"domain": d} for d in ("example.com", "nothing.invalid", "acme.com")]
    first = structured(await mcp.call_tool("run_bulk_enrichment", {"enrichment_id": 120, "params": rows}))
    again = structured(await mcp.call_tool("run_bulk_enrichment", {"enrichment_id": 120, "params": rows}))
    assert first["rows_total"] == 3 and first["rows"][1]["data"] is None
    assert first["estimated_credits"] == 3.0
    assert again["task_id"] == first["task_id"] and again["reused"] is True
    assert sandbox.state.counts["POST /v1/enrichments/{enrichment_id}/bulk-run"] == 1


async def test_cancel_a_running_task_then_cancelling_again_is_a_conflict(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.config.task_base_seconds = 30.0
    rows = [lead(f"F{i}", f"L{i}", "example.com") for i in range(20)]
    handle = structured(
        await mcp.call_tool(
            "run_bulk_waterfall", {"waterfall": "email_getter", "params": rows, "enrichments": [833], "wait_seconds": 0}
        )
    )

    cancelled = await mcp.call_tool("cancel_task", {"task_id": handle["task_id"]})
    again = await mcp.call_tool("cancel_task", {"task_id": handle["task_id"]})
    recent = structured(await mcp.call_tool("list_recent_tasks", {}))

    assert not cancelled.is_error and structured(cancelled)["status"] == "cancelled"
    assert error_body(again)["code"] == "conflict" and "already finished" in error_body(again)["message"]
    assert recent["tasks"][0]["status"] == "cancelled"  # the ledger knows


async def test_get_task_partial_shows_finished_rows_while_running_and_rations_databars_partial_reads(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """Issue 23 (6): the results view follows a run in short waits with partial=true; Databar's include_partial
    is costly, so one read per task per interval gives rows; the polls between bring progress only."""
    row_s = 1000.0  # rows finish only when the test moves the sandbox clock
    sandbox.state.config.task_base_seconds = row_s
    sandbox.state.config.row_seconds = row_s
    rows = [lead(f"F{i}", f"L{i}", "example.com" if i % 3 else "nowhere.invalid") for i in range(20)]
    args = {"waterfall": "email_getter", "params": rows, "enrichments": [833, 966], "wait_seconds": 0}
    live = {"wait_seconds": 0, "limit": 100, "partial": True}
    async with Client(build_server(make_settings(sandbox, tmp_path, partial_read_interval_s=3600.0))) as client:
        task_id = structured(await client.call_tool("run_bulk_waterfall", args))["task_id"]
        sandbox.state.clock.advance(row_s + 4 * row_s + 1)  # rows 0-4 are done
        first = await client.call_tool("get_task", {"task_id": task_id, **live})
        sandbox.state.clock.advance(7 * row_s)  # rows 0-11
        second = await client.call_tool("get_task", {"task_id": task_id, **live})
        plain = await client.call_tool("get_task", {"task_id": task_id, "wait_seconds": 0, "limit": 100})
    task = sandbox.state.tasks[task_id]

    assert "Progress: 5/20 rows finished, 3 found so far." in text_of(first)
    assert "#1 {" in text_of(first) and "f1.l1@example.com" in text_of(first)  # a finished row, while running
    assert "not finished yet" in text_of(first)  # null is ambiguous while running, and the text says so
    assert "Progress: 12/20 rows finished" in text_of(second) and "@example.com" not in text_of(second)
    assert "@example.com" not in text_of(plain)  # without partial, no partial read at all
    assert task.partial_reads == 1 and task.reads >= 3


async def test_every_run_result_reports_estimated_and_actual_credits(mcp: Client) -> None:
    result = await mcp.call_tool(
        "run_bulk_waterfall", {"waterfall": "email_getter", "params": [LEADS[0]], "enrichments": [833]}
    )
    out = structured(result)
    assert out["estimated_credits"] == 1.0 and out.get("credits_spent") is not None
    assert "Credits spent:" in text_of(result) and len(whole(result)) < 40_000


async def test_a_run_still_going_says_how_long_earlier_runs_here_took(mcp: Client, sandbox: SandboxServer) -> None:
    """Regression (issue 23, 7): nothing answered "how long will it take". A run that outlasts the call states
    the time expected from this server's own finished runs of the same waterfall, and nothing without them."""
    done = await mcp.call_tool(
        "run_bulk_waterfall", {"waterfall": "email_getter", "params": LEADS[:2], "enrichments": [833]}
    )
    assert structured(done)["done"] and "Duration:" not in text_of(done)

    sandbox.state.config.task_base_seconds = 30.0
    slow = await mcp.call_tool(
        "run_bulk_waterfall",
        {"waterfall": "email_getter", "params": LEADS[2:], "enrichments": [833], "wait_seconds": 0},
    )
    said = text_of(slow)
    assert structured(slow)["status"] == "processing"
    assert "Duration: expected about " in said and " s, from 1 earlier run here (Databar states none)." in said

    unseen = await mcp.call_tool(
        "run_bulk_enrichment", {"enrichment_id": 120, "params": [{"domain": "acme.com"}], "wait_seconds": 0}
    )
    assert structured(unseen)["status"] == "processing" and "Duration:" not in text_of(unseen)


async def test_a_price_per_result_is_stated_and_every_result_shown(mcp: Client) -> None:
    """Regression (issue 23, 7): "Employees of a company" with max_results 25 cost 5 credits a row and the
    answer showed one person, without saying what max_results defaults to. The price a parameter drives is
    stated up front (parameter, value, default), and every result of a row is shown and exported."""
    detail = text_of(await mcp.call_tool("get_enrichment", {"enrichment_id": 510}))
    assert "param max_results (number, optional); the price is × max_results, default 10" in detail

    many = await mcp.call_tool(
        "run_bulk_enrichment", {"enrichment_id": 510, "params": [PEOPLE_AT | {"max_results": 25}]}
    )
    lines = text_of(many).splitlines()
    assert lines[0].endswith("completed: 1 rows, 1 with data, 25 results in all.")
    assert (
        lines[1] == "Price: 0.2 credits × max_results per row (max_results 25 as given; the default 10 when left out)."
    )
    assert lines[2] == "Credits spent: 5 (estimated ≤ 5)."
    assert text_of(many).count('"linkedin_url"') == 25

    left_out = text_of(await mcp.call_tool("run_bulk_enrichment", {"enrichment_id": 510, "params": [PEOPLE_AT]}))
    assert "Price: 0.2 credits × max_results per row (left out in 1 row(s), so its default 10 applies)." in left_out
    assert "(estimated ≤ 2)" in left_out and left_out.count('"linkedin_url"') == 10

    exported = structured(await mcp.call_tool("export_task_result", {"task_id": structured(many)["task_id"]}))
    csv_lines = Path(exported["path"]).read_text().splitlines()
    assert csv_lines[0] == "index,domain,max_results,found,full_name,title,company,linkedin_url"
    assert len(csv_lines) == 1 + 25 and all(line.startswith("0,acme.com,25,True,") for line in csv_lines[1:])
