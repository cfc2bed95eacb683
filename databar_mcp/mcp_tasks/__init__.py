"""Databar tasks as MCP Tasks: 2025-11-25 experimental tasks and the 2026-07-28 extension, on durable handles."""

from databar_mcp.mcp_tasks.middleware import TasksExtension, TasksMiddleware
from databar_mcp.mcp_tasks.service import TASK_TOOLS, McpTaskService

__all__ = ["TASK_TOOLS", "McpTaskService", "TasksExtension", "TasksMiddleware"]
