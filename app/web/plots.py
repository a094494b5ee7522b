"""Plots drawn on the server as SVG: bars (a distribution, counts over time) and a line
(a decay forecast). Colours come from the page's stylesheet (classes), so the plots follow
the light or dark theme; every bar has a <title> (its value on hover and for screen
readers) and every plot a text label."""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT = 640, 180
PAD_LEFT, PAD_BOTTOM, PAD_TOP = 44, 26, 10


def _axis_max(values: Sequence[float]) -> float:
    top = max(values, default=0) or 1
    for nice in (1, 2, 2.5, 5, 10):
        scale = 10 ** (len(str(int(top))) - 1)
        if top <= nice * scale:
            return nice * scale
    return float(top)


def bars(values: Sequence[float], labels: Sequence[str], *, label: str,
         ticks: Sequence[tuple[int, str]] = (), width: int = WIDTH,
         height: int = HEIGHT) -> Markup:
    """A bar per value; `labels` are the bars' hover titles, `ticks` (bar index, text)
    label the x axis."""
    plot_w = width - PAD_LEFT - 8
    plot_h = height - PAD_BOTTOM - PAD_TOP
    top = _axis_max(values)
    n = max(1, len(values))
    slot = plot_w / n
    gap = min(2.0, slot * 0.15)
    parts = [f'<svg class="plot" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(label)}</title>"]
    for frac in (0, 0.5, 1):
        y = PAD_TOP + plot_h * (1 - frac)
        parts.append(f'<line class="grid" x1="{PAD_LEFT}" x2="{width - 8}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{PAD_LEFT - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{_short(top * frac)}</text>')
    for i, value in enumerate(values):
        h = plot_h * (value / top) if top else 0
        x = PAD_LEFT + i * slot + gap / 2
        y = PAD_TOP + plot_h - h
        title = escape(f"{labels[i] if i < len(labels) else ''}: {value:,.0f}")
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot - gap:.1f}" '
                     f'height="{max(h, 0):.1f}"><title>{title}</title></rect>')
    for i, text in ticks:
        x = PAD_LEFT + (i + 0.5) * slot
        parts.append(f'<text class="tick" x="{x:.1f}" y="{height - 8}" '
                     f'text-anchor="middle">{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def line(points: Sequence[tuple[float, float]], *, label: str, floor: float | None = None,
         ticks: Sequence[tuple[float, str]] = (), width: int = WIDTH,
         height: int = HEIGHT) -> Markup:
    """A line through (x, y) points, y from 0 to 1, with an optional dashed floor."""
    plot_w = width - PAD_LEFT - 8
    plot_h = height - PAD_BOTTOM - PAD_TOP
    if not points:
        return Markup("")
    x0, x1 = points[0][0], points[-1][0]
    span = (x1 - x0) or 1

    def px(x: float) -> float:
        return PAD_LEFT + plot_w * (x - x0) / span

    def py(y: float) -> float:
        return PAD_TOP + plot_h * (1 - max(0.0, min(1.0, y)))

    parts = [f'<svg class="plot" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">',
             f"<title>{escape(label)}</title>"]
    for frac in (0, 0.5, 1):
        parts.append(f'<line class="grid" x1="{PAD_LEFT}" x2="{width - 8}" '
                     f'y1="{py(frac):.1f}" y2="{py(frac):.1f}"/>')
        parts.append(f'<text class="tick" x="{PAD_LEFT - 6}" y="{py(frac) + 4:.1f}" '
                     f'text-anchor="end">{frac:g}</text>')
    if floor is not None:
        parts.append(f'<line class="floor" x1="{PAD_LEFT}" x2="{width - 8}" '
                     f'y1="{py(floor):.1f}" y2="{py(floor):.1f}"/>')
    path = " ".join(f"{'M' if i == 0 else 'L'}{px(x):.1f},{py(y):.1f}"
                    for i, (x, y) in enumerate(points))
    parts.append(f'<path class="curve" d="{path}"/>')
    for x, text in ticks:
        parts.append(f'<text class="tick" x="{px(x):.1f}" y="{height - 8}" '
                     f'text-anchor="middle">{escape(text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.3g}M"
    if value >= 1000:
        return f"{value / 1000:.3g}k"
    return f"{value:.3g}"


__all__ = ["bars", "line"]
