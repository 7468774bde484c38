from datetime import timedelta

import polars as pl
from conftest import START, burst, market, quiet_trades

from tapewatch.config import Settings
from tapewatch.detect.pump.kamps_kleinberg import KampsKleinbergDetector
from tapewatch.detect.pump.settings import KampsKleinbergSettings
from tapewatch.detect.registry import build_detectors
from tapewatch.engine.batch import run_batch
from tapewatch.io.derive import trades_to_bars
from tapewatch.records import BAR_SCHEMA, conform


def hourly_bars(closes, volumes, symbol="IDX"):
    ts = [START + timedelta(hours=i) for i in range(len(closes))]
    frame = pl.DataFrame(
        {
            "ts": ts,
            "venue": "v",
            "symbol": symbol,
            "interval": "1h",
            "open": closes,
            "high": [c * 1.01 for c in closes],
            "low": [c * 0.99 for c in closes],
            "close": closes,
            "volume": volumes,
        }
    )
    return conform(frame, BAR_SCHEMA)


def test_price_and_volume_spike_together_fire_once():
    closes = [100.0] * 20 + [130.0, 135.0] + [100.0] * 5
    volumes = [10.0] * 20 + [80.0, 90.0] + [10.0] * 5
    alerts = KampsKleinbergDetector().detect(hourly_bars(closes, volumes))
    assert len(alerts) == 1  # two anomalous candles in a row are one episode
    alert = alerts[0]
    assert alert.start == START + timedelta(hours=20)
    assert alert.detected_at == alert.end == START + timedelta(hours=21)  # the candle's close
    assert alert.evidence["volume_ratio"] == 8.0
    assert alert.evidence["price_ratio"] >= 1.3


def test_price_alone_or_volume_alone_is_not_enough_and_both_together_are():
    quiet_closes, quiet_volumes = [100.0] * 21, [10.0] * 21
    spike_closes, spike_volumes = [100.0] * 20 + [130.0], [10.0] * 20 + [80.0]
    assert KampsKleinbergDetector().detect(hourly_bars(spike_closes, quiet_volumes)) == []
    assert KampsKleinbergDetector().detect(hourly_bars(quiet_closes, spike_volumes)) == []
    (both,) = KampsKleinbergDetector().detect(hourly_bars(spike_closes, spike_volumes))
    assert both.start == START + timedelta(hours=20) and both.typology == "pump_and_dump"


def test_no_decision_before_min_history():
    closes, volumes = [100.0] * 3 + [150.0], [10.0] * 3 + [100.0]
    assert KampsKleinbergDetector().detect(hourly_bars(closes, volumes)) == []
    assert (
        len(
            KampsKleinbergDetector(KampsKleinbergSettings(min_history=3)).detect(hourly_bars(closes, volumes))
        )
        == 1
    )


def test_candles_from_trades_use_the_last_trade_as_detected_at():
    at = START + timedelta(hours=10, minutes=10)
    trades = market(quiet_trades(hours=14, per_minute=1), burst(at, orders=400, seconds=60, rise=0.5))
    bars = trades_to_bars(trades, "1h")
    assert bars["trades"].sum() == trades.height
    alerts = run_batch(
        build_detectors(Settings(), ["kamps_kleinberg"]), trades, conform(pl.DataFrame(), BAR_SCHEMA)
    )
    assert len(alerts) == 1
    hour = START + timedelta(hours=10)
    last_in_hour = trades.filter((pl.col("ts") >= hour) & (pl.col("ts") < hour + timedelta(hours=1)))[
        "ts"
    ].max()
    assert alerts[0].start == hour and alerts[0].detected_at == last_in_hour
