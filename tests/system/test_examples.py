"""The example script and `databar-mcp demo`, run as real subprocesses against the sandbox."""

from __future__ import annotations

import contextlib
import csv
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from databar_mcp.sandbox import SandboxConfig, SandboxServer

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "enrich_leads.py"
LEADS = ROOT / "databar_mcp" / "app" / "demo_leads.csv"
SUMMARY = re.compile(r"^(\d+)/(\d+) rows enriched, [\d.e+]+ credits spent, [\d.]+ s -> .+$", re.MULTILINE)
TIMEOUT_S = 60


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def sandbox_env(tmp_path: Path) -> dict[str, str]:
    """The caller's environment without a Databar key (so the script picks the sandbox), ledger in tmp."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATABAR_")}
    env["DATABAR_MCP_STATE_DIR"] = str(tmp_path / "state")
    return env


def test_example_enriches_a_csv_in_input_order(tmp_path: Path) -> None:
    leads = read_csv(LEADS)[:10]
    invalid = next(i for i, row in enumerate(leads) if row["company"].endswith(".invalid"))
    found = next(i for i, row in enumerate(leads) if row["company"] == "example.com")
    source = tmp_path / "leads.csv"
    with source.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["first_name", "last_name", "company"])
        writer.writeheader()
        writer.writerows(leads)
    output = tmp_path / "out" / "enriched.csv"

    proc = subprocess.run(  # noqa: S603 (our own script, fixed arguments)
        [sys.executable, str(SCRIPT), "--input", str(source), "--output", str(output), "--quiet"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=sandbox_env(tmp_path),
        cwd=tmp_path,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    summary = SUMMARY.search(proc.stdout)
    assert summary is not None, proc.stdout
    assert int(summary.group(2)) == len(leads)
    assert "\r[" not in proc.stderr  # --quiet: no progress bar
    rows = read_csv(output)
    assert [(r["first_name"], r["last_name"], r["company"]) for r in rows] == [
        (r["first_name"], r["last_name"], r["company"]) for r in leads
    ]
    assert list(rows[0]) == ["first_name", "last_name", "company", "email", "provider", "verified"]
    assert rows[found]["email"].endswith("@example.com") and rows[found]["provider"]
    assert rows[invalid]["email"] == "" and rows[invalid]["provider"] == "" and rows[invalid]["verified"] == ""
    assert int(summary.group(1)) == sum(1 for r in rows if r["email"])


def test_demo_enriches_the_bundled_leads(tmp_path: Path) -> None:
    """`databar-mcp demo` from any folder: the bundled leads in, the CSV in the current folder (never the checkout)."""
    output = tmp_path / "leads_enriched.csv"

    proc = subprocess.run(
        [sys.executable, "-m", "databar_mcp", "demo", "--quiet"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=sandbox_env(tmp_path),
        cwd=tmp_path,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    assert SUMMARY.search(proc.stdout) is not None, proc.stdout
    rows = read_csv(output)
    assert len(rows) == len(read_csv(LEADS)) == 50
    assert all(r["email"] == "" for r in rows if r["company"].endswith(".invalid"))
    assert all(r["email"] for r in rows if r["company"] == "example.com")


PIPELINE = ROOT / "examples" / "table_pipeline.py"
PIPELINE_SUMMARY = re.compile(r"^Table (\S+): (\d+) rows, (\d+) enriched, (\d+) updated, [\d.]+ credits", re.MULTILINE)


def external_sandbox_env(sandbox: SandboxServer, tmp_path: Path) -> dict[str, str]:
    """Run an example against a sandbox this test owns (so the test can see its state, and it outlives kills)."""
    env = sandbox_env(tmp_path)
    env |= {"DATABAR_API_KEY": sandbox.api_key, "DATABAR_BASE_URL": sandbox.base_url}
    return env


def run_pipeline(sandbox: SandboxServer, tmp_path: Path, *flags: str) -> tuple[str, int, int, int]:
    proc = subprocess.run(  # noqa: S603 (our own script, fixed arguments)
        [sys.executable, str(PIPELINE), "--real", "--yes", *flags],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=external_sandbox_env(sandbox, tmp_path),
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    summary = PIPELINE_SUMMARY.search(proc.stdout)
    assert summary is not None, proc.stdout
    assert proc.stdout.splitlines()[0].startswith("1. created table")
    table_id, rows, enriched, updated = summary.group(1), *map(int, summary.groups()[1:])
    return table_id, rows, enriched, updated


def test_table_pipeline_enriches_the_table_in_place(tmp_path: Path) -> None:
    with SandboxServer(SandboxConfig(task_base_seconds=0.05, row_seconds=0.002, balance=10_000)) as sandbox:
        table_id, rows, enriched, updated = run_pipeline(sandbox, tmp_path)
        assert rows == 50 and enriched == updated > 0
        table = sandbox.state.tables[table_id]
        with_email = [r for r in table.rows if r.get("email")]
        assert len(table.rows) == 50 and len(with_email) == enriched
        assert all(str(r["email"]).endswith("@example.com") for r in with_email if r["company"] == "example.com")
        counts = sandbox.state.counts
        assert counts["POST /v1/table/{table_uuid}/run-enrichment/{processor_id}"] == 1
        assert not any("bulk-run" in route or "upsert" in route for route in counts)


def test_table_pipeline_shuttle_writes_the_results_back_with_upsert(tmp_path: Path) -> None:
    with SandboxServer(SandboxConfig(task_base_seconds=0.05, row_seconds=0.002)) as sandbox:
        table_id, rows, enriched, updated = run_pipeline(sandbox, tmp_path, "--shuttle")
        assert rows == 50 and enriched == updated > 0
        table = sandbox.state.tables[table_id]
        with_email = [r for r in table.rows if r.get("email")]
        assert len(table.rows) == 50 and len(with_email) == enriched
        assert all(str(r["email"]).endswith("@example.com") for r in with_email if r["company"] == "example.com")
        assert sandbox.state.counts["POST /v1/table/{table_uuid}/rows/upsert"] == 1


def test_table_pipeline_with_only_a_key_set_stays_on_the_sandbox(tmp_path: Path) -> None:
    """A key in the environment alone never spends: the pipeline runs on its own sandbox, and --real without a
    terminal to confirm on sends nothing."""
    with SandboxServer(SandboxConfig(task_base_seconds=0.05, row_seconds=0.002)) as sandbox:
        env = external_sandbox_env(sandbox, tmp_path)
        seeded = set(sandbox.state.tables)
        quiet = subprocess.run(  # noqa: S603 (our own script, fixed arguments)
            [sys.executable, str(PIPELINE)], capture_output=True, text=True, timeout=TIMEOUT_S, env=env, cwd=tmp_path
        )
        assert quiet.returncode == 0, quiet.stderr
        assert "uses the local sandbox unless you pass --real" in quiet.stderr
        unasked = subprocess.run(  # noqa: S603 (our own script, fixed arguments)
            [sys.executable, str(PIPELINE), "--real"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
        )
        assert unasked.returncode == 1 and "pass --yes" in unasked.stderr
        assert set(sandbox.state.tables) == seeded and not any(r.startswith("POST") for r in sandbox.state.counts)


def recorded_tasks(ledger: Path) -> int:
    if not ledger.exists():
        return 0
    with contextlib.closing(sqlite3.connect(ledger, timeout=5)) as conn:
        try:
            return int(conn.execute("SELECT COUNT(*) FROM tasks").fetchone()[0])
        except sqlite3.OperationalError:  # schema not created yet
            return 0


def test_enrich_leads_resumes_after_being_killed_without_paying_twice(tmp_path: Path) -> None:
    with SandboxServer(SandboxConfig(task_base_seconds=4.0, row_seconds=0.0)) as sandbox:
        env = external_sandbox_env(sandbox, tmp_path)
        command = [sys.executable, str(SCRIPT), "--real", "--yes", "--output", str(tmp_path / "out.csv"), "--quiet"]
        first = subprocess.Popen(  # noqa: S603
            command, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 30
            while not sandbox.state.tasks and time.monotonic() < deadline:
                time.sleep(0.05)
            assert sandbox.state.tasks, "the first run never submitted"
            ledger = tmp_path / "state" / "ledger.sqlite3"
            while time.monotonic() < deadline and not recorded_tasks(ledger):
                time.sleep(0.05)  # the server writes the task id to its ledger before it waits
            assert recorded_tasks(ledger) == 1
        finally:
            os.killpg(first.pid, signal.SIGKILL)  # the script and its server subprocess, mid-wait
            first.wait(timeout=10)

        again = subprocess.run(  # noqa: S603
            [c for c in command if c != "--quiet"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            env=env,
            cwd=tmp_path,
            check=False,
        )
        assert again.returncode == 0, again.stderr
        assert "Picked up task" in again.stderr and "no new credits" in again.stderr
        assert SUMMARY.search(again.stdout) is not None, again.stdout
        assert sandbox.state.counts["POST /v1/waterfalls/{identifier}/bulk-run"] == 1
        assert len(sandbox.state.tasks) == 1
