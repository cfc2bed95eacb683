"""The layering the README's Architecture section promises, read from the imports themselves.

Each layer may import only the layers above it (lower rank); the sandbox stands apart and imports nothing of ours,
so it stays a faithful stand-in for Databar rather than a mirror of our client.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "databar_mcp"

RANK = {"config": 0, "api": 1, "core": 2, "tools": 3, "mcp_tasks": 4, "ui": 4, "app": 5}


def layer_of(module: str) -> str | None:
    """The layer of a module path like databar_mcp.core.ledger.store (None for the package's own root modules)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "databar_mcp" else None


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "databar_mcp":
                found.update(f"databar_mcp.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
    return {name for name in found if name.startswith("databar_mcp.")}


def module_layer(path: Path) -> str:
    relative = path.relative_to(PACKAGE)
    return relative.parts[0].removesuffix(".py")


def test_every_module_imports_only_the_layers_above_it() -> None:
    wrong: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = module_layer(path)
        if own in ("__init__", "__main__"):
            continue
        for imported in sorted(imports_of(path)):
            target = layer_of(imported)
            if target is None or target in ("__version__",):
                continue
            if own == "sandbox" or target == "sandbox":
                if own == "sandbox" and target != "sandbox":
                    wrong.append(f"{path.relative_to(PACKAGE)} imports {imported}: the sandbox imports nothing of ours")
                if target == "sandbox" and own not in ("sandbox", "app"):
                    wrong.append(f"{path.relative_to(PACKAGE)} imports {imported}: only the app starts a sandbox")
                continue
            assert own in RANK and target in RANK, f"{path}: unknown layer {own} or {target}: add it to RANK and README"
            if RANK[target] > RANK[own] or (RANK[target] == RANK[own] and target != own):
                wrong.append(f"{path.relative_to(PACKAGE)} ({own}) imports {imported} ({target})")
    assert wrong == []


def test_the_architecture_page_names_every_layer_folder() -> None:
    section = (PACKAGE.parent / "docs" / "architecture.md").read_text(encoding="utf-8")
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("__")}
    assert folders == {"api", "core", "tools", "mcp_tasks", "ui", "app", "sandbox"}
    for folder in folders:
        assert f"`databar_mcp/{folder}/`" in section, folder


def test_the_folder_is_the_tier() -> None:
    """Tests live in tests/unit, tests/e2e or tests/system (DESIGN.md); tests/ itself holds only shared helpers."""
    tests = PACKAGE.parent / "tests"
    assert not sorted(p.name for p in tests.glob("test_*.py")), "a test file outside a tier folder"
    for tier in ("unit", "e2e", "system"):
        assert any((tests / tier).glob("test_*.py")), tier
    assert not any(tests.glob("*/*/test_*.py")), "tier folders are flat"


def test_tools_holds_the_toolsets_and_the_kit_what_they_share() -> None:
    """tools/ is one module per toolset (named by loading.modules_of) plus the two the server adds to every
    listing; the shared machinery lives in tools/kit/ and never reaches back into a toolset."""
    from databar_mcp.config import Toolset
    from databar_mcp.tools.kit.loading import modules_of

    toolset_modules = {name for toolset in Toolset for name in modules_of(toolset)} | {"guidance", "toolsets"}
    top = {path.stem for path in (PACKAGE / "tools").glob("*.py")}
    assert top == toolset_modules
    wrong = [
        f"kit/{path.name} imports {imported}"
        for path in sorted((PACKAGE / "tools" / "kit").glob("*.py"))
        for imported in imports_of(path)
        if imported.removeprefix("databar_mcp.tools.") in toolset_modules
    ]
    assert wrong == []
