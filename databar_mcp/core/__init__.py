"""The core: the ledger, the task runner and tracker, spend estimates, result shaping and exports.

It knows Databar (through databar_mcp.api) and the settings, never MCP: tools and the app build on it.
"""
