"""The report's plots as inline SVG: no script, no external resource, so they render under
a Content-Security-Policy of ``default-src 'none'``. Colours come from the page's CSS
classes (``.bar``, ``.line``, ``.axis`` ...), so the plots follow its light or dark theme.
Every plot has a ``<title>`` and an ``aria-label`` saying what it shows."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from . import _format
from ._timeline import Bucket, Timeline

_LEFT, _RIGHT, _TOP, _BOTTOM = 52, 12, 14, 30


def _svg(width: int, height: int, label: str, body: list[str]) -> str:
    return (
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}"><title>{escape(label)}</title>{"".join(body)}</svg>'
    )


def _text(x: float, y: float, text: str, cls: str = "tick", anchor: str = "middle") -> str:
    return (
        f'<text class="{cls}" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">'
        f"{escape(text)}</text>"
    )


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2, 2.5 or 5 × 10^k at or above ``value`` (an axis maximum)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power * 1.0000001:
            return step * power
    return 10 * power


def _log_ticks(low: float, high: float) -> list[float]:
    """1-2-5 durations (seconds) between ``low`` and ``high``; at most about 7."""
    ticks: list[float] = []
    for exponent in range(math.floor(math.log10(low)) - 1, math.ceil(math.log10(high)) + 1):
        for mantissa in (1, 2, 5):
            value = mantissa * 10.0**exponent
            if low <= value <= high:
                ticks.append(value)
    while len(ticks) > 7:
        ticks = ticks[::2]
    return ticks


def histogram(
    bins: Sequence[tuple[float, float, float]],
    markers: Sequence[tuple[str, float | None]],
    label: str,
    *,
    width: int = 460,
    height: int = 170,
) -> str:
    """Bars of ``(from_s, to_s, calls)`` over a log duration axis, dashed lines at
    ``markers`` (``("p95", seconds)``)."""
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    body: list[str] = []
    if not bins:
        body.append(_text(width / 2, height / 2, "no latency figures", "note"))
        return _svg(width, height, label, body)
    low, high = bins[0][0], bins[-1][1]
    log_low, log_span = math.log(low), max(math.log(high) - math.log(low), 1e-9)

    def x_of(seconds: float) -> float:
        return _LEFT + plot_w * (math.log(max(seconds, low)) - log_low) / log_span

    top = _nice_ceiling(max(n for _, _, n in bins))
    slot = plot_w / len(bins)
    base = _TOP + plot_h
    body.append(f'<line class="axis" x1="{_LEFT}" y1="{base}" x2="{_LEFT + plot_w}" y2="{base}"/>')
    body.append(f'<line class="axis" x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{base}"/>')
    body.append(_text(_LEFT - 6, _TOP + 4, _format.count(top), anchor="end"))
    body.append(_text(_LEFT - 6, base, "0", anchor="end"))
    body.append(_text(14, _TOP + plot_h / 2, "calls", "axis-label"))
    for k, (lo, hi, n) in enumerate(bins):
        if n <= 0:
            continue
        h = max(plot_h * n / top, 1.0)
        body.append(
            f'<rect class="bar" x="{_LEFT + k * slot + 0.5:.1f}" y="{base - h:.1f}" '
            f'width="{max(slot - 1.0, 1.0):.1f}" height="{h:.1f}">'
            f"<title>{escape(_format.duration(lo))} – {escape(_format.duration(hi))}: "
            f"{escape(_format.count(round(n, 1)))} calls</title></rect>"
        )
    ends = [(low, "start"), (high, "end")] if high > low * 1.01 else [(low, "start")]
    for tick, anchor in ends:
        body.append(_text(x_of(tick), base + 16, _format.duration(tick), anchor=anchor))
    for tick in _log_ticks(low, high) if high > low * 1.01 else []:
        x = x_of(tick)
        body.append(f'<line class="grid" x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}"/>')
        if all(abs(x - x_of(end)) > 75 for end, _ in ends):  # no overlap with the ends
            body.append(_text(x, base + 16, _format.duration(tick)))
    placed: list[tuple[int, float, float]] = []  # (row, from x, to x) of each label
    for name, seconds in markers:
        if seconds is None or not low <= seconds <= high * 1.0001:
            continue
        x = x_of(seconds)
        body.append(
            f'<line class="marker" x1="{x:.1f}" y1="{_TOP}" x2="{x:.1f}" y2="{base}">'
            f"<title>{escape(name)} {escape(_format.duration(seconds))}</title></line>"
        )
        right = x > width - _RIGHT - 30  # near the right edge: the label goes left of its line
        span = (x - 28, x - 1) if right else (x + 1, x + 28)
        # labels of close markers step down rather than overlap
        row = 0
        while any(r == row and a < span[1] and span[0] < b for r, a, b in placed):
            row += 1
        placed.append((row, *span))
        body.append(_text(x - 3 if right else x + 3, _TOP + 9 + 11 * row, name,
                          "marker-label", anchor="end" if right else "start"))  # fmt: skip
    return _svg(width, height, label, body)


def _time_axis(timeline: Timeline, x_of: Callable[[float], float], base: float) -> list[str]:
    body: list[str] = []
    start, end = timeline.start or 0.0, timeline.end or 0.0
    steps = max(1, min(6, len(timeline.buckets)))
    for k in range(steps + 1):
        at = start + (end - start) * k / steps
        x = x_of(at)
        anchor = "start" if k == 0 else "end" if k == steps else "middle"
        body.append(f'<line class="grid" x1="{x:.1f}" y1="{base}" x2="{x:.1f}" y2="{base + 4}"/>')
        body.append(_text(x, base + 16, _format.utc(at, with_date=False), anchor=anchor))
    return body


def series(
    timeline: Timeline,
    value: Callable[[Bucket], float | None],
    label: str,
    unit: str,
    *,
    kind: str = "bars",
    width: int = 1180,
    height: int = 180,
) -> str:
    """One value per bucket of ``timeline`` over time, as bars or as a line."""
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    buckets = timeline.buckets
    values = [value(bucket) for bucket in buckets]
    known = [v for v in values if v is not None]
    top = _nice_ceiling(max(known) if known else 0.0)
    base = _TOP + plot_h
    start, end = timeline.start or 0.0, timeline.end or 1.0

    def x_of(at: float) -> float:
        return _LEFT + plot_w * (at - start) / max(end - start, 1e-9)

    def y_of(v: float) -> float:
        return base - plot_h * v / top

    body = [
        f'<line class="axis" x1="{_LEFT}" y1="{base}" x2="{_LEFT + plot_w}" y2="{base}"/>',
        f'<line class="axis" x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{base}"/>',
        f'<line class="grid" x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT + plot_w}" y2="{_TOP}"/>',
        _text(_LEFT - 6, _TOP + 4, _format.count(top), anchor="end"),
        _text(_LEFT - 6, base, "0", anchor="end"),
        _text(_LEFT + 4, _TOP - 3, unit, "axis-label", anchor="start"),
    ]
    slot = plot_w / max(len(buckets), 1)
    points: list[str] = []
    for bucket, v in zip(buckets, values, strict=True):
        if v is None:
            continue
        tip = f"{_format.utc(bucket.start, with_date=False)}: {_format.count(round(v, 2))} {unit}"
        if kind == "bars":
            h = max(plot_h * v / top, 1.0 if v > 0 else 0.0)
            body.append(
                f'<rect class="bar" x="{x_of(bucket.start) + 0.5:.1f}" y="{base - h:.1f}" '
                f'width="{max(slot - 1.0, 1.0):.1f}" height="{h:.1f}">'
                f"<title>{escape(tip)}</title></rect>"
            )
        else:
            x, y = x_of(bucket.start) + slot / 2, y_of(v)
            points.append(f"{x:.1f},{y:.1f}")
            body.append(
                f'<circle class="dot" cx="{x:.1f}" cy="{y:.1f}" r="2.5">'
                f"<title>{escape(tip)}</title></circle>"
            )
    if len(points) > 1:
        body.insert(6, f'<polyline class="line" points="{" ".join(points)}"/>')
    body.extend(_time_axis(timeline, x_of, base))
    return _svg(width, height, label, body)


def before_after(before_ms: float | None, after_ms: float | None, label: str) -> str:
    """Two horizontal bars, before and after, on one scale."""
    width, height, left = 240, 40, 46
    known = [v for v in (before_ms, after_ms) if v is not None]
    top = max(known) if known else 1.0
    body = []
    for row, (name, v, cls) in enumerate((("before", before_ms, "bar before"),
                                          ("after", after_ms, "bar after"))):  # fmt: skip
        y = 4 + row * 18
        body.append(_text(left - 6, y + 11, name, anchor="end"))
        if v is None:
            body.append(_text(left + 4, y + 11, "not measured", "note", anchor="start"))
            continue
        w = max((width - left - 70) * v / top, 1.0) if top > 0 else 1.0
        body.append(f'<rect class="{cls}" x="{left}" y="{y}" width="{w:.1f}" height="14"/>')
        body.append(_text(left + w + 4, y + 11, _format.ms(v), anchor="start"))
    return _svg(width, height, label, body)
