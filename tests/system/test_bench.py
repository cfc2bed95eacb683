"""`make bench-quick` (the benchmarks' seconds-long variant) runs and writes a valid latest.json.

Benchmarks are not timed tests: this only checks that the entry point works end to end and that its
results have the documented shape; the figures themselves are not asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {"scenario", "ours", "reference", "ratio", "target", "unit", "met"}


def test_bench_quick_runs_and_writes_results(tmp_path: Path) -> None:
    done = subprocess.run(  # noqa: S603 - our own interpreter and module, fixed arguments
        [sys.executable, "-m", "bench", "--quick", "--no-install", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=500,  # a hang detector: the run takes what a busy machine gives it
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    rows = json.loads((tmp_path / "latest.json").read_text(encoding="utf-8"))
    assert isinstance(rows, list)
    assert rows
    for row in rows:
        assert set(row) >= REQUIRED, row
        assert isinstance(row["scenario"], str)
        assert row["met"] in (True, False, None)
        for key in ("ours", "reference", "ratio"):
            assert row[key] is None or isinstance(row[key], int | float)
    scenarios = " ".join(r["scenario"] for r in rows)
    for number in ("1.", "2.", "3.", "4.", "5."):
        assert number in scenarios
    assert all(r["ours"] is not None for r in rows), "every scenario measures our server"
    assert all("load " in r["note"] and " → " in r["note"] for r in rows), "each row says how busy the machine was"

    markdown = (tmp_path / "latest.md").read_text(encoding="utf-8")
    assert "| scenario | ours | reference | ratio | target | unit | met |" in markdown
    assert "Load average" in markdown and "at the start" in markdown
    assert (tmp_path / "latest.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "scenario" in done.stdout


def test_published_figures_are_refused_on_a_busy_machine() -> None:
    from bench import machine

    assert machine.too_busy(per_core=1e9) is None
    reason = machine.too_busy(per_core=-1.0)
    assert reason is not None and "load average" in reason and "per core" in reason
