"""The live results view: an MCP App (`io.modelcontextprotocol/ui`) for the run tools and get_task."""

from databar_mcp.ui.app import APP_TOOLS, RESULTS_URI, AppLinks, results_app, results_html

__all__ = ["APP_TOOLS", "RESULTS_URI", "AppLinks", "results_app", "results_html"]
