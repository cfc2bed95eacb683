"""The Agent Skills in skills/ (issue 23, section 7): valid front matter, and every tool and parameter a skill
names is one the server lists, so a skill never sends a model to a call that does not exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mcp import Client

from databar_mcp.config import DEFAULT_TOOLSETS, TOOLSETS

pytestmark = pytest.mark.anyio

SKILLS = Path(__file__).resolve().parents[2] / "skills"
FLOWS = {"databar-enrich-a-list", "databar-enrich-a-table", "databar-recover-a-lost-run", "databar-push-to-crm"}
SPEC_FIELDS = {"name", "description", "license", "compatibility", "metadata", "allowed-tools"}
NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
CALL = re.compile(r"`([a-z][a-z_]*)\(([^`]*)\)`")  # `tool(arg=..., ...)` in a code span
TOOLISH = re.compile(
    r"`((?:get|list|run|search|create|add|update|delete|export|insert|upsert|wait|cancel|enable|dedupe|rename)_[a-z_]+)`"
)


def front_matter(text: str) -> tuple[dict[str, object], str]:
    """The YAML front matter of a SKILL.md, for the subset the skills use: `key: value` (a double-quoted value
    is read as JSON) and one nested map of `  key: value` lines; then the body."""
    assert text.startswith("---\n"), "a SKILL.md starts with YAML front matter"
    head, body = text[4:].split("\n---\n", 1)
    out: dict[str, object] = {}
    nested: dict[str, str] | None = None
    for line in head.splitlines():
        key, _, value = line.strip().partition(":")
        value = value.strip()
        if line.startswith("  ") and nested is not None:
            nested[key] = json.loads(value) if value.startswith('"') else value
            continue
        if not value:
            nested = {}
            out[key] = nested
            continue
        nested = None
        if value.startswith('"'):
            out[key] = json.loads(value)
        else:  # a plain YAML scalar: no ": " or " #" inside, no indicator first
            assert ": " not in value and " #" not in value and value[0] not in "[]{}&*!|>'%@`", line
            out[key] = value
    return out, body


def arguments(call: str) -> list[str]:
    """The keyword names at the top level of `a=1, b={"x": 1}, c=[...]` (nested dicts and strings skipped)."""
    names: list[str] = []
    depth, quoted = 0, False
    token = ""
    for ch in call:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in "[{(":
            depth += 1
        elif not quoted and ch in "]})":
            depth -= 1
        elif not quoted and depth == 0 and ch == "=":
            names.append(token.strip().split(",")[-1].strip())
        if ch == "," and depth == 0 and not quoted:
            token = ""
        elif ch != "=":
            token += ch
    return names


def enum_values(schema: object) -> set[str]:
    """Every string an input schema allows by enum, anywhere in it."""
    if isinstance(schema, list):
        return {v for item in schema for v in enum_values(item)}
    if not isinstance(schema, dict):
        return set()
    found = {v for v in schema.get("enum", []) if isinstance(v, str)}
    return found | {v for key, item in schema.items() if key != "enum" for v in enum_values(item)}


def skill_files() -> dict[str, str]:
    return {p.parent.name: p.read_text() for p in sorted(SKILLS.glob("*/SKILL.md"))}


def test_one_skill_per_standard_flow_in_the_agent_skills_format() -> None:
    skills = skill_files()
    assert set(skills) == FLOWS
    for folder, text in skills.items():
        meta, body = front_matter(text)
        assert set(meta) <= SPEC_FIELDS, folder
        name, description = meta["name"], meta["description"]
        assert isinstance(name, str) and name == folder and NAME.match(name) and len(name) <= 64
        assert isinstance(description, str) and 0 < len(description) <= 1024, folder
        assert "Use when" in description, "the description says when to use it"
        compatibility = meta.get("compatibility", "")
        assert isinstance(compatibility, str) and len(compatibility) <= 500
        assert all(isinstance(v, str) for v in dict(meta.get("metadata") or {}).values())  # type: ignore[arg-type]
        assert len(body.splitlines()) < 500, "the spec keeps a SKILL.md under 500 lines"


async def test_every_tool_and_parameter_a_skill_names_exists(mcp: Client) -> None:
    hidden = [ts for ts in TOOLSETS if ts not in DEFAULT_TOOLSETS]
    assert not (await mcp.call_tool("enable_toolsets", {"toolsets": hidden})).is_error
    listed = (await mcp.list_tools()).tools
    tools = {t.name: set(t.input_schema.get("properties", {})) for t in listed}
    words = {*tools, *(name for params in tools.values() for name in params)}
    words |= {value for t in listed for value in enum_values(t.input_schema)}  # e.g. run_strategy="run_empty"
    problems: list[str] = []
    assert set(skill_files()) == FLOWS
    for folder, text in skill_files().items():
        calls = CALL.findall(text)
        assert len(calls) >= 5, f"{folder}: its steps name the calls they make"
        for tool, args in calls:
            if tool not in tools:
                problems.append(f"{folder}: no tool {tool}")
                continue
            problems += [f"{folder}: {tool} has no parameter {a}" for a in arguments(args) if a not in tools[tool]]
        problems += [f"{folder}: no tool {t}" for t in TOOLISH.findall(text) if t not in words]
    assert not problems, problems


def test_the_checker_catches_a_tool_or_parameter_that_does_not_exist() -> None:
    assert CALL.findall('`search_waterfalls(query="email")`') == [("search_waterfalls", 'query="email"')]
    assert arguments('table_uuid="...", mapping={"email": {"column": "a=b"}}, row_ids=[1, 2]') == [
        "table_uuid",
        "mapping",
        "row_ids",
    ]
    assert TOOLISH.findall("use `list_waterfalls` or `get_everything`") == ["list_waterfalls", "get_everything"]
