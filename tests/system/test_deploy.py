"""deploy/: its haproxy.cfg passes haproxy's own check, and every setting its files name is one we read."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from bench.replicas import haproxy_binary
from databar_mcp.core.users import Users
from tests.locks import debian_installs

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SOURCE = "\n".join(p.read_text() for p in (ROOT / "databar_mcp").rglob("*.py"))


def test_haproxy_accepts_the_deploy_config() -> None:
    with debian_installs():
        haproxy = haproxy_binary()
    if haproxy is None:
        pytest.skip("haproxy is not installed")
    checked = subprocess.run(  # noqa: S603 (Debian's haproxy)
        [haproxy, "-c", "-f", str(DEPLOY / "haproxy.cfg")], capture_output=True, text=True, timeout=30, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_every_variable_the_deploy_files_set_is_read_by_databar_mcp() -> None:
    named = set(re.findall(r"\b(DATABAR_[A-Z_]+)\b", (DEPLOY / "compose.yaml").read_text()))
    named |= set(re.findall(r"`(DATABAR_[A-Z_]+)", (DEPLOY / "README.md").read_text()))
    assert len(named) >= 10
    for var in sorted(named):
        assert f'"{var}"' in SOURCE, f"{var} is named in deploy/ but databar-mcp never reads it"


def test_the_example_users_file_parses() -> None:
    users = Users.parse((DEPLOY / "users.example.json").read_text(), "users.example.json")
    assert users.accounts["alice@example.com"].daily_credit_cap == 500
    assert users.default is not None and users.default.max_credits_per_call == 20


def test_the_database_url_and_the_request_state_keys_can_come_from_secret_files(tmp_path: Path) -> None:
    from databar_mcp.app.http_app import options_from_env
    from databar_mcp.config import Settings

    url_file, keys_file = tmp_path / "database_url", tmp_path / "keys"
    url_file.write_text("postgresql://u:pw-secret@db:5432/ledger\n")
    keys_file.write_text("k" * 32 + "\n" + "j" * 40 + "\n")
    settings = Settings.from_env({"DATABAR_MCP_DATABASE_URL_FILE": str(url_file)})
    options = options_from_env("127.0.0.1", 8000, {"DATABAR_MCP_REQUEST_STATE_KEYS_FILE": str(keys_file)})
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == "postgresql://u:pw-secret@db:5432/ledger"
    assert "pw-secret" not in repr(settings)
    assert [k.get_secret_value() for k in options.request_state_keys] == ["k" * 32, "j" * 40]
    assert "request_state_security" in options.server_kwargs()
