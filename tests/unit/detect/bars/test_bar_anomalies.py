"""Bar anomaly detectors: injected anomalies found with their evidence, quiet series silent, causal."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import polars as pl
import pytest
from conftest import START, burst, market, quiet_trades

from tapewatch.config import StreamSettings
from tapewatch.detect.bars.anomalies import (
    AmplitudeAnomalyDetector,
    PriceAnomalyDetector,
    VolumeAnomalyDetector,
    bar_anomaly_detectors,
    bar_scores,
)
from tapewatch.detect.bars.settings import (
    AmplitudeAnomalySettings,
    PriceAnomalySettings,
    VolumeAnomalySettings,
)
from tapewatch.detect.base import DetectorState
from tapewatch.engine.batch import run_batch
from tapewatch.engine.stream import StreamEngine
from tapewatch.io.derive import trades_to_bars
from tapewatch.pipeline.stream import run_stream
from tapewatch.records import BAR_SCHEMA, TRADE_SCHEMA, conform, empty_frame
from tapewatch.sources.replay import replay

AT = 120  # the candle that carries the injected anomaly
STEP = {"1h": timedelta(hours=1), "1d": timedelta(days=1)}


def walk(n: int = 160, *, seed: int = 0, sigma: float = 0.01) -> dict[str, np.ndarray]:
    """A quiet market that never closes: each candle opens at the previous close, lognormal volumes."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, sigma, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    wicks = np.abs(rng.normal(0, sigma / 2, (2, n)))
    return {
        "open": open_,
        "high": np.maximum(open_, close) * (1 + wicks[0]),
        "low": np.minimum(open_, close) * (1 - wicks[1]),
        "close": close,
        "volume": rng.lognormal(5, 0.3, n),
    }


def frame(columns: dict[str, np.ndarray], symbol: str = "AAA", interval: str = "1h") -> pl.DataFrame:
    n = len(columns["close"])
    ts = [START + STEP[interval] * i for i in range(n)]
    return conform(
        pl.DataFrame({"ts": ts, "venue": "v", "symbol": symbol, "interval": interval, **columns}),
        BAR_SCHEMA,
    )


def level_shift(columns: dict[str, np.ndarray], at: int, factor: float, *, at_open: bool) -> None:
    """Move the price level by `factor` (> 1 unless `at_open`) from candle `at` on.

    At the open it is a gap: the whole candle moves. Otherwise the candle's close and
    high move and the next candles follow: one huge body and return.
    """
    first = dict.fromkeys(("open", "high", "low", "close"), at)
    if not at_open:
        first |= {"open": at + 1, "low": at + 1}
    for name, index in first.items():
        columns[name][index:] *= factor


def detect_all(bars: pl.DataFrame) -> dict[str, list]:
    return {detector.name: detector.detect(bars) for detector in bar_anomaly_detectors()}


def starts(alerts: dict[str, list]) -> dict[str, list[tuple[str, int]]]:
    """Each detector's alerts as (symbol, candle index) pairs."""
    return {
        name: [(a.symbol, int((a.start - START) / timedelta(hours=1))) for a in found]
        for name, found in alerts.items()
    }


def test_a_quiet_series_raises_nothing_and_the_same_series_with_anomalies_does():
    walks = [walk(600, seed=seed) for seed in range(3)]
    bars = pl.concat([frame(columns, symbol=f"S{seed}") for seed, columns in enumerate(walks)])
    assert detect_all(bars) == {"amplitude_anomaly": [], "volume_anomaly": [], "price_anomaly": []}
    scores = bar_scores(bars)
    assert scores["excess"].drop_nulls().len() > 1500 and scores["excess"].max() < 1
    level_shift(walks[1], 400, 1.15, at_open=False)  # the twin: S1 gets a huge body and a volume spike
    walks[1]["volume"][500] *= 30
    injected = pl.concat([frame(columns, symbol=f"S{seed}") for seed, columns in enumerate(walks)])
    assert starts(detect_all(injected)) == {
        "amplitude_anomaly": [("S1", 400)],
        "volume_anomaly": [("S1", 500)],
        "price_anomaly": [("S1", 400)],
    }


def flat_series(close: float, volume: float) -> pl.DataFrame:
    """150 identical candles at 100 and volume 10, then from candle AT on the price `close`, with
    `volume` traded in candle AT."""
    columns = {name: np.full(150, 100.0) for name in ("open", "high", "low", "close")}
    columns["volume"] = np.full(150, 10.0)
    columns["close"][AT:] = columns["open"][AT + 1 :] = columns["high"][AT:] = close
    columns["volume"][AT] = volume
    return frame(columns)


def test_a_flat_series_does_not_turn_a_tick_into_an_anomaly_but_a_real_move_is_one():
    """A zero scale is floored: one basis point on 10 % more volume is no anomaly, 1 % on ten times it is."""
    assert detect_all(flat_series(100.01, 11.0)) == {
        "amplitude_anomaly": [],
        "volume_anomaly": [],
        "price_anomaly": [],
    }
    moved = starts(detect_all(flat_series(101.0, 100.0)))
    assert moved == {name: [("AAA", AT)] for name in ("amplitude_anomaly", "volume_anomaly", "price_anomaly")}


def test_a_huge_body_is_an_amplitude_and_a_price_anomaly_with_evidence():
    columns = walk()
    level_shift(columns, AT, 1.15, at_open=False)
    alerts = detect_all(frame(columns))
    (amplitude,) = alerts["amplitude_anomaly"]
    start = START + timedelta(hours=AT)
    assert (amplitude.start, amplitude.end) == (start, start + timedelta(hours=1))
    assert amplitude.detected_at == amplitude.end and amplitude.typology == "amplitude_anomaly"
    evidence = amplitude.evidence
    assert evidence["feature"] == "body" and evidence["threshold"] == 6.0
    assert evidence["value"] == pytest.approx(columns["close"][AT] / columns["open"][AT] - 1, rel=1e-5)
    assert evidence["z"] == pytest.approx(
        (evidence["value"] - evidence["centre"]) / evidence["scale"], rel=1e-3
    )
    assert evidence["z"] > 6 and 0.003 < evidence["scale"] < 0.03
    assert (
        evidence["bar"]["close"] == columns["close"][AT]
        and evidence["bar"]["volume"] == columns["volume"][AT]
    )
    assert evidence["bar"]["close_minus_open"] == pytest.approx(columns["close"][AT] - columns["open"][AT])
    assert set(evidence["features"]) == {"body", "log_range"} and evidence["window_candles"] == 100
    assert 0.5 < amplitude.score <= 1
    (price,) = alerts["price_anomaly"]
    assert price.start == start and price.evidence["feature"] == "log_return"
    assert price.evidence["value"] == pytest.approx(
        math.log(columns["close"][AT] / columns["close"][AT - 1]), rel=1e-5
    )
    assert alerts["volume_anomaly"] == []


def test_a_range_that_recovers_by_the_close_is_only_an_amplitude_anomaly():
    columns = walk()
    columns["high"][AT] *= 1.08
    columns["low"][AT] *= 0.9  # the flash crash: body and return as usual
    alerts = detect_all(frame(columns))
    (amplitude,) = alerts["amplitude_anomaly"]
    assert amplitude.start == START + timedelta(hours=AT) and amplitude.evidence["feature"] == "log_range"
    value = math.log((columns["high"][AT] - columns["low"][AT]) / columns["open"][AT])
    assert amplitude.evidence["value"] == pytest.approx(value, rel=1e-5)
    assert amplitude.evidence["features"]["body"]["z"] < 6
    assert alerts["price_anomaly"] == [] and alerts["volume_anomaly"] == []


def test_a_volume_spike_is_a_volume_anomaly_upward_only():
    columns = walk()
    columns["volume"][AT] *= 30
    columns["volume"][AT + 10] /= 30  # a dead candle is no anomaly
    alerts = detect_all(frame(columns))
    (volume,) = alerts["volume_anomaly"]
    assert volume.start == START + timedelta(hours=AT) and volume.evidence["feature"] == "log_volume"
    assert volume.evidence["value"] == pytest.approx(math.log(columns["volume"][AT]), rel=1e-5)
    assert volume.evidence["centre"] == pytest.approx(5, abs=0.1)  # lognormal(5, 0.3)
    assert volume.evidence["scale"] == pytest.approx(0.3, abs=0.1) and volume.evidence["z"] > 5
    assert alerts["amplitude_anomaly"] == [] and alerts["price_anomaly"] == []


def test_a_gap_at_the_open_is_a_price_anomaly_and_a_small_one_is_not():
    small = walk()
    level_shift(small, AT, 1.004, at_open=True)  # under half a typical move
    assert PriceAnomalyDetector().detect(frame(small)) == []
    columns = walk()
    level_shift(columns, AT, 0.95, at_open=True)
    (price,) = PriceAnomalyDetector().detect(frame(columns))
    assert price.start == START + timedelta(hours=AT) and price.evidence["feature"] == "gap"
    assert price.evidence["value"] == pytest.approx(-0.05, rel=1e-6)
    # a market that never closes has no gaps of its own: the scale is a share of the return scale
    returns = price.evidence["features"]["log_return"]["scale"]
    assert price.evidence["scale"] == pytest.approx(0.25 * returns, rel=1e-4)


def test_no_decision_before_min_history():
    columns = walk(40)
    columns["volume"][20] *= 100
    assert VolumeAnomalyDetector().detect(frame(columns)) == []
    assert len(VolumeAnomalyDetector(VolumeAnomalySettings(min_history=10)).detect(frame(columns))) == 1


def anomalous_market() -> pl.DataFrame:
    """Two symbols, each with every kind of anomaly at different candles."""
    frames = []
    for seed, symbol in enumerate(("AAA", "BBB")):
        columns = walk(300, seed=seed)
        level_shift(columns, 110 + seed, 1.12, at_open=False)
        columns["volume"][150 + seed] *= 40
        columns["low"][190 + seed] *= 0.9
        level_shift(columns, 230 + seed, 0.94, at_open=True)
        frames.append(frame(columns, symbol=symbol))
    return pl.concat(frames)


def test_bar_scores_reach_one_exactly_where_the_detectors_alert():
    bars = anomalous_market()
    scores = bar_scores(bars)
    assert scores.height == bars.height
    for name, alerts in detect_all(bars).items():
        flagged = scores.filter(pl.col(f"{name}_excess") >= 1)
        assert len(alerts) >= 2
        assert set(zip(flagged["symbol"], flagged["ts"], strict=True)) == {
            (a.symbol, a.start) for a in alerts
        }
    assert {"body_z", "log_range_z", "log_volume_z", "log_return_z", "gap_z"} <= set(scores.columns)


@pytest.mark.parametrize("cut", [111, 151, 200, 231])
def test_a_decision_reads_only_its_candle_and_earlier_ones(cut):
    bars = anomalous_market()
    boundary = START + timedelta(hours=cut)
    changed = bars.with_columns(
        pl.when(pl.col("ts") >= boundary).then(pl.col(name) * 3).otherwise(pl.col(name))
        for name in ("high", "volume")
    )
    for detector in bar_anomaly_detectors():
        before = [a for a in detector.detect(bars) if a.start < boundary]
        assert detector.detect(bars.filter(pl.col("ts") < boundary)) == before
        assert [a for a in detector.detect(changed) if a.start < boundary] == before
    assert any(a.start < boundary for a in AmplitudeAnomalyDetector().detect(bars))


def test_tails_with_a_state_decide_like_the_batch():
    bars = anomalous_market()
    for detector in bar_anomaly_detectors():
        state, streamed = DetectorState(), []
        keep = detector.lookback_bars + 1
        for stop in range(7, 300 + 7, 7):  # seven new candles a call, after the kept context
            tail = bars.filter(pl.col("ts") < START + timedelta(hours=stop))
            tail = tail.group_by("symbol", maintain_order=True).tail(keep + 7).select(bars.columns)
            streamed += detector.detect(tail.sort("venue", "symbol", "ts"), state)
        assert sorted(streamed, key=by_id) == sorted(detector.detect(bars), key=by_id) and streamed


def by_id(alert):
    return alert.id


def test_candles_from_trades_stream_as_they_batch():
    at = START + timedelta(hours=6, minutes=2)
    later = at + timedelta(minutes=40)
    trades = market(  # AAA is pumped to a new level, BBB dumped to one, each within a 5-minute candle
        quiet_trades("AAA/BTC", hours=6, per_minute=3),
        burst(at, orders=300, seconds=90, rise=0.3),
        quiet_trades("AAA/BTC", start=at + timedelta(minutes=2), hours=2, per_minute=3, price=1.3e-5),
        quiet_trades("BBB/BTC", hours=6.7, per_minute=2, seed=4),
        burst(later, symbol="BBB/BTC", orders=200, rise=0.2, side="sell", seed=6),
        quiet_trades("BBB/BTC", start=later + timedelta(minutes=2), hours=2, price=0.8e-5, seed=5),
    )
    baseline = {"interval": "5m", "window": 40, "min_history": 12}
    detectors = [
        AmplitudeAnomalyDetector(AmplitudeAnomalySettings(**baseline)),
        VolumeAnomalyDetector(VolumeAnomalySettings(**baseline)),
        PriceAnomalyDetector(PriceAnomalySettings(**baseline)),
    ]
    batch = run_batch(detectors, trades, empty_frame(BAR_SCHEMA))
    candles = {("AAA/BTC", START + timedelta(hours=6)), ("BBB/BTC", START + timedelta(hours=6, minutes=40))}
    names = {detector.name for detector in detectors}
    assert sorted((a.detector, a.symbol, a.start) for a in batch) == sorted(
        (name, symbol, start) for name in names for symbol, start in candles
    )
    assert all(a.detected_at < a.end for a in batch)  # the candle's last trade, not its close
    for batch_trades in (97, 5000):
        engine = StreamEngine(detectors, StreamSettings(max_batch_trades=1, hold_ms=10**9))
        final: dict = {}
        run_stream(
            replay(trades, speed=None, batch_trades=batch_trades),
            engine,
            [lambda items, final=final: final.update({item.alert.id: item.alert for item in items})],
        )
        assert sorted(final) == sorted(a.id for a in batch)
        for alert in batch:
            assert final[alert.id].model_dump(exclude={"timing"}) == alert.model_dump(exclude={"timing"})


def test_candles_from_trades_take_fills_of_one_instant_in_sweep_order():
    """A buy sweep opens the candle, a sell sweep closes it; their fills arrive in any row order."""
    opening = [(START, "buy", price) for price in (1.0, 1.1, 1.2)]  # lifts the asks: first fill lowest
    closing = [(START + timedelta(minutes=3), "sell", price) for price in (1.3, 1.25, 1.15)]  # hits bids
    rows = pl.DataFrame(opening + closing, schema=["ts", "side", "price"], orient="row")
    trades = conform(
        rows.with_columns(venue=pl.lit("v"), symbol=pl.lit("S"), amount=pl.lit(1.0)), TRADE_SCHEMA
    )
    for seed in range(4):
        shuffled = trades.sample(fraction=1.0, shuffle=True, seed=seed).sort("ts", maintain_order=True)
        (candle,) = trades_to_bars(shuffled, "5m").iter_rows(named=True)
        assert (candle["open"], candle["high"], candle["low"], candle["close"]) == (1.0, 1.3, 1.0, 1.15)


def test_intervals_of_one_symbol_are_kept_apart():
    hourly = frame(walk(200, seed=1))
    daily_columns = walk(200, seed=2, sigma=0.02)
    daily_columns["volume"][AT] *= 40
    daily = frame(daily_columns, interval="1d")
    both = pl.concat([hourly, daily]).sort("venue", "symbol", "ts", maintain_order=True)
    (alert,) = VolumeAnomalyDetector().detect(both)
    assert alert.evidence["interval"] == "1d" and alert.start == START + timedelta(days=AT)
    assert alert.end - alert.start == timedelta(days=1)
    alone = bar_scores(hourly)
    mixed = bar_scores(both).filter(pl.col("interval") == "1h").sort("ts")
    assert mixed.equals(alone)


def test_the_same_moment_at_two_intervals_gives_two_alerts():
    hourly_columns = walk(200, seed=1)
    hourly_columns["volume"][AT] *= 40
    daily_columns = walk(200, seed=2, sigma=0.02)
    daily_columns["volume"][AT] *= 40
    hourly = frame(hourly_columns).with_columns(pl.col("ts") - timedelta(hours=AT) + timedelta(days=AT))
    both = pl.concat([hourly, frame(daily_columns, interval="1d")]).sort("venue", "symbol", "interval", "ts")
    alerts = VolumeAnomalyDetector().detect(both)
    assert sorted(alert.evidence["interval"] for alert in alerts) == ["1d", "1h"]
    assert len({alert.start for alert in alerts}) == 1 and len({alert.id for alert in alerts}) == 2


def test_empty_input_gives_nothing_and_leaves_the_state_as_it_was():
    empty, bars = empty_frame(BAR_SCHEMA), anomalous_market()
    for detector in bar_anomaly_detectors():
        state = DetectorState()
        assert detector.detect(empty) == [] and detector.detect(empty, state) == []
        batch = detector.detect(bars)
        assert len(batch) >= 2 and detector.detect(bars, state) == batch
    scores = bar_scores(empty)
    assert scores.is_empty() and "excess" in scores.columns


def test_settings_and_contract():
    detector = PriceAnomalyDetector(PriceAnomalySettings(interval="1d", window=50))
    assert detector.interval == "1d" and detector.lookback_bars == 51
    assert detector.lookback == timedelta(days=52) and detector.followup_horizon() == timedelta(0)
    assert detector.refresh_followups([], empty_frame(BAR_SCHEMA)) == []
    with pytest.raises(ValueError):
        AmplitudeAnomalySettings(body_treshold=3)  # a typo is an error, not a silent default
