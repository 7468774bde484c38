"""Kamps & Kleinberg (2018), "To the moon": price and volume both breaking above rolling means.

The first published pump-and-dump rule for crypto candles, kept for comparison with
the trade-level onset detector: a candle is anomalous when its high exceeds the mean
close of the previous `window` candles by `price_threshold` and its volume exceeds
their mean volume by `volume_threshold`. The means exclude the candle itself, so the
decision uses only data up to the candle's end; consecutive anomalous candles are one
alert. `detected_at` is the last trade of the candle when it was built from trades,
else the candle's close time.
"""

from __future__ import annotations

import polars as pl

from tapewatch.detect.base import CandleDetector, DetectorState
from tapewatch.detect.pump.settings import KampsKleinbergSettings
from tapewatch.detect.scoring import excess_score
from tapewatch.durations import parse_duration
from tapewatch.io.derive import stable
from tapewatch.records import Alert

KEY = ["venue", "symbol", "interval"]


class KampsKleinbergDetector(CandleDetector):
    """Flags candles whose price and volume both spike above their recent means."""

    name = "kamps_kleinberg"
    typology = "pump_and_dump"

    def __init__(self, settings: KampsKleinbergSettings | None = None) -> None:
        self.settings = settings or KampsKleinbergSettings()

    @property
    def lookback_bars(self) -> int:
        """Candles a decision reads: the rolling window and the previous candle (for runs)."""
        return self.settings.window + 1

    def detect(self, frame: pl.DataFrame, state: DetectorState | None = None) -> list[Alert]:
        """Alerts for every venue/symbol/interval in a bars frame sorted by those and ts (see DetectorState)."""
        if frame.is_empty():
            return []
        s = self.settings
        previous = {"window_size": s.window, "min_samples": s.min_history}
        flagged = (
            frame.lazy()
            .with_columns(
                mean_close=stable(pl.col("close").shift(1).rolling_mean(**previous).over(KEY)),
                mean_volume=stable(pl.col("volume").shift(1).rolling_mean(**previous).over(KEY)),
            )
            .with_columns(
                price_ratio=pl.col("high") / pl.col("mean_close"),
                volume_ratio=pl.col("volume") / pl.col("mean_volume"),
            )
            .with_columns(
                hit=(
                    (pl.col("price_ratio") >= s.price_threshold)
                    & (pl.col("volume_ratio") >= s.volume_threshold)
                ).fill_null(False)  # no decision without history
            )
            .with_columns(first_of_run=pl.col("hit") & ~pl.col("hit").shift(1, fill_value=False).over(KEY))
        )
        flagged = (state or DetectorState()).undecided(flagged, KEY).filter(pl.col("first_of_run")).collect()
        if state is not None:
            state.advance(KEY, frame.select(*KEY, "ts"), flagged.select(*KEY, "ts"))
        return [self._alert(row) for row in flagged.iter_rows(named=True)]

    def _alert(self, row: dict) -> Alert:
        s = self.settings
        end = row["ts"] + parse_duration(row["interval"], what="interval")
        detected_at = row.get("last_trade_ts") or end
        return Alert.build(
            detector=self.name,
            typology=self.typology,
            venue=row["venue"],
            symbol=row["symbol"],
            start=row["ts"],
            end=end,
            detected_at=detected_at,
            score=excess_score(
                row["price_ratio"] / s.price_threshold, row["volume_ratio"] / s.volume_threshold
            ),
            evidence={
                "interval": row["interval"],
                "window_candles": s.window,
                "high": row["high"],
                "mean_close": row["mean_close"],
                "price_ratio": round(row["price_ratio"], 4),
                "volume": row["volume"],
                "mean_volume": row["mean_volume"],
                "volume_ratio": round(row["volume_ratio"], 3),
                "thresholds": {"price": s.price_threshold, "volume": s.volume_threshold},
            },
        )
