"""Batch detection over a history too long to hold at once: the streaming engine, fed slice after slice.

The streaming engine already decides each moment exactly as the batch engine does (the contract test over
every detector holds it to that), keeping only what its detectors look back over, their states, open
candles and pending follow-ups. Fed consecutive slices of time as history (no arrival times), it is the
batch engine with a memory bounded by one slice plus the lookback: the out-of-core path for a symbol
whose history does not fit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import polars as pl

from tapewatch.detect.base import Detector
from tapewatch.engine.batch import detection_order
from tapewatch.engine.kinds import ORDERS, TRADES
from tapewatch.engine.stream import NOT_LIVE, Emitted, StreamEngine
from tapewatch.io.derive import order_events
from tapewatch.records import Alert

SLICED_KINDS = ("trades", "orders")
"""What a sliced run reads. Candle files and L2 book updates are not sliced: a book is rebuilt from its
first update, and candles are few; a partition holding them is detected whole."""


def run_in_slices(
    detectors: Sequence[Detector],
    slices: Iterable[dict[str, pl.DataFrame]],
    order_symbols: pl.DataFrame | None = None,
) -> list[Alert]:
    """The batch engine's alerts for records given as consecutive slices of time.

    Each slice maps "trades" and "orders" to that span's rows (sorted by venue, symbol, ts; a timestamp
    never split across slices). `order_symbols` are the venues and symbols with order events anywhere in
    the history: each slice's trades on them become executions (`order_events`), as in a whole run.
    """
    engines = [
        StreamEngine(detectors, kind=kind)
        for kind in (TRADES, ORDERS)
        if any(kind.serves(detector) for detector in detectors)
    ]
    latest: dict[str, Alert] = {}

    def keep(emitted: list[Emitted]) -> None:
        for item in emitted:  # an update (a completed follow-up) replaces the alert
            latest[item.alert.id] = item.alert

    for records in slices:
        for engine in engines:
            rows = (
                records["trades"]
                if engine.kind is TRADES
                else order_events(records["orders"], records["trades"], order_symbols)
            )
            engine.push(rows, arrived_at=NOT_LIVE)
            keep(engine.step())
    for engine in engines:
        keep(engine.finish())
    return sorted(latest.values(), key=detection_order)
