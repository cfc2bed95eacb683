"""The example script and `databar-mcp demo`, run as real subprocesses against the sandbox."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "enrich_leads.py"
LEADS = ROOT / "examples" / "leads.csv"
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
    output = ROOT / "examples" / "out" / "leads_enriched.csv"
    output.unlink(missing_ok=True)

    proc = subprocess.run(
        [sys.executable, "-m", "databar_mcp", "demo"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=sandbox_env(tmp_path),
        cwd=ROOT,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    assert SUMMARY.search(proc.stdout) is not None, proc.stdout
    rows = read_csv(output)
    assert len(rows) == len(read_csv(LEADS)) == 50
    assert all(r["email"] == "" for r in rows if r["company"].endswith(".invalid"))
    assert all(r["email"] for r in rows if r["company"] == "example.com")
