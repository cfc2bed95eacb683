"""databar-mcp: an MCP server for Databar.ai data enrichment."""

__version__ = "0.1.0"
