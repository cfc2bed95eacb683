"""Toolbox: registers a tool only when its toolset is loaded and, in read-only mode, only if it is read-only.

Every tool declares its toolset and all four annotation hints with `@tool`, which only records the definition
(so a tool is a plain, importable function); the Toolbox registers the recorded tools of the loaded toolsets,
turning the failures an agent can act on into error results; a tool takes its context (and through it the
run's services) by its own signature, which the SDK reads as written.
tools/list can be trimmed per user (agents choose worse from long tool lists, and every definition costs
context) and a read-only server can never write or spend. Without a toolset choice, every toolset is loaded
but only the default ones are listed; enable_toolsets lists the others on request (github-mcp-server's
dynamic toolsets). A tool of a toolset not listed yet is recorded but registered with the SDK (which builds
its schemas, most of a start's own cost) only when enable_toolsets lists it or it is called. When the start's
listing is cached (databar_mcp/startup.py), no tool is given to the SDK, nor its module imported, before its
first call.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from importlib import import_module
from types import ModuleType
from typing import Any, TypeVar, cast

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, ToolAnnotations

from databar_mcp.config import CORE_TOOLS, TOOLSETS, Settings
from databar_mcp.startup import KnownTool, Listing, ListingCache
from databar_mcp.tools.kit.context import Services
from databar_mcp.tools.kit.sdk_private import hold_tool

F = TypeVar("F", bound=Callable[..., Awaitable[CallToolResult]])
TOOLSET_META_KEY = "io.databar/toolset"
ALWAYS_LISTED = "toolsets"  # enable_toolsets' own toolset: listed whatever is chosen


@dataclass(frozen=True)
class ToolSpec:
    """A tool as written: its function, toolset and every annotation hint (Databar is the open world)."""

    fn: Callable[..., Awaitable[CallToolResult]]
    toolset: str
    name: str
    title: str
    description: str
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool = True


DEFINED: dict[str, list[ToolSpec]] = {}  # module name -> its tools, in the order they are written


@functools.cache
def built_tool(spec: ToolSpec) -> Tool:
    """The SDK's Tool for a spec, built once per process. Building one (an argument model and two JSON schemas)
    was most of a server's construction, about 5 ms a tool; a spec is written once at import and `guarding` keeps
    no state, so every server a process builds (each test builds its own) shares the Tool."""
    from databar_mcp.tools.kit.guard import guarding  # a call's kit: a start whose listing is cached needs none

    annotations = ToolAnnotations(
        title=spec.title,
        read_only_hint=spec.read_only,
        destructive_hint=spec.destructive,
        idempotent_hint=spec.idempotent,
        open_world_hint=spec.open_world,
    )
    return Tool.from_function(
        guarding(spec.fn),
        name=spec.name,
        description=spec.description,
        annotations=annotations,
        meta={TOOLSET_META_KEY: spec.toolset},
    )


def tool(
    toolset: str,
    *,
    name: str,
    title: str,
    description: str,
    read_only: bool,
    destructive: bool,
    idempotent: bool,
    open_world: bool = True,
) -> Callable[[F], F]:
    """Record a tool of `toolset` for the Toolbox to register; the function itself is returned unchanged."""

    def record(fn: F) -> F:
        spec = ToolSpec(fn, toolset, name, title, description, read_only, destructive, idempotent, open_world)
        DEFINED.setdefault(fn.__module__, []).append(spec)
        return fn

    return record


class Toolbox:
    def __init__(self, server: MCPServer[Services], settings: Settings, cache: ListingCache | None = None) -> None:
        self.server = server
        self.settings = settings
        self.registered: dict[str, str] = {}  # tool name -> toolset, for every loaded tool, in registration order
        self.listed: set[str] = set(settings.listed_toolsets)  # toolsets any viewer has listed (given to the SDK)
        # The toolsets enable_toolsets listed for each viewer (listing_scope.viewer: a user, an HTTP session, or
        # this process): one conversation's choice never grows another's list.
        self.enabled_for: dict[str, set[str]] = {}
        # loaded tools not yet given to the SDK: their spec, or (from a cached listing) the module that defines it
        self.deferred: dict[str, ToolSpec | str] = {}
        self.version = 0  # bumped whenever what tools/list shows may have changed (see DatabarMCPServer.list_tools)
        self._order: dict[str, int] = {}  # tool name -> its place among the loaded tools
        self.cache = cache
        self.cached: Listing | None = cache.read() if cache is not None else None  # the start's listing, if kept
        self.modules: dict[str, str] = {}  # tool name -> the module that defines it, for the tools modules define
        self._remembered = False
        self.resource_modules: list[str] = []  # toolset modules with resources (set by loading; the cache keeps it)

    def loads(self, toolset: str) -> bool:
        """Whether the toolset is loaded: chosen, or offered for enable_toolsets to list later."""
        return toolset in self.listed or toolset == ALWAYS_LISTED or self.settings.dynamic_toolsets

    def enabled(self, toolset: str, *, read_only: bool) -> bool:
        """Whether a tool is loaded: its toolset is chosen (or may be enabled later), and read-only mode allows it."""
        if not self.loads(toolset):
            return False
        return read_only or not self.settings.read_only

    def visible(self, name: str, viewer: str | None = None) -> bool:
        """Whether tools/list shows this loaded tool now: to `viewer` (None: to any viewer), when its toolset is
        listed from the start or enabled for that viewer, or it is a core tool."""
        toolset = self.registered.get(name)
        if toolset is None:
            return False
        if toolset == ALWAYS_LISTED or name in CORE_TOOLS or toolset in self.settings.listed_toolsets:
            return True
        return toolset in (self.listed if viewer is None else self.enabled_for.get(viewer, set()))

    def lists_any(self) -> bool:
        """Whether tools/list shows any tool now."""
        return any(self.visible(name) for name in self.registered)

    def hidden_toolsets(self, viewer: str | None = None) -> list[str]:
        """Loaded toolsets that tools/list does not show (to `viewer`; None: to anyone) yet, in TOOLSETS order."""
        loaded = set(self.registered.values()) - {ALWAYS_LISTED}
        shown = (
            self.listed if viewer is None else set(self.settings.listed_toolsets) | self.enabled_for.get(viewer, set())
        )
        return [t for t in TOOLSETS if t in loaded and t not in shown]

    def offered(self) -> list[str]:
        """Loaded toolsets that were not listed from the start (enable_toolsets offers them), in TOOLSETS order."""
        loaded = set(self.registered.values())
        return [t for t in TOOLSETS if t in loaded and t not in self.settings.listed_toolsets]

    def tools_of(self, toolset: str) -> list[str]:
        return [name for name, ts in self.registered.items() if ts == toolset]

    def add(self, *modules: ModuleType) -> None:
        """Register the tools each module defines, in the order they are written, then its resources (a module's
        `register_resources(box)`, if it has one)."""
        for module in modules:
            for spec in DEFINED.get(module.__name__, ()):
                self.modules[spec.name] = module.__name__
                self.register(spec)
            self.add_resources(module)

    def add_resources(self, module: ModuleType) -> None:
        """Register a module's resources (its `register_resources(box)`, if it has one)."""
        resources = cast("Callable[[Toolbox], None] | None", getattr(module, "register_resources", None))
        if resources is not None:
            resources(self)

    def add_known(self, known: KnownTool) -> None:
        """Load a tool the cached listing names, without importing its module: it is imported when it is called."""
        self.registered[known.name] = known.toolset
        self.modules[known.name] = known.module
        self._order.setdefault(known.name, len(self._order))
        self.deferred[known.name] = known.module

    def start_listing(self) -> Listing | None:
        """The cached listing while tools/list would still answer what it holds: no toolset listed since."""
        if self.cached is not None and self.listed == set(self.settings.listed_toolsets):
            return self.cached
        return None

    def remember(self, tools: list[dict[str, Any]]) -> None:
        """Keep a freshly built start listing (tools/list's JSON) for the next start with the same fingerprint."""
        if self.cache is None or self.cached is not None or self.listed != set(self.settings.listed_toolsets):
            return
        if self._remembered:
            return
        self._remembered = True
        known = [KnownTool(n, toolset, self.modules[n]) for n, toolset in self.registered.items() if n in self.modules]
        self.cache.write(Listing(tools, known, list(self.resource_modules)))

    def ensure_visible(self) -> None:
        """Give the SDK every deferred tool that tools/list shows now (to build the listing from the SDK's)."""
        for name in [n for n in self.deferred if self.visible(n)]:
            self.ensure(name)

    def list_toolsets(self, toolsets: Iterable[str], viewer: str) -> None:
        """List these toolsets for `viewer` from now on, registering their deferred tools with the SDK."""
        toolsets = list(toolsets)
        self.enabled_for.setdefault(viewer, set()).update(toolsets)
        self.listed.update(toolsets)
        for name in [n for n in self.deferred if self.registered[n] in self.listed]:
            self.ensure(name)
        self.version += 1

    def ensure(self, name: str) -> None:
        """Register a deferred tool with the SDK now (it is being called, or listed); any other name is left alone."""
        spec = self.deferred.pop(name, None)
        if isinstance(spec, str):  # known from the cached listing: its module is imported now
            spec = next((s for s in DEFINED.get(import_module(spec).__name__, ()) if s.name == name), None)
        if spec is not None:
            self._give(spec)

    def ensure_all(self) -> None:
        """Register every deferred tool with the SDK (for what must see every loaded tool, e.g. OAuth scopes)."""
        for name in list(self.deferred):
            self.ensure(name)

    def order(self, name: str) -> int:
        """A loaded tool's place in tools/list: where it was written, whenever the SDK got it."""
        return self._order.get(name, len(self._order))

    def register(self, spec: ToolSpec) -> None:
        """Register one tool when its toolset is loaded (and read-only mode allows it): with the SDK at once when
        it is listed, else when it is first listed or called (`ensure`)."""
        if not self.enabled(spec.toolset, read_only=spec.read_only):
            return
        self.registered[spec.name] = spec.toolset
        self._order.setdefault(spec.name, len(self._order))
        if self.visible(spec.name) and self.start_listing() is None:
            self._give(spec)
        else:
            self.deferred[spec.name] = spec

    def _give(self, spec: ToolSpec) -> None:
        """Register one tool with the SDK (its Tool is built once per process, see `built_tool`)."""
        hold_tool(self.server, built_tool(spec))
        self.version += 1
