"""``scalper report --plot FILE.png``: the net equity curve drawn with matplotlib.

matplotlib is the optional ``plot`` extra, imported only when a chart is asked for, so
the report runs without it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from ..core.pnl import ZERO, Report
from .formats import money, pct

__all__ = ["render_plot"]


def render_plot(report: Report, path: str, *, width_px: int = 1400, height_px: int = 700) -> None:
    """Draw the net equity curve to a PNG at ``path`` (matplotlib, Agg backend).

    A step line of net realised PnL over UTC time, entries (triangles, by side) and
    exits (crosses) marked on it, drawdowns from the running peak shaded red, a zero
    line, labelled axes and a title with the totals. Raises ``ModuleNotFoundError``
    when matplotlib (the ``plot`` extra) is not installed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    dpi = 100
    fig, ax = plt.subplots(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    try:

        def x_of(ts_ms: int) -> float:  # matplotlib's date number of a UTC time
            return float(mdates.date2num(datetime.fromtimestamp(ts_ms / 1000, tz=UTC)))  # type: ignore[no-untyped-call]

        times = [x_of(ts) for ts, _ in report.equity]
        values = [float(v) for _, v in report.equity]
        if report.equity:
            # start from 0 just before the first fill, so the first fee shows as a step
            times = [x_of(report.equity[0][0] - 1000), *times]
            values = [0.0, *values]
        peaks: list[float] = []
        peak = 0.0
        for v in values:
            peak = max(peak, v)
            peaks.append(peak)
        ax.step(times, values, where="post", color="#1f5fbf", lw=1.6, label="net PnL (after fees)")
        if times:
            ax.fill_between(
                times, values, peaks, step="post", color="#d62728", alpha=0.18, label="drawdown"
            )
        at = {ts: float(v) for ts, v in report.equity}
        opens_long: list[tuple[float, float]] = []
        opens_short: list[tuple[float, float]] = []
        exits: list[tuple[float, float]] = []
        positions: dict[str, Decimal] = {}
        for fill in report.fills:
            size = positions.get(fill.symbol, ZERO)
            signed = fill.qty if fill.side == "Buy" else -fill.qty
            point = (x_of(fill.ts_ms), at.get(fill.ts_ms, 0.0))
            if size == 0 or (size > 0) == (signed > 0):
                (opens_long if signed > 0 else opens_short).append(point)
            else:
                exits.append(point)
            positions[fill.symbol] = size + signed
        for points, marker, color, label in (
            (opens_long, "^", "#2ca02c", "entry long"),
            (opens_short, "v", "#ff7f0e", "entry short"),
            (exits, "X", "#222222", "exit"),
        ):
            if points:
                ax.scatter(
                    [p[0] for p in points],
                    [p[1] for p in points],
                    marker=marker,
                    color=color,
                    s=48,
                    zorder=3,
                    label=label,
                )
        ax.axhline(0.0, color="#888888", lw=0.8)
        ax.xaxis_date(tz=UTC)
        locator = mdates.AutoDateLocator(tz=UTC)  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        formatter = mdates.ConciseDateFormatter(locator, tz=UTC)  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_formatter(formatter)
        ax.set_xlabel("time (UTC)")
        ax.set_ylabel("net realised PnL (USDT)")
        ax.set_title(
            f"scalper equity: {len(report.trips)} round trips, win rate "
            f"{pct(report.win_rate)}, net {money(report.net)} USDT, "
            f"fees {money(report.fees)}, max drawdown {money(report.max_drawdown)}"
        )
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left")
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
