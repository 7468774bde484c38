"""The scenario-family contract, checked on every registered family (see `tapewatch.sources.families`).

The benchmark scores detectors on these markets, so a family that breaks the contract
(labels outside the data, accounts nobody traded with, a different market for the same
seed) would make its figures mean nothing.
"""

from __future__ import annotations

import json
from functools import cache

import polars as pl
import pytest

from tapewatch.records import ORDER_SCHEMA, TRADE_SCHEMA
from tapewatch.sources.families import FAMILIES
from tapewatch.sources.simulator.labels import LABEL_SCHEMA
from tapewatch.sources.simulator.market import SimulatedMarket

SIZE = {"symbols": 4, "hours": 12.0}
RATE = 5.0
"""Episodes per symbol-day: at 2 symbol-days every typology and scheme should appear."""
REPEAT = {"symbols": 2, "hours": 3.0, "rate": 40.0}
"""A quarter symbol-day dense with episodes: enough to compare generations (every frame and labels
of every typology) at a fraction of the cost of generating `SIZE` twice more."""
TYPOLOGIES = {"wash_trading", "spoofing", "layering"}
SCHEMES = {"self_trade", "round_trip"}
KEY = ["venue", "symbol", "ts"]

pytestmark = pytest.mark.parametrize("family", sorted(FAMILIES))


@cache
def market(family: str, honest_only: bool = False) -> SimulatedMarket:
    """One small market per family and arguments, generated once per session."""
    return FAMILIES[family](3, rate=RATE, honest_only=honest_only, **SIZE)


def test_frames_follow_the_record_schemas(family: str) -> None:
    generated = market(family)
    assert dict(generated.trades.schema) == TRADE_SCHEMA
    assert dict(generated.orders.schema) == ORDER_SCHEMA
    assert dict(generated.labels.schema) == LABEL_SCHEMA
    assert generated.trades.height > 0 and generated.orders.height > 0
    assert generated.trades.select(KEY).equals(generated.trades.select(KEY).sort(KEY, maintain_order=True))
    assert generated.trades["side"].is_in(["buy", "sell"]).all()
    assert generated.trades["buyer"].null_count() == 0 and generated.trades["seller"].null_count() == 0
    assert set(generated.orders["action"].unique()) <= {"new", "cancel", "fill", "modify"}


def test_the_same_seed_gives_the_same_market_and_another_seed_another(family: str) -> None:
    first, again = FAMILIES[family](3, **REPEAT), FAMILIES[family](3, **REPEAT)
    assert set(first.labels["typology"]) == TYPOLOGIES  # the injected episodes are compared too
    for name in ("trades", "orders", "labels"):
        assert getattr(first, name).equals(getattr(again, name)), name
    assert not FAMILIES[family](4, **REPEAT).trades.equals(first.trades)


def test_injected_markets_label_every_typology_and_wash_scheme(family: str) -> None:
    labels = market(family).labels
    assert set(labels["typology"]) == TYPOLOGIES
    wash = labels.filter(pl.col("typology") == "wash_trading")
    assert {json.loads(details)["scheme"] for details in wash["details"]} == SCHEMES


def test_labels_lie_inside_the_data_of_their_symbol(family: str) -> None:
    generated = market(family)
    data = pl.concat([generated.trades.select(KEY), generated.orders.select(KEY)])
    spans = data.group_by("venue", "symbol").agg(first=pl.col("ts").min(), last=pl.col("ts").max())
    labels = generated.labels.join(spans, on=["venue", "symbol"], how="left")
    assert labels["first"].null_count() == 0, "a label names a venue/symbol without data"
    outside = labels.filter(
        (pl.col("start") > pl.col("end"))
        | (pl.col("start") < pl.col("first"))
        | (pl.col("end") > pl.col("last"))
    )
    assert outside.is_empty(), outside


def test_labelled_accounts_trade_or_place_orders(family: str) -> None:
    generated = market(family)
    seen = set(generated.trades["buyer"]) | set(generated.trades["seller"]) | set(generated.orders["account"])
    named = {account for accounts in generated.labels["accounts"] for account in accounts.split(",")}
    assert named and named <= seen, named - seen


def test_honest_only_markets_have_no_labels_but_the_same_kind_of_trading(family: str) -> None:
    honest, injected = market(family, honest_only=True), market(family)
    assert honest.labels.is_empty() and not injected.labels.is_empty()
    assert dict(honest.trades.schema) == TRADE_SCHEMA
    assert honest.trades.height > 0.5 * injected.trades.height
