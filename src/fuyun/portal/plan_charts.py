"""The capacity plan's charts as inline SVG: percentages by step, and bars per remedy.

Drawn on the server like :mod:`fuyun.portal.charts` (no script, no CDN, readable
without colour).

Colours are SVG presentation attributes (the portal's CSP forbids inline styles);
every chart has a ``<title>`` and a description, and the numbers it draws are also
in a table on the same page, so a screen reader loses nothing.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

PALETTE = ("#1d4e89", "#d9542b", "#2b7a3d", "#b45309", "#7c3aed", "#0e7490", "#a4161a", "#5b6675")
DASHES = ("", "6 3", "2 3", "8 3 2 3", "", "6 3", "2 3", "8 3 2 3")


def line_chart(
    title: str,
    steps: Sequence[int],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    width: int = 640,
    height: int = 240,
    top: float = 100.0,
    unit: str = "%",
) -> Markup:
    """Percentages (or any values up to ``top``) per step, one polyline per series."""
    left, right, upper, bottom = 44, 12, 12, 28
    plot_w, plot_h = width - left - right, height - upper - bottom
    n = max(1, len(steps) - 1)
    top = max(top, max((v for _, vals in series for v in vals), default=0.0), 1e-9)

    def x(i: int) -> float:
        return left + plot_w * i / n

    def y(v: float) -> float:
        return upper + plot_h * (1 - v / top)

    ident = _ident("c", title)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-labelledby="{ident}-t {ident}-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{ident}-t">{escape(title)}</title>',
        f'<desc id="{ident}-d">{escape(_describe(steps, series, unit))}</desc>',
    ]
    for k in range(5):
        v = top * k / 4
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
            f'stroke="#d5dbe3" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#5b6675">{v:.0f}{escape(unit)}</text>'
        )
    every = max(1, len(steps) // 12)
    for i, step in enumerate(steps):
        if i % every == 0 or i == len(steps) - 1:
            parts.append(
                f'<text x="{x(i):.1f}" y="{height - 8}" text-anchor="middle" font-size="11" '
                f'fill="#5b6675">{step}</text>'
            )
    for k, (label, values) in enumerate(series):
        colour, dash = PALETTE[k % len(PALETTE)], DASHES[k % len(DASHES)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        parts.append(
            f'<polyline class="series" data-label="{escape(label)}" points="{points}" '
            f'fill="none" stroke="{colour}" stroke-width="2"{dash_attr}/>'
        )
        for i, v in enumerate(values):
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}">'
                f"<title>{escape(label)} at step {steps[i]}: {v:g}{escape(unit)}</title></circle>"
            )
    parts.append("</svg>")
    legend = "".join(
        f'<li><svg width="22" height="8" aria-hidden="true"><line x1="0" x2="22" y1="4" y2="4" '
        f'stroke="{PALETTE[k % len(PALETTE)]}" stroke-width="3"'
        + (f' stroke-dasharray="{DASHES[k % len(DASHES)]}"' if DASHES[k % len(DASHES)] else "")
        + f"/></svg> {escape(label)}</li>"
        for k, (label, _) in enumerate(series)
    )
    return Markup(
        f'<figure class="chartbox">{"".join(parts)}'
        f'<figcaption><ul class="legend">{legend}</ul></figcaption></figure>'
    )


def bar_chart(
    title: str, bars: Sequence[tuple[str, float]], *, unit: str = "", width: int = 640
) -> Markup:
    """Horizontal bars, longest first as given; negative values draw to the left of zero."""
    row, left, right = 26, 180, 70
    height = row * max(1, len(bars)) + 10
    lo = min(0.0, min((v for _, v in bars), default=0.0))
    hi = max(1e-9, max((v for _, v in bars), default=0.0))
    span = hi - lo or 1.0
    plot_w = width - left - right

    def x(v: float) -> float:
        return left + plot_w * (v - lo) / span

    ident = _ident("b", title)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-labelledby="{ident}-t" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{ident}-t">{escape(title)}</title>',
    ]
    for i, (label, v) in enumerate(bars):
        yy = 5 + i * row
        x0, x1 = sorted((x(0.0), x(v)))
        parts.append(
            f'<text x="{left - 8}" y="{yy + 16}" text-anchor="end" font-size="12" '
            f'fill="#1b2430">{escape(label)}</text>'
            f'<rect class="bar" x="{x0:.1f}" y="{yy + 3}" width="{max(1.0, x1 - x0):.1f}" '
            f'height="{row - 8}" fill="{PALETTE[i % len(PALETTE)]}"><title>{escape(label)}: '
            f"{v:+,g}{escape(unit)}</title></rect>"
            f'<text x="{x1 + 6:.1f}" y="{yy + 16}" font-size="12" fill="#1b2430">'
            f"{v:+,g}{escape(unit)}</text>"
        )
    parts.append("</svg>")
    return Markup(f'<figure class="chartbox">{"".join(parts)}</figure>')


def _describe(
    steps: Sequence[int], series: Sequence[tuple[str, Sequence[float]]], unit: str
) -> str:
    if not steps:
        return "no data"
    last = steps[-1]
    ends = ", ".join(f"{label} {vals[-1]:g}{unit}" for label, vals in series if vals)
    return f"steps {steps[0]} to {last}; at step {last}: {ends}"


def _ident(prefix: str, title: str) -> str:
    """A stable element id for a chart (titles are unique on a page)."""
    return f"{prefix}{zlib.crc32(title.encode()):08x}"
