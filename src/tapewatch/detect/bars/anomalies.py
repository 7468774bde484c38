"""Bar anomalies: a candle whose amplitude, volume or price move lies far outside its own history.

Three detectors on candles of any venue and interval (1m … 1d), one per typology:

- `amplitude_anomaly`: the body (close − open) / open, and the range (high − low) / open
  on a log scale: a flash crash that recovers by the close shows only in the range;
- `volume_anomaly`: log volume, upward only (a quiet candle is no anomaly);
- `price_anomaly`: the log return from the previous close, and the gap at the open
  (open / previous close − 1).

Each feature is judged by its robust z against the trailing `window` candles of the
same venue/symbol/interval, the current candle excluded (see features), and a
candle is anomalous when any feature's |z| reaches its threshold. Every anomalous
candle is its own alert (a crash day and the rebound after it are two facts for an
analyst), so the decision of a candle reads only that candle and the ones before it;
the stream needs no state beyond which candles it has decided.

`bar_scores` gives every candle's z-scores and excesses without thresholding, for
risk scores and benchmarks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import polars as pl

from tapewatch.detect.bars.features import (
    KEY,
    Feature,
    body,
    gap,
    log_range,
    log_return,
    log_volume,
    spread,
    with_robust_z,
)
from tapewatch.detect.bars.settings import (
    AmplitudeAnomalySettings,
    BarBaselineSettings,
    PriceAnomalySettings,
    VolumeAnomalySettings,
)
from tapewatch.detect.base import CandleDetector, DetectorState
from tapewatch.detect.scoring import excess_score
from tapewatch.records import Alert

BAR_FIELDS = ("open", "high", "low", "close", "volume")


class BarAnomalyDetector(CandleDetector):
    """What the three bar anomaly detectors share: settings, lookback, detection and alerts.

    A subclass names itself and says which features it judges (`features`).
    """

    name: ClassVar[str]
    typology: ClassVar[str]
    settings: BarBaselineSettings

    def features(self) -> list[Feature]:
        """The features this detector judges, with their thresholds and scale floors."""
        raise NotImplementedError

    @property
    def lookback_bars(self) -> int:
        """Candles a decision reads: the baseline window and one more for the previous close."""
        return self.settings.window + 1

    def scored(self, frame: pl.LazyFrame, into: str = "excess") -> pl.LazyFrame:
        """The bars with every feature's value, baseline, z and excess, and the largest excess as `into`."""
        s = self.settings
        return with_robust_z(frame, self.features(), s.window, s.min_history, into)

    def detect(self, frame: pl.DataFrame, state: DetectorState | None = None) -> list[Alert]:
        """Alerts for every venue/symbol/interval in a bars frame sorted by those and ts (see DetectorState)."""
        if frame.is_empty():
            return []
        features = self.features()
        flagged = (state or DetectorState()).undecided(self.scored(frame.lazy()), KEY)
        flagged = flagged.filter(pl.col("excess") >= 1).collect()
        if state is not None:
            state.advance(KEY, frame.select(*KEY, "ts"), flagged.select(*KEY, "ts"))
        return [self._alert(row, features) for row in flagged.iter_rows(named=True)]

    def _alert(self, row: dict[str, Any], features: list[Feature]) -> Alert:
        judged = {feature.name: _judgement(row, feature) for feature in features}
        decisive = max(features, key=lambda feature: row[f"{feature.name}_excess"] or -math.inf)
        bar = {name: row[name] for name in BAR_FIELDS} | {"close_minus_open": row["close"] - row["open"]}
        return self.candle_alert(
            row,
            excess_score(row["excess"]),
            {
                "window_candles": self.settings.window,
                "feature": decisive.name,
                **judged[decisive.name],
                "features": judged,
                "bar": bar,
            },
        )


def _judgement(row: dict[str, Any], feature: Feature) -> dict[str, Any]:
    """A feature's value, baseline and z for the evidence (None where it had no baseline yet)."""
    name = feature.name
    return {
        "value": _sig(row[name]),
        "centre": _sig(row[f"{name}_centre"]),
        "scale": _sig(row[f"{name}_scale"]),
        "z": None if row[f"{name}_z"] is None else round(row[f"{name}_z"], 3),
        "threshold": feature.threshold,
    }


def _sig(value: float | None) -> float | None:
    """Six significant figures: enough to read, and no false precision in the evidence."""
    return None if value is None else float(f"{value:.6g}")


class AmplitudeAnomalyDetector(BarAnomalyDetector):
    """Flags candles whose body or range is far wider than the symbol's recent candles."""

    name = "amplitude_anomaly"
    typology = "amplitude_anomaly"

    def __init__(self, settings: AmplitudeAnomalySettings | None = None) -> None:
        self.settings = settings or AmplitudeAnomalySettings()

    def features(self) -> list[Feature]:
        """The relative body (either direction) and the log range (wider only)."""
        s = self.settings
        return [
            Feature("body", body(), "both", pl.lit(s.min_body_scale), s.body_threshold),
            Feature("log_range", log_range(), "up", pl.lit(s.min_range_scale), s.range_threshold),
        ]


class VolumeAnomalyDetector(BarAnomalyDetector):
    """Flags candles whose volume is far above the symbol's recent volumes."""

    name = "volume_anomaly"
    typology = "volume_anomaly"

    def __init__(self, settings: VolumeAnomalySettings | None = None) -> None:
        self.settings = settings or VolumeAnomalySettings()

    def features(self) -> list[Feature]:
        """Log volume, upward only."""
        s = self.settings
        return [Feature("log_volume", log_volume(), "up", pl.lit(s.min_scale), s.threshold)]


class PriceAnomalyDetector(BarAnomalyDetector):
    """Flags candles whose return or opening gap is far outside the symbol's recent moves."""

    name = "price_anomaly"
    typology = "price_anomaly"

    def __init__(self, settings: PriceAnomalySettings | None = None) -> None:
        self.settings = settings or PriceAnomalySettings()

    def features(self) -> list[Feature]:
        """The log return and the gap, either direction; the gap's scale floored by the return's."""
        s = self.settings
        return_scale = pl.max_horizontal(spread("log_return"), pl.lit(s.min_return_scale))
        return [
            Feature("log_return", log_return(), "both", pl.lit(s.min_return_scale), s.return_threshold),
            Feature("gap", gap(), "both", s.gap_scale_share * return_scale, s.gap_threshold),
        ]


def bar_anomaly_detectors() -> list[BarAnomalyDetector]:
    """The three detectors with their default settings."""
    return [AmplitudeAnomalyDetector(), VolumeAnomalyDetector(), PriceAnomalyDetector()]


def bar_scores(bars: pl.DataFrame, detectors: Sequence[BarAnomalyDetector] | None = None) -> pl.DataFrame:
    """Every candle's anomaly scores: each feature's robust z (`body_z`, `log_range_z`,
    `log_volume_z`, `log_return_z`, `gap_z`), each detector's excess (`<detector>_excess`:
    its largest z as a multiple of its threshold, ≥ 1 where it alerts) and `excess`, the
    largest of those; null where a candle has no baseline yet.

    For risk scores and rankings that want a graded number rather than alerts. Causal
    like the detectors; `bars` sorted by ts within each venue/symbol/interval.
    """
    chosen = list(detectors) if detectors is not None else bar_anomaly_detectors()
    frame = bars.lazy()
    for detector in chosen:
        frame = detector.scored(frame, into=f"{detector.name}_excess")
    z_columns = [f"{feature.name}_z" for detector in chosen for feature in detector.features()]
    excesses = [f"{detector.name}_excess" for detector in chosen]
    return frame.select(*KEY, "ts", *z_columns, *excesses, excess=pl.max_horizontal(excesses)).collect()
