"""One module per scenario of issue 7; each exposes `async def run(ctx) -> list[Row]`."""
