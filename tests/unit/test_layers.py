"""The layering the README's Architecture section promises, read from the imports themselves.

Each layer may import only the layers above it (lower rank); the sandbox stands apart and imports nothing of ours,
so it stays a faithful stand-in for Databar rather than a mirror of our client.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import inspect
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

PACKAGE = Path(__file__).resolve().parents[2] / "databar_mcp"

RANK = {"config": 0, "startup": 0, "api": 1, "core": 2, "tools": 3, "mcp_tasks": 4, "ui": 4, "app": 5}


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


# ---- SDK-private members: read in one adapter only (issue 24 item 2) ----------------------------------------------

SDK_PACKAGES = ("mcp", "mcp_types")
SDK_ADAPTER = PACKAGE / "tools" / "kit" / "sdk_private.py"
BY_NAME = ("getattr", "setattr", "hasattr", "delattr")


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _from_sdk(module: str | None) -> bool:
    return module is not None and module.split(".")[0] in SDK_PACKAGES


def _defined_privates(tree: ast.AST, skip: Callable[[ast.ClassDef], bool] = lambda _: False) -> set[str]:
    """Private names a module defines (functions, classes, names and attributes it assigns), less skipped classes'."""
    found: set[str] = set()
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.ClassDef) and skip(node):
            continue
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            found.add(node.name)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            found.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            found.add(node.id)
        todo.extend(ast.iter_child_nodes(node))
    return {name for name in found if _private(name)}


def _sdk_privates() -> set[str]:
    """Every private name the installed MCP SDK's source defines."""
    found: set[str] = set()
    for package in SDK_PACKAGES:
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.origin is not None, package
        for path in Path(spec.origin).parent.rglob("*.py"):
            found |= _defined_privates(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _sdk_members(cls: type) -> set[str]:
    """The private members a class has from its SDK bases: in their namespaces or assigned to self in their code."""
    found: set[str] = set()
    for base in cls.__mro__:
        if _from_sdk(base.__module__):
            found |= {name for name in vars(base) if _private(name)}
            with contextlib.suppress(OSError, TypeError):
                found |= _defined_privates(ast.parse(textwrap.dedent(inspect.getsource(base))))
    return found


class _Reaches(ast.NodeVisitor):
    """A module's reaches into SDK-private members: `x._name` or getattr(x, "_name") for a private name the SDK
    defines and our code never does; in a class derived from an SDK class, any private member of its SDK bases
    that it reads, assigns or overrides; an import of a private SDK module or name."""

    def __init__(self, module: ModuleType, foreign: set[str]) -> None:
        self.module, self.foreign = module, foreign
        self.members: list[set[str]] = []  # per enclosing class: what it has from SDK bases (empty: none)
        self.found: list[str] = []

    def _flag(self, node: ast.stmt | ast.expr, what: str) -> None:
        self.found.append(f"{self.module.__name__}:{node.lineno}: {what}")

    def _sdk_member(self, name: str) -> bool:
        return bool(self.members) and name in self.members[-1]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        cls = getattr(self.module, node.name, None)
        self.members.append(_sdk_members(cls) if isinstance(cls, type) else set())
        self.generic_visit(node)
        self.members.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        if self._sdk_member(node.name):
            self._flag(node, f"overrides the SDK's {node.name}")
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in self.foreign or self._sdk_member(node.attr):
            self._flag(node, f".{node.attr}")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in BY_NAME and len(node.args) >= 2:
            name = node.args[1]
            if isinstance(name, ast.Constant) and name.value in self.foreign:
                self._flag(node, f'{node.func.id}(..., "{name.value}")')
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if _from_sdk(node.module) and node.level == 0:
            parts = [*str(node.module).split("."), *(alias.name for alias in node.names)]
            if any(_private(part) for part in parts):
                self._flag(node, f"imports a private part of {node.module}")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sdk_private_reaches() -> dict[Path, list[str]]:
    """Each module's reaches into SDK-private members, as `module:line: what`."""
    paths = [path for path in sorted(PACKAGE.rglob("*.py")) if path.name != "__main__.py"]
    modules = {path: importlib.import_module(_module_name(path)) for path in paths}
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in paths}

    def sdk_class(module: ModuleType) -> Callable[[ast.ClassDef], bool]:
        return lambda node: isinstance(cls := getattr(module, node.name, None), type) and bool(_sdk_members(cls))

    ours: set[str] = set()
    for path in paths:
        ours |= _defined_privates(trees[path], sdk_class(modules[path]))
    foreign = _sdk_privates() - ours
    found: dict[Path, list[str]] = {}
    for path in paths:
        reaches = _Reaches(modules[path], foreign)
        reaches.visit(trees[path])
        found[path] = reaches.found
    return found


def test_only_the_sdk_adapter_reaches_into_sdk_private_members() -> None:
    """An SDK upgrade that renames a private member breaks one module, which says what it reads from it."""
    found = sdk_private_reaches()
    assert [reach for path, reaches in found.items() if path != SDK_ADAPTER for reach in reaches] == []
    # the scan is not vacuous: the adapter's own reaches, of each kind, are found
    adapter = "\n".join(found[SDK_ADAPTER])
    for reach in ("._tool_manager", "._lowlevel_server", "overrides the SDK's _tool_input_schema", '"_connection"'):
        assert reach in adapter
