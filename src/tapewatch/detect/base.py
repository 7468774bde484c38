"""The one interface every detector implements, in the spirit of scikit-learn/River estimators.

A detector is configured once and then called on normalised frames: `detect(frame)`
gets every symbol at once (sorted by venue, symbol, ts) and returns alerts. It must be
causal — a decision at `detected_at` reads only rows with ts ≤ `detected_at` — so the
batch engine, the streaming engine (the same call on each symbol's recent tail) and
backtests agree.
"""

from __future__ import annotations

from typing import Literal, Protocol, runtime_checkable

import polars as pl

from tapewatch.records import Alert

InputKind = Literal["trades", "bars"]


@runtime_checkable
class Detector(Protocol):
    """What the engines need to know about a detector."""

    name: str
    typology: str
    needs: InputKind

    def detect(self, frame: pl.DataFrame) -> list[Alert]:
        """Alerts for every symbol in `frame` (trades or bars, per `needs`)."""
        ...


class BarDetector(Detector, Protocol):
    """A detector on candles also says which candle size to build when the input is trades."""

    interval: str
