"""The clients we measure against: a fixed 2-second poller, and Databar's own MCP server."""
