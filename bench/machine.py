"""How busy the machine was: a figure measured on a loaded machine says more about the load than the code.

The full run refuses to write bench/results/latest.* when the one-minute load average is above one per core
at the start; every scenario records the load before and after it, next to its figures.
"""

from __future__ import annotations

import os

IDLE_PER_CORE = 1.0


def cores() -> int:
    return os.cpu_count() or 1


def load() -> float:
    """The one-minute load average."""
    return os.getloadavg()[0]


def too_busy(per_core: float = IDLE_PER_CORE) -> str | None:
    """Why the machine is too busy to publish figures from, or None when it is idle enough."""
    now = load()
    if now <= per_core * cores():
        return None
    return (
        f"the load average is {now:.2f} on {cores()} cores (above {per_core:g} per core): figures measured now "
        "would describe the other work, not the code"
    )
