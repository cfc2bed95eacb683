"""The results as a bar chart: per row, ours and the reference side by side, scaled to the larger of the two."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from bench.formatting import fmt, fmt_ratio
from bench.png import GLYPH_W, Canvas, Color
from bench.result import Row

OURS: Color = (46, 109, 180)
REFERENCE: Color = (160, 160, 160)
MET: Color = (40, 160, 70)
MISSED: Color = (200, 50, 40)
UNKNOWN: Color = (200, 200, 200)
SCALE = 2
LABEL_CHARS = 62
ROW_H = 40
BAR_W = 420
MARGIN = 16
SUMMARY_CHARS = 32


def draw(rows: Sequence[Row], title: str) -> Canvas:
    char_w = GLYPH_W * SCALE
    label_w = LABEL_CHARS * char_w
    width = MARGIN * 3 + label_w + BAR_W + SUMMARY_CHARS * char_w
    height = MARGIN * 2 + 3 * ROW_H + len(rows) * ROW_H
    canvas = Canvas(width, height)
    canvas.text(MARGIN, MARGIN, title[: (width - 2 * MARGIN) // char_w], scale=SCALE)
    legend_y = MARGIN + ROW_H
    canvas.rect(MARGIN, legend_y, 24, 14, OURS)
    x = canvas.text(MARGIN + 32, legend_y, "ours", scale=SCALE) + 24
    canvas.rect(x, legend_y, 24, 14, REFERENCE)
    x = canvas.text(x + 32, legend_y, "reference", scale=SCALE) + 24
    for color, label in ((MET, "target met"), (MISSED, "missed"), (UNKNOWN, "n/a")):
        canvas.rect(x, legend_y, 14, 14, color)
        x = canvas.text(x + 22, legend_y, label, scale=SCALE) + 24
    bars_x = MARGIN * 2 + label_w
    for i, row in enumerate(rows):
        y = MARGIN + 3 * ROW_H + i * ROW_H
        if i % 2 == 0:
            canvas.rect(0, y - 6, width, ROW_H, (244, 246, 250))
        status = UNKNOWN if row.met is None else MET if row.met else MISSED
        canvas.rect(MARGIN, y, 14, 14, status)
        canvas.text(MARGIN + 22, y, row.scenario[: LABEL_CHARS - 2], scale=SCALE)
        values = [v for v in (row.ours, row.reference) if v is not None and v > 0]
        top = max(values) if values else 1.0
        for offset, value, color in ((0, row.ours, OURS), (14, row.reference, REFERENCE)):
            if value is not None and value > 0:
                canvas.rect(bars_x, y + offset, max(1, round(BAR_W * value / top)), 12, color)
        summary = fmt(row.ours)
        if row.reference is not None:
            summary += f" vs {fmt(row.reference)} = {fmt_ratio(row.ratio)}"
        canvas.text(bars_x + BAR_W + MARGIN, y, summary[:SUMMARY_CHARS], scale=SCALE)
    return canvas


def write(rows: Sequence[Row], title: str, path: Path) -> None:
    draw(rows, title).save(path)
