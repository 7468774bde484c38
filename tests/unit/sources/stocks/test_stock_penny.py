"""The penny-stock filter: price bound, optional volume and market-cap bounds, unknowns."""

from __future__ import annotations

import math

import polars as pl

from tapewatch.config import StocksSettings
from tapewatch.sources.stocks.penny import PennyBounds, classify_penny, penny_stocks

ROWS = [  # symbol, last_price, avg_volume, market_cap
    ("CHEAP", 1.0, 50_000.0, 10e6),
    ("EDGE", 5.0, 50_000.0, 10e6),  # "under $5": exactly 5 is not a penny stock
    ("DEAR", 12.0, None, None),
    ("NOPRICE", None, 50_000.0, 10e6),
    ("NANPRICE", math.nan, 50_000.0, 10e6),
    ("ZERO", 0.0, 50_000.0, 10e6),
    ("THIN", 2.0, 500.0, 10e6),
    ("NOVOL", 2.0, None, 10e6),
    ("BIGCAP", 2.0, 50_000.0, 900e6),
    ("NOCAP", 2.0, 50_000.0, None),
]


def frame() -> pl.DataFrame:
    return pl.DataFrame(
        ROWS,
        schema=["symbol", "last_price", "avg_volume", "market_cap"],
        orient="row",
        infer_schema_length=None,
    )


def statuses(bounds: PennyBounds) -> dict[str, str]:
    result = classify_penny(frame(), bounds)
    return dict(zip(result["symbol"], result["penny"], strict=True))


def test_price_only_by_default():
    assert statuses(PennyBounds()) == {
        "CHEAP": "penny",
        "EDGE": "other",
        "DEAR": "other",
        "NOPRICE": "unknown",
        "NANPRICE": "unknown",
        "ZERO": "unknown",
        "THIN": "penny",
        "NOVOL": "penny",
        "BIGCAP": "penny",
        "NOCAP": "penny",
    }


def test_volume_and_market_cap_bounds_rule_out_or_make_unknown():
    found = statuses(PennyBounds(max_price=5.0, min_avg_volume=1_000, max_market_cap=100e6))
    assert {name for name, status in found.items() if status == "penny"} == {"CHEAP"}
    assert found["THIN"] == found["BIGCAP"] == found["DEAR"] == "other"
    assert found["NOVOL"] == found["NOCAP"] == found["NOPRICE"] == "unknown"


def test_max_price_from_settings_and_option():
    settings = StocksSettings(penny_max_price=1.5, min_avg_volume=0)
    assert PennyBounds.from_settings(settings).max_price == 1.5
    assert PennyBounds.from_settings(settings, max_price=20.0).max_price == 20.0
    picked = penny_stocks(frame(), PennyBounds.from_settings(settings, max_price=20.0))
    assert picked["symbol"].to_list() == ["CHEAP", "EDGE", "DEAR", "THIN", "NOVOL", "BIGCAP", "NOCAP"]
    assert frame().columns == ["symbol", "last_price", "avg_volume", "market_cap"]  # pure: input untouched
