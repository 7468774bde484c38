"""Replay stored trades as a live feed: in time order, at N× real time or as fast as possible.

The arrival time handed to the engine with each trade is when it would have
arrived had the market been live at that speed (its scheduled time), not when the
replay loop got round to it, so measured latency includes the batching delay.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime

import polars as pl

Clock = Callable[[], float]
Sleep = Callable[[float], None]


def replay(
    trades: pl.DataFrame | Iterable[pl.DataFrame],
    *,
    speed: float | None,
    batch_trades: int = 100_000,
    tick_s: float = 0.05,
    clock: Clock = time.time,
    sleep: Sleep = time.sleep,
) -> Iterator[tuple[pl.DataFrame, pl.Series]]:
    """Yield (trades, arrival times) in timestamp order; `speed=None` means as fast as possible.

    `trades` is one frame, or consecutive spans of time (each frame's trades after the previous
    frame's), as a replay larger than memory reads them; all share one clock, as if one frame.
    """
    origin: tuple[datetime, float] | None = None
    for frame in [trades] if isinstance(trades, pl.DataFrame) else trades:
        ordered = frame.sort("ts", maintain_order=True)
        if ordered.is_empty():
            continue
        if speed is None:
            for chunk in ordered.iter_slices(batch_trades):
                yield chunk, pl.Series("arrived", [clock()] * chunk.height, dtype=pl.Float64)
            continue
        if origin is None:
            origin = (ordered["ts"][0], clock())
        start_data, start_wall = origin
        offsets = (ordered["ts"] - start_data).dt.total_microseconds() / 1e6 / speed
        due = offsets + start_wall
        sent = 0
        while sent < ordered.height:
            now = clock()
            upto = int(due.search_sorted(now, side="right"))
            upto = min(max(upto, sent), sent + batch_trades)
            if upto > sent:
                yield ordered.slice(sent, upto - sent), due.slice(sent, upto - sent).alias("arrived")
                sent = upto
                continue
            sleep(max(0.0, min(tick_s, float(due[sent]) - now)))


def parse_speed(text: str) -> float | None:
    """`max` → None (as fast as possible); a positive number → that multiple of real time."""
    from tapewatch.errors import InputError

    if text.strip().lower() == "max":
        return None
    try:
        value = float(text.rstrip("xX"))
    except ValueError:
        value = -1.0
    if value <= 0:
        raise InputError(f"--speed '{text}': expected max or a positive number such as 1, 10 or 0.5")
    return value
