"""What the two model-based bar detectors share: bar features, the walk-forward refit plan, the forecasters.

Both detectors fit a model on a trailing window and apply it forward only. To make
the stream decide exactly like the batch, refits happen at fixed moments — every
`refit_bars` intervals of calendar time counted from the Unix epoch — and each fit
reads only the bars strictly before its moment, so any call that holds those bars
builds the same model. Forecasters (LightGBM by default, an LSTM with the
`tapewatch[deep]` extra) share one small interface, in the spirit of scikit-learn:
`fit`, `predict`, `save`, `load`.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import polars as pl

from tapewatch.detect.bars.settings import ForecasterSettings
from tapewatch.detect.base import CandleDetector, DetectorState
from tapewatch.durations import parse_duration
from tapewatch.errors import InputError
from tapewatch.records import Alert

KEY = ["venue", "symbol", "interval"]
BAR_FEATURES = ("log_return", "log_range", "body", "log_volume_ratio", "log_range_ratio", "gap")
LAG_CHANNELS = ("log_return", "log_range", "log_volume_ratio")
TARGETS = ("next_high", "next_low", "next_close")
"""Log of the bar's high, low and close over the previous close: what a forecaster predicts from the lags.

The low is there because a crash inside a bar (a flash crash, a bear raid) shows in
neither the high nor, once it recovers, the close."""
MIN_RATIO = 1e-3
"""Floor of volume or range over its median: a bar without volume is unusual, not infinitely so."""
MAD_TO_SIGMA = 1.4826
TINY = 1e-12
DEEP_EXTRA = "pip install 'tapewatch[deep]'"
T = TypeVar("T")


def _trailing_median(column: str, window: int) -> pl.Expr:
    """Median of the previous `window` bars' values (the bar itself excluded)."""
    return pl.col(column).shift(1).rolling_median(window, min_samples=window).over(KEY)


def _log_ratio(value: pl.Expr, baseline: pl.Expr) -> pl.Expr:
    """log(value / baseline), floored at MIN_RATIO, and 0 where the baseline itself is 0."""
    ratio = pl.max_horizontal(value / baseline, pl.lit(MIN_RATIO)).log()
    return pl.when(baseline > 0).then(ratio).when(baseline == 0).then(0.0)


def bar_features(frame: pl.DataFrame, baseline_window: int) -> pl.DataFrame:
    """The bar frame with its shape features, each from the bar and those before it (never after).

    Logs and ratios make them scale-free, so one model applies to any price level.
    Volume and range are also compared with their medians over the previous
    `baseline_window` bars: a wide day after calm weeks is news, the same day
    inside a crisis is not.
    """
    prev_close = pl.col("close").shift(1).over(KEY)
    featured = frame.with_columns(log_range=(pl.col("high") / pl.col("low")).log())
    return featured.with_columns(
        log_return=(pl.col("close") / prev_close).log(),
        body=(pl.col("close") - pl.col("open")).abs() / pl.col("open"),
        log_volume_ratio=_log_ratio(pl.col("volume"), _trailing_median("volume", baseline_window)),
        log_range_ratio=_log_ratio(pl.col("log_range"), _trailing_median("log_range", baseline_window)),
        gap=(pl.col("open") / prev_close).log(),
        next_high=(pl.col("high") / prev_close).log(),
        next_low=(pl.col("low") / prev_close).log(),
        prev_close=prev_close,
    )


def lag_columns(lags: int) -> list[str]:
    """Lag feature names, oldest bar first and channel within bar, so an LSTM can reshape them."""
    return [f"{channel}_lag{k}" for k in range(lags, 0, -1) for channel in LAG_CHANNELS]


def lag_features(frame: pl.DataFrame, settings: ForecasterSettings) -> pl.DataFrame:
    """Bar features plus the previous `lags` bars' channels and the targets (`next_high`, `next_close`)."""
    featured = bar_features(frame, settings.baseline_window)
    lagged = [
        pl.col(channel).shift(k).over(KEY).alias(f"{channel}_lag{k}")
        for k in range(1, settings.lags + 1)
        for channel in LAG_CHANNELS
    ]
    return featured.with_columns(*lagged, next_close=pl.col("log_return"))


def finite_rows(frame: pl.DataFrame, columns: list[str] | tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The columns as a float matrix and a mask of rows where all are finite (usable by a model)."""
    matrix = frame.select(pl.col(c).cast(pl.Float64) for c in columns).to_numpy().astype(np.float64)
    return matrix, np.isfinite(matrix).all(axis=1)


def robust_z(values: np.ndarray, history: np.ndarray) -> np.ndarray:
    """|value − median| in robust standard deviations (MAD) of `history` (rows of past values, NaN ignored)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN history gives NaN, as it should
        center = np.nanmedian(history, axis=-1)
        spread = MAD_TO_SIGMA * np.nanmedian(np.abs(history - center[..., None]), axis=-1)
    return np.abs(values - center) / np.maximum(spread, TINY)


# -- walk-forward plan ---------------------------------------------------------------------------


@dataclass
class Segment:
    """Bars of one symbol scored by one fit: the fit's moment, its training rows and the rows it scores."""

    group: int
    refit_at_us: int
    train: np.ndarray
    rows: np.ndarray


def group_bounds(frame: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Start and end row of each venue/symbol/interval in a frame sorted by those (then ts)."""
    sizes = frame.select(KEY).with_row_index().group_by(KEY, maintain_order=True).len()["len"].to_numpy()
    ends = np.cumsum(sizes)
    return (ends - sizes).astype(np.int64), ends.astype(np.int64)


def period_us(frame: pl.DataFrame, start: int, refit_bars: int, default_interval: str) -> int:
    """Length between refits in µs: `refit_bars` of the group's candle size."""
    interval = frame["interval"][int(start)] or default_interval
    return int(parse_duration(interval, what="interval").total_seconds() * 1e6) * refit_bars


def segments(
    frame: pl.DataFrame,
    score: np.ndarray,
    usable: np.ndarray,
    *,
    refit_bars: int,
    train_bars: int,
    min_train_bars: int,
    default_interval: str,
) -> Iterator[Segment]:
    """For every group, each refit moment with rows to `score`, its training rows and the rows it scores.

    Training rows are the usable ones among the `train_bars` bars strictly before
    the refit moment (counted in bars, so the stream knows how much to keep); a
    moment with fewer than `min_train_bars` of them scores nothing.
    """
    ts = frame["ts"].dt.epoch("us").to_numpy()
    starts, ends = group_bounds(frame)
    for group, (start, end) in enumerate(zip(starts, ends, strict=True)):
        period = period_us(frame, start, refit_bars, default_interval)
        wanted = np.flatnonzero(score[start:end] & usable[start:end]) + start
        for refit_at in np.unique(ts[wanted] // period) * period:
            first_after = start + int(np.searchsorted(ts[start:end], refit_at))
            window = np.arange(max(start, first_after - train_bars), first_after)
            train = window[usable[window]]
            if train.size >= min_train_bars:
                rows = wanted[(ts[wanted] >= refit_at) & (ts[wanted] < refit_at + period)]
                yield Segment(group, int(refit_at), train, rows)


def undecided_mask(frame: pl.DataFrame, state: DetectorState | None) -> np.ndarray:
    """The rows still to decide (see `DetectorState.undecided`) as a mask: the fits work on arrays."""
    rows = (state or DetectorState()).undecided(frame.select(*KEY, "ts").with_row_index("row"), KEY)
    mask = np.zeros(frame.height, dtype=bool)
    mask[rows["row"].to_numpy()] = True
    return mask


@dataclass
class FitCache:
    """Fits kept between stream calls, keyed by group and refit moment and checked against their data.

    A stream calls a detector on every new candle; refitting each time would cost a
    model fit per candle. The digest of the training data guards against reuse when
    the data differ (another symbol set, corrected bars).
    """

    fits: dict[tuple[Any, int], tuple[bytes, Any]] = field(default_factory=dict)

    def get(self, key: Any, refit_at: int, data: tuple[np.ndarray, ...], fit: Callable[[], T]) -> T:
        """The cached fit for this key, moment and data, or a new one (then kept)."""
        digest = hashlib.blake2b(b"".join(np.ascontiguousarray(d).tobytes() for d in data)).digest()
        kept = self.fits.get((key, refit_at))
        if kept is not None and kept[0] == digest:
            return kept[1]
        model = fit()
        self.fits[(key, refit_at)] = (digest, model)
        return model

    def retain(self, key: Any, since_us: int) -> None:
        """Forget this key's fits older than `since_us`: no later call can need them."""
        for cached in [k for k in self.fits if k[0] == key and k[1] < since_us]:
            del self.fits[cached]


class WalkForwardDetector(CandleDetector):
    """What the two model-based detectors do alike around their fits: plan the refits from their
    settings, and turn the bars `score_frame` flags into alerts while advancing the stream state.

    Subclasses set `settings` (with `interval`, `refit_bars`, `train_bars`, `min_train_bars`) and
    define `score_frame` (the bars to decide, with a `flagged` column) and `_alert`.
    """

    def score_frame(self, frame: pl.DataFrame, state: DetectorState | None = None) -> pl.DataFrame:
        """Every bar to decide with its scores and whether it is `flagged` (null: no fit yet)."""
        raise NotImplementedError

    def _alert(self, row: dict[str, Any]) -> Alert:
        raise NotImplementedError

    def detect(self, frame: pl.DataFrame, state: DetectorState | None = None) -> list[Alert]:
        """Alerts for every venue/symbol/interval in a bars frame sorted by those and ts (see DetectorState)."""
        if frame.is_empty():
            return []
        flagged = self.score_frame(frame, state).filter(pl.col("flagged").fill_null(False))
        if state is not None:
            state.advance(KEY, frame.select(*KEY, "ts"), flagged.select(*KEY, "ts"))
        return [self._alert(row) for row in flagged.iter_rows(named=True)]

    def plan(self, featured: pl.DataFrame, score: np.ndarray, usable: np.ndarray) -> Iterator[Segment]:
        """The walk-forward segments (see `segments`) under this detector's refit settings."""
        s = self.settings
        return segments(
            featured,
            score,
            usable,
            refit_bars=s.refit_bars,
            train_bars=s.train_bars,
            min_train_bars=s.min_train_bars,
            default_interval=s.interval,
        )


# -- forecasters ---------------------------------------------------------------------------------


class Forecaster(Protocol):
    """A model from lag features (rows × `lag_columns`) to the targets (rows × len(TARGETS))."""

    settings: ForecasterSettings

    def fit(self, features: np.ndarray, targets: np.ndarray) -> Forecaster:
        """Train on these rows; returns self."""
        ...

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Predicted targets, one row per feature row."""
        ...

    def save(self, path: str | Path) -> None:
        """Write the fitted model to one JSON file (`load_forecaster` reads any kind back)."""
        ...

    @classmethod
    def load(cls, path: str | Path) -> Forecaster:
        """Read a model written by `save`."""
        ...


def _write(path: str | Path, settings: ForecasterSettings, state: dict[str, Any]) -> None:
    payload = {"settings": settings.model_dump(), "state": state}
    Path(path).write_text(json.dumps(payload))


def _read(path: str | Path) -> tuple[ForecasterSettings, dict[str, Any]]:
    try:
        payload = json.loads(Path(path).read_text())
        return ForecasterSettings(**payload["settings"]), payload["state"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"forecaster file '{path}': not a saved tapewatch forecaster ({error})") from error


class GbmForecaster:
    """LightGBM, one booster per target: fast on one CPU core, deterministic, indifferent to scale."""

    def __init__(self, settings: ForecasterSettings | None = None) -> None:
        self.settings = settings or ForecasterSettings()
        self.boosters: list[Any] = []

    def _params(self) -> dict[str, Any]:
        s = self.settings
        return {
            "objective": "regression",
            "learning_rate": s.gbm_learning_rate,
            "num_leaves": s.gbm_leaves,
            "min_data_in_leaf": s.gbm_min_leaf,
            "seed": s.seed,
            "num_threads": 1,
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }

    def fit(self, features: np.ndarray, targets: np.ndarray) -> GbmForecaster:
        """Train one booster per target column."""
        import lightgbm as lgb

        self.boosters = [
            lgb.train(self._params(), lgb.Dataset(features, targets[:, j]), self.settings.gbm_trees)
            for j in range(targets.shape[1])
        ]
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Each booster's prediction, as columns."""
        return np.column_stack([b.predict(features, num_threads=1) for b in self.boosters])

    def save(self, path: str | Path) -> None:
        """Boosters as LightGBM model text inside the JSON file."""
        _write(path, self.settings, {"kind": "gbm", "boosters": [b.model_to_string() for b in self.boosters]})

    @classmethod
    def load(cls, path: str | Path) -> GbmForecaster:
        """Rebuild the boosters from their model text."""
        import lightgbm as lgb

        settings, state = _read(path)
        model = cls(settings)
        model.boosters = [lgb.Booster(model_str=text) for text in state["boosters"]]
        return model


def _torch() -> Any:
    """PyTorch, imported only when an LSTM is asked for, with the install line when it is missing."""
    try:
        import torch
    except ImportError:
        raise InputError(f"forecaster 'lstm' needs PyTorch, which is not installed: {DEEP_EXTRA}") from None
    torch.set_num_threads(1)
    return torch


class LstmForecaster:
    """A one-layer LSTM over the lag sequence, then a linear head to every target.

    Inputs and targets are standardised with the training rows' mean and spread
    (kept with the weights), so the same settings work at any volatility.
    """

    def __init__(self, settings: ForecasterSettings | None = None) -> None:
        self.settings = settings or ForecasterSettings(kind="lstm")
        self.net: Any = None
        self.scales: dict[str, list[float]] = {}

    def _build(self) -> Any:
        torch = _torch()
        torch.manual_seed(self.settings.seed)
        hidden = self.settings.lstm_hidden

        class Net(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lstm = torch.nn.LSTM(len(LAG_CHANNELS), hidden, batch_first=True)
                self.head = torch.nn.Linear(hidden, len(TARGETS))

            def forward(self, x: Any) -> Any:
                out, _ = self.lstm(x)
                return self.head(out[:, -1, :])

        return Net()

    def _sequences(self, features: np.ndarray) -> Any:
        torch = _torch()
        channels = len(LAG_CHANNELS)
        standard = (features.reshape(len(features), -1, channels) - self.scales["x_mean"]) / self.scales[
            "x_std"
        ]
        return torch.as_tensor(standard, dtype=torch.float32)

    def fit(self, features: np.ndarray, targets: np.ndarray) -> LstmForecaster:
        """Full-batch Adam for `lstm_epochs` epochs on standardised data (bounded, deterministic time)."""
        torch = _torch()
        flat = features.reshape(-1, len(LAG_CHANNELS))
        self.scales = {
            "x_mean": flat.mean(axis=0).tolist(),
            "x_std": np.maximum(flat.std(axis=0), TINY).tolist(),
            "y_mean": targets.mean(axis=0).tolist(),
            "y_std": np.maximum(targets.std(axis=0), TINY).tolist(),
        }
        self.net = self._build()
        x = self._sequences(features)
        y = torch.as_tensor((targets - self.scales["y_mean"]) / self.scales["y_std"], dtype=torch.float32)
        optimiser = torch.optim.Adam(self.net.parameters(), lr=self.settings.lstm_learning_rate)
        for _ in range(self.settings.lstm_epochs):
            optimiser.zero_grad()
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            loss.backward()
            optimiser.step()
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Predictions in the targets' own units."""
        torch = _torch()
        with torch.no_grad():
            standard = self.net(self._sequences(features)).double().numpy()
        return standard * self.scales["y_std"] + self.scales["y_mean"]

    def save(self, path: str | Path) -> None:
        """Weights as lists of floats (exact for float32) and the scales, in the JSON file: no pickle."""
        weights = {name: tensor.tolist() for name, tensor in self.net.state_dict().items()}
        _write(path, self.settings, {"kind": "lstm", "weights": weights, "scales": self.scales})

    @classmethod
    def load(cls, path: str | Path) -> LstmForecaster:
        """Rebuild the network and load its weights."""
        torch = _torch()
        settings, state = _read(path)
        model = cls(settings)
        model.scales = state["scales"]
        model.net = model._build()
        weights = {name: torch.tensor(value, dtype=torch.float32) for name, value in state["weights"].items()}
        model.net.load_state_dict(weights)
        return model


FORECASTERS: dict[str, type[GbmForecaster | LstmForecaster]] = {
    "gbm": GbmForecaster,
    "lstm": LstmForecaster,
}


def make_forecaster(settings: ForecasterSettings) -> Forecaster:
    """An unfitted forecaster of `settings.kind`; the LSTM fails here, in one line, without PyTorch."""
    if settings.kind == "lstm":
        _torch()
    return FORECASTERS[settings.kind](settings)


def load_forecaster(path: str | Path) -> Forecaster:
    """Read back a forecaster of any kind written by its `save`."""
    settings, _ = _read(path)
    return FORECASTERS[settings.kind].load(path)
