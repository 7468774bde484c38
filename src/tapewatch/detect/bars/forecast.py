"""Forecast residuals: a bar whose high or close lands far from what the bars before it predicted.

A model (LightGBM by default, an LSTM with `tapewatch[deep]`) forecasts each bar's
high, low and close, as log ratios to the previous close, from the previous bars'
returns, ranges and volumes. It learns what normally follows what — volatility
clusters, quiet follows quiet — so a wide bar after wide bars is expected and the
same bar after calm ones is not. The residual is judged against the residuals'
own history: its robust z-score among the previous `calibration_bars` out-of-sample
residuals. No fixed constant in price units, so the threshold follows each
market's volatility.

Models are refitted walk-forward at epoch-aligned moments on bars strictly before
them (see forecasters), so every residual is out of sample and the stream
decides like the batch. `train_forecaster` and `evaluate_forecaster` expose the
same model for the command line (MAE against a last-value forecast).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view

from tapewatch.detect.bars.forecasters import (
    KEY,
    TARGETS,
    FitCache,
    Forecaster,
    WalkForwardDetector,
    finite_rows,
    group_bounds,
    lag_columns,
    lag_features,
    make_forecaster,
    period_us,
    robust_z,
    undecided_mask,
)
from tapewatch.detect.bars.settings import ForecasterSettings, ForecastResidualSettings
from tapewatch.detect.base import DetectorState
from tapewatch.detect.scoring import excess_score
from tapewatch.errors import InputError
from tapewatch.records import Alert


@dataclass
class ForecastReport:
    """How a forecaster did on some bars, per target, next to the last-value forecast.

    Errors are in log units (≈ relative error): the last-value forecast says the bar's
    high and low are the previous bar's, and its close the previous close.
    """

    kind: str
    bars: int
    mae: dict[str, float]
    rmse: dict[str, float]
    naive_mae: dict[str, float]
    naive_rmse: dict[str, float]
    alert_rate: float
    """Share of bars with a calibrated threshold whose residual exceeds it."""


class ForecastResidualDetector(WalkForwardDetector):
    """Flags bars whose high or close misses the walk-forward forecast by far more than usual."""

    name = "forecast_residual"
    typology = "price_anomaly"

    def __init__(self, settings: ForecastResidualSettings | None = None) -> None:
        self.settings = settings or ForecastResidualSettings()
        self._cache = FitCache()
        make_forecaster(self.settings.forecaster)  # an LSTM without PyTorch fails here, not mid-stream

    @property
    def lookback_bars(self) -> int:
        """Candles a decision reads: the calibration residuals, their fits' windows and those fits' lags."""
        s, f = self.settings, self.settings.forecaster
        return s.calibration_bars + s.refit_bars + s.train_bars + f.lags + f.baseline_window + 1

    def score_frame(self, frame: pl.DataFrame, state: DetectorState | None = None) -> pl.DataFrame:
        """Every bar to decide with its forecasts, residuals and their robust z-scores (null: not yet)."""
        s = self.settings
        featured = lag_features(frame, s.forecaster)
        features, targets, usable = _model_rows(featured, s.forecaster)
        todo = undecided_mask(frame, state)
        needed = _with_calibration_rows(featured, todo, s.calibration_bars)
        predicted = np.full_like(targets, np.nan)
        keys = featured.select(KEY).unique(maintain_order=True).rows()
        for segment in self.plan(featured, needed, usable):
            x, y = features[segment.train], targets[segment.train]
            fit = partial(_fit, s.forecaster, x, y)
            model = (
                fit()
                if state is None
                else self._cache.get(keys[segment.group], segment.refit_at_us, (x, y), fit)
            )
            predicted[segment.rows] = model.predict(features[segment.rows])
        if state is not None:
            self._forget_old_fits(featured, keys)
        z = residual_z(featured, targets - predicted, s.calibration_bars, s.min_calibration_bars)
        return _with_forecasts(featured, predicted, z, s.threshold_z).filter(pl.Series(todo))

    def _forget_old_fits(self, featured: pl.DataFrame, keys: list[tuple]) -> None:
        """Keep only fits the next call can need: those of the last `calibration_bars` bars' moments."""
        ts = featured["ts"].dt.epoch("us").to_numpy()
        for key, start, end in zip(keys, *group_bounds(featured), strict=True):
            period = period_us(featured, start, self.settings.refit_bars, self.settings.interval)
            oldest = ts[max(start, end - self.settings.calibration_bars)]
            self._cache.retain(key, oldest // period * period)

    def _alert(self, row: dict) -> Alert:
        s = self.settings
        worst = max(row[f"z_{name}"] or 0.0 for name in NAMES)
        return self.candle_alert(
            row,
            excess_score(worst / s.threshold_z),
            {
                "model": s.forecaster.kind,
                "actual": {name: row[name] for name in NAMES},
                "forecast": {name: round(row[f"forecast_{name}"], 8) for name in NAMES},
                "robust_z": {name: _round(row[f"z_{name}"]) for name in NAMES},
                "threshold_z": s.threshold_z,
                "calibration_bars": s.calibration_bars,
            },
        )


def _fit(settings: ForecasterSettings, features: np.ndarray, targets: np.ndarray) -> Forecaster:
    return make_forecaster(settings).fit(features, targets)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


NAMES = [target.removeprefix("next_") for target in TARGETS]
"""high, low, close: the columns' suffixes in a scored frame and the keys of the evidence."""


def _model_rows(
    featured: pl.DataFrame, settings: ForecasterSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lag features, targets, and which rows have both finite (usable to fit or to judge)."""
    features, features_ok = finite_rows(featured, lag_columns(settings.lags))
    targets, targets_ok = finite_rows(featured, TARGETS)
    return features, targets, features_ok & targets_ok


def _with_calibration_rows(featured: pl.DataFrame, todo: np.ndarray, calibration_bars: int) -> np.ndarray:
    """Rows to forecast: those to decide and the `calibration_bars` before each group's first of them."""
    needed = todo.copy()
    for start, end in zip(*group_bounds(featured), strict=True):
        waiting = np.flatnonzero(todo[start:end])
        if waiting.size:
            needed[max(start, start + waiting[0] - calibration_bars) : end] = True
    return needed


def residual_z(
    featured: pl.DataFrame, residuals: np.ndarray, calibration_bars: int, min_bars: int
) -> np.ndarray:
    """Each residual's robust z among its group's previous `calibration_bars` residuals (NaN: too few)."""
    z = np.full_like(residuals, np.nan)
    for start, end in zip(*group_bounds(featured), strict=True):
        own = residuals[start:end]
        padded = np.vstack([np.full((calibration_bars, own.shape[1]), np.nan), own])
        history = sliding_window_view(padded[:-1], calibration_bars, axis=0)  # rows × targets × window
        enough = (np.isfinite(history).sum(axis=-1) >= min_bars) & np.isfinite(own)
        rows = np.flatnonzero(enough.any(axis=1))
        if rows.size:
            z[start + rows] = np.where(enough[rows], robust_z(own[rows], history[rows]), np.nan)
    return z


def _with_forecasts(
    featured: pl.DataFrame, predicted: np.ndarray, z: np.ndarray, threshold_z: float
) -> pl.DataFrame:
    """The frame with forecasts back in prices, the z-scores, and whether any z passes the threshold."""
    return featured.with_columns(
        *(pl.Series(f"forecast_{name}", predicted[:, j]).fill_nan(None) for j, name in enumerate(NAMES)),
        *(pl.Series(f"z_{name}", z[:, j]).fill_nan(None) for j, name in enumerate(NAMES)),
    ).with_columns(
        *(
            (pl.col("prev_close") * pl.col(f"forecast_{name}").exp()).alias(f"forecast_{name}")
            for name in NAMES
        ),
        flagged=pl.max_horizontal(f"z_{name}" for name in NAMES) >= threshold_z,
    )


# -- training and evaluation for the command line --------------------------------------------------


def train_forecaster(
    bars: pl.DataFrame,
    kind: str = "gbm",
    settings: ForecasterSettings | None = None,
    holdout: float = 0.2,
    residuals: ForecastResidualSettings | None = None,
) -> tuple[Forecaster, ForecastReport]:
    """Fit a forecaster on the first bars of each symbol and report on the last `holdout` share.

    `bars` is a frame of BAR_SCHEMA sorted by venue, symbol, interval, ts. The
    report compares with a last-value forecast on the held-out bars, which the
    model never saw.
    """
    if not 0 < holdout < 1:
        raise InputError(f"--holdout {holdout}: expected a share strictly between 0 and 1")
    settings = (settings or ForecasterSettings()).model_copy(update={"kind": kind})
    model = make_forecaster(settings)
    featured = lag_features(bars, settings)
    features, targets, usable = _model_rows(featured, settings)
    held_out = _tail_share(featured, holdout)
    train = usable & ~held_out
    if not train.any():
        raise InputError("no bar has a full set of lag features to train on: give more bars per symbol")
    model.fit(features[train], targets[train])
    return model, _report(model, featured, held_out, residuals or ForecastResidualSettings())


def evaluate_forecaster(
    model: Forecaster, bars: pl.DataFrame, residuals: ForecastResidualSettings | None = None
) -> ForecastReport:
    """MAE/RMSE of the next high, low and close on `bars` against the last-value forecast, and the alert rate."""
    featured = lag_features(bars, model.settings)
    return _report(
        model, featured, np.ones(featured.height, dtype=bool), residuals or ForecastResidualSettings()
    )


def _tail_share(featured: pl.DataFrame, share: float) -> np.ndarray:
    """Mask of the last `share` of each group's rows."""
    mask = np.zeros(featured.height, dtype=bool)
    for start, end in zip(*group_bounds(featured), strict=True):
        mask[end - round((end - start) * share) : end] = True
    return mask


def _report(
    model: Forecaster, featured: pl.DataFrame, rows: np.ndarray, residuals: ForecastResidualSettings
) -> ForecastReport:
    features, targets, usable = _model_rows(featured, model.settings)
    naive = _naive_forecast(featured)
    judged = rows & usable & np.isfinite(naive).all(axis=1)
    if not judged.any():
        raise InputError("no bar to evaluate: give more bars per symbol than the lags and baseline window")
    predicted = np.full_like(targets, np.nan)
    predicted[judged] = model.predict(features[judged])
    error, naive_error = (targets - predicted)[judged], (targets - naive)[judged]
    z = residual_z(featured, targets - predicted, residuals.calibration_bars, residuals.min_calibration_bars)
    calibrated = np.isfinite(z).any(axis=1)
    alerts = np.nanmax(np.where(np.isfinite(z), z, -np.inf), axis=1) >= residuals.threshold_z
    return ForecastReport(
        kind=model.settings.kind,
        bars=int(judged.sum()),
        mae=_per_target(np.abs(error).mean(axis=0)),
        rmse=_per_target(np.sqrt((error**2).mean(axis=0))),
        naive_mae=_per_target(np.abs(naive_error).mean(axis=0)),
        naive_rmse=_per_target(np.sqrt((naive_error**2).mean(axis=0))),
        alert_rate=float(alerts[calibrated].mean()) if calibrated.any() else 0.0,
    )


def _naive_forecast(featured: pl.DataFrame) -> np.ndarray:
    """The last-value forecast in target units: the previous bar's high and low, the previous close."""
    previous = featured.select(
        (pl.col(column).shift(1).over(KEY) / pl.col("prev_close")).log() for column in ("high", "low")
    ).to_numpy()
    return np.column_stack([previous, np.zeros(featured.height)])


def _per_target(values: np.ndarray) -> dict[str, float]:
    return {name: float(value) for name, value in zip(NAMES, values, strict=True)}
