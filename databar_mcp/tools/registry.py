"""Toolbox: registers a tool only when its toolset is enabled and, in read-only mode, only if it is read-only.

Every tool declares its toolset and all four annotation hints here, so tools/list can be trimmed per user
(agents choose worse from long tool lists) and a read-only server can never write or spend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

from databar_mcp.config import Settings
from databar_mcp.tools.context import Services

F = TypeVar("F", bound=Callable[..., Any])
TOOLSET_META_KEY = "io.databar/toolset"


class Toolbox:
    def __init__(self, server: MCPServer[Services], settings: Settings) -> None:
        self.server = server
        self.settings = settings
        self.registered: dict[str, str] = {}  # tool name -> toolset

    def enabled(self, toolset: str, *, read_only: bool) -> bool:
        if toolset not in self.settings.toolsets:
            return False
        return read_only or not self.settings.read_only

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
    ) -> Callable[[F], F]:
        """Like `server.tool`, with the toolset in `_meta` and every hint explicit (the world is always open)."""

        def decorate(fn: F) -> F:
            if not self.enabled(toolset, read_only=read_only):
                return fn
            annotations = ToolAnnotations(
                title=title,
                read_only_hint=read_only,
                destructive_hint=destructive,
                idempotent_hint=idempotent,
                open_world_hint=True,
            )
            self.server.tool(
                name=name, description=description, annotations=annotations, meta={TOOLSET_META_KEY: toolset}
            )(fn)
            self.registered[name] = toolset
            return fn

        return decorate
