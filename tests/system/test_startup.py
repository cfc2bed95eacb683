"""Start-up with an unusable state dir or ledger (issue 13 item 14): one line on stderr saying what is wrong
and where, exit code 2, no traceback; nothing is sent to Databar. Run through the real command line."""

from __future__ import annotations

import os
import resource
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from databar_mcp.core.ledger.store import Ledger, LedgerError
from tests.e2e.test_disk_full import mount

Prepare = Callable[[Path], Path]  # given a tmp dir, build the broken state; returns the state dir


def _ledger(state: Path) -> Path:
    Ledger(state / "ledger.sqlite3").check()
    return state / "ledger.sqlite3"


def garbage(tmp: Path) -> Path:
    state = tmp / "state"
    state.mkdir()
    (state / "ledger.sqlite3").write_bytes(b"this is not a database\n" * 400)
    return state


def truncated(tmp: Path) -> Path:
    state = tmp / "state"
    path = _ledger(state)
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.executemany(
            "INSERT INTO submissions (tool, endpoint, fingerprint, request_json, created_at, outcome)"
            " VALUES ('t', 'e', ?, ?, 0, 'accepted')",
            [(f"f{i}", "x" * 500) for i in range(2_000)],
        )
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return state


def directory(tmp: Path) -> Path:
    state = tmp / "state"
    (state / "ledger.sqlite3").mkdir(parents=True)
    return state


def newer_schema(tmp: Path) -> Path:
    state = tmp / "state"
    with sqlite3.connect(_ledger(state)) as conn:
        conn.execute("PRAGMA user_version = 99")
    return state


def missing_table(tmp: Path) -> Path:
    state = tmp / "state"
    with sqlite3.connect(_ledger(state)) as conn:
        conn.execute("DROP TABLE results")
    return state


def unwritable_dir(tmp: Path) -> Path:
    return Path("/proc/self/databar-mcp-state")  # not creatable, even by root


CASES: dict[str, tuple[Prepare, str]] = {
    "garbage ledger": (garbage, "is not a usable SQLite database"),
    "truncated ledger": (truncated, "ledger"),
    "ledger is a directory": (directory, "is a directory"),
    "ledger from a newer version (v99)": (newer_schema, "has schema v99, newer than this databar-mcp knows"),
    "ledger missing a table": (missing_table, "table results is missing"),
    "state dir not writable": (unwritable_dir, "cannot use the state dir"),
}


def run_server(state: Path, *, preexec: Callable[[], None] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABAR_MCP_STATE_DIR": str(state), "DATABAR_API_KEY": "sk-startup-test-key"}
    env["DATABAR_BASE_URL"] = "http://127.0.0.1:9/v1"  # nothing may be sent anyway
    return subprocess.run(
        [sys.executable, "-m", "databar_mcp"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        preexec_fn=preexec,
        check=False,
    )


def assert_one_line(proc: subprocess.CompletedProcess[str], expected: str, where: Path) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert expected in lines[0] and str(where) in lines[0], lines[0]


@pytest.mark.parametrize("case", list(CASES))
def test_an_unusable_ledger_is_one_line_and_exit_2(case: str, tmp_path: Path) -> None:
    prepare, expected = CASES[case]
    state = prepare(tmp_path)
    assert_one_line(run_server(state), expected, state)


def _no_file_growth() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG, like a full disk
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def test_a_full_disk_is_one_line_and_exit_2(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert_one_line(run_server(state, preexec=_no_file_growth), "is the disk full?", state)


def test_a_newer_schema_is_never_written_to(tmp_path: Path) -> None:
    path = newer_schema(tmp_path) / "ledger.sqlite3"
    before = path.read_bytes()
    with pytest.raises(LedgerError, match="v99"):
        Ledger(path).check()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 99
    assert path.read_bytes() == before


def test_a_read_only_state_dir_with_a_ledger_is_refused_at_start(tmp_path: Path) -> None:
    """Regression (issue 22 item 9): a ledger that can be read but not written (its state dir mounted read-only
    while another process has it open, so its WAL files exist) passed the start-up check, and then every run
    failed at its claim with an untyped error. It is refused at start, like an unwritable empty state dir."""
    source, state = tmp_path / "source", tmp_path / "state"
    _ledger(source)
    state.mkdir()
    holder = sqlite3.connect(source / "ledger.sqlite3")  # another process's connection: the WAL files exist
    holder.execute("SELECT COUNT(*) FROM submissions").fetchone()
    if not mount("mount", "--bind", str(source), str(state)):
        holder.close()
        pytest.skip("a read-only bind mount needs root")
    try:
        assert mount("mount", "-o", "remount,ro,bind", str(state))
        assert_one_line(run_server(state), "cannot be opened for writing", state)
    finally:
        mount("umount", "-l", str(state))
        holder.close()
