"""The results as a console table, markdown (latest.md) and JSON (latest.json)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from bench import chart
from bench.formatting import fmt, fmt_met, fmt_ratio
from bench.result import Row

HEADERS = ("scenario", "ours", "reference", "ratio", "target", "unit", "met")


def cells(row: Row) -> tuple[str, ...]:
    return (
        row.scenario,
        fmt(row.ours),
        fmt(row.reference),
        fmt_ratio(row.ratio),
        row.target,
        row.unit,
        fmt_met(row.met),
    )


def table(rows: Sequence[Row]) -> str:
    grid = [HEADERS, *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in grid) for i in range(len(HEADERS))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in grid]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def notes(rows: Sequence[Row]) -> list[str]:
    return [f"{r.scenario}: {r.note}" for r in rows if r.note]


def markdown(rows: Sequence[Row], preamble: Sequence[str]) -> str:
    def escape(text: str) -> str:
        return text.replace("|", "\\|")

    out = [*preamble, "", "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    out += ["| " + " | ".join(escape(c) for c in cells(r)) + " |" for r in rows]
    if any(r.note for r in rows):
        out += ["", "Notes:", ""] + [f"- {escape(n)}" for n in notes(rows)]
    return "\n".join(out) + "\n"


def write(rows: Sequence[Row], preamble: Sequence[str], out_dir: Path) -> dict[str, Path]:
    """Write latest.md, latest.json (one object per row) and latest.png; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"md": out_dir / "latest.md", "json": out_dir / "latest.json", "png": out_dir / "latest.png"}
    paths["md"].write_text(markdown(rows, preamble), encoding="utf-8")
    paths["json"].write_text(json.dumps([r.as_json() for r in rows], indent=2, ensure_ascii=False) + "\n", "utf-8")
    chart.write(rows, preamble[0].lstrip("# ") if preamble else "databar-mcp benchmarks", paths["png"])
    return paths
