"""Geometry of the console's charts, drawn as inline SVG by the templates.

Server-rendered on purpose: the pages carry no script and no asset from
elsewhere, and every chart's numbers are also on the page as a table and a CSV.
Each builder returns plain dicts of coordinates in a fixed view box; CSS scales
them to the card's width.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

WIDTH = 600
HEIGHT = 160
# Colours come from these classes in console.css; versions past the last share it.
SERIES_CLASSES = 6


def stacked_bars(
    labels: Sequence[str], stacks: Sequence[Sequence[tuple[int, str]]]
) -> dict[str, Any]:
    """One bar per step, stacked from its (count, series name) parts, all series sharing
    the highest bar's scale."""
    gap = 2 if len(labels) > 40 else 4
    width = _bar_width(len(labels), gap)
    most = max((sum(count for count, _ in stack) for stack in stacks), default=0)
    bars: list[dict[str, Any]] = []
    for i, (label, stack) in enumerate(zip(labels, stacks, strict=True)):
        base = float(HEIGHT)
        for count, name in stack:
            if not count:
                continue
            tall = HEIGHT * count / most
            base -= tall
            bars.append(
                {
                    "x": round(i * (width + gap), 2),
                    "y": round(base, 2),
                    "width": round(width, 2),
                    "height": round(tall, 2),
                    "series": name,
                    "label": f"{label}: {count:,} ({name})",
                }
            )
    return {"width": WIDTH, "height": HEIGHT, "bars": bars, "most": most}


def lines(
    count: int, series: Sequence[tuple[str, Sequence[float | None]]], top: float | None = None
) -> dict[str, Any]:
    """Polylines over `count` steps (a gap where a value is None), scaled to `top` or to
    the highest finite value."""
    finite = [v for _, values in series for v in values if v is not None and math.isfinite(v)]
    top = top if top is not None else max(finite, default=0.0)
    step = WIDTH / max(count - 1, 1)
    drawn = []
    for name, values in series:
        parts: list[list[str]] = [[]]
        dots = []
        for i, value in enumerate(values):
            if value is None or not top:
                if parts[-1]:
                    parts.append([])
                continue
            y = HEIGHT - HEIGHT * min(value, top) / top
            point = f"{round(i * step, 2)},{round(y, 2)}"
            parts[-1].append(point)
            dots.append({"x": round(i * step, 2), "y": round(y, 2)})
        drawn.append(
            {
                "name": name,
                "polylines": [" ".join(p) for p in parts if len(p) > 1],
                # A lone point between gaps has no line to show it.
                "dots": dots if count <= 40 else [],
            }
        )
    return {"width": WIDTH, "height": HEIGHT, "series": drawn, "top": top}


def histogram(labels: Sequence[str], counts: Sequence[int]) -> dict[str, Any]:
    """Bars of counts side by side."""
    return stacked_bars(labels, [[(count, "all")] for count in counts])


def series_classes(names: Sequence[str]) -> dict[str, str]:
    """A CSS class per series name, in the order given (the last class is shared)."""
    return {name: f"series-{min(i, SERIES_CLASSES - 1)}" for i, name in enumerate(names)}


def _bar_width(count: int, gap: int) -> float:
    # A few steps are slim bars on the left, not one slab across the card.
    return min((WIDTH - gap * max(count - 1, 0)) / max(count, 1), 40.0)
