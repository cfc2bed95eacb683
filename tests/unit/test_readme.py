"""The README and server.json are what users copy: every config block must parse and launch a real command.

Configs are read from the README itself, so a block edited by hand is checked as it will be pasted.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from pydantic import SecretStr

from databar_mcp import __version__
from databar_mcp.app.cli import build_parser
from databar_mcp.app.server import build_server
from databar_mcp.config import TOOLSETS, Settings
from tests.e2e.test_tools_list import EXPECTED

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted((ROOT / "docs").glob("*.md"))
# What users read and copy: the README and the pages it links in docs/ (checked as one text).
README = "\n".join(p.read_text(encoding="utf-8") for p in [ROOT / "README.md", *DOCS])
SERVER_JSON: dict[str, Any] = json.loads((ROOT / "server.json").read_text(encoding="utf-8"))
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
CONSOLE_SCRIPT = Path(sys.executable).parent / "databar-mcp"
# Launchers users have and we cannot check here; what follows them is still checked against our parser.
LAUNCHERS = {"uvx": ["databar-mcp"], "python": ["-m", "databar_mcp"], "python3": ["-m", "databar_mcp"]}
SOURCE = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "databar_mcp").rglob("*.py"))


def blocks(lang: str) -> list[str]:
    return [body for kind, body in FENCE.findall(README) if kind == lang]


def server_configs() -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(format, server name, server entry, whole document) for every config block in the README."""
    found: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
    for body in blocks("json"):
        doc = json.loads(body)
        for key in ("mcpServers", "servers"):
            for name, entry in doc.get(key, {}).items():
                found.append((key, name, entry, doc))
    return found


def our_args(command: str, args: list[str]) -> list[str]:
    """The arguments our CLI receives, after the launcher's own (uvx databar-mcp ..., python -m databar_mcp ...)."""
    if command == "databar-mcp":
        assert CONSOLE_SCRIPT.exists(), f"console script missing: {CONSOLE_SCRIPT}"
        return args
    if command == "docker":  # docker run -i --rm ... databar-mcp <our args>: stdin open, our image
        assert args[0] == "run" and "-i" in args and "databar-mcp" in args, f"docker must run the image: {args}"
        assert (ROOT / "Dockerfile").exists()
        return args[args.index("databar-mcp") + 1 :]
    assert command in LAUNCHERS, f"unknown command {command!r} in a README config"
    prefix = LAUNCHERS[command]
    assert args[: len(prefix)] == prefix, f"{command} must launch databar-mcp: {args}"
    return args[len(prefix) :]


def accepted_by_cli(args: list[str]) -> None:
    try:
        build_parser().parse_args(args)
    except SystemExit as exc:  # argparse exits on an unknown flag
        pytest.fail(f"databar-mcp rejects the README's arguments {args}: exit {exc.code}")


def test_every_json_block_is_valid_json() -> None:
    assert blocks("json"), "the README has no json blocks"
    for body in blocks("json"):
        json.loads(body)


def test_config_blocks_launch_a_real_command_with_accepted_args() -> None:
    configs = server_configs()
    assert len(configs) >= 5
    for fmt, name, entry, doc in configs:
        assert re.fullmatch(r"[a-z][a-z0-9-]*", name)
        if entry.get("type") == "http":  # VS Code over HTTP: our /mcp, the token from a password input
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+/mcp", entry["url"]), entry
            ref = re.fullmatch(r"Bearer \$\{input:([\w-]+)\}", entry["headers"]["Authorization"])
            assert ref is not None and {i["id"]: i for i in doc["inputs"]}[ref.group(1)]["password"] is True
            continue
        accepted_by_cli(our_args(entry["command"], entry.get("args", [])))
        if fmt == "servers":  # VS Code
            assert entry["type"] == "stdio"
        for var, value in entry.get("env", {}).items():
            assert var.startswith("DATABAR_") and f'"{var}"' in SOURCE, f"{var} is not read by databar-mcp"
            if ref := re.fullmatch(r"\$\{input:([\w-]+)\}", value):
                inputs = {i["id"]: i for i in doc.get("inputs", [])}
                assert inputs[ref.group(1)]["password"] is True
            else:
                assert value.startswith("your-"), "README configs hold placeholders, never a real key"


def test_each_client_format_has_a_key_and_a_sandbox_variant() -> None:
    for fmt in ("mcpServers", "servers"):
        entries = [entry for f, _, entry, _ in server_configs() if f == fmt]
        assert any("--sandbox" in e.get("args", []) and "env" not in e for e in entries), fmt
        assert any("DATABAR_API_KEY" in e.get("env", {}) for e in entries), fmt


def test_claude_code_commands() -> None:
    every = [line for body in blocks("sh") for line in body.splitlines() if line.startswith("claude mcp add ")]
    over_http = [line for line in every if "--transport http" in line]
    lines = [line for line in every if line not in over_http]
    assert len(lines) == 2 and len(over_http) == 1
    words = shlex.split(over_http[0])
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/mcp", words[6]) and words[7:] == ["--header", words[8]]
    assert words[8].startswith("Authorization: Bearer ")
    for line in lines:
        words = shlex.split(line)
        name = words[3]
        assert not name.startswith("-"), "the server name must come before -e (its values are variadic)"
        command, *args = words[words.index("--") + 1 :]
        accepted_by_cli(our_args(command, args))
    assert any("-e" in shlex.split(line) for line in lines)
    assert any(line.endswith("-- databar-mcp --sandbox") for line in lines)


def test_documented_environment_variables_exist() -> None:
    documented = set(re.findall(r"`(DATABAR_[A-Z_]+)`", README))
    assert {"DATABAR_API_KEY", "DATABAR_MCP_STATE_DIR", "DATABAR_MCP_DUPLICATE_WINDOW"} <= documented
    for var in documented:
        assert f'"{var}"' in SOURCE, f"README documents {var}, which nothing reads"


def test_every_variable_the_server_reads_is_in_the_configuration_table() -> None:
    """Regression (issue 24): several variables were read and documented nowhere."""
    table = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    rows = "\n".join(line for line in table.splitlines() if line.startswith("| `DATABAR_"))
    listed = set(re.findall(r"`(DATABAR_[A-Z0-9_]+)`", rows))
    read = set(re.findall(r'"(DATABAR_[A-Z0-9_]+)"', SOURCE))
    assert read - listed == set(), "read by databar-mcp, missing from docs/configuration.md"
    assert listed - read == set(), "in docs/configuration.md, read by nothing"


def _options(parser: argparse.ArgumentParser) -> set[str]:
    found: set[str] = set()
    for action in parser._actions:
        found |= {o for o in action.option_strings if o.startswith("--") and o != "--help"}
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():  # pyright: ignore[reportUnknownVariableType]
                found |= _options(sub)  # pyright: ignore[reportUnknownArgumentType]
    return found


def test_every_flag_is_documented_and_every_documented_flag_exists() -> None:
    """Regression (issue 24): --log-format and others were accepted and documented nowhere."""
    flags = _options(build_parser())
    commands = [line for body in blocks("sh") + blocks("") for line in body.splitlines() if "databar-mcp" in line]
    mentioned = {f for f in re.findall(r"(--[a-z][a-z-]+)", README)}
    assert flags - mentioned == set(), "flags databar-mcp accepts that no page documents"
    for line in commands:
        if line.lstrip().startswith(("databar-mcp ", "$ databar-mcp ")) and " demo" not in line:
            used = set(re.findall(r"\s(--[a-z][a-z-]+)", line.split("#", 1)[0]))
            assert used <= flags, f"{line!r} uses flags databar-mcp does not accept"


def test_the_two_main_commands_stay() -> None:
    sh = "\n".join(blocks("sh"))
    assert "make demo" in sh and "make test" in sh


@pytest.mark.anyio
async def test_every_tool_is_documented(tmp_path: Path) -> None:
    tools: set[str] = set()
    for toolsets in (None, TOOLSETS):  # the default listing (with enable_toolsets) and every toolset
        settings = Settings(api_key=SecretStr("unused"), state_dir=tmp_path / "state", toolsets=toolsets)
        async with Client(build_server(settings)) as client:
            tools |= {tool.name for tool in (await client.list_tools()).tools}
    assert tools == EXPECTED  # every tool, and enable_toolsets
    for name in sorted(tools):
        assert f"| `{name}` |" in README, f"tool {name} is missing from the README's tools table"
    assert "databar://tasks/{task_id}/result" in README


# ---- server.json (the MCP registry entry) ------------------------------------------------------------


def test_server_json_has_the_registry_fields() -> None:
    assert re.fullmatch(
        r"https://static\.modelcontextprotocol\.io/schemas/[\d-]+/server\.schema\.json", SERVER_JSON["$schema"]
    )
    assert re.fullmatch(r"io\.github\.[A-Za-z0-9-]+/databar-mcp", SERVER_JSON["name"])
    assert 1 <= len(SERVER_JSON["description"]) <= 100  # the registry rejects longer descriptions
    assert SERVER_JSON["version"] == __version__
    (package,) = SERVER_JSON["packages"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert package["registryType"] == "pypi"
    assert package["identifier"] == project["name"]
    assert package["version"] == __version__
    assert package["transport"] == {"type": "stdio"}
    env = {v["name"]: v for v in package["environmentVariables"]}
    assert env["DATABAR_API_KEY"]["isSecret"] is True and env["DATABAR_API_KEY"]["isRequired"] is True
    for name in env:
        assert f'"{name}"' in SOURCE, f"server.json names {name}, which nothing reads"


def test_readme_carries_the_registry_ownership_marker() -> None:
    """The registry verifies a PyPI package by finding `mcp-name: <name>` in its README."""
    assert f"mcp-name: {SERVER_JSON['name']}" in README
