"""The application: the MCP server, its HTTP and stdio transports, the CLI, doctor and demo.

It wires the tool layer to the core and is the only layer that knows about processes and sockets.
"""
