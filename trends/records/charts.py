"""Small inline SVG charts for the HTML reports: lines (learning curves) and bars with error bars (a metric across a
sweep's variants). Strings, not files: milliseconds per chart, crisp at any zoom, no plotting library at run end."""
from __future__ import annotations

import math
import re
from html import escape
from typing import Sequence

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf"]
W, H = 440, 260  # the chart's box (it grows for long labels); the plot area leaves room for the axes' labels
LEFT, RIGHT, TOP, BOTTOM = 58, 12, 28, 40
BASE = H - BOTTOM  # the plot area's lower edge: what a chart adds below it (labels, a legend) makes it taller
CHAR = 5.4  # the width of a character at font-size 9, generously: text is wrapped to fit, never cut
LINE = 11  # the height of a line of text at font-size 9
MIN_SLOT = 64  # the narrowest bar slot: more bars make the chart wider instead
INSIDE_LEGEND = 22  # names up to this long fit the legend in the plot's corner; longer ones go below the plot


def line_chart(series: dict[str, tuple[Sequence[float], Sequence[float]]], *, title: str, xlabel: str = "step",
               ylabel: str = "", spread: dict[str, Sequence[float]] | None = None) -> str:
    """One polyline per named (xs, ys) series; `spread` (± per point, e.g. a std over seeds) draws a band. A point
    that is not a finite number (a diverged run logs NaN) is skipped: the line shows what was measured."""
    series, spread = _finite_points(series, spread or {})
    if not series:
        return ""
    xs_all = [x for xs, _ in series.values() for x in xs]
    ys_all = [y for _, ys in series.values() for y in ys]
    for name, band in spread.items():
        ys_all += [y + s for y, s in zip(series[name][1], band)] + [y - s for y, s in zip(series[name][1], band)]
    sx, sy = _Scale(min(xs_all), max(xs_all), LEFT, W - RIGHT), _Scale(min(ys_all), max(ys_all), BASE, TOP)
    legend, height = _legend(list(series))
    parts = [_frame(title, xlabel, ylabel, sx, sy, W, height)]
    for i, (name, (xs, ys)) in enumerate(series.items()):
        colour = PALETTE[i % len(PALETTE)]
        band = spread.get(name)
        if band:
            upper = [f"{sx(x):.1f},{sy(y + s):.1f}" for x, y, s in zip(xs, ys, band)]
            lower = [f"{sx(x):.1f},{sy(y - s):.1f}" for x, y, s in zip(xs, ys, band)][::-1]
            parts.append(f'<polygon points="{" ".join(upper + lower)}" fill="{colour}" opacity="0.18"/>')
        points = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in zip(xs, ys))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="1.6"/>')
        if len(xs) <= 12:
            parts += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="2.5" fill="{colour}"/>' for x, y in zip(xs, ys)]
    parts.append(legend)
    return _svg(parts, title, W, height)


def _finite_points(series: dict[str, tuple[Sequence[float], Sequence[float]]], spread: dict[str, Sequence[float]]):
    """The series and their bands with only the points whose x, y (and ±) are finite numbers; a series left with no
    point is dropped."""
    kept, bands = {}, {}
    for name, (xs, ys) in series.items():
        band = spread.get(name)
        keep = [i for i, (x, y) in enumerate(zip(xs, ys))
                if _is_num(x) and _is_num(y) and (band is None or (i < len(band) and _is_num(band[i])))]
        if keep:
            kept[name] = ([xs[i] for i in keep], [ys[i] for i in keep])
            if band is not None:
                bands[name] = [band[i] for i in keep]
    return kept, bands


def bar_chart(labels: Sequence[str], values: Sequence[float], errors: Sequence[float] | None = None, *, title: str,
              ylabel: str = "", xlabel: str = "") -> str:
    """Bars with optional ± error bars; the value axis spans the data (differences, not the distance to zero). Each
    label is written in full under its bar, wrapped to the bar's slot (many bars widen the chart). A value that is not
    a finite number keeps its slot and label but draws no bar; an error that is not finite draws no error bar."""
    errors = [e if _is_num(e) else 0.0 for e in (errors or [0.0] * len(values))]
    drawn = [(v, e) for v, e in zip(values, errors) if _is_num(v)]
    if not drawn:
        return ""
    low = min(v - e for v, e in drawn)
    high = max(v + e for v, e in drawn)
    base = min(0.0, low) if low >= 0 and high > 0 and low < 0.5 * high else low - 0.1 * (high - low or 1)
    sy = _Scale(base, high, BASE, TOP)
    slot = max(MIN_SLOT, (W - LEFT - RIGHT) / len(values))
    width = round(LEFT + RIGHT + slot * len(values))
    lines = [wrap(label, int(slot * 0.94 / CHAR)) for label in labels]
    depth = max(len(ls) for ls in lines)
    height = BASE + 6 + LINE * depth + (16 if xlabel else 4)
    parts = [_frame(title, xlabel, ylabel, None, sy, width, height)]
    for i, (label, v, e) in enumerate(zip(labels, values, errors)):
        x = LEFT + i * slot + slot * 0.15
        colour = PALETTE[i % len(PALETTE)]
        if _is_num(v):
            parts.append(f'<rect x="{x:.1f}" y="{sy(v):.1f}" width="{slot * 0.7:.1f}" '
                         f'height="{max(sy(base) - sy(v), 0.5):.1f}" fill="{colour}"><title>{escape(label)}: '
                         f'{v:.4g} ± {e:.2g}</title></rect>')
            if e:
                cx = x + slot * 0.35
                parts.append(f'<path d="M{cx:.1f},{sy(v - e):.1f}V{sy(v + e):.1f}M{cx - 4:.1f},{sy(v - e):.1f}'
                             f'h8M{cx - 4:.1f},{sy(v + e):.1f}h8" stroke="#222" fill="none"/>')
        parts.append(_text_lines(lines[i], x + slot * 0.35, BASE + 14, anchor="middle"))
    return _svg(parts, title, width, height)


def wrap(text: str, chars: int) -> list[str]:
    """`text` in lines of at most `chars` characters (at least 4): broken between words, and a word longer than a
    line after one of `,=./_:-` (else anywhere); every character but the spaces at the breaks is kept."""
    chars = max(4, chars)
    lines: list[str] = []
    line = ""
    for word in text.split(" "):
        if len(f"{line} {word}" if line else word) <= chars:
            line = f"{line} {word}" if line else word
            continue
        if line:
            lines.append(line)
            line = ""
        for piece in re.split(r"(?<=[,=./_:\-])", word):
            if line and len(line + piece) > chars:
                lines.append(line)
                line = ""
            line += piece
            while len(line) > chars:
                lines.append(line[:chars])
                line = line[chars:]
    if line or not lines:
        lines.append(line)
    return lines


def _text_lines(lines: list[str], x: float, y: float, anchor: str = "start") -> str:
    spans = "".join(f'<tspan x="{x:.1f}" dy="{0 if i == 0 else LINE}">{escape(line)}</tspan>'
                    for i, line in enumerate(lines))
    return f'<text x="{x:.1f}" y="{y:.1f}" font-size="9" text-anchor="{anchor}">{spans}</text>'


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


def _frame(title: str, xlabel: str, ylabel: str, sx: _Scale | None, sy: _Scale, width: float = W,
           height: float = H) -> str:
    parts = [f'<text x="{width / 2}" y="16" font-size="12" font-weight="bold" text-anchor="middle">'
             f'{escape(title)}</text>',
             f'<line x1="{LEFT}" y1="{BASE}" x2="{width - RIGHT}" y2="{BASE}" stroke="#444"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{BASE}" stroke="#444"/>']
    for t in sy.ticks():
        parts.append(f'<line x1="{LEFT}" y1="{sy(t):.1f}" x2="{width - RIGHT}" y2="{sy(t):.1f}" stroke="#e4e4e4"/>'
                     f'<text x="{LEFT - 4}" y="{sy(t) + 3:.1f}" font-size="9" text-anchor="end">{t:.4g}</text>')
    if sx is not None:
        for t in sx.ticks():
            parts.append(f'<text x="{sx(t):.1f}" y="{BASE + 13}" font-size="9" text-anchor="middle">'
                         f'{t:.4g}</text>')
    if xlabel:  # below the tick labels of a line chart, below the bars' labels of a bar chart
        y = BASE + 32 if sx is not None else height - 6
        parts.append(f'<text x="{(LEFT + width - RIGHT) / 2}" y="{y}" font-size="10" text-anchor="middle">'
                     f'{escape(xlabel)}</text>')
    parts.append(f'<text x="12" y="{(TOP + BASE) / 2}" font-size="10" text-anchor="middle" '
                 f'transform="rotate(-90 12 {(TOP + BASE) / 2})">{escape(ylabel)}</text>')
    return "".join(parts)


def _legend(names: list[str]) -> tuple[str, int]:
    """The legend and the chart's height with it: in the plot's top-right corner where every name is short and
    there are at most 10, else below the plot, one full name (wrapped) per entry."""
    if len(names) <= 10 and all(len(n) <= INSIDE_LEGEND for n in names):
        rows = []
        for i, name in enumerate(names):
            y = TOP + 4 + 12 * i
            rows.append(f'<rect x="{W - RIGHT - 128}" y="{y}" width="9" height="3" '
                        f'fill="{PALETTE[i % len(PALETTE)]}"/>'
                        f'<text x="{W - RIGHT - 115}" y="{y + 4}" font-size="9">{escape(name)}</text>')
        return "".join(rows), H
    rows, y = [], H + 8
    for i, name in enumerate(names):
        lines = wrap(name, int((W - LEFT - RIGHT - 14) / CHAR))
        rows.append(f'<rect x="{LEFT}" y="{y - 4}" width="9" height="3" fill="{PALETTE[i % len(PALETTE)]}"/>'
                    + _text_lines(lines, LEFT + 13, y))
        y += LINE * len(lines) + 2
    return "".join(rows), y


def _svg(parts: list[str], title: str, width: float = W, height: float = H) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
            f'height="{height}" role="img" aria-label="{escape(title)}" font-family="sans-serif" '
            f'style="max-width: 100%; height: auto">{"".join(parts)}</svg>')


def _is_num(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
