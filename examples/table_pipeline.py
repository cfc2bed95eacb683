#!/usr/bin/env python3
"""A table pipeline through the databar-mcp server: CSV → Databar table → email waterfall run inside the table.

    python examples/table_pipeline.py                             # the local sandbox: no key, no credits
    DATABAR_API_KEY=... python examples/table_pipeline.py --real  # the real Databar API: spends credits, asks first
    python examples/table_pipeline.py --shuttle            # the older path: rows out, results back in

Steps, each one tool call (or a few): create_table, insert_rows (any size: the server chunks by 50 and
reports per-row outcomes), add_table_enrichment (the waterfall, its inputs mapped to the table's columns),
run_table_enrichment (Databar enriches every row in place; no row passes through the client) and
wait_table_enrichment until it is done, then list_table_rows filtered on the waterfall's status column.

With --shuttle the rows make the round trip instead: list_table_rows, run_bulk_waterfall + get_task,
upsert_rows keyed on a unique lead_key column. It teaches the upsert, and costs a context full of rows.
Copy it and change the columns and WATERFALL.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

from databar_mcp.app.demo import confirm_spending  # the demo's rule: --real asks, --yes skips the question

HERE = Path(__file__).resolve().parent
DEFAULT_INPUT = HERE.parent / "databar_mcp" / "app" / "demo_leads.csv"  # the demo's bundled leads
WATERFALL = "email_getter"
INPUT_COLUMNS = ("first_name", "last_name", "company")
TABLE_COLUMNS = ("lead_key", *INPUT_COLUMNS, "email", "provider")


class ToolFailed(Exception):
    def __init__(self, tool: str, error: dict[str, Any]) -> None:
        steps = "; ".join(error.get("next_steps") or [])
        super().__init__(f"{tool} failed [{error.get('code')}]: {error.get('message')} {steps}".strip())


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    if result.is_error:
        # An error result's first text block is a one-line summary, the second the error body as JSON.
        texts = [getattr(block, "text", "") for block in result.content]
        raise ToolFailed(tool, json.loads(texts[1]) if len(texts) > 1 else {"message": " ".join(texts)})
    return result.structured_content or {}


def lead_key(row: dict[str, str]) -> str:
    """A unique, stable key per lead, so results can be upserted onto the right row."""
    return f"{row['first_name']}.{row['last_name']}@{row['company']}".lower()


def read_leads(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as f:
        return [{c: (row.get(c) or "").strip() for c in INPUT_COLUMNS} for row in csv.DictReader(f)]


def server_parameters(real: bool) -> StdioServerParameters:
    env = dict(os.environ)
    args = ["-m", "databar_mcp"]
    if not real:
        args.append("--sandbox")
        env.setdefault("DATABAR_MCP_LOG_LEVEL", "ERROR")
    return StdioServerParameters(command=sys.executable, args=args, env=env)


async def read_all_rows(client: Client, table: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    page = await call(client, "list_table_rows", {"table_uuid": table, "per_page": 1000})
    rows.extend(page["rows"])
    while page.get("next_call"):
        args: dict[str, Any] = {"table_uuid": table, "per_page": page["per_page"]}
        if page["rows_omitted"]:
            args |= {"page": page["page"], "skip": page["skip"] + len(page["rows"])}
        else:
            args |= {"page": page["page"] + 1}
        page = await call(client, "list_table_rows", args)
        rows.extend(page["rows"])
    return rows


async def enrich(client: Client, leads: list[dict[str, str]], wait: float) -> tuple[list[Any], dict[str, Any]]:
    view = await call(
        client,
        "run_bulk_waterfall",
        {"waterfall": WATERFALL, "params": leads, "enrichments": [833, 966], "wait_seconds": wait},
    )
    while not view["done"]:
        view = await call(client, "get_task", {"task_id": view["task_id"], "wait_seconds": wait})
    results: list[Any] = [None] * (view["rows_total"] or 0)
    for row in view["rows"]:
        results[row["index"]] = row["data"]
    while view.get("next_offset") is not None:
        view = await call(client, "get_task", {"task_id": view["task_id"], "offset": view["next_offset"]})
        for row in view["rows"]:
            results[row["index"]] = row["data"]
    return results, view


async def balance(client: Client) -> float:
    return float((await call(client, "get_account", {}))["balance"])


async def in_table(client: Client, table_id: str, rows: int, wait: float) -> tuple[int, int]:
    """Attach the waterfall to the table and run it there: (rows enriched, rows written)."""
    mapping = {c: {"column": c} for c in INPUT_COLUMNS}
    added = await call(
        client,
        "add_table_enrichment",
        {"table_uuid": table_id, "enrichment": WATERFALL, "mapping": mapping, "enrichments": [833, 966]},
    )
    print(f"3. attached {added['name']} (outputs {added['output_columns']}) as enrichment {added['enrichment_id']}")
    args = {"table_uuid": table_id, "enrichment_id": added["enrichment_id"], "wait_seconds": wait}
    view = await call(client, "run_table_enrichment", args)
    while not view["done"]:
        print(f"   ... {view['rows_done']}/{view['rows_in_run']} rows done")
        view = await call(client, "wait_table_enrichment", args)
    print(f"4. {WATERFALL} ran on {view['rows_in_run']}/{rows} rows in the table: {view['found']} found")
    status = {view["status_column"]: {"equals": "completed"}}
    found = await call(client, "list_table_rows", {"table_uuid": table_id, "filter": status, "per_page": 1})
    print(f"5. {found['total_count']} rows now have an {view['output_columns'][0]!r}")
    return int(view["found"]), int(found["total_count"] or 0)


async def shuttle(client: Client, table_id: str, wait: float) -> tuple[int, int]:
    """The older path: read the rows out, run a bulk waterfall on them, upsert the results back."""
    stored = await read_all_rows(client, table_id)
    print(f"3. read back {len(stored)} rows")
    inputs = [{c: row.get(c) or "" for c in INPUT_COLUMNS} for row in stored]
    results, _ = await enrich(client, inputs, wait)
    found = [(row, data) for row, data in zip(stored, results, strict=True) if isinstance(data, dict)]
    print(f"4. {WATERFALL}: {len(found)}/{len(stored)} emails found")
    upserts = [
        {"key": {"lead_key": row["lead_key"]}, "fields": {"email": data.get("email"), "provider": data.get("provider")}}
        for row, data in found
    ]
    written = await call(client, "upsert_rows", {"table_uuid": table_id, "rows": upserts}) if upserts else None
    updated = written["counts"].get("updated", 0) if written else 0
    print(f"5. wrote {updated} results back with upsert_rows")
    return len(found), updated


def use_real_api(args: argparse.Namespace) -> bool:
    """The real API only when asked with --real: a key in the environment alone never spends credits."""
    if not args.real and os.environ.get("DATABAR_API_KEY"):
        print(
            "DATABAR_API_KEY is set, but this example uses the local sandbox unless you pass --real.", file=sys.stderr
        )
    return bool(args.real)


async def pipeline(args: argparse.Namespace) -> int:
    leads = read_leads(args.input)
    real = use_real_api(args)
    if real and not confirm_spending(args, len(leads)):
        print("Nothing was spent.", file=sys.stderr)
        return 1
    started = time.monotonic()
    async with Client(server_parameters(real)) as client:
        # not listed by default (the calls would work anyway): list them, as an agent would
        await call(client, "enable_toolsets", {"toolsets": ["tables", "table_enrich"]})
        before = await balance(client)
        columns = list(TABLE_COLUMNS) if args.shuttle else ["lead_key", *INPUT_COLUMNS]
        table = await call(
            client,
            "create_table",
            {"name": f"Leads pipeline {time.strftime('%Y-%m-%d %H:%M')}", "columns": columns},
        )
        table_id = table["identifier"]
        print(f"1. created table {table['name']!r} ({table_id})")

        inserted = await call(
            client,
            "insert_rows",
            {
                "table_uuid": table_id,
                "rows": [{"lead_key": lead_key(r), **r} for r in leads],
                "dedupe_keys": ["lead_key"],
            },
        )
        rows = inserted["counts"].get("created", 0)
        print(f"2. inserted {rows} of {len(leads)} rows")

        if args.shuttle:
            enriched, updated = await shuttle(client, table_id, args.wait_seconds)
        else:
            enriched, updated = await in_table(client, table_id, rows, args.wait_seconds)
        spent = round(before - await balance(client), 6)

    print(
        f"Table {table_id}: {rows} rows, {enriched} enriched, {updated} updated, "
        f"{spent:g} credits, {time.monotonic() - started:.1f} s"
    )
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="CSV → Databar table → email waterfall run inside the table.")
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT, help=f"CSV of leads (default {DEFAULT_INPUT})")
    parser.add_argument("--wait-seconds", type=float, default=20.0, help="per tool call (default 20)")
    parser.add_argument("--shuttle", action="store_true", help="the older path: rows out, results upserted back")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--sandbox", action="store_true", help="use the local sandbox (the default)")
    mode.add_argument("--real", action="store_true", help="use the real Databar API (needs DATABAR_API_KEY)")
    parser.add_argument("--yes", action="store_true", help="with --real: do not ask before spending")
    return parser.parse_args(argv)


def failures(exc: BaseException) -> list[ToolFailed]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in failures(inner)]
    return [exc] if isinstance(exc, ToolFailed) else []


async def main(args: argparse.Namespace) -> int:
    try:
        return await pipeline(args)
    except (ToolFailed, BaseExceptionGroup) as exc:  # the client session wraps errors raised inside it
        found = failures(exc)
        if not found:
            raise
        print(found[0], file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(anyio.run(main, parse_args()))
