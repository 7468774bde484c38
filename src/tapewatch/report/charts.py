"""Charts of one alert: candles and taker volume around it, the alert window shaded.

An analyst decides in seconds whether an alert is worth a case by looking at
the tape around it, so every alert can be drawn twice from the same candles:
a PNG (matplotlib, Agg, for e-mails, chat notifications and reports) and a
self-contained interactive HTML page (plotly, works offline, for the console).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
import plotly.graph_objects as go
import polars as pl
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from plotly.subplots import make_subplots

from tapewatch.errors import InputError
from tapewatch.io.derive import ohlcv_aggregations
from tapewatch.records import TRADE_REQUIRED, TRADE_SCHEMA, Alert, conform

MIN_CONTEXT = timedelta(minutes=30)
"""Context shown on each side of the alert at least, so even a short alert shows the normal market."""
CONTEXT_DURATIONS = 3
"""Otherwise the context is this many alert durations, so a long alert still has a baseline."""
MAX_CANDLES = 200
"""Upper bound on candles; the bucket ladder below keeps the count above ~80 for spans over an hour."""
BUCKETS = tuple(
    timedelta(seconds=s)
    for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600, 43200, 86400)
) + (timedelta(days=2), timedelta(days=7))
"""Round candle sizes, each at most 2.5× the previous, so the chosen one yields 80–200 candles."""

UP, DOWN = "#26a69a", "#ef5350"
WINDOW_COLOUR, DETECTED_COLOUR = "#ffa726", "#6a1b9a"
VOLUME_SERIES = (
    ("buy", "taker buy", UP),
    ("sell", "taker sell", DOWN),
    ("unknown", "side unknown", "#9e9e9e"),
)
"""Candle columns stacked as volume bars, with their legend labels and colours (shared by PNG and HTML)."""


@dataclass(frozen=True)
class ChartData:
    """The candles of one alert's chart, with everything both renderers need to annotate them."""

    candles: pl.DataFrame  # ts (bucket start, UTC), open, high, low, close, volume, buy, sell, unknown
    bucket: timedelta
    alert: Alert

    @property
    def centres(self) -> list[datetime]:
        """Candle centres as naive UTC datetimes (plotly has no time zones; matplotlib is told UTC)."""
        return [ts + self.bucket / 2 for ts in self.candles["ts"].dt.replace_time_zone(None).to_list()]

    def title(self) -> str:
        a = self.alert
        return f"{a.symbol} on {a.venue}: {a.typology.replace('_', ' ')}, score {a.score:.2f} ({a.severity})"

    def subtitle(self) -> str:
        a = self.alert
        return (
            f"alert {_naive_utc(a.start):%Y-%m-%d %H:%M:%S} to {_naive_utc(a.end):%H:%M:%S} UTC, "
            f"detected {_naive_utc(a.detected_at):%H:%M:%S}; {_label(self.bucket)} candles; "
            f"detector {a.detector}"
        )


def render_alert_chart(
    trades: pl.DataFrame,
    alert: Alert,
    png_path: Path,
    html_path: Path,
    *,
    context: timedelta | None = None,
) -> None:
    """Draw the market around an alert to a PNG and to an offline, interactive HTML page.

    Uses the trades of the alert's venue and symbol (trades with no venue count
    as the alert's, since single-venue files often have none) in
    [start − context, max(end, detected_at) + context]; `context` defaults to
    max(3 × alert duration, 30 min). Raises InputError when no trade falls there.
    """
    data = chart_data(trades, alert, context=context)
    for path in (png_path, html_path):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    render_png(data, Path(png_path))
    render_html(data, Path(html_path))


def chart_data(trades: pl.DataFrame, alert: Alert, *, context: timedelta | None = None) -> ChartData:
    """Select the alert's trades in its chart window and bucket them into candles."""
    missing = [c for c in TRADE_REQUIRED if c not in trades.columns]
    if missing:
        raise InputError(f"trades for the chart of alert {alert.id} lack column(s) {', '.join(missing)}")
    lo, hi = chart_window(alert, context)
    frame = conform(trades, TRADE_SCHEMA).filter(
        (pl.col("symbol") == alert.symbol)
        & (pl.col("venue").is_null() | (pl.col("venue") == alert.venue))
        & pl.col("ts").is_between(lo, hi)
        & pl.col("price").is_not_null()
    )
    if frame.is_empty():
        raise InputError(
            f"no trades of {alert.symbol} on {alert.venue} between {lo:%Y-%m-%d %H:%M:%S} and "
            f"{hi:%Y-%m-%d %H:%M:%S} UTC to chart alert {alert.id}"
        )
    bucket = choose_bucket(hi - lo)
    return ChartData(candles=to_candles(frame, bucket), bucket=bucket, alert=alert)


def chart_window(alert: Alert, context: timedelta | None = None) -> tuple[datetime, datetime]:
    """The time range to chart: the alert and its detection, with context on both sides."""
    start, end, detected = (_as_utc(t) for t in (alert.start, alert.end, alert.detected_at))
    if context is None:
        context = max(CONTEXT_DURATIONS * (end - start), MIN_CONTEXT)
    return start - context, max(end, detected) + context


def choose_bucket(span: timedelta) -> timedelta:
    """The smallest round candle size that keeps the chart at or under MAX_CANDLES candles."""
    for bucket in BUCKETS:
        if span / bucket <= MAX_CANDLES:
            return bucket
    return BUCKETS[-1]


def to_candles(trades: pl.DataFrame, bucket: timedelta) -> pl.DataFrame:
    """OHLC and volume per bucket, volume split by taker side (buy, sell, unknown)."""
    side = pl.col("side").str.to_lowercase()
    return (
        trades.sort("ts")
        .group_by(pl.col("ts").dt.truncate(bucket), maintain_order=True)
        .agg(
            *ohlcv_aggregations(),
            buy=pl.col("amount").filter(side == "buy").sum(),
            sell=pl.col("amount").filter(side == "sell").sum(),
            unknown=pl.col("amount").filter(side.is_null() | ~side.is_in(["buy", "sell"])).sum(),
        )
        .sort("ts")
    )


def render_png(data: ChartData, path: Path) -> None:
    """A static chart through matplotlib's Agg canvas: no display, no pyplot global state."""
    fig = Figure(figsize=(12, 7), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    price_ax, volume_ax = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    x = mdates.date2num(data.centres)
    width = 0.7 * data.bucket / timedelta(days=1)  # date numbers are days
    _draw_candles(price_ax, data.candles, x, width)
    _draw_volume(volume_ax, data.candles, x, width)
    _mark_alert(data.alert, price_ax, volume_ax)
    price_ax.set_ylabel("price")
    volume_ax.set_ylabel("volume")
    volume_ax.set_xlabel("time (UTC)")
    locator = mdates.AutoDateLocator(tz=UTC)
    volume_ax.xaxis.set_major_locator(locator)
    volume_ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
    fig.suptitle(f"{data.title()}\n{data.subtitle()}", fontsize=11)
    fig.savefig(path, format="png")


def _draw_candles(ax: Axes, candles: pl.DataFrame, x: np.ndarray, width: float) -> None:
    o, h, l, c = (candles[name].to_numpy() for name in ("open", "high", "low", "close"))
    colours = np.where(c >= o, UP, DOWN)
    tick = max(float(np.nanmax(h) - np.nanmin(l)), float(np.nanmax(h)) * 1e-6) * 0.002
    ax.vlines(x, l, h, colors=colours.tolist(), linewidth=0.8)
    bodies = np.maximum(np.abs(c - o), tick)  # a flat candle still shows as a tick
    ax.bar(x, bodies, width=width, bottom=np.minimum(o, c), color=colours, linewidth=0)
    ax.grid(alpha=0.25)


def _draw_volume(ax: Axes, candles: pl.DataFrame, x: np.ndarray, width: float) -> None:
    bottom = np.zeros(candles.height)
    for column, label, colour in VOLUME_SERIES:
        values = candles[column].to_numpy()
        if values.sum() > 0:
            ax.bar(x, values, width=width, bottom=bottom, color=colour, label=label, linewidth=0)
            bottom = bottom + values
    ax.set_ylim(0, max(float(bottom.max()), 1e-12) * 1.3)  # headroom so the legend sits above the bars
    ax.legend(loc="upper left", fontsize=8, frameon=False, ncols=3)
    ax.grid(alpha=0.25)


def _mark_alert(alert: Alert, price_ax: Axes, volume_ax: Axes) -> None:
    start, end, detected = (
        mdates.date2num(_naive_utc(t)) for t in (alert.start, alert.end, alert.detected_at)
    )
    for ax in (price_ax, volume_ax):
        ax.axvspan(start, end, color=WINDOW_COLOUR, alpha=0.18, linewidth=0, zorder=0)  # behind the bars
        ax.axvline(detected, color=DETECTED_COLOUR, linestyle="--", linewidth=1.2, zorder=3)
    handles = [
        Patch(color=WINDOW_COLOUR, alpha=0.35, label="alert window"),
        Line2D([], [], color=DETECTED_COLOUR, linestyle="--", label="detected"),
    ]
    # above the plot area, where it can never hide a candle
    price_ax.legend(
        handles=handles, loc="lower right", bbox_to_anchor=(1, 1), ncols=2, fontsize=8, frameon=False
    )


def render_html(data: ChartData, path: Path) -> None:
    """An interactive page with plotly.js embedded, so it opens offline and can be attached to a case."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.75, 0.25], vertical_spacing=0.04)
    x, c = data.centres, data.candles
    fig.add_trace(
        go.Candlestick(
            x=x,
            open=c["open"],
            high=c["high"],
            low=c["low"],
            close=c["close"],
            name="price",
            increasing_line_color=UP,
            decreasing_line_color=DOWN,
        ),
        row=1,
        col=1,
    )
    bar_width_ms = 0.8 * data.bucket / timedelta(milliseconds=1)
    for column, label, colour in VOLUME_SERIES:
        if c[column].sum() > 0:
            fig.add_trace(
                go.Bar(x=x, y=c[column], name=label, marker_color=colour, width=bar_width_ms),
                row=2,
                col=1,
            )
    a = data.alert
    start, end, detected = (_naive_utc(t) for t in (a.start, a.end, a.detected_at))
    fig.add_vrect(x0=start, x1=end, fillcolor=WINDOW_COLOUR, opacity=0.18, line_width=0, row="all", col=1)
    fig.add_vline(x=detected, line_dash="dash", line_color=DETECTED_COLOUR, line_width=1.2, row="all", col=1)
    fig.add_annotation(
        x=detected,
        y=1.0,
        yref="paper",
        text="detected",
        showarrow=False,
        yanchor="bottom",
        font={"color": DETECTED_COLOUR},
    )
    fig.update_layout(
        title={"text": f"{data.title()}<br><sup>{data.subtitle()}</sup>"},
        barmode="stack",
        template="plotly_white",
        hovermode="x unified",
        legend={"orientation": "h", "y": -0.12},
    )
    fig.update_xaxes(rangeslider_visible=False)
    fig.update_xaxes(title_text="time (UTC)", row=2, col=1)
    fig.update_yaxes(title_text="price", row=1, col=1)
    fig.update_yaxes(title_text="volume", row=2, col=1)
    body = fig.to_html(
        include_plotlyjs=True, full_html=False, config={"displaylogo": False, "responsive": True}
    )
    path.write_text(_PAGE.format(title=html.escape(data.title()), body=body), encoding="utf-8")


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>html, body {{ height: 100%; margin: 0; font-family: sans-serif; }}</style>
</head>
<body>
{body}
</body>
</html>
"""
"""Plotly's own full page has no <title>; ours names the alert in the browser tab and in search."""


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _naive_utc(moment: datetime) -> datetime:
    return _as_utc(moment).replace(tzinfo=None)


def _label(bucket: timedelta) -> str:
    seconds = int(bucket.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"
