"""Scenario 4b: a whole table enriched in place (run_table_enrichment, then wait_table_enrichment until done)
through our server over stdio, against the bound the sandbox's processing time sets; with its requests."""

from __future__ import annotations

import time

from bench import harness
from bench.context import Context
from bench.harness import PROVIDERS, WATERFALL, structured
from bench.result import Row
from bench.scenarios.scale import Arrivals, bound_row, our_server, rss_row
from databar_mcp.sandbox.tables import SEED_TABLE_ID

BASE_S = 0.3
RUN_POST = "POST /v1/table/{table_uuid}/run-enrichment/{processor_id}"
MAPPING = {p: {"column": p} for p in ("first_name", "last_name", "company")}


async def run(ctx: Context) -> list[Row]:
    n, row_s, rate = ctx.profile.table_enrich_rows, ctx.profile.table_enrich_row_seconds, ctx.profile.table_rate_per_s
    knobs = {"seed_table_rows": n, "table_rate_limit_per_second": rate}
    with harness.sandbox(task_base_seconds=BASE_S, table_row_seconds=row_s, **knobs) as sb:
        arrivals = Arrivals(sb)
        async with our_server(sb, ctx.scratch("table-enrich")) as (client, pid):
            harness.log(f"  table_enrich: {n:,}-row table enriched in place")
            added = structured(
                await client.call_tool(
                    "add_table_enrichment",
                    {
                        "table_uuid": SEED_TABLE_ID,
                        "enrichment": WATERFALL,
                        "mapping": MAPPING,
                        "enrichments": PROVIDERS,
                    },
                )
            )
            balance = sb.state.balance
            sb.state.reset_counts()
            args = {"table_uuid": SEED_TABLE_ID, "enrichment_id": added["enrichment_id"], "wait_seconds": 25}
            started = time.perf_counter()
            out = structured(await client.call_tool("run_table_enrichment", {**args, "run_strategy": "run_all"}))
            calls = 1
            while not out["done"]:
                out = structured(await client.call_tool("wait_table_enrichment", args))
                calls += 1
            elapsed = time.perf_counter() - started
            peak = harness.peak_rss_mb(pid) if pid else None
        with sb.state.lock:
            jobs = sb.state.workspace.processor(SEED_TABLE_ID, added["enrichment_id"]).run
            assert jobs is not None
            started_run = jobs.jobs[0].due - BASE_S
            accepting = started_run - arrivals.first[RUN_POST]
            bound = jobs.jobs[-1].due - started_run + accepting
            requests = sum(sb.state.counts.values())
            spent = balance - sb.state.balance
    counted = out["found"] + out["no_data"] + out["errors"]
    if out["rows_done"] != n or counted != n:
        raise RuntimeError(f"the run reports {out['rows_done']} rows done and {counted} counted, not {n}")
    note = (
        f"bound = the sandbox's time from the run request's arrival: {accepting:.2f} s to accept it (every row's "
        f"outcome worked out first) + {BASE_S:g} s + {n - 1:,} × {row_s:g} s; against the processing time alone "
        f"({bound - accepting:.1f} s): {(bound - accepting) / elapsed:.3f}×; ours: {calls} tool calls, "
        f"{requests} API requests at ≤ {rate:g}/s per table, {out['found']:,} found, {spent:,.0f} credits, "
        "0 rows through the client"
    )
    return [
        bound_row(f"4b. {n:,}-row table enriched in place (run_table_enrichment → done)", elapsed, bound, note),
        rss_row(f"4b. peak RSS, {n:,}-row table enriched in place", pid, peak),
    ]
