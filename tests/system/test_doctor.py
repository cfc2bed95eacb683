"""`databar-mcp doctor` as users run it (a subprocess) against a real sandbox, a wrong key and a dead port."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from databar_mcp import __version__
from databar_mcp.app.doctor import doctor, mask_key
from databar_mcp.config import Settings
from databar_mcp.core.ledger.store import MIGRATIONS
from databar_mcp.sandbox import SandboxConfig, SandboxServer
from tests.conftest import SENTINEL_KEY

CHECKS = ["api key", "base url", "key accepted", "balance", "state dir", "ledger", "protocol", "version"]
MASKED = "sk-…5b4a"
UNREACHABLE = "http://127.0.0.1:9/v1"


@pytest.fixture(scope="module")
def healthy() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxConfig(api_key=SENTINEL_KEY)) as server:
        yield server


def run_doctor(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DATABAR_")}
    clean["DATABAR_MCP_STATE_DIR"] = str(tmp_path / "state")
    return subprocess.run(  # noqa: S603 (our own CLI, fixed arguments)
        [sys.executable, "-m", "databar_mcp", "doctor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean | env,
        check=False,
    )


def line(out: str, name: str) -> str:
    return next(row for row in out.splitlines() if row[2:].startswith(name))


def test_healthy_sandbox_all_pass(healthy: SandboxServer, tmp_path: Path) -> None:
    proc = run_doctor(tmp_path, DATABAR_BASE_URL=healthy.base_url, DATABAR_API_KEY=SENTINEL_KEY)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = proc.stdout.splitlines()
    assert [row[2:].split("  ")[0].strip() for row in rows[:-1]] == CHECKS
    assert all(row.startswith("✓ ") for row in rows[:-1]), proc.stdout
    assert rows[-1] == "healthy"
    assert f"{MASKED} (24 chars, from env DATABAR_API_KEY)" in line(proc.stdout, "api key")
    assert "1,000 credits" in line(proc.stdout, "balance")
    assert f"databar-mcp {__version__}" in line(proc.stdout, "version")
    assert "2025-06-18" in line(proc.stdout, "protocol")
    assert SENTINEL_KEY not in proc.stdout + proc.stderr


def test_wrong_key_fails_and_stays_masked(tmp_path: Path) -> None:
    with SandboxServer(SandboxConfig(api_key="the-right-key-0000")) as other:
        proc = run_doctor(tmp_path, DATABAR_BASE_URL=other.base_url, DATABAR_API_KEY=SENTINEL_KEY)

    assert proc.returncode == 1
    assert line(proc.stdout, "base url").startswith("✓")
    assert line(proc.stdout, "key accepted").startswith("✗")
    assert "403" in line(proc.stdout, "key accepted")
    assert line(proc.stdout, "balance").startswith("–")
    assert MASKED in proc.stdout
    assert SENTINEL_KEY not in proc.stdout + proc.stderr
    assert proc.stdout.rstrip().endswith("not healthy: key accepted, balance")


def test_unreachable_base_url(tmp_path: Path) -> None:
    proc = run_doctor(tmp_path, DATABAR_BASE_URL=UNREACHABLE, DATABAR_API_KEY=SENTINEL_KEY)

    assert proc.returncode == 1
    assert line(proc.stdout, "base url").startswith(f"✗ base url      {UNREACHABLE} unreachable")
    assert line(proc.stdout, "key accepted").startswith("–")
    assert line(proc.stdout, "state dir").startswith("✓")  # local checks still run
    assert SENTINEL_KEY not in proc.stdout + proc.stderr


def test_no_key(healthy: SandboxServer, tmp_path: Path) -> None:
    proc = run_doctor(tmp_path, DATABAR_BASE_URL=healthy.base_url)

    assert proc.returncode == 1
    assert line(proc.stdout, "api key").startswith("✗ api key       not set")
    assert line(proc.stdout, "base url").startswith("✓")


def test_json_shape(healthy: SandboxServer, tmp_path: Path) -> None:
    proc = run_doctor(tmp_path, "--json", DATABAR_BASE_URL=healthy.base_url, DATABAR_API_KEY=SENTINEL_KEY)

    assert proc.returncode == 0, proc.stdout
    report: dict[str, Any] = json.loads(proc.stdout)
    assert report["ok"] is True
    assert report["version"] == __version__
    assert report["base_url"] == healthy.base_url
    assert [c["name"] for c in report["checks"]] == CHECKS
    for check in report["checks"]:
        assert set(check) == {"name", "status", "ok", "detail", "facts"}
        assert (check["status"], check["ok"]) == ("pass", True)
    facts = {c["name"]: c["facts"] for c in report["checks"]}
    assert facts["api key"] == {"masked": MASKED, "length": len(SENTINEL_KEY), "source": "env DATABAR_API_KEY"}
    assert facts["balance"]["balance"] == 1000
    assert facts["ledger"]["schema_version"] == len(MIGRATIONS)
    assert facts["ledger"]["path"] == str(tmp_path / "state" / "ledger.sqlite3")
    assert "2025-11-25" in facts["protocol"]["versions"]
    assert SENTINEL_KEY not in proc.stdout


def test_json_on_failure_is_still_one_object(tmp_path: Path) -> None:
    proc = run_doctor(tmp_path, "--json", DATABAR_BASE_URL=UNREACHABLE, DATABAR_API_KEY=SENTINEL_KEY)

    assert proc.returncode == 1
    report = json.loads(proc.stdout)
    status = {c["name"]: c["status"] for c in report["checks"]}
    assert report["ok"] is False
    assert (status["base url"], status["key accepted"], status["ledger"]) == ("fail", "skip", "pass")
    assert SENTINEL_KEY not in proc.stdout


def test_sandbox_flag_needs_no_key_and_uses_its_own_state(tmp_path: Path) -> None:
    proc = run_doctor(tmp_path, "--sandbox")

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "from sandbox" in line(proc.stdout, "api key")
    assert str(tmp_path / "state" / "sandbox") in line(proc.stdout, "state dir")


@pytest.mark.anyio
async def test_unwritable_state_dir_and_newer_ledger(healthy: SandboxServer, tmp_path: Path) -> None:
    base = Settings(base_url=healthy.base_url, api_key=SecretStr(SENTINEL_KEY), api_key_source="test")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    code, out = await doctor(base.model_copy(update={"state_dir": blocker / "state"}))
    assert code == 1
    assert line(out, "state dir").startswith("✗")
    assert line(out, "ledger").startswith("– ledger        state dir not writable")

    state = tmp_path / "newer"
    state.mkdir()
    with sqlite3.connect(state / "ledger.sqlite3") as conn:
        conn.execute("PRAGMA user_version = 99")
    code, out = await doctor(base.model_copy(update={"state_dir": state}))
    assert code == 1
    assert "has schema v99, newer than this databar-mcp knows" in line(out, "ledger")
    assert SENTINEL_KEY not in out


@given(st.text(min_size=1, max_size=80))
def test_mask_never_contains_the_key_nor_more_than_four_trailing_chars(key: str) -> None:
    masked = mask_key(key)
    assert key not in masked
    tail = masked.split("…", 1)[1]
    assert len(tail) <= 4
    assert key.endswith(tail)
