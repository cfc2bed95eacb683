"""How big each scenario is: the full run (`make bench`) and the seconds-long check (`make bench-quick`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    latency_durations: tuple[float, ...]  # seconds a bulk task takes on the sandbox
    latency_reps: int
    latency_rows: int
    cold_reps: int
    overhead_calls: int
    bulk_rows: int
    bulk_row_seconds: float
    table_rows: int
    table_rate_per_s: float
    table_time_cap_s: float  # stop reading the table then and extrapolate from the rows read
    context_sizes: tuple[int, ...]
    use_databar: bool  # Databar's own MCP server as a reference (needs node; skipped in the quick run)
    table_enrich_rows: int = 50_000  # a table enriched in place (run_table_enrichment)
    table_enrich_row_seconds: float = 0.001


FULL = Profile(
    name="full",
    latency_durations=(0.5, 3.0, 20.0, 120.0),
    latency_reps=5,
    latency_rows=50,
    cold_reps=15,  # a start swings +-10% run to run here: the median of 15 interleaved ones holds still
    overhead_calls=400,
    bulk_rows=10_000,
    bulk_row_seconds=0.002,
    table_rows=100_000,
    table_rate_per_s=10.0,
    table_time_cap_s=60.0,
    context_sizes=(1, 100, 1_000, 10_000),
    use_databar=True,
)

QUICK = Profile(
    name="quick",
    latency_durations=(0.5,),
    latency_reps=1,
    latency_rows=10,
    cold_reps=1,
    overhead_calls=20,
    bulk_rows=300,
    bulk_row_seconds=0.002,
    table_rows=600,
    table_rate_per_s=50.0,
    table_time_cap_s=8.0,
    context_sizes=(1, 100),
    use_databar=False,
    table_enrich_rows=500,
)
