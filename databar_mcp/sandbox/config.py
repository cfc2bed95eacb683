"""Knobs of the sandbox: latency, money, retention, limits and injected faults.

Plain mutable dataclasses, so a test can turn a knob while the server runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FaultKind = Literal[
    "status",
    "reset_before",
    "reset_after",
    "slow",
    "rate_limit",
    # The work is done (the task created and billed), then the reply is replaced by something odd:
    "truncated_after",  # a complete HTTP reply whose JSON body is cut in half
    "html_after",  # a 200 HTML page (a captive portal or a CDN error page)
    # `status` (e.g. 302 with a Location, 408, a 404 maintenance page) from a proxy in front of the API; its body is
    # an HTML page, or `Fault.body` (a string as is, "" for an empty body, anything else as JSON)
    "status_after",
    "reused_task_id",  # a 200 whose task_id is one the API already gave another run
    "reply",  # a canned reply (`Fault.body`) instead of the route's
    "echo",  # an error reply that echoes the request's headers and body back, as some proxies do
]
GoneStyle = Literal["http_410", "status_gone"]


@dataclass
class SandboxConfig:
    """How the emulated account and API behave.

    Read per request, so a test can change them mid-run; except `balance` and `seed_table_rows` (used when
    the state is created; set `state.balance` instead) and the latencies (fixed per task at submit time).
    """

    api_key: str = "sandbox"
    balance: float = 1000.0
    task_base_seconds: float = 0.3
    row_seconds: float = 0.02
    retention_seconds: float = 86400
    gone_style: GoneStyle = "http_410"
    rate_limit_per_second: float | None = None
    table_rate_limit_per_second: float | None = None
    max_bulk_rows: int = 10_000
    seed_table_rows: int = 2_345
    rows_per_page_max: int = 1000  # the seed's ceiling; Databar's clients assume 500
    # Reply shapes: False = the shapes Databar's SDK reads; True = the other spellings its clients accept
    # (category strings, choice lists, numeric prices, string row errors, `{error, detail, fields}` bodies,
    # status "success", a single waterfall run's data as one object).
    reply_variant: bool = False
    waterfall_required_key: Literal["required", "is_required"] | None = "required"  # None: not stated
    # Eventual consistency: the first this-many reads of each new task answer 404 (as a replica would that has
    # not seen the task yet).
    fresh_task_unseen_reads: int = 0
    # Table enrichments: seconds between two rows finishing (None: row_seconds); exports: seconds to build a file.
    table_row_seconds: float | None = None
    export_seconds: float = 0.5


@dataclass
class Fault:
    """One injected misbehaviour for the next `times` requests to `route` ("METHOD template", or "*").

    `after` lets that many matching requests through untouched first (e.g. `after=2` strikes the third
    row batch of a chunked write). `times` and `after` count down on this object as requests consume them.
    `reply` answers `status` with `body` (any JSON); `echo` answers `status` with an error that quotes the
    request's headers and body back (as careless proxies and validators do).
    """

    route: str
    kind: FaultKind
    times: int = 1
    status: int = 503
    delay: float = 0.0
    retry_after: float = 1.0
    after: int = 0
    body: object = None
