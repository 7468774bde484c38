"""One spelling per instrument and venue: every way a pair is written reads as its ccxt unified form,
stock tickers keep their listing's symbology."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from tapewatch.io.readers import read_inputs
from tapewatch.io.symbols import STOCK_VENUES, canonical_column, canonical_symbol, canonical_symbol_of
from tapewatch.sources.stocks.venues import VENUES

T0_MS = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)

SPELLINGS = [
    ("NULS/BTC", "NULS/BTC"),
    ("nuls/btc", "NULS/BTC"),
    ("NULSBTC", "NULS/BTC"),
    ("NULS-BTC", "NULS/BTC"),
    ("nuls_btc", "NULS/BTC"),
    (" Nuls-Btc ", "NULS/BTC"),
    ("ETHFDUSD", "ETH/FDUSD"),  # the longest quote asset, not ETHFD/USD
    ("1000SHIBUSDT", "1000SHIB/USDT"),
    ("BTC-USD", "BTC/USD"),
    ("btc/usdt:usdt", "BTC/USDT:USDT"),  # a derivative keeps its settle asset
    ("BTCUSDT:USDT", "BTC/USDT:USDT"),
    ("BTCUSD_PERP", "BTCUSD_PERP"),  # PERP is no quote asset: left alone
    ("X/Y", "X/Y"),
    ("sp500", "SP500"),
    ("", ""),
]


@pytest.mark.parametrize(("spelling", "canonical"), SPELLINGS)
def test_crypto_spellings_become_one(spelling: str, canonical: str) -> None:
    assert canonical_symbol_of(spelling) == canonical
    assert canonical_symbol_of(spelling, "binance") == canonical


@pytest.mark.parametrize(
    ("ticker", "canonical"),
    [("AAPL", "AAPL"), ("brk.b", "BRK.B"), ("RY.TO", "RY.TO"), ("CARS", "CARS"), ("ABR$D", "ABR$D")],
)
def test_stock_venues_keep_their_tickers(ticker: str, canonical: str) -> None:
    assert canonical_symbol_of(ticker, "nyse") == canonical
    assert canonical_symbol_of(ticker, "TSX") == canonical


def test_the_stock_venues_are_the_listing_venues() -> None:
    assert set(STOCK_VENUES) == set(VENUES)


def test_the_column_form_agrees_with_the_rule_row_by_row() -> None:
    frame = pl.DataFrame(
        {
            "venue": ["binance", "nasdaq", None, "nasdaq", "kraken"],
            "symbol": ["nulsbtc", "CARS", "nuls-btc", "nulsbtc", None],
        }
    )
    by_row = frame.select(canonical_symbol(pl.col("symbol"), pl.col("venue"))).to_series()
    by_value = frame.select(canonical_column(pl.col("symbol"), pl.col("venue"), frame["symbol"])).to_series()
    assert by_row.to_list() == by_value.to_list() == ["NULS/BTC", "CARS", "NULS/BTC", "NULSBTC", None]
    fixed = frame.select(canonical_column(pl.col("symbol"), "binance", frame["symbol"])).to_series()
    assert fixed.to_list() == ["NULS/BTC", "C/ARS", "NULS/BTC", "NULS/BTC", None]  # on a crypto venue, a pair


def test_a_file_of_many_spellings_holds_one_symbol(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    rows = "".join(f"{spelling},{T0_MS + i},buy,1,1\n" for i, (spelling, _) in enumerate(SPELLINGS[:6]))
    path.write_text("symbol,timestamp,side,price,amount\n" + rows)
    assert read_inputs([path]).trades["symbol"].unique().to_list() == ["NULS/BTC"]


def test_symbols_follow_the_venue_of_each_row(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text(
        "date,symbol,venue,open,high,low,close,volume\n"
        "2024-01-01,cars,nyse,1,1,1,1,1\n2024-01-01,carsusdt,binance,1,1,1,1,1\n"
    )
    bars = read_inputs([path]).bars
    assert sorted(bars.select("venue", "symbol").rows()) == [("binance", "CARS/USDT"), ("nyse", "CARS")]
    assert sorted(read_inputs([path], venue="nasdaq").bars["symbol"]) == ["CARS", "CARSUSDT"]


def test_file_names_give_the_canonical_symbol(tmp_path: Path) -> None:
    trades = tmp_path / "nuls_btc.csv"
    trades.write_text(f"timestamp,side,price,amount\n{T0_MS},buy,1,1\n")
    assert read_inputs([trades]).trades["symbol"].to_list() == ["NULS/BTC"]
    stock = tmp_path / "brk.b.csv"
    stock.write_text("date,open,high,low,close,volume\n2024-01-01,1,1,1,1,1\n")
    assert read_inputs([stock], venue="nyse").bars["symbol"].to_list() == ["BRK.B"]


def test_binance_depth_pairs_are_canonical(tmp_path: Path) -> None:
    message = {"e": "depthUpdate", "E": T0_MS, "s": "NULSBTC", "U": 1, "u": 2, "b": [["1.0", "2.0"]], "a": []}
    path = tmp_path / "depth.jsonl"
    path.write_text(json.dumps(message) + "\n")
    assert read_inputs([path], kinds=("book",)).book["symbol"].to_list() == ["NULS/BTC"]


@pytest.mark.parametrize(
    ("symbol", "venue", "canonical"),
    [
        ("CARS", "unknown", "CARS"),
        ("SEUR", None, "SEUR"),
        ("nulsbtc", "unknown", "NULS/BTC"),
        ("pepeusdt", None, "PEPE/USDT"),
        ("BTC-EUR", "unknown", "BTC/EUR"),
        ("BTCEUR", "binance", "BTC/EUR"),
    ],
)
def test_a_venue_nobody_named_splits_names_only_before_crypto_quotes(
    symbol: str, venue: str | None, canonical: str
) -> None:
    assert canonical_symbol_of(symbol, venue) == canonical
