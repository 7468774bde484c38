"""The bar family's settings: `[amplitude_anomaly]`, `[volume_anomaly]`, `[price_anomaly]`,
`[forecast_residual]` and `[isolation_forest]`.

They sit beside the detectors that read them; `tapewatch.config` composes them into the
settings a run loads (TOML sections and environment variables are named there).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from tapewatch.sections import Section


class BarBaselineSettings(Section):
    """What every bar anomaly detector shares: the candle size and the trailing baseline.

    Thresholds are robust z-scores, which are scale-free: each series is measured in
    units of its own recent variability, on relative or log scales, so the same
    defaults hold for minute crypto candles and daily index candles alike: measured on
    hourly BTC 2021 and daily S&P 500 / NASDAQ 1999–2018 (benchmarks/bar_anomalies.py),
    each detector alerts on under 0.75 % of candles and the three together on under 1 %.
    A window of 100 candles is four days of hours or five months of days: long enough
    for stable quartiles, short enough to follow a change of regime.
    """

    interval: str = Field(
        "1h", description="candle size built from trades (bars are used at their own interval)"
    )
    window: int = Field(
        100, ge=5, description="trailing candles (the current one excluded) that form the baseline"
    )
    min_history: int = Field(
        30, ge=5, description="candles of baseline a feature needs before its first decision"
    )


class AmplitudeAnomalySettings(BarBaselineSettings):
    """A candle's body or range far wider than the symbol's usual candles at that interval.

    The range threshold is lower than the body's because log ranges have thin tails
    (the 99.5th percentile of their z is 3.1–3.8 on hourly BTC and daily indices) while
    bodies are heavy-tailed like returns (4.7–6.1).
    """

    body_threshold: float = Field(6.0, gt=0, description="|robust z| of (close − open) / open")
    range_threshold: float = Field(4.0, gt=0, description="robust z of log((high − low) / open)")
    min_body_scale: float = Field(
        0.0005,
        gt=0,
        description="least scale of the relative body: a move of a few basis points is never an anomaly",
    )
    min_range_scale: float = Field(
        0.05, gt=0, description="least scale of the log range (5 %), for series whose range never varied"
    )


class VolumeAnomalySettings(BarBaselineSettings):
    """A candle's volume far above the symbol's usual volume, on a log scale.

    The 99.5th percentile of the z is 3.3 on hourly BTC and 4.4–4.7 on daily indices
    (index rebalancing and option-expiry days); 5 leaves those as the rare alerts.
    """

    threshold: float = Field(5.0, gt=0, description="robust z of log(volume), upward only")
    min_scale: float = Field(
        0.05, gt=0, description="least scale of log volume (5 %), for series whose volume never varied"
    )


class PriceAnomalySettings(BarBaselineSettings):
    """A return or an opening gap far outside the symbol's usual moves.

    In a market that never closes (crypto) the open equals the previous close to a tick,
    and old index data repeats the previous close as the open, so gaps have almost no
    spread of their own; their scale is floored at a share of the return scale, so that
    only a gap that is large as a move counts. Returns' 99.5th percentile z is 5.0–6.0
    on hourly BTC and daily indices, hence 6.
    """

    return_threshold: float = Field(6.0, gt=0, description="|robust z| of log(close / previous close)")
    gap_threshold: float = Field(6.0, gt=0, description="|robust z| of open / previous close − 1")
    min_return_scale: float = Field(
        0.0005,
        gt=0,
        description="least scale of returns: a move of a few basis points is never an anomaly",
    )
    gap_scale_share: float = Field(
        0.25, gt=0, description="least scale of gaps, as a share of the return scale"
    )


class ForecasterSettings(Section):
    """The model that predicts a bar's high, low and close from the bars before it."""

    kind: Literal["gbm", "lstm"] = Field(
        "gbm", description="gbm: LightGBM on lag features (CPU, fast); lstm: PyTorch, needs tapewatch[deep]"
    )
    lags: int = Field(5, ge=1, description="previous bars whose return, range and volume are the inputs")
    baseline_window: int = Field(
        20, ge=2, description="trailing bars whose median volume and range are the bar's baselines"
    )
    gbm_trees: int = Field(50, ge=1, description="gbm: boosting rounds per target")
    gbm_learning_rate: float = Field(0.1, gt=0, le=1, description="gbm: shrinkage per round")
    gbm_leaves: int = Field(15, ge=2, description="gbm: leaves per tree")
    gbm_min_leaf: int = Field(20, ge=1, description="gbm: fewest training bars in a leaf")
    lstm_hidden: int = Field(16, ge=1, le=32, description="lstm: hidden units of its one layer")
    lstm_epochs: int = Field(60, ge=1, description="lstm: full-batch training epochs (bounds the fit time)")
    lstm_learning_rate: float = Field(0.02, gt=0, description="lstm: Adam step size")
    seed: int = Field(0, description="random seed of every fit, so refits are reproducible")


class ForecastResidualSettings(Section):
    """Forecast each bar's high, low and close; alert when the miss is extreme for this market's own misses."""

    interval: str = Field(
        "1h", description="candle size built from trades (bars are used at their own interval)"
    )
    forecaster: ForecasterSettings = Field(
        default_factory=ForecasterSettings, description="the model and its lag features"
    )
    train_bars: int = Field(500, ge=10, description="trailing bars before a refit moment that a fit reads")
    min_train_bars: int = Field(200, ge=10, description="no forecast before a fit has this many usable bars")
    refit_bars: int = Field(
        250, ge=1, description="refit every this many candle intervals of calendar time, aligned to the epoch"
    )
    calibration_bars: int = Field(
        250, ge=10, description="previous bars whose out-of-sample residuals calibrate the threshold"
    )
    min_calibration_bars: int = Field(
        50, ge=5, description="no decision before this many past residuals are available"
    )
    threshold_z: float = Field(
        6.0, gt=0, description="alert when a residual is this many robust (MAD) deviations from the past ones"
    )


class IsolationForestSettings(Section):
    """Isolation Forest on bar features, refitted on a trailing window at fixed moments."""

    interval: str = Field(
        "1h", description="candle size built from trades (bars are used at their own interval)"
    )
    scope: Literal["symbol", "universe"] = Field(
        "symbol", description="one forest per symbol, or one per venue and candle size (batch-exact only)"
    )
    train_bars: int = Field(500, ge=10, description="trailing bars before a refit moment that a fit reads")
    min_train_bars: int = Field(200, ge=10, description="no decision before a fit has this many usable bars")
    refit_bars: int = Field(
        250, ge=1, description="refit every this many candle intervals of calendar time, aligned to the epoch"
    )
    baseline_window: int = Field(
        20, ge=2, description="trailing bars whose median volume and range are the bar's baselines"
    )
    trees: int = Field(50, ge=1, description="trees in the forest")
    max_samples: int = Field(256, ge=2, description="bars drawn to grow each tree")
    threshold_quantile: float = Field(
        0.996, gt=0, lt=1, description="alert above this quantile of the training bars' anomaly scores"
    )
    top_features: int = Field(2, ge=1, description="features named as most extreme (all of them when larger)")
    seed: int = Field(0, description="random seed of every fit, so refits are reproducible")

    @property
    def pools_symbols(self) -> str | None:
        """Why a decision reads other symbols' rows (None: each symbol's own only): see
        `DetectorSettings.pooling`."""
        if self.scope == "universe":
            return 'scope = "universe" fits one forest over all symbols of a venue; use scope = "symbol"'
        return None
