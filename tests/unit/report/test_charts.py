"""Alert charts: a PNG that is a real image, an offline HTML page, and a clear error when there is nothing to draw."""

from __future__ import annotations

import re
import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from tapewatch.errors import InputError
from tapewatch.records import TRADE_SCHEMA, Alert, conform
from tapewatch.report.charts import chart_data, chart_window, choose_bucket, render_alert_chart

T0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
PUMP_START = T0 + timedelta(hours=2)
SYMBOL = "PUMP/USDT"


def quiet_walk_with_jump(seed: int = 7) -> pl.DataFrame:
    """Four hours of a trade every ~5 s around 1.00, with a +40 % jump on heavy buying at PUMP_START."""
    rng = np.random.default_rng(seed)
    n = 4 * 3600 // 5
    ts = [T0 + timedelta(seconds=5 * i + float(rng.uniform(0, 4))) for i in range(n)]
    in_pump = np.array([PUMP_START <= t < PUMP_START + timedelta(minutes=10) for t in ts])
    steps = rng.normal(0, 0.0005, n) + np.where(in_pump, 0.0035, 0.0)
    price = np.exp(np.cumsum(steps))
    amount = rng.lognormal(0, 0.5, n) * np.where(in_pump, 8.0, 1.0)
    side = np.where(rng.uniform(size=n) < np.where(in_pump, 0.9, 0.5), "buy", "sell").astype(object)
    side[::7] = None  # some venues do not say
    frame = pl.DataFrame(
        {
            "ts": ts,
            "venue": "binance",
            "symbol": SYMBOL,
            "price": price,
            "amount": amount,
            "side": side.tolist(),
        }
    )
    other = frame.with_columns(symbol=pl.lit("OTHER/USDT"), price=pl.col("price") * 100)
    return conform(pl.concat([frame, other]), TRADE_SCHEMA)


def pump_alert(**changes: object) -> Alert:
    fields: dict = {
        "detector": "pump_v1",
        "typology": "pump_and_dump",
        "venue": "binance",
        "symbol": SYMBOL,
        "start": PUMP_START,
        "end": PUMP_START + timedelta(minutes=10),
        "detected_at": PUMP_START + timedelta(minutes=7),
        "score": 0.93,
        "evidence": {"return": 0.4},
    }
    fields.update(changes)
    return Alert.build(**fields)


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG header (signature, then the IHDR chunk)."""
    header = path.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    assert header[12:16] == b"IHDR"
    width, height = struct.unpack(">II", header[16:24])
    return width, height


@pytest.fixture(scope="module")
def trades() -> pl.DataFrame:
    return quiet_walk_with_jump()


def test_renders_png_and_offline_html(trades: pl.DataFrame, tmp_path: Path) -> None:
    png, html = tmp_path / "out" / "alert.png", tmp_path / "out" / "alert.html"
    render_alert_chart(trades, pump_alert(), png, html)

    width, height = png_size(png)
    assert (width, height) == (1200, 700)
    assert png.stat().st_size > 20_000  # a blank canvas compresses to a few kB

    page = html.read_text(encoding="utf-8")
    assert 'class="plotly-graph-div"' in page
    assert f"<title>{SYMBOL} on binance: pump and dump" in page
    assert not re.search(r"<script[^>]*\ssrc=", page)  # nothing fetched: opens offline
    assert len(page) > 1_000_000  # plotly.js itself is embedded


def test_candles_cover_the_window_of_this_symbol_only(trades: pl.DataFrame) -> None:
    alert = pump_alert()
    data = chart_data(trades, alert)
    lo, hi = chart_window(alert)
    assert (lo, hi) == (PUMP_START - timedelta(minutes=30), PUMP_START + timedelta(minutes=40))
    assert 60 <= data.candles.height <= 200
    assert data.candles["ts"].min() >= lo - data.bucket and data.candles["ts"].max() <= hi
    assert data.candles["high"].max() < 5  # OTHER/USDT trades at ~100 are left out
    jump = data.candles.filter(pl.col("ts") >= PUMP_START)["close"].max() / data.candles["open"][0]
    assert jump > 1.3
    volume = data.candles.select(pl.col("buy") + pl.col("sell") + pl.col("unknown") - pl.col("volume"))
    assert volume.to_series().abs().max() < 1e-9
    assert data.candles["unknown"].sum() > 0 and data.candles["sell"].sum() > 0


def test_context_widens_with_long_alerts_and_can_be_given() -> None:
    long_alert = pump_alert(end=PUMP_START + timedelta(hours=1), detected_at=PUMP_START + timedelta(hours=1))
    assert chart_window(long_alert) == (PUMP_START - timedelta(hours=3), PUMP_START + timedelta(hours=4))
    late = pump_alert(detected_at=PUMP_START + timedelta(minutes=20))  # detected after the window closed
    assert chart_window(late, timedelta(minutes=5)) == (
        PUMP_START - timedelta(minutes=5),
        PUMP_START + timedelta(minutes=25),
    )


@pytest.mark.parametrize(
    "span",
    [timedelta(minutes=m) for m in (1, 7, 45, 70, 333, 1000)] + [timedelta(days=d) for d in (1, 3, 30, 300)],
)
def test_bucket_gives_a_readable_number_of_candles(span: timedelta) -> None:
    count = span / choose_bucket(span)
    assert count <= 200
    if span >= timedelta(hours=1):
        assert count >= 60


def test_no_trades_in_the_window_is_a_one_line_input_error(trades: pl.DataFrame, tmp_path: Path) -> None:
    far_away = pump_alert(
        start=T0 + timedelta(days=10),
        end=T0 + timedelta(days=10, minutes=5),
        detected_at=T0 + timedelta(days=10, minutes=5),
    )
    with pytest.raises(InputError, match=r"no trades of PUMP/USDT on binance between .* UTC") as err:
        render_alert_chart(trades, far_away, tmp_path / "a.png", tmp_path / "a.html")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "a.png").exists()
    with pytest.raises(InputError, match="no trades of PUMP/USDT on kraken"):
        chart_data(trades, pump_alert(venue="kraken"))


def test_trades_without_venue_or_side_still_chart(trades: pl.DataFrame, tmp_path: Path) -> None:
    bare = trades.select("ts", "symbol", "price", "amount")
    data = chart_data(bare, pump_alert())
    assert data.candles["buy"].sum() == 0 and data.candles["unknown"].sum() > 0
    with pytest.raises(InputError, match="lack column"):
        chart_data(bare.drop("price"), pump_alert())
