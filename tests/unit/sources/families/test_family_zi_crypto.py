"""The `zi_crypto` scenario family: its format, and labels that say what the data really shows.

The family's order feed has no `fill` rows, so these tests rebuild each symbol's book from the
public record alone (order events, then trades naming buyer and seller) the way a detector
would have to, and check the labels against that rebuilt book: wash accounts really
self-trade or really net out, spoof orders really rest 1–10 ticks from the touch and are
pulled unfilled while the same account trades the other side.
"""

from __future__ import annotations

import json
from collections import defaultdict, deque
from dataclasses import dataclass, field
from functools import cache

import polars as pl
import pytest

from tapewatch.records import ORDER_SCHEMA, TRADE_SCHEMA
from tapewatch.sources.families.zi_crypto import generate
from tapewatch.sources.simulator.labels import LABEL_SCHEMA
from tapewatch.sources.simulator.market import SimulatedMarket

SIZE = {"symbols": 3, "hours": 6.0}
RATE = 16.0
"""Episodes per symbol-day: four per symbol in six hours, so every kind shows up."""


@cache
def market(seed: int = 11, rate: float = RATE, honest_only: bool = False, **size: float) -> SimulatedMarket:
    return generate(seed, rate=rate, honest_only=honest_only, **(size or SIZE))  # type: ignore[arg-type]


def details(label: dict) -> dict:
    return json.loads(label["details"])


# -- a book rebuilt from the public record ----------------------------------------------------
@dataclass
class Replay:
    """What a detector can rebuild from one symbol's feed: live orders, and what each order did."""

    live: dict[str, list] = field(default_factory=dict)  # order_id -> [account, side, price, open amount]
    queues: dict[tuple, deque] = field(default_factory=lambda: defaultdict(deque))  # (account, side, price)
    placed_touch: dict[str, float | None] = field(default_factory=dict)
    """Best same-side price just before each order was placed."""
    filled: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    cancelled: dict[str, int] = field(default_factory=dict)
    """order_id -> µs of its cancel."""

    def best(self, side: str) -> float | None:
        prices = [o[2] for o in self.live.values() if o[1] == side]
        if not prices:
            return None
        return max(prices) if side == "buy" else min(prices)


def replay(orders: pl.DataFrame, trades: pl.DataFrame) -> Replay:
    """Apply order events, then trades of the same µs, checking each trade hits the opposite best."""
    book = Replay()
    events = (
        pl.concat([orders.with_columns(kind=pl.lit(0)), trades.with_columns(kind=pl.lit(1))], how="diagonal")
        .with_row_index("row")
        .sort("ts", "kind", "row")
    )
    for event in events.iter_rows(named=True):
        if event["kind"] == 0:
            _order_event(book, event)
        else:
            _trade(book, event)
    return book


def _order_event(book: Replay, event: dict) -> None:
    oid, action = event["order_id"], event["action"]
    assert action in {"new", "cancel", "modify"}, action
    if action == "new":
        book.placed_touch[oid] = book.best(event["side"])
        book.live[oid] = [event["account"], event["side"], event["price"], event["amount"]]
        book.queues[(event["account"], event["side"], event["price"])].append(oid)
        return
    assert oid in book.live, f"{action} of an order that is not resting: {oid}"
    assert event["amount"] == pytest.approx(book.live[oid][3], rel=1e-9) or action == "modify"
    if action == "modify":
        assert event["amount"] < book.live[oid][3]
        book.live[oid][3] = event["amount"]
    else:
        book.cancelled[oid] = event["ts"]
        _remove(book, oid)


def _trade(book: Replay, event: dict) -> None:
    maker_side = "sell" if event["side"] == "buy" else "buy"
    maker = event["seller"] if event["side"] == "buy" else event["buyer"]
    assert event["price"] == book.best(maker_side), "a trade away from the opposite best"
    queue = book.queues[(maker, maker_side, event["price"])]
    assert queue, f"no resting order of {maker} at {event['price']}"
    oid = queue[0]
    book.filled[oid] += event["amount"]
    book.live[oid][3] -= event["amount"]
    assert book.live[oid][3] > -1e-9 * event["amount"], "a trade larger than the maker's order"
    if book.live[oid][3] <= 1e-9 * event["amount"]:
        _remove(book, oid)


def _remove(book: Replay, oid: str) -> None:
    account, side, price, _ = book.live.pop(oid)
    book.queues[(account, side, price)].remove(oid)


@cache
def replays(seed: int = 11) -> dict[str, Replay]:
    generated = market(seed)
    return {
        symbol: replay(
            generated.orders.filter(pl.col("symbol") == symbol),
            generated.trades.filter(pl.col("symbol") == symbol),
        )
        for symbol in generated.trades["symbol"].unique().sort()
    }


# -- format --------------------------------------------------------------------------------
def test_frames_follow_the_schemas_and_the_feed_has_no_fills() -> None:
    generated = market()
    assert dict(generated.trades.schema) == TRADE_SCHEMA
    assert dict(generated.orders.schema) == ORDER_SCHEMA
    assert dict(generated.labels.schema) == LABEL_SCHEMA
    assert set(generated.orders["action"].unique()) == {"new", "cancel", "modify"}
    key = ["venue", "symbol", "ts"]
    for frame in (generated.trades, generated.orders):
        assert frame.select(key).equals(frame.select(key).sort(key, maintain_order=True))
    assert generated.trades["trade_id"].n_unique() == generated.trades.height
    assert (generated.trades["price"] > 0).all() and (generated.trades["amount"] > 0).all()
    prices = generated.trades.group_by("symbol").agg(pl.col("price").median())["price"]
    assert ((prices > 1e-8) & (prices < 10.0)).all()


def test_the_book_rebuilt_from_the_feed_explains_every_trade() -> None:
    """Every trade hits the opposite best and a resting order of its maker (asserted in `replay`)."""
    generated = market()
    books = replays()
    assert len(books) == generated.trades["symbol"].n_unique() == SIZE["symbols"]
    assert sum(len(book.filled) for book in books.values()) > 1000


def test_the_same_seed_gives_the_same_market() -> None:
    first, again = market(seed=5, hours=2.0, symbols=2), generate(5, symbols=2, hours=2.0, rate=RATE)
    for name in ("trades", "orders", "labels", "organic"):
        assert getattr(first, name).equals(getattr(again, name)), name
    assert not generate(6, symbols=2, hours=2.0, rate=RATE).trades.equals(first.trades)


def test_size_and_tick_look_like_small_cap_pairs() -> None:
    """Thousands of trades a symbol-day; BTC pairs on a 1e-8 or 1e-9 tick worth 0.01 %–1 % of the price."""
    generated = market()
    per_day = generated.trades.group_by("symbol").len()["len"] * 24.0 / SIZE["hours"]
    assert ((per_day > 1500) & (per_day < 25_000)).all(), per_day
    for (symbol,), orders in generated.orders.group_by("symbol"):
        prices = orders["price"].unique().sort()
        tick = prices.diff().drop_nulls().min()
        assert 5e-5 < tick / prices.median() < 2e-2, (symbol, tick)
        if str(symbol).endswith("/BTC"):
            assert min(abs(tick - 1e-8), abs(tick - 1e-9)) < 1e-12, (symbol, tick)
            assert 1e-7 <= prices.median() <= 1e-4


# -- honest confounders --------------------------------------------------------------------
def organic_accounts(generated: SimulatedMarket, kind: str) -> list[tuple[str, str]]:
    rows = generated.organic.filter(pl.col("kind") == kind).iter_rows(named=True)
    return [(row["symbol"], account) for row in rows for account in json.loads(row["details"])["accounts"]]


def test_market_makers_cancel_85_to_95_percent_of_their_orders() -> None:
    generated = market(seed=2, rate=0.0, symbols=2, hours=24.0)
    makers = organic_accounts(generated, "market_maker")
    assert makers
    for symbol, account in makers:
        own = generated.orders.filter((pl.col("symbol") == symbol) & (pl.col("account") == account))
        news, cancels = (own["action"] == "new").sum(), (own["action"] == "cancel").sum()
        assert news > 500 and 0.85 <= cancels / news <= 0.95, (symbol, news, cancels / news)


def test_honest_only_has_no_labels_and_its_self_trades_are_the_bots_now_and_then() -> None:
    honest = market(honest_only=True)
    assert honest.labels.is_empty() and not market().labels.is_empty()
    bots = set(organic_accounts(honest, "self_matching_bot"))
    selfies = honest.trades.filter(pl.col("buyer") == pl.col("seller"))
    assert selfies.height > 0
    assert set(zip(selfies["symbol"], selfies["buyer"], strict=True)) <= bots
    for symbol, bot in bots:
        mine = honest.trades.filter(
            (pl.col("symbol") == symbol) & ((pl.col("buyer") == bot) | (pl.col("seller") == bot))
        )
        own = (mine["buyer"] == mine["seller"]).sum()
        assert own < 0.06 * mine.height and own < 4 * SIZE["hours"], (symbol, own, mine.height)


def test_icebergs_refill_at_the_trade_that_emptied_the_tip_and_large_orders_are_pulled_in_seconds() -> None:
    honest = market(honest_only=True)
    icebergs = organic_accounts(honest, "iceberg")
    maker = pl.when(pl.col("side") == "buy").then("seller").otherwise("buyer")
    fills = honest.trades.select("symbol", "ts", account=maker)
    refills = honest.orders.filter(pl.col("action") == "new").join(fills, on=["symbol", "ts", "account"])
    assert refills.height > 0
    assert set(zip(refills["symbol"], refills["account"], strict=True)) <= set(icebergs)
    pulled = honest.organic.filter(pl.col("kind") == "large_order_pulled")
    assert pulled.height > 0
    lifetimes = (pulled["end"] - pulled["start"]).dt.total_seconds(fractional=True)
    assert (lifetimes > 0).all() and (lifetimes < 12.0).all()


def test_rate_scales_the_number_of_episodes() -> None:
    counts = {rate: market(seed=4, rate=rate, symbols=4, hours=12.0).labels.height for rate in (2.0, 8.0)}
    assert 3 <= counts[2.0] <= 6 and 13 <= counts[8.0] <= 18, counts


# -- labels agree with the data ----------------------------------------------------------
def labelled_trades(generated: SimulatedMarket, label: dict) -> pl.DataFrame:
    ids = details(label)["trade_ids"]
    found = generated.trades.filter(pl.col("trade_id").is_in(ids))
    assert found.height == len(ids) > 0
    assert found["ts"].min() >= label["start"] and found["ts"].max() <= label["end"]
    assert (found["symbol"] == label["symbol"]).all()
    return found


def labels_of(generated: SimulatedMarket, typology: str, scheme: str | None = None) -> list[dict]:
    rows = [row for row in generated.labels.iter_rows(named=True) if row["typology"] == typology]
    rows = [row for row in rows if scheme is None or details(row).get("scheme") == scheme]
    assert rows, (typology, scheme)
    return rows


def test_self_trade_labels_are_one_account_trading_with_itself() -> None:
    generated = market()
    for label in labels_of(generated, "wash_trading", "self_trade"):
        trades = labelled_trades(generated, label)
        assert trades.height >= 2
        assert (trades["buyer"] == label["accounts"]).all() and (trades["seller"] == label["accounts"]).all()


def test_round_trip_labels_are_rings_that_net_to_zero() -> None:
    generated = market()
    for label in labels_of(generated, "wash_trading", "round_trip"):
        members = set(label["accounts"].split(","))
        trades = labelled_trades(generated, label)
        assert 2 <= len(members) <= 6
        assert set(trades["buyer"]) == members == set(trades["seller"])
        assert (trades["buyer"] != trades["seller"]).all()
        bought = trades.select(account="buyer", flow="amount")
        sold = trades.select(account="seller", flow=-pl.col("amount"))
        net = pl.concat([bought, sold]).group_by("account").agg(pl.col("flow").sum())
        assert (net["flow"].abs() <= 1e-9 * trades["amount"].sum()).all(), net
        assert 0.0005 < details(label)["volume_share"] < 0.15


def test_wash_episodes_are_both_spread_out_and_compressed_with_either_side_resting() -> None:
    generated = market(seed=4, rate=8.0, symbols=4, hours=12.0)
    wash = [details(label) for label in labels_of(generated, "wash_trading")]
    assert {d["pace"] for d in wash} == {"compressed", "spread"}
    assert len({d["maker"] for d in wash}) >= 3


@pytest.mark.parametrize("typology", ["spoofing", "layering"])
def test_spoof_orders_rest_near_the_touch_and_are_pulled_unfilled_while_the_account_trades_the_other_side(
    typology: str,
) -> None:
    generated = market()
    books = replays()
    new_orders = generated.orders.filter(pl.col("action") == "new")
    typical_of = dict(new_orders.group_by("symbol").agg(pl.col("amount").median()).iter_rows())
    for label in labels_of(generated, typology):
        info, book, account = details(label), books[label["symbol"]], label["accounts"]
        placed = generated.orders.filter(pl.col("order_id").is_in([o["order"] for o in info["orders"]]))
        new = placed.filter(pl.col("action") == "new")
        assert new.height == len(info["orders"]) and (new["account"] == account).all()
        for order in new.iter_rows(named=True):
            touch = book.placed_touch[order["order_id"]]
            assert touch is not None
            assert 1 <= round(abs(order["price"] - touch) / info["tick"]) <= 10
            assert order["order_id"] in book.cancelled and book.filled[order["order_id"]] == 0
            assert label["start"] <= order["ts"] and book.cancelled[order["order_id"]] <= label["end"]
            assert order["amount"] >= (2.5 if typology == "spoofing" else 1.2) * typical_of[label["symbol"]]
        trades = labelled_trades(generated, label)
        for side in new["side"].unique():
            against = trades.filter(pl.col("seller" if side == "buy" else "buyer") == account)
            assert against.height > 0, "no trade on the other side of the spoof"
        if typology == "layering":
            assert new.group_by("side").agg(pl.col("price").n_unique())["price"].max() >= 3
