"""Pump-and-dump by a trained classifier: La Morgia chunk features scored by a LightGBM model.

The rule detector (pump_onset) fires on hand-set thresholds; this one asks a model
trained on labelled pumps (`tapewatch train pump`) how likely each chunk of
`chunk_s` seconds is a pump's rush, from the chunk's trades against the symbol's
rolling hours (tapewatch.detect.pump.model_features). A chunk is scored once it is
complete — its symbol trades again after it — so `detected_at` is the timestamp of
that next trade: the first moment the data shows the chunk is over, and nothing
later is read. An alert is raised when the probability reaches the model's
threshold; after one, the symbol re-arms only once `cooldown_min` passes without a
chunk at or above it (as pump_onset). Evidence carries the probability, the
threshold, the chunk's numbers and the features that pushed the probability most
(their SHAP contributions to the log-odds).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from tapewatch.detect.base import DetectorState, FinalAlerts
from tapewatch.detect.pump.settings import PumpModelSettings
from tapewatch.errors import InputError
from tapewatch.io.derive import KEY
from tapewatch.records import Alert

if TYPE_CHECKING:  # LightGBM loads only when a model does; the features and NumPy when a detector runs
    import numpy as np

    from tapewatch.detect.pump.model_file import PumpModel

_CHUNK_NUMBERS = ("trades", "orders", "rush_orders", "volume_quote", "buy_share", "price_max_delta")


class PumpModelDetector(FinalAlerts):
    """Flags chunks a trained pump classifier scores at or above its threshold."""

    name = "pump_model"
    typology = "pump_and_dump"
    needs = "trades"

    def __init__(self, model: PumpModel, settings: PumpModelSettings | None = None) -> None:
        self.model = model
        self.settings = settings or PumpModelSettings()

    @classmethod
    def from_settings(cls, settings: PumpModelSettings) -> PumpModelDetector:
        """The detector on the model file the settings name (how the registry builds it)."""
        from tapewatch.detect.pump.model_file import load_pump_model

        return cls(load_pump_model(model_path(settings))[0], settings)

    @property
    def lookback(self) -> timedelta:
        """The longest rolling window, one chunk (the one being decided) and a minute of margin."""
        from tapewatch.detect.pump.model_features import feature_lookback_us

        return timedelta(microseconds=feature_lookback_us(self.model.features)) + timedelta(
            seconds=self.model.features.chunk_s, minutes=1
        )

    def detect(self, frame: pl.DataFrame, state: DetectorState | None = None) -> list[Alert]:
        """Alerts for every symbol in a trades frame sorted by venue, symbol, ts (see DetectorState)."""
        from tapewatch.detect.pump.model_features import chunk_features

        if frame.is_empty():
            return []
        known = state or DetectorState()
        chunks = self._undecided(chunk_features(frame, self.model.features), frame, known)
        chunks = chunks.with_columns(
            probability=pl.Series(self.model.probabilities(chunks), dtype=pl.Float64)
        )
        hits = chunks.filter(pl.col("probability") >= self.model.threshold).with_columns(
            ts=pl.col("closed_at")
        )
        triggers = known.cooled_down(hits, KEY, timedelta(minutes=self.settings.cooldown_min))
        if state is not None:
            state.advance(KEY, frame.select(*KEY, "ts"), hits.select(*KEY, "ts"))
        if triggers.is_empty():
            return []
        contributions = self.model.contributions(triggers)
        alerts = [
            self._alert(row, contributions[index]) for index, row in enumerate(triggers.iter_rows(named=True))
        ]
        return sorted(alerts, key=lambda alert: (alert.detected_at, alert.symbol))

    def _undecided(self, chunks: pl.DataFrame, frame: pl.DataFrame, known: DetectorState) -> pl.DataFrame:
        """Complete chunks (closed by a new trade) not decided before, starting past the symbol's warm-up."""
        complete = chunks.filter(pl.col("closed_at").is_not_null())
        undecided = known.undecided(complete, KEY, at="closed_at")
        return known.warmed_up(undecided, KEY, timedelta(hours=self.settings.warmup_h), frame, at="start")

    def _alert(self, row: dict[str, Any], contributions: np.ndarray) -> Alert:
        from tapewatch.detect.pump.model_features import window_label

        window = window_label(self.model.features.windows_h[0])
        evidence = {
            "probability": round(row["probability"], 4),
            "threshold": round(self.model.threshold, 4),
            "chunk_s": self.model.features.chunk_s,
            "chunk": {
                name: {"now": _rounded(row[name]), f"mean_{window}": _rounded(row[f"{name}_mean_{window}"])}
                for name in _CHUNK_NUMBERS
            },
            "top_features": self._top_features(row, contributions),
        }
        return Alert.build(
            detector=self.name,
            typology=self.typology,
            venue=row["venue"],
            symbol=row["symbol"],
            start=row["start"],
            end=row["end"],
            detected_at=row["closed_at"],
            score=row["probability"],
            evidence=evidence,
        )

    def _top_features(self, row: dict[str, Any], contributions: np.ndarray) -> list[dict[str, Any]]:
        """The features that moved this chunk's log-odds most, strongest first (the bias term left out)."""
        import numpy as np

        names = self.model.feature_names
        order = np.argsort(-np.abs(contributions[: len(names)]), kind="stable")[: self.settings.top_features]
        return [
            {
                "feature": names[i],
                "value": _rounded(row[names[i]]),
                "contribution": round(float(contributions[i]), 3),
            }
            for i in order
        ]


def model_path(settings: PumpModelSettings) -> Path:
    """The model file the settings name; a one-line InputError naming the setting when there is none.

    Never a default or a download: the model is the user's, trained on their labels.
    """
    if settings.model is None:
        raise InputError(
            'pump_model: no model file: set [pump_model] model = "PATH" in the config, '
            "TAPEWATCH_PUMP_MODEL__MODEL, or `detect --model PATH` (train one with `tapewatch train pump`)"
        )
    if not settings.model.is_file():
        raise InputError(f"[pump_model] model '{settings.model}': no such file")
    return settings.model


def _rounded(value: float | None) -> float | None:
    """Six significant figures: enough to read, and identical whichever frame the number came from."""
    return None if value is None else float(f"{value:.6g}")
