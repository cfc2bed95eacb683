"""`databar-mcp demo` with a newcomer's inputs: Excel's CSVs, a typo'd path, a long wait, a key in the env.

The demo runs through the CLI's main() in this process: what these tests judge is how it reads a newcomer's
inputs (its exit code and what it says), not the process around it, which tests/system/test_examples.py
starts for real. The server it drives is still its own subprocess, against its own sandbox."""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from databar_mcp.app.cli import main
from databar_mcp.app.demo import MAX_WAIT_SECONDS

LEADS = [("Ann", "Lee", "example.com"), ("Bob", "", "nowhere.invalid"), ("Cy", "Ray", "example.com")]


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


Demo = Callable[..., Ran]


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Demo:
    """`databar-mcp demo ARGS` in tmp_path, its state there, none of our settings from the caller's environment
    (`key=` sets DATABAR_API_KEY for one run); stdin is no terminal, as under CI."""
    for name in [name for name in os.environ if name.startswith("DATABAR_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DATABAR_MCP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)

    def run(*args: str, key: str | None = None) -> Ran:
        with monkeypatch.context() as scoped:
            if key is not None:
                scoped.setenv("DATABAR_API_KEY", key)
            capsys.readouterr()
            code = main(["demo", *args])
            said = capsys.readouterr()
        return Ran(code, said.out, said.err)

    return run


def leads_csv(path: Path, *, delimiter: str = ",", encoding: str = "utf-8", rows: int = 3) -> Path:
    lines = [delimiter.join(("first_name", "last_name", "company"))]
    lines += [delimiter.join(row) for row in LEADS[:rows]]
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def test_excel_utf16_and_semicolon_csvs_are_read(demo: Demo, tmp_path: Path) -> None:
    for name, delimiter, encoding in (("utf16.csv", "\t", "utf-16"), ("semi.csv", ";", "utf-8-sig")):
        source = leads_csv(tmp_path / name, delimiter=delimiter, encoding=encoding, rows=1)
        out = tmp_path / f"out-{name}"
        done = demo("--quiet", "--input", str(source), "--output", str(out))
        assert done.returncode == 0, done.stderr
        with out.open(encoding="utf-8") as handle:
            (row,) = list(csv.DictReader(handle))
        assert row["first_name"] == "Ann" and row["email"] == "ann.lee@example.com", row


def test_a_missing_file_is_named_as_such(demo: Demo, tmp_path: Path) -> None:
    done = demo("--input", "no-such-leads.csv")
    assert done.returncode == 2
    assert "no-such-leads.csv: no such file." in done.stderr and "Could not talk" not in done.stderr


def test_row_errors_name_the_csv_line(demo: Demo, tmp_path: Path) -> None:
    source = leads_csv(tmp_path / "leads.csv")  # line 3 (Bob) has no last name
    done = demo("--quiet", "--input", str(source))
    assert done.returncode == 1
    assert "CSV line 3" in done.stderr and "last_name" in done.stderr and "params[1]" not in done.stderr


def test_a_long_wait_is_clamped_to_the_deadline_and_said(demo: Demo, tmp_path: Path) -> None:
    source = leads_csv(tmp_path / "leads.csv", rows=1)
    done = demo("--input", str(source), "--wait-seconds", "999")
    assert done.returncode == 0, done.stderr
    assert f"--wait-seconds 999 is outside 0..{MAX_WAIT_SECONDS:g}" in done.stderr


def test_a_key_in_the_environment_never_spends_without_real_and_a_yes(demo: Demo, tmp_path: Path) -> None:
    source = leads_csv(tmp_path / "leads.csv", rows=1)
    sandboxed = demo("--input", str(source), key="sk-not-a-real-key-0000000000")
    assert sandboxed.returncode == 0, sandboxed.stderr
    assert "uses the local sandbox unless you pass --real" in sandboxed.stderr
    asked = demo("--real", "--input", str(source), key="sk-not-a-real-key-0000000000")
    assert asked.returncode == 1  # no terminal to confirm on, and no --yes: nothing is sent
    assert "pass --yes" in asked.stderr and "Nothing was sent." in asked.stderr


def test_other_header_spellings_are_matched_and_a_missing_column_names_those_found(demo: Demo, tmp_path: Path) -> None:
    """Regression (issue 24): a CSV with other column names was refused without saying which columns it had."""
    spelled = tmp_path / "spelled.csv"
    spelled.write_text("First Name,Last Name,Company Domain\nAnn,Lee,example.com\n", encoding="utf-8")
    out = tmp_path / "out.csv"
    done = demo("--quiet", "--input", str(spelled), "--output", str(out))
    assert done.returncode == 0, done.stderr
    with out.open(encoding="utf-8") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["First Name"] == "Ann" and row["email"] == "ann.lee@example.com", row

    other = tmp_path / "other.csv"
    other.write_text("name,employer\nAnn Lee,example.com\n", encoding="utf-8")
    refused = demo("--quiet", "--input", str(other))
    assert refused.returncode == 2
    assert "'name', 'employer'" in refused.stderr and "first_name" in refused.stderr


def test_an_unclosed_quote_is_reported_as_such(demo: Demo, tmp_path: Path) -> None:
    """Regression (issue 24): an unclosed quote was reported as a missing input."""
    broken = tmp_path / "broken.csv"
    broken.write_text('first_name,last_name,company\n"Ann,Lee,example.com\nBob,Ray,example.com\n', encoding="utf-8")
    done = demo("--quiet", "--input", str(broken))
    assert done.returncode == 2
    assert "unclosed quote" in done.stderr and "line 2" in done.stderr
    assert "lacks" not in done.stderr and "No column" not in done.stderr


def test_a_sandbox_whose_credits_ran_down_over_earlier_demos_is_refilled_and_said(demo: Demo, tmp_path: Path) -> None:
    """Regression: the sandbox keeps its credits in the state dir, so after about nine demos `make demo` was
    refused with insufficient_credits (406) on a sandbox, whose credits are never the user's."""
    from databar_mcp.app.cli import sandbox_state_path
    from databar_mcp.sandbox import SandboxConfig
    from databar_mcp.sandbox.state import SandboxState

    worn = SandboxState(SandboxConfig(), persist_path=sandbox_state_path(tmp_path / "state"))
    worn.balance = 20.0  # what nine demos leave
    worn.save()
    source = leads_csv(tmp_path / "leads.csv")
    done = demo("--input", str(source), "--output", str(tmp_path / "out.csv"))
    assert done.returncode in (0, 1), done.stderr  # line 3 has no last name: the demo names it, as above
    assert "insufficient_credits" not in done.stderr
    assert "The local sandbox's credits had run down to 20 over earlier runs: put back to 1,000." in done.stderr
