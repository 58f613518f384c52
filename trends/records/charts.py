"""Small inline SVG charts for the HTML reports: lines (learning curves) and bars with error bars (a metric across a
sweep's variants). Strings, not files: milliseconds per chart, crisp at any zoom, no plotting library at run end."""
from __future__ import annotations

import math
from html import escape
from typing import Sequence

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]
W, H = 440, 260  # the chart's box; the plot area leaves room for the axes' labels
LEFT, RIGHT, TOP, BOTTOM = 58, 12, 28, 40


def line_chart(series: dict[str, tuple[Sequence[float], Sequence[float]]], *, title: str, xlabel: str = "step",
               ylabel: str = "", spread: dict[str, Sequence[float]] | None = None) -> str:
    """One polyline per named (xs, ys) series; `spread` (± per point, e.g. a std over seeds) draws a band."""
    series = {k: (list(xs), list(ys)) for k, (xs, ys) in series.items() if _finite(ys)}
    if not series:
        return ""
    xs_all = [x for xs, _ in series.values() for x in xs]
    ys_all = [y for _, ys in series.values() for y in ys if _is_num(y)]
    for name, band in (spread or {}).items():
        if name in series:
            ys_all += [y + s for y, s in zip(series[name][1], band)] + [y - s for y, s in zip(series[name][1], band)]
    sx, sy = _Scale(min(xs_all), max(xs_all), LEFT, W - RIGHT), _Scale(min(ys_all), max(ys_all), H - BOTTOM, TOP)
    parts = [_frame(title, xlabel, ylabel, sx, sy)]
    for i, (name, (xs, ys)) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        band = (spread or {}).get(name)
        if band:
            upper = [f"{sx(x):.1f},{sy(y + s):.1f}" for x, y, s in zip(xs, ys, band)]
            lower = [f"{sx(x):.1f},{sy(y - s):.1f}" for x, y, s in zip(xs, ys, band)][::-1]
            parts.append(f'<polygon points="{" ".join(upper + lower)}" fill="{colour}" opacity="0.18"/>')
        points = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys) if _is_num(y))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
        if len(xs) <= 12:
            parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}"/>'
                      for x, y in zip(xs, ys) if _is_num(y)]
    parts.append(_legend(list(series)))
    return _svg(parts, title)


def bar_chart(labels: Sequence[str], values: Sequence[float], errors: Sequence[float] | None = None, *, title: str,
              ylabel: str = "") -> str:
    """Bars with optional ± error bars; the value axis spans the data (differences, not the distance to zero)."""
    errors = list(errors or [0.0] * len(values))
    if not values:
        return ""
    low = min(v - e for v, e in zip(values, errors))
    high = max(v + e for v, e in zip(values, errors))
    base = min(0.0, low) if low >= 0 and high > 0 and low < 0.5 * high else low - 0.1 * (high - low or 1)
    sy = _Scale(base, high, H - BOTTOM, TOP)
    slot = (W - LEFT - RIGHT) / len(values)
    parts = [_frame(title, "", ylabel, None, sy)]
    for i, (label, v, e) in enumerate(zip(labels, values, errors)):
        x = LEFT + i * slot + slot * 0.15
        colour = PALETTE[i % len(PALETTE)]
        parts.append(f'<rect x="{x:.1f}" y="{sy(v):.1f}" width="{slot * 0.7:.1f}" '
                     f'height="{max(sy(base) - sy(v), 0.5):.1f}" fill="{colour}"><title>{escape(label)}: '
                     f'{v:.4g} ± {e:.2g}</title></rect>')
        if e:
            cx = x + slot * 0.35
            parts.append(f'<path d="M{cx:.1f},{sy(v - e):.1f}V{sy(v + e):.1f}M{cx - 4:.1f},{sy(v - e):.1f}'
                         f'h8M{cx - 4:.1f},{sy(v + e):.1f}h8" stroke="#222" fill="none"/>')
        short = label if len(label) <= 18 else label[:17] + "…"
        parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{H - BOTTOM + 14}" font-size="9" text-anchor="middle">'
                     f'{escape(short)}</text>')
    return _svg(parts, title)


class _Scale:
    """Data → pixels along one axis, with 5 % of air at both ends."""

    def __init__(self, low: float, high: float, start: float, end: float):
        if high == low:
            low, high = low - 1, high + 1
        pad = 0.05 * (high - low)
        self.low, self.high, self.start, self.end = low - pad, high + pad, start, end

    def __call__(self, value: float) -> float:
        return self.start + (value - self.low) / (self.high - self.low) * (self.end - self.start)

    def ticks(self, n: int = 5) -> list[float]:
        step = _nice((self.high - self.low) / n)
        first = math.ceil(self.low / step) * step
        return [first + i * step for i in range(n + 2) if first + i * step <= self.high]


def _nice(step: float) -> float:
    magnitude = 10 ** math.floor(math.log10(step))
    return next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= step)


def _frame(title: str, xlabel: str, ylabel: str, sx: _Scale | None, sy: _Scale) -> str:
    parts = [f'<text x="{W / 2}" y="16" font-size="12" font-weight="bold" text-anchor="middle">{escape(title)}</text>',
             f'<line x1="{LEFT}" y1="{H - BOTTOM}" x2="{W - RIGHT}" y2="{H - BOTTOM}" stroke="#444"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{H - BOTTOM}" stroke="#444"/>']
    for t in sy.ticks():
        parts.append(f'<line x1="{LEFT}" y1="{sy(t):.1f}" x2="{W - RIGHT}" y2="{sy(t):.1f}" stroke="#e4e4e4"/>'
                     f'<text x="{LEFT - 4}" y="{sy(t) + 3:.1f}" font-size="9" text-anchor="end">{t:.4g}</text>')
    if sx is not None:
        for t in sx.ticks():
            parts.append(f'<text x="{sx(t):.1f}" y="{H - BOTTOM + 13}" font-size="9" text-anchor="middle">'
                         f'{t:.4g}</text>')
        parts.append(f'<text x="{(LEFT + W - RIGHT) / 2}" y="{H - 8}" font-size="10" text-anchor="middle">'
                     f'{escape(xlabel)}</text>')
    parts.append(f'<text x="12" y="{(TOP + H - BOTTOM) / 2}" font-size="10" text-anchor="middle" '
                 f'transform="rotate(-90 12 {(TOP + H - BOTTOM) / 2})">{escape(ylabel)}</text>')
    return "".join(parts)


def _legend(names: list[str]) -> str:
    rows = []
    for i, name in enumerate(names[:10]):
        y = TOP + 4 + 12 * i
        rows.append(f'<rect x="{W - RIGHT - 128}" y="{y}" width="9" height="3" fill="{PALETTE[i % len(PALETTE)]}"/>'
                    f'<text x="{W - RIGHT - 115}" y="{y + 4}" font-size="9">{escape(name[:24])}</text>')
    return "".join(rows)


def _svg(parts: list[str], title: str) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" '
            f'aria-label="{escape(title)}" font-family="sans-serif">{"".join(parts)}</svg>')


def _is_num(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _finite(values) -> bool:
    return any(_is_num(v) for v in values)
