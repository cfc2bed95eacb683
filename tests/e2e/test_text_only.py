"""Sequences a model drives reading the text blocks only, as many clients hand it nothing else (issue 23 §2).

structuredContent is dropped here: every id, figure and next call the model needs must be in the text, and
each step's arguments are taken from the previous step's text (a suggested call is parsed and made as written).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from databar_mcp.sandbox import SandboxServer
from tests.conftest import LEADS, lead, text_of

pytestmark = pytest.mark.anyio

TASK_ID = re.compile(r"^Task ([0-9a-f-]{36}) (\w+)")
JSON_NAMES = {"true": True, "false": False, "null": None}


async def say(mcp: Client, tool: str, args: dict[str, Any]) -> str:
    """What the model reads of a call: its text blocks, nothing else."""
    return text_of(await mcp.call_tool(tool, args))


def literal(node: ast.expr) -> Any:
    if isinstance(node, ast.Name) and node.id in JSON_NAMES:
        return JSON_NAMES[node.id]
    return ast.literal_eval(node)


def suggested(text: str, tool: str) -> list[dict[str, Any]]:
    """Every call of `tool` the text suggests, as the arguments it names (`tool(name=value, ...)`)."""
    calls: list[dict[str, Any]] = []
    for match in re.finditer(rf"\b{tool}\(", text):
        depth, end = 1, match.end()
        while depth:
            depth += {"(": 1, ")": -1}.get(text[end], 0)
            end += 1
        node = ast.parse(text[match.start() : end], mode="eval").body
        assert isinstance(node, ast.Call), text[match.start() : end]
        calls.append({kw.arg: literal(kw.value) for kw in node.keywords if kw.arg is not None})
    return calls


def task_id_of(text: str) -> str:
    found = TASK_ID.match(text)
    assert found, f"the first line names no task id: {text.splitlines()[0]!r}"
    return found.group(1)


def people(n: int) -> list[dict[str, str]]:
    return [lead(f"First{i}", f"Last{i}", "example.com" if i % 3 else "nobody.invalid") for i in range(n)]


async def test_run_then_detail_then_export_from_the_text_alone(mcp: Client) -> None:
    """Regression: a run's text omitted its task id, and detailed was byte-identical to concise (no inputs)."""
    run = await say(mcp, "run_bulk_waterfall", {"waterfall": "email_getter", "params": LEADS, "wait_seconds": 20})
    task_id = task_id_of(run)
    assert run.startswith(f"Task {task_id} completed: 4 rows, 2 with data.")
    assert re.search(r"^Credits spent: [\d.]+ \(estimated ≤ 12\)\.$", run, re.M), run

    detailed = await say(mcp, "get_task", {"task_id": task_id, "response_format": "detailed"})
    concise = await say(mcp, "get_task", {"task_id": task_id})
    assert detailed != concise
    assert '#0 input {"first_name":"John","last_name":"Doe","company":"example.com"} → {"email":"john.doe@' in detailed
    assert '#1 input {"first_name":"Ann","last_name":"Lee","company":"nowhere.invalid"} → null' in detailed

    exported = await say(mcp, "export_task_result", {"task_id": task_id})
    path = Path(re.search(r" to (\S+\.csv)\.", exported).group(1))  # type: ignore[union-attr]
    assert "John,Doe,example.com" in path.read_text() and "john.doe@example.com" in path.read_text()


async def test_a_large_result_answers_with_a_sample_and_its_calls_reach_every_row(
    mcp: Client, sandbox: SandboxServer
) -> None:
    """Regression: a 1,000-row run put 17,035 characters of rows into one reply."""
    sandbox.state.balance = 100_000
    run = await say(mcp, "run_bulk_waterfall", {"waterfall": "email_getter", "params": people(120), "wait_seconds": 20})
    task_id = task_id_of(run)
    assert len(run) < 2_500, len(run)
    assert "Sample: rows 0–9 of 120" in run
    assert suggested(run, "export_task_result") == [{"task_id": task_id}]
    exported = await say(mcp, "export_task_result", suggested(run, "export_task_result")[0])
    assert exported.startswith("Wrote 120 rows"), exported

    seen = {int(i) for i in re.findall(r"^#(\d+) ", run, re.M)}
    pages = suggested(run, "get_task")
    while pages:
        (call,) = pages
        assert call["task_id"] == task_id and "limit" in call  # a suggested call always carries a limit
        page = await say(mcp, "get_task", call)
        seen |= {int(i) for i in re.findall(r"^#(\d+) ", page, re.M)}
        pages = suggested(page, "get_task")
    assert seen == set(range(120))


async def test_a_suggested_status_check_never_dumps_the_rows(mcp: Client, sandbox: SandboxServer) -> None:
    """Regression: a suggested get_task(task_id=…, wait_seconds=10) came back with 17,220 characters of rows."""
    sandbox.state.balance = 100_000
    sandbox.state.config.task_base_seconds = 1.0
    run = await say(
        mcp, "run_bulk_waterfall", {"waterfall": "email_getter", "params": people(1_000), "wait_seconds": 0}
    )
    assert task_id_of(run) and "processing" in run.splitlines()[0]
    (check,) = suggested(run, "get_task")
    assert check.get("limit") is not None, run

    status = await say(mcp, "get_task", check)
    while "processing" in status.splitlines()[0]:
        status = await say(mcp, "get_task", suggested(status, "get_task")[0])
    assert status.startswith(f"Task {check['task_id']} completed: 1000 rows")
    assert len(status) < 2_500, len(status)


async def test_a_table_run_its_cost_and_its_rows_from_the_text_alone(mcp: Client, sandbox: SandboxServer) -> None:
    sandbox.state.balance = 10_000
    sandbox.state.config.table_row_seconds = 0.02
    created = await say(mcp, "create_table", {"name": "Leads", "columns": ["First name", "Last name", "Domain"]})
    table = re.search(r"Created table (\S+) ", created).group(1)  # type: ignore[union-attr]
    rows = [{"First name": p["first_name"], "Last name": p["last_name"], "Domain": p["company"]} for p in people(30)]
    await say(mcp, "insert_rows", {"table_uuid": table, "rows": rows})
    mapping = {"first_name": "First name", "last_name": "Last name", "company": "Domain"}
    added = await say(
        mcp,
        "add_table_enrichment",
        {"table_uuid": table, "enrichment": "email_getter", "mapping": {k: {"column": v} for k, v in mapping.items()}},
    )
    (run_call,) = suggested(added, "run_table_enrichment")

    answer = await say(mcp, "run_table_enrichment", {**run_call, "wait_seconds": 0})
    while waits := suggested(answer, "wait_table_enrichment"):
        answer = await say(mcp, "wait_table_enrichment", waits[0])
    spent = 10_000 - sandbox.state.balance
    assert f"Credits spent: {spent:g} (measured from the balance before and after" in answer, answer
    (read_call,) = suggested(answer, "list_table_rows")
    read = await say(mcp, "list_table_rows", read_call)
    assert len(re.findall(r"@example\.com", read)) == 20, read  # every example.com row was found
