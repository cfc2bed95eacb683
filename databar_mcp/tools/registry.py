"""Toolbox: registers a tool only when its toolset is loaded and, in read-only mode, only if it is read-only.

Every tool declares its toolset and all four annotation hints here, so tools/list can be trimmed per user
(agents choose worse from long tool lists, and every definition costs context) and a read-only server can
never write or spend. Without a toolset choice, every toolset is loaded but only the default ones are
listed; enable_toolsets lists the others on request (github-mcp-server's dynamic toolsets).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from databar_mcp.config import TOOLSETS, Settings
from databar_mcp.tools.context import Services

F = TypeVar("F", bound=Callable[..., Any])
TOOLSET_META_KEY = "io.databar/toolset"
ALWAYS_LISTED = "toolsets"  # enable_toolsets' own toolset: listed whatever is chosen


class Toolbox:
    def __init__(self, server: MCPServer[Services], settings: Settings) -> None:
        self.server = server
        self.settings = settings
        self.registered: dict[str, str] = {}  # tool name -> toolset
        self.listed: set[str] = set(settings.listed_toolsets)  # toolsets tools/list shows (enable_toolsets adds)

    def enabled(self, toolset: str, *, read_only: bool) -> bool:
        """Whether a tool is loaded: its toolset is chosen (or may be enabled later), and read-only mode allows it."""
        if toolset not in self.listed and toolset != ALWAYS_LISTED and not self.settings.dynamic_toolsets:
            return False
        return read_only or not self.settings.read_only

    def visible(self, toolset: str | None) -> bool:
        """Whether tools/list shows a tool of this toolset now."""
        return toolset in self.listed or toolset == ALWAYS_LISTED

    def hidden_toolsets(self) -> list[str]:
        """Loaded toolsets that tools/list does not show yet, in TOOLSETS order."""
        loaded = set(self.registered.values()) - {ALWAYS_LISTED}
        return [t for t in TOOLSETS if t in loaded and t not in self.listed]

    def tools_of(self, toolset: str) -> list[str]:
        return [name for name, ts in self.registered.items() if ts == toolset]

    def tool(
        self,
        *,
        name: str,
        toolset: str,
        title: str,
        description: str,
        read_only: bool,
        destructive: bool,
        idempotent: bool,
        open_world: bool = True,
    ) -> Callable[[F], F]:
        """Like `server.tool`, with the toolset in `_meta` and every hint explicit (Databar is the open world)."""

        def decorate(fn: F) -> F:
            if not self.enabled(toolset, read_only=read_only):
                return fn
            annotations = ToolAnnotations(
                title=title,
                read_only_hint=read_only,
                destructive_hint=destructive,
                idempotent_hint=idempotent,
                open_world_hint=open_world,
            )
            self.server.tool(
                name=name, description=description, annotations=annotations, meta={TOOLSET_META_KEY: toolset}
            )(fn)
            self.registered[name] = toolset
            return fn

        return decorate
