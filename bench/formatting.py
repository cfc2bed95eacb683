"""How figures are shown in the table and on the chart."""

from __future__ import annotations


def fmt(value: float | None) -> str:
    if value is None:
        return "—"
    magnitude = abs(value)
    if magnitude >= 100:
        return f"{value:,.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}×"


def fmt_met(value: bool | None) -> str:
    return "n/a" if value is None else "yes" if value else "NO"
