"""examples/make_transcript.py runs a real agent session against the sandbox and writes every step."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "make_transcript.py"
COMMITTED = ROOT / "examples" / "agent_transcript.md"
TOOLS = ["list_waterfalls", "get_account", "run_bulk_waterfall", "get_task", "list_recent_tasks", "export_task_result"]
HEADING = re.compile(r"^## \d+\. .+: `(\w+)`$", re.MULTILINE)


def sections(markdown: str) -> dict[str, str]:
    parts = HEADING.split(markdown)[1:]
    return dict(zip(parts[0::2], parts[1::2], strict=True))


def test_transcript_shows_each_step(tmp_path: Path) -> None:
    output = tmp_path / "transcript.md"
    proc = subprocess.run(  # noqa: S603 (our own script, fixed arguments)
        [sys.executable, str(SCRIPT), "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    markdown = output.read_text(encoding="utf-8")
    steps = sections(markdown)
    assert list(steps) == TOOLS

    for tool, body in steps.items():
        assert "**The model sent**" in body and f'"tool": "{tool}"' in body
        assert "**Came back: text**" in body and "**Structured content** (abbreviated)" in body
    assert '"status": "processing"' in steps["run_bulk_waterfall"]
    assert "Next: get_task(task_id=" in steps["run_bulk_waterfall"]
    assert '"status": "completed"' in steps["get_task"] and "6 rows, 4 with data" in steps["get_task"]
    assert "**Progress notifications**" in steps["get_task"]
    assert "result stored" in steps["list_recent_tasks"]
    assert "<state_dir>/exports/leads_enriched.csv" in steps["export_task_result"]
    assert "0,John,Doe,example.com,True,john.doe@example.com" in markdown
    assert "databar-transcript-" not in markdown  # no temp paths leak into the committed file

    # The committed transcript is what the server answers today, byte for byte once the values that differ
    # between runs (task ids, times, ages) are masked: regenerate it (examples/make_transcript.py) when a tool's
    # answer changes. Regression (issue 24): it had drifted though its generator said it "cannot drift".
    committed = COMMITTED.read_text(encoding="utf-8")
    assert list(sections(committed)) == TOOLS
    assert masked(committed) == masked(markdown), "stale: run examples/make_transcript.py"


def masked(markdown: str) -> str:
    """The transcript without what differs from run to run."""
    text = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "<task_id>", markdown)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?", "<time>", text)
    text = re.sub(r'"age_seconds": \d+', '"age_seconds": <n>', text)
    text = re.sub(r"\b\d+ s ago\b", "<n> s ago", text)
    # how far a run had got when a poll looked depends on the machine's speed, not on the server's answers
    text = re.sub(r"(?m)^\*\*Progress notifications\*\* .*$", "**Progress notifications** <as polled>", text)
    text = re.sub(r"Progress: \d+/(\d+) rows finished, \d+ found so far", r"Progress: <n>/\1 rows finished", text)
    return re.sub(r'"progress": \{[^}]*\}', '"progress": <as polled>', text)
