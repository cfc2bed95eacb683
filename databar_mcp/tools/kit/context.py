"""The services a tool reaches through its MCP context: one client, ledger, runner and catalog per server run."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import Context

from databar_mcp import config

if TYPE_CHECKING:  # the lifespan builds the client, ledger and runner; the rest is made on first use
    from databar_mcp.api import DatabarClient
    from databar_mcp.config import Settings
    from databar_mcp.core.catalog import Catalog
    from databar_mcp.core.ledger.store import Ledger
    from databar_mcp.core.runner import TaskRunner
    from databar_mcp.core.tasks import TaskService


@dataclass
class Services:
    settings: Settings
    client: DatabarClient
    ledger: Ledger
    runner: TaskRunner

    @cached_property
    def catalog(self) -> Catalog:
        """What waterfalls and enrichments need and cost, cached for the server run: made by the first tool that
        asks, since a start sends no request (issue 14)."""
        from databar_mcp.core.catalog import Catalog

        return Catalog(self.client, ttl_s=config.CATALOG_TTL_S)

    @cached_property
    def tasks(self) -> TaskService:
        """Task state's one owner: what tools read, submit, wait for and cancel tasks through."""
        from databar_mcp.core.tasks import TaskService

        return TaskService(self.runner, self.ledger)


ToolContext = Context[Services, Any]


def services(ctx: ToolContext) -> Services:
    return ctx.request_context.lifespan_context
