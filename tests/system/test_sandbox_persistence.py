"""`--sandbox` keeps its state in the state dir: a process per call (as the Inspector CLI runs us) still
finds the task it started and the table it created, with the balance it was charged."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from databar_mcp.app.cli import SANDBOX_STATE_FILE
from databar_mcp.sandbox import SandboxConfig, SandboxServer
from tests.conftest import LEADS, structured, text_of

pytestmark = pytest.mark.anyio


def test_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.json"
    config = SandboxConfig(task_base_seconds=0.0, row_seconds=0.0)
    with SandboxServer(config, persist_path=path) as first:
        http = httpx2.Client(base_url=first.base_url + "/", headers={"x-apikey": first.api_key})
        task_id = http.post("waterfalls/email_getter/bulk-run", json={"params": LEADS, "enrichments": [833]}).json()[
            "task_id"
        ]
        table = http.post("table/create", json={"name": "Kept", "columns": ["email"]}).json()["identifier"]
        http.post(f"table/{table}/rows", json={"rows": [{"fields": {"email": "a@b.io"}}]})
        connector = http.post(
            "connectors/", json={"name": "c", "method": "get", "url": "https://x.io", "headers": []}
        ).json()["id"]
        first.state.clock.advance(60)
        balance = first.state.balance
        before = http.get(f"tasks/{task_id}").json()
        http.close()
    with SandboxServer(config, persist_path=path) as second:
        http = httpx2.Client(base_url=second.base_url + "/", headers={"x-apikey": second.api_key})
        assert http.get(f"tasks/{task_id}").json() == before
        assert [r["email"] for r in http.get(f"table/{table}/rows").json()["data"]] == ["a@b.io"]
        assert http.get(f"connectors/{connector}").json()["name"] == "c"
        assert second.state.balance == pytest.approx(balance) and balance < 1000
        assert second.state.clock.offset == pytest.approx(60)
        http.close()


def test_table_enrichments_folders_and_runs_survive_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.json"
    config = SandboxConfig(task_base_seconds=0.0, row_seconds=0.0, table_row_seconds=10.0)
    with SandboxServer(config, persist_path=path) as first:
        http = httpx2.Client(base_url=first.base_url + "/", headers={"x-apikey": first.api_key})
        table = http.post("table/create", json={"name": "Run", "columns": ["domain"]}).json()["identifier"]
        http.post(f"table/{table}/rows", json={"rows": [{"fields": {"domain": "example.com"}}] * 2})
        mapping = {"domain": {"type": "mapping", "value": "domain"}}
        attached = http.post(f"table/{table}/add-enrichment", json={"enrichment": 120, "mapping": mapping}).json()
        http.post(f"table/{table}/run-enrichment/{attached['id']}", json={"run_strategy": "run_all"})
        folder = http.post("folders", json={"name": "Kept"}).json()["id"]
        http.post("folders/move-table", json={"table_uuid": table, "folder_id": folder})
        http.close()
    with SandboxServer(config, persist_path=path) as second:
        http = httpx2.Client(base_url=second.base_url + "/", headers={"x-apikey": second.api_key})
        assert http.get(f"table/{table}/enrichments").json() == [
            {"id": attached["id"], "name": attached["enrichment_name"]}
        ]
        second.state.clock.advance(5)  # the first row is due now, the second in 10 s
        statuses = [r[attached["enrichment_name"]] for r in http.get(f"table/{table}/rows").json()["data"]]
        assert statuses == ["completed", "processing"]
        assert [f["table_count"] for f in http.get("folders").json()] == [1]
        http.close()


def test_flows_workbooks_and_the_trash_survive_a_restart(tmp_path: Path) -> None:
    """Issue 27: edited flows (with their versions), workbooks and the trash (rows and all) are state too."""
    path = tmp_path / "sandbox.json"
    config = SandboxConfig(task_base_seconds=0.0, row_seconds=0.0)
    flow_config = {
        "inputs": [{"id": "domain", "description": "Domain", "type": "text", "required": True}],
        "nodes": [{"id": "p", "type": "enrichment", "enrichment": 120, "inputs": {"domain": "{{input.domain}}"}}],
        "outputs": {"name": "p.name"},
    }
    with SandboxServer(config, persist_path=path) as first:
        http = httpx2.Client(base_url=first.base_url + "/", headers={"x-apikey": first.api_key})
        flow = http.post("flows", json={"name": "Kept flow", "config": flow_config}).json()
        http.patch(f"flows/{flow['id']}", json={"name": "Renamed flow"})
        kept = http.post("table/create", json={"name": "Kept", "columns": ["email"]}).json()
        binned = http.post("table/create", json={"name": "Binned", "columns": ["email"]}).json()
        http.post(f"table/{binned['identifier']}/rows", json={"rows": [{"fields": {"email": "a@b.io"}}]})
        http.patch(f"workbooks/{kept['workbook']}", json={"name": "Kept book"})
        http.delete(f"table/{binned['identifier']}")
        http.close()
    with SandboxServer(config, persist_path=path) as second:
        http = httpx2.Client(base_url=second.base_url + "/", headers={"x-apikey": second.api_key})
        versions = http.get(f"flows/{flow['id']}/versions").json()
        assert [(v["number"], v["name"]) for v in versions] == [(2, "Renamed flow"), (1, "Kept flow")]
        assert http.get(f"workbooks/{kept['workbook']}").json()["name"] == "Kept book"
        assert [i["identifier"] for i in http.get("trash").json()] == [binned["identifier"]]
        http.post("trash/restore", json={"tables": [binned["identifier"]]})
        assert [r["email"] for r in http.get(f"table/{binned['identifier']}/rows").json()["data"]] == ["a@b.io"]
        http.close()


def test_a_state_file_from_before_workbooks_still_loads(tmp_path: Path) -> None:
    """A file written before issue 27 (no workbooks, no flows, the trash a list of tables) keeps its tables:
    each gets a workbook of its own, and its trash stays restorable."""
    path = tmp_path / "sandbox.json"
    with SandboxServer(persist_path=path) as first:
        http = httpx2.Client(base_url=first.base_url + "/", headers={"x-apikey": first.api_key})
        kept = http.post("table/create", json={"name": "Kept", "columns": ["email"]}).json()["identifier"]
        binned = http.post("table/create", json={"name": "Binned", "columns": ["email"]}).json()["identifier"]
        http.delete(f"table/{binned}")
        http.close()
    old = json.loads(path.read_text(encoding="utf-8"))
    del old["flows"], old["workspace"]["workbooks"], old["workspace"]["trashed_workbooks"]
    for table in old["tables"]:
        del table["workbook"], table["position"]
    old["workspace"]["trash"] = [
        {k: v for k, v in t["table"].items() if k not in ("workbook", "position")} for t in old["workspace"]["trash"]
    ]
    path.write_text(json.dumps(old), encoding="utf-8")
    with SandboxServer(persist_path=path) as second:
        http = httpx2.Client(base_url=second.base_url + "/", headers={"x-apikey": second.api_key})
        books = {t["identifier"]: t["workbook"] for t in http.get("table/").json()}
        assert books[kept] is not None and books[kept] in {w["identifier"] for w in http.get("workbooks").json()}
        assert [i["identifier"] for i in http.get("trash").json()] == [binned]
        assert http.post("trash/restore", json={"tables": [binned]}).status_code == 200
        assert len(http.get("flows").json()) == 2  # the seeded flows
        http.close()


def test_an_unreadable_state_file_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.json"
    path.write_text("{not json")
    with SandboxServer(persist_path=path) as server:
        assert server.state.balance == 1000 and not server.state.tasks
    assert path.read_text().startswith('{"format":1')  # rewritten whole at stop


def _one_process(state_dir: Path) -> StdioServerParameters:
    env = {**os.environ, "DATABAR_MCP_STATE_DIR": str(state_dir)}
    env.pop("DATABAR_API_KEY", None)
    return StdioServerParameters(command=sys.executable, args=["-m", "databar_mcp", "--sandbox"], env=env)


async def test_a_process_per_call_continues_the_same_task(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    args: dict[str, Any] = {"waterfall": "email_getter", "params": LEADS, "enrichments": [833], "wait_seconds": 0}
    async with Client(_one_process(state_dir)) as client:
        started = structured(await client.call_tool("run_bulk_waterfall", args))
        table = structured(await client.call_tool("create_table", {"name": "Mine", "columns": ["email"]}))
    task_id = started["task_id"]
    assert (state_dir / "sandbox" / SANDBOX_STATE_FILE).exists()
    async with Client(_one_process(state_dir)) as client:
        done = await client.call_tool("get_task", {"task_id": task_id, "wait_seconds": 10})
        assert not done.is_error, text_of(done)
        assert structured(done)["status"] == "completed"
        table_id = table.get("identifier") or table["table"]["identifier"]
        columns = await client.call_tool("get_table_columns", {"table_uuid": table_id})
        assert not columns.is_error and "email" in text_of(columns)
        unknown = await client.call_tool("get_task", {"task_id": "no-such-task"})
        assert unknown.is_error and "list_recent_tasks" in text_of(unknown)
