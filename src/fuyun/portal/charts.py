"""Charts as inline SVG, drawn on the server: no script, no CDN, readable without colour.

Colours come from presentation attributes and classes in ``portal.css`` (the
content security policy forbids inline styles). Every chart carries a ``<title>``
and ``<desc>`` with its numbers, so a screen reader gets what the picture shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from markupsafe import Markup, escape

W, H = 720, 220
PAD_L, PAD_R, PAD_T, PAD_B = 88, 16, 12, 28


def rate_text(bps: float) -> str:
    for unit, scale in (("Gbit/s", 1e9), ("Mbit/s", 1e6), ("kbit/s", 1e3)):
        if bps >= scale:
            return f"{bps / scale:.1f} {unit}"
    return f"{bps:.0f} bit/s"


def _nice_max(v: float) -> float:
    if v <= 0:
        return 1.0
    mag = 10 ** (len(str(int(v))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if v <= step * mag:
            return step * mag
    return 10.0 * mag


def rate_chart(
    title: str,
    times: Sequence[datetime],
    series: Sequence[tuple[str, str, Sequence[float]]],
) -> Markup:
    """Lines of bit/s over time; ``series`` is (label, css class, values) per line."""
    n = len(times)
    top = _nice_max(max((max(v, default=0.0) for _, _, v in series), default=0.0))
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def x(i: int) -> float:
        return PAD_L + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: float) -> float:
        return PAD_T + plot_h * (1 - v / top)

    desc = "; ".join(
        f"{label}: peak {rate_text(max(v, default=0))}, last {rate_text(v[-1] if v else 0)}"
        for label, _, v in series
    )
    parts = [
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title><desc>{escape(desc or 'no data')}</desc>",
    ]
    for k in range(5):
        v = top * k / 4
        parts.append(
            f'<line class="grid" x1="{PAD_L}" x2="{W - PAD_R}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>'
            f'<text class="axis" x="{PAD_L - 6}" y="{y(v) + 4:.1f}" text-anchor="end">'
            f"{escape(rate_text(v))}</text>"
        )
    if n:
        for i in sorted({0, n // 2, n - 1}):
            anchor = "start" if i == 0 and n > 1 else "end" if i == n - 1 and n > 1 else "middle"
            parts.append(
                f'<text class="axis" x="{x(i):.1f}" y="{H - 8}" text-anchor="{anchor}">'
                f"{times[i]:%H:%M:%S}</text>"
            )
    for label, css, values in series:
        if not values:
            continue
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(values))
        parts.append(
            f'<polyline class="line {escape(css)}" fill="none" points="{points}">'
            f"<title>{escape(label)}</title></polyline>"
        )
    if not n:
        parts.append(
            f'<text class="axis" x="{W / 2}" y="{H / 2}" text-anchor="middle">'
            "no samples in this window</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(title: str, rows: Sequence[tuple[str, float, float]]) -> Markup:
    """Horizontal stacked bars of (label, tx bit/s, rx bit/s), largest first."""
    row_h, label_w = 22, 180
    height = max(1, len(rows)) * row_h + 8
    top = _nice_max(max((tx + rx for _, tx, rx in rows), default=0.0))
    span = W - label_w - 110
    desc = "; ".join(f"{lb}: tx {rate_text(tx)}, rx {rate_text(rx)}" for lb, tx, rx in rows)
    parts = [
        f'<svg class="chart bars" viewBox="0 0 {W} {height}" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title><desc>{escape(desc or 'no data')}</desc>",
    ]
    for i, (label, tx, rx) in enumerate(rows):
        yy = 4 + i * row_h
        wtx, wrx = span * tx / top, span * rx / top
        parts.append(
            f'<text class="axis" x="{label_w - 6}" y="{yy + 15}" text-anchor="end">'
            f"{escape(label[:28])}</text>"
            f'<rect class="bar tx" x="{label_w}" y="{yy + 3}" width="{wtx:.1f}" height="16"/>'
            f'<rect class="bar rx" x="{label_w + wtx:.1f}" y="{yy + 3}" width="{wrx:.1f}" '
            f'height="16"/>'
            f'<text class="axis" x="{label_w + wtx + wrx + 6:.1f}" y="{yy + 15}">'
            f"{escape(rate_text(tx + rx))}</text>"
        )
    if not rows:
        parts.append(
            f'<text class="axis" x="{W / 2}" y="16" text-anchor="middle">no traffic</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
