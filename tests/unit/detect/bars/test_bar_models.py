"""Model-based bar detectors: Isolation Forest and forecast residuals (GBM, and the LSTM when torch is here)."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tapewatch.detect.bars.forecast import ForecastResidualDetector, evaluate_forecaster, train_forecaster
from tapewatch.detect.bars.forecasters import (
    Forecaster,
    lag_columns,
    lag_features,
    load_forecaster,
    make_forecaster,
)
from tapewatch.detect.bars.isolation import IsolationForestDetector
from tapewatch.detect.bars.settings import (
    ForecasterSettings,
    ForecastResidualSettings,
    IsolationForestSettings,
)
from tapewatch.detect.base import DetectorState
from tapewatch.errors import InputError
from tapewatch.records import BAR_SCHEMA, conform

HAS_TORCH = importlib.util.find_spec("torch") is not None
START = datetime(2024, 1, 1, tzinfo=UTC)
BARS = 480
INJECTED = (250, 330, 400, 460)
SMALL = {"train_bars": 150, "min_train_bars": 80, "refit_bars": 50}
FORECAST = ForecasterSettings(lags=3, baseline_window=10, gbm_trees=30, lstm_epochs=10, lstm_hidden=8)


def bars(
    symbols: int = 2, vol: float = 0.004, inject: tuple[int, ...] = INJECTED, seed: int = 7
) -> pl.DataFrame:
    """Hourly GARCH-like bars (volatility clusters) with wild bars at `inject`: range, move and volume."""
    rng = np.random.default_rng(seed)
    frames = []
    for index in range(symbols):
        shocks = rng.standard_normal((BARS, 3))
        sigma, returns, variance = np.empty(BARS), np.empty(BARS), 1.0
        for t in range(BARS):
            sigma[t] = np.sqrt(variance)
            returns[t] = sigma[t] * shocks[t, 0]
            variance = 0.1 + 0.1 * returns[t] ** 2 + 0.8 * variance
        wicks = np.abs(shocks[:, 1:]) * sigma[:, None] * 0.6
        volume = np.exp(rng.normal(0, 0.3, BARS)) * (1 + 0.5 * np.abs(returns))
        for t in inject:
            returns[t] += 6 * sigma[t] * (1 if t % 2 else -1)
            wicks[t] += 8 * sigma[t]
            volume[t] *= 20
        close = 100 * np.exp(vol * np.cumsum(returns))
        open_ = np.concatenate([[100.0], close[:-1]])
        frames.append(
            pl.DataFrame(
                {
                    "ts": [START + timedelta(hours=t) for t in range(BARS)],
                    "venue": "test",
                    "symbol": f"S{index}",
                    "interval": "1h",
                    "open": open_,
                    "high": np.maximum(open_, close) * np.exp(vol * wicks[:, 0]),
                    "low": np.minimum(open_, close) * np.exp(-vol * wicks[:, 1]),
                    "close": close,
                    "volume": 1000 * volume,
                }
            )
        )
    return conform(pl.concat(frames), BAR_SCHEMA)


def isolation() -> IsolationForestDetector:
    # 150 training bars: the default 0.996 quantile would be the single most unusual one
    settings = IsolationForestSettings(**SMALL, baseline_window=10, trees=20, threshold_quantile=0.99)
    return IsolationForestDetector(settings)


def forecast(kind: str = "gbm") -> ForecastResidualDetector:
    settings = ForecastResidualSettings(
        **SMALL,
        forecaster=FORECAST.model_copy(update={"kind": kind}),
        calibration_bars=60,
        min_calibration_bars=30,
    )
    return ForecastResidualDetector(settings)


DETECTORS = [pytest.param(isolation, id="isolation_forest"), pytest.param(forecast, id="forecast_residual")]


@cache
def batch(make) -> tuple:
    """Batch alerts on the injected bars, computed once per detector for the tests that compare with them."""
    return tuple(make().detect(bars()))


def hours(alerts: list) -> set[tuple[str, int]]:
    return {(a.symbol, int((a.start - START) / timedelta(hours=1))) for a in alerts}


@pytest.mark.parametrize("make", DETECTORS)
def test_injected_bars_flagged_and_quiet_bars_mostly_not(make) -> None:
    found = hours(batch(make))
    injected = {(symbol, t) for symbol in ("S0", "S1") for t in INJECTED}
    assert injected <= found
    quiet = hours(make().detect(bars(inject=())))
    assert len(quiet) / (2 * BARS) < 0.02
    assert {alert.typology for alert in batch(make)} == {make().typology}


@pytest.mark.parametrize("make", DETECTORS)
def test_forward_only(make) -> None:
    """A decision on a bar depends on that bar and earlier ones only."""
    data, cut = bars(), START + timedelta(hours=370)
    before = [a for a in batch(make) if a.start <= cut]
    truncated = make().detect(data.filter(pl.col("ts") <= cut))
    future = pl.col("ts") > cut
    changed = data.with_columns(
        high=pl.when(future).then(pl.col("high") * 1.5).otherwise(pl.col("high")),
        volume=pl.when(future).then(pl.col("volume") * 30).otherwise(pl.col("volume")),
    )
    rewritten = [a for a in make().detect(changed) if a.start <= cut]
    assert before  # the check below is not vacuous
    assert truncated == before
    assert rewritten == before


@pytest.mark.parametrize("make", DETECTORS)
def test_stream_on_growing_tails_equals_batch(make) -> None:
    """As the streaming engine calls it: each symbol's last lookback_bars+1 decided candles, then the new ones."""
    data = bars()
    detector, state, streamed = make(), DetectorState(), []
    keep = detector.lookback_bars + 1
    for end in range(37, BARS + 37, 37):
        begin = START + timedelta(hours=end - 37)
        decided = data.filter(pl.col("ts") < begin).group_by("symbol", maintain_order=True).tail(keep)
        new = data.filter(pl.col("ts").is_between(begin, START + timedelta(hours=end), closed="left"))
        tail = pl.concat([decided.select(data.columns), new]).sort("symbol", "ts")
        streamed += detector.detect(tail, state)
    assert len(batch(make)) >= len(INJECTED)

    def order(alerts: list) -> list[dict]:
        return [a.model_dump() for a in sorted(alerts, key=lambda a: (a.detected_at, a.symbol))]

    assert order(streamed) == order(batch(make))


@pytest.mark.parametrize("make", DETECTORS)
def test_threshold_adapts_to_volatility(make) -> None:
    """Ten times the volatility, same bars otherwise: about the same share of bars flagged, and the
    injected bars (ten times wilder too) still among them."""
    calm = len(make().detect(bars(inject=())))
    wild = len(make().detect(bars(vol=0.04, inject=())))
    assert calm > 0 and abs(calm - wild) <= 4  # a few quiet bars are flagged at either scale
    injected = {(symbol, t) for symbol in ("S0", "S1") for t in INJECTED}
    assert injected <= hours(make().detect(bars(vol=0.04)))


def test_isolation_evidence_names_the_extreme_features() -> None:
    alert = next(a for a in batch(isolation) if a.start == START + timedelta(hours=INJECTED[0]))
    evidence = alert.evidence
    assert evidence["anomaly_score"] >= evidence["threshold"]
    assert set(evidence["most_extreme"]) <= set(evidence["features"])
    assert evidence["most_extreme"][0] in {"log_range", "log_volume_ratio", "log_range_ratio", "body"}


def assert_round_trips(model: Forecaster, path: Path) -> Forecaster:
    """Saved to `path` and loaded back, the model predicts exactly as before on bars it never saw."""
    model.save(path)
    loaded = load_forecaster(path)
    features = lag_features(bars(seed=3), FORECAST).drop_nulls(lag_columns(FORECAST.lags))
    x = features.select(lag_columns(FORECAST.lags)).to_numpy()
    assert np.array_equal(loaded.predict(x), model.predict(x))
    return loaded


def test_gbm_beats_last_value_and_round_trips(tmp_path) -> None:
    model, report = train_forecaster(bars(), "gbm", FORECAST)
    assert report.mae["high"] < report.naive_mae["high"]
    assert 0 <= report.alert_rate < 0.05
    loaded = assert_round_trips(model, tmp_path / "gbm.json")
    assert evaluate_forecaster(loaded, bars(seed=3)) == evaluate_forecaster(model, bars(seed=3))


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch not installed (pip install 'tapewatch[deep]')")
def test_lstm_trains_and_round_trips(tmp_path) -> None:
    model, report = train_forecaster(bars(), "lstm", FORECAST)
    assert report.kind == "lstm" and np.isfinite(report.mae["close"])
    assert_round_trips(model, tmp_path / "lstm.json")


@pytest.mark.skipif(not HAS_TORCH, reason="PyTorch not installed (pip install 'tapewatch[deep]')")
def test_lstm_detector_is_reproducible() -> None:
    first, second = forecast("lstm").detect(bars()), forecast("lstm").detect(bars())
    assert first == second
    assert {("S0", INJECTED[0])} <= hours(first)


def test_lstm_without_torch_is_one_clear_line(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)  # makes `import torch` raise ImportError
    with pytest.raises(InputError, match=r"pip install 'tapewatch\[deep\]'"):
        make_forecaster(ForecasterSettings(kind="lstm"))
    with pytest.raises(InputError, match="needs PyTorch"):
        forecast("lstm")
    assert forecast("gbm").detect(bars(symbols=1))  # everything else still works


def test_train_forecast_command_trains_saves_and_evaluates(tmp_path) -> None:
    from typer.testing import CliRunner

    from tapewatch.cli.app import app

    series = bars(symbols=1)
    csv = tmp_path / "S0.csv"
    series.select(
        date=pl.col("ts").dt.strftime("%Y-%m-%d %H:%M:%S"),
        open="open",
        high="high",
        low="low",
        close="close",
        volume="volume",
    ).write_csv(csv)
    model = tmp_path / "forecaster.json"
    runner = CliRunner()
    trained = runner.invoke(app, ["train", "forecast", str(csv), "-o", str(model)])
    assert trained.exit_code == 0, trained.output
    assert model.is_file() and "last-value MAE" in trained.output and "high" in trained.output
    evaluated = runner.invoke(app, ["train", "forecast", str(csv), "--evaluate", str(model)])
    assert evaluated.exit_code == 0 and "residual alert rate" in evaluated.output
    both = runner.invoke(app, ["train", "forecast", str(csv)])
    assert both.exit_code == 2 and "give --out FILE to train" in both.output
    unknown = runner.invoke(app, ["train", "forecast", str(csv), "--kind", "arima", "-o", str(model)])
    assert unknown.exit_code == 2 and "--kind 'arima'" in unknown.output
