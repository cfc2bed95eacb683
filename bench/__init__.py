"""Benchmarks: databar-mcp against Databar's own clients and against the sandbox's limits (`make bench`)."""
