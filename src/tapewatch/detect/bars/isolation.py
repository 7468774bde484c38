"""Isolation Forest on bar shape: candles unlike any in the trailing months, whatever made them so.

Rule detectors ask one question each (did the price jump? did volume?); a bar that is
odd in a combination — a wide range on thin volume, a gap that closes within the
bar — slips between them. Six scale-free features per bar (log return, log range,
body, volume and range over their trailing medians, opening gap) are standardised by each
symbol's training-window median and MAD, and an Isolation Forest fitted on the
trailing window scores how easily a bar is isolated. The threshold is a quantile of
the training bars' own scores, so it follows each market's normal variety.

Fits are walk-forward (see forecasters): made at epoch-aligned moments from
bars strictly before them, with a fixed seed, so batch and stream agree. The
typology is `bar_anomaly`, not `price_anomaly`: the forest flags unusual bars as a
whole, and the evidence says which features made it unusual (volume as often as price).

`scope="universe"` pools the symbols of a venue and candle size into one forest
(each standardised by its own statistics), for many short histories. Its fits read
every symbol in the call, so it is batch-exact only: the streaming engine calls a
detector with the symbols that just closed a candle, and would fit on fewer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from tapewatch.detect.bars.forecasters import (
    BAR_FEATURES,
    KEY,
    MAD_TO_SIGMA,
    TINY,
    FitCache,
    Segment,
    WalkForwardDetector,
    bar_features,
    finite_rows,
    undecided_mask,
)
from tapewatch.detect.bars.settings import IsolationForestSettings
from tapewatch.detect.base import DetectorState
from tapewatch.detect.scoring import excess_score
from tapewatch.records import Alert, to_iso

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SCORE_COLUMNS = ("anomaly", "threshold", "center", "refit_at_us", "train_rows")
Key = tuple[str, str, str]


@dataclass
class _Forest:
    """One fit: the forest, each symbol's standardisation, and the calibrated threshold."""

    forest: Any
    center: dict[Key, np.ndarray]
    scale: dict[Key, np.ndarray]
    threshold: float
    typical: float


class IsolationForestDetector(WalkForwardDetector):
    """Flags bars an Isolation Forest, fitted on the trailing window, finds easy to isolate."""

    name = "isolation_forest"
    typology = "bar_anomaly"

    def __init__(self, settings: IsolationForestSettings | None = None) -> None:
        self.settings = settings or IsolationForestSettings()
        self._cache = FitCache()

    @property
    def lookback_bars(self) -> int:
        """Candles a decision reads: back to its refit moment, the training window and its volume medians."""
        s = self.settings
        return s.refit_bars + s.train_bars + s.baseline_window + 1

    def score_frame(self, frame: pl.DataFrame, state: DetectorState | None = None) -> pl.DataFrame:
        """Every bar to decide with its anomaly score, threshold and robust z per feature (null: no fit yet)."""
        featured = bar_features(frame, self.settings.baseline_window)
        values, usable = finite_rows(featured, BAR_FEATURES)
        columns = {name: np.full(frame.height, np.nan) for name in SCORE_COLUMNS}
        z = np.full_like(values, np.nan)
        todo = undecided_mask(frame, state)
        keys = featured.select(KEY).unique(maintain_order=True).rows()
        for pool, fit_segments in self._pools(featured, todo, usable, keys):
            fit = self._fit(pool, fit_segments, values, keys, state is not None)
            train_rows = sum(segment.train.size for segment in fit_segments)
            for segment in fit_segments:
                rows, key = segment.rows, keys[segment.group]
                z[rows] = (values[rows] - fit.center[key]) / fit.scale[key]
                columns["anomaly"][rows] = -fit.forest.score_samples(z[rows])
                columns["threshold"][rows] = fit.threshold
                columns["center"][rows] = fit.typical
                columns["refit_at_us"][rows] = segment.refit_at_us
                columns["train_rows"][rows] = train_rows
        scored = featured.with_columns(
            *(pl.Series(name, column).fill_nan(None) for name, column in columns.items()),
            *(pl.Series(f"z_{name}", z[:, j]).fill_nan(None) for j, name in enumerate(BAR_FEATURES)),
        )
        return scored.filter(pl.Series(todo)).with_columns(flagged=pl.col("anomaly") >= pl.col("threshold"))

    def _pools(
        self, featured: pl.DataFrame, todo: np.ndarray, usable: np.ndarray, keys: list[Key]
    ) -> list[tuple[Any, list[Segment]]]:
        """Segments grouped by the forest that scores them: per symbol, or per venue/interval and moment."""
        s = self.settings
        pools: dict[Any, list[Segment]] = {}
        for segment in self.plan(featured, todo, usable):
            venue, symbol, interval = keys[segment.group]
            owner = (venue, interval) if s.scope == "universe" else (venue, symbol, interval)
            pools.setdefault((owner, segment.refit_at_us), []).append(segment)
        return list(pools.items())

    def _fit(
        self, pool: Any, fit_segments: list[Segment], values: np.ndarray, keys: list[Key], keep: bool
    ) -> _Forest:
        """The pool's forest at its moment: fitted now, or reused from an earlier stream call."""
        owner, refit_at = pool
        members = [keys[segment.group] for segment in fit_segments]
        train = [values[segment.train] for segment in fit_segments]
        if not keep:
            return self._new_forest(members, train)
        forest = self._cache.get(owner, refit_at, tuple(train), lambda: self._new_forest(members, train))
        self._cache.retain(owner, refit_at)
        return forest

    def _new_forest(self, members: list[Key], train: list[np.ndarray]) -> _Forest:
        """Standardise each symbol by its training median/MAD, fit, and set the threshold on the
        training scores.

        Standardisations are keyed by venue/symbol/interval, not by position in the frame: a
        stream call holds only the symbols that just closed a candle, so positions change."""
        from sklearn.ensemble import IsolationForest

        s = self.settings
        center = {key: np.median(x, axis=0) for key, x in zip(members, train, strict=True)}
        scale = {
            key: np.maximum(MAD_TO_SIGMA * np.median(np.abs(x - center[key]), axis=0), TINY)
            for key, x in zip(members, train, strict=True)
        }
        pooled = np.vstack([(x - center[key]) / scale[key] for key, x in zip(members, train, strict=True)])
        forest = IsolationForest(
            n_estimators=s.trees, max_samples=min(s.max_samples, len(pooled)), random_state=s.seed, n_jobs=1
        ).fit(pooled)
        scores = -forest.score_samples(pooled)
        return _Forest(
            forest=forest,
            center=center,
            scale=scale,
            threshold=float(np.quantile(scores, s.threshold_quantile)),
            typical=float(np.median(scores)),
        )

    def _alert(self, row: dict) -> Alert:
        s = self.settings
        z = {name: row[f"z_{name}"] for name in BAR_FEATURES}
        extreme = sorted(BAR_FEATURES, key=lambda name: -abs(z[name]))[: s.top_features]
        excess = (row["anomaly"] - row["center"]) / max(row["threshold"] - row["center"], TINY)
        return self.candle_alert(
            row,
            excess_score(excess),
            {
                "anomaly_score": round(row["anomaly"], 4),
                "threshold": round(row["threshold"], 4),
                "threshold_quantile": s.threshold_quantile,
                "features": {name: round(row[name], 6) for name in BAR_FEATURES},
                "robust_z": {name: round(value, 2) for name, value in z.items()},
                "most_extreme": extreme,
                "refit_at": _iso_us(row["refit_at_us"]),
                "train_bars": int(row["train_rows"]),
                "scope": s.scope,
            },
        )


def _iso_us(micros: float) -> str:
    """A refit moment (epoch µs) as ISO-8601 UTC."""
    return to_iso(EPOCH + timedelta(microseconds=int(micros)))
