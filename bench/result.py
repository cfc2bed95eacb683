"""One line of the benchmark table: a figure of ours, the reference's, their ratio and the target."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Row:
    """`ratio` is ours/reference for costs (lower is better) and bound/ours for throughput (1.0 = the limit).

    `met` is None when the target cannot be judged (the reference was unavailable, or there is no target).
    """

    scenario: str
    ours: float | None
    reference: float | None
    ratio: float | None
    target: str
    unit: str
    met: bool | None
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or denominator is None or denominator == 0:
        return None
    return numerator / denominator


def unavailable(scenario: str, target: str, unit: str, why: str) -> Row:
    return Row(scenario, None, None, None, target, unit, None, f"not measured: {why}")
