"""What we measure against: a fixed 2-second poller, Databar's own MCP server, and a bare MCP SDK server."""
