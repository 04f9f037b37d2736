"""A step chart of physical and available stock, drawn as inline SVG on the server: no script,
no third-party library, nothing to download, and it prints."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from html import escape

from markupsafe import Markup

from ledger.quantities import render

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 30, 28
LEGEND = 8  # above the plot, so no line runs through it


@dataclass(frozen=True)
class Point:
    label: str
    physical: Decimal
    available: Decimal


def step_chart(points: list[Point], *, title: str, physical: str, available: str) -> Markup:
    """Each point holds until the next: stock does not drift between movements."""
    if not points:
        return Markup("")
    values = [v for p in points for v in (p.physical, p.available)]
    low, high = min(*values, Decimal(0)), max(*values, Decimal(0))
    if high == low:
        high = low + 1
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = inner_w / len(points)

    def y(value: Decimal) -> float:
        return TOP + float((high - value) / (high - low)) * inner_h

    def path(attribute: str) -> str:
        coordinates: list[str] = []
        for index, point in enumerate(points):
            level = y(getattr(point, attribute))
            coordinates.append(f"{LEFT + index * step:.1f},{level:.1f}")
            coordinates.append(f"{LEFT + (index + 1) * step:.1f},{level:.1f}")
        return " ".join(coordinates)

    zero = y(Decimal(0))
    ticks = "".join(
        f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{escape(render(v))}</text>'
        for v in sorted({low, Decimal(0), high})
    )
    first, last = escape(points[0].label), escape(points[-1].label)
    summary = "; ".join(
        f"{escape(p.label)}: {escape(render(p.physical))} / {escape(render(p.available))}"
        for p in points[-12:]
    )
    # Every text interpolated below is escaped; the rest are numbers we formatted.
    return Markup(  # noqa: S704
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="chart-title chart-desc" preserveAspectRatio="xMidYMid meet" '
        f'data-physical="{" ".join(render(p.physical) for p in points)}" '
        f'data-available="{" ".join(render(p.available) for p in points)}">'
        f'<title id="chart-title">{escape(title)}</title>'
        f'<desc id="chart-desc">{escape(physical)} / {escape(available)}: {summary}</desc>'
        f'<line class="axis" x1="{LEFT}" y1="{zero:.1f}" x2="{WIDTH - RIGHT}" y2="{zero:.1f}"/>'
        f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}"/>'
        f"{ticks}"
        f'<polyline class="physical" points="{path("physical")}"/>'
        f'<polyline class="available" points="{path("available")}"/>'
        f'<text x="{LEFT}" y="{HEIGHT - 8}">{first}</text>'
        f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end">{last}</text>'
        f'<g class="legend"><rect class="physical" x="{WIDTH - 220}" y="{LEGEND}" width="12" '
        f'height="4"/><text x="{WIDTH - 204}" y="{LEGEND + 6}">{escape(physical)}</text>'
        f'<rect class="available" x="{WIDTH - 120}" y="{LEGEND}" width="12" height="4"/>'
        f'<text x="{WIDTH - 104}" y="{LEGEND + 6}">{escape(available)}</text></g>'
        "</svg>"
    )
