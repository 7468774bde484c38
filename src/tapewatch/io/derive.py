"""Records derived from other records: candles from trades, L2 levels from L3 orders, book events (L2
with prints), order events (L3 with the executions the trades name), taker orders. Detectors, engines
and pipelines derive the same way, so each derivation lives here once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from tapewatch.durations import parse_duration, polars_interval
from tapewatch.records import (
    BAR_SCHEMA,
    BOOK_EVENT_SCHEMA,
    BOOK_SCHEMA,
    ORDER_SCHEMA,
    TRADE_SCHEMA,
    conform,
    empty_frame,
)

if TYPE_CHECKING:  # NumPy loads when an order key is first computed, not with the readers
    import numpy as np

KEY = ["venue", "symbol"]
LEVEL = [*KEY, "side", "price"]
SIGNIFICANT_DIGITS = 10
_DIGITS = 10
"""Level totals are rounded to this many decimals so float drift never leaves a ghost level."""
EXECUTION = "trade"
"""The action of an execution read from the trades: one row per named party of a trade."""
SIDE_CODES = 4  # buy, sell, unknown: room for each in an order key


def ohlcv_aggregations() -> list[pl.Expr]:
    """Open, high, low, close and volume of the trades in a bucket (trades sorted by ts; ties in
    time taken in `sweep_order`)."""
    in_order = pl.col("price").sort_by(pl.col("ts"), sweep_order())
    return [
        in_order.first().alias("open"),
        pl.col("price").max().alias("high"),
        pl.col("price").min().alias("low"),
        in_order.last().alias("close"),
        pl.col("amount").sum().alias("volume"),
    ]


def sweep_order() -> pl.Expr:
    """Trades of one timestamp in the order a taker sweeps the book: up for buys, down for sells.

    Prints sharing a timestamp are mostly one order's fills, and a feed may list them in any
    order; the open and close must not depend on which (the same trades in another row order
    give the same candles).
    """
    return pl.when(pl.col("side") == "sell").then(-pl.col("price")).otherwise(pl.col("price"))


def trades_to_bars(trades: pl.DataFrame, interval: str) -> pl.DataFrame:
    """Bucket trades into BAR_SCHEMA candles plus `last_trade_ts` (when each candle's data ended).

    Only buckets that saw a trade appear: an empty hour has no price, and inventing one
    would feed detectors data that never happened.
    """
    every = polars_interval(parse_duration(interval, what="interval"))
    if trades.is_empty():
        return conform(pl.DataFrame(), BAR_SCHEMA).with_columns(last_trade_ts=pl.col("ts"))
    bars = (
        trades.lazy()
        .with_columns(bucket=pl.col("ts").dt.truncate(every))
        .group_by("venue", "symbol", "bucket", maintain_order=True)
        .agg(
            *ohlcv_aggregations(),
            quote_volume=(pl.col("price") * pl.col("amount")).sum(),
            trades=pl.len(),
            last_trade_ts=pl.col("ts").last(),
        )
        .rename({"bucket": "ts"})
        .with_columns(
            stable(pl.col("volume", "quote_volume")),  # sums whose last digit no row order can change
            interval=pl.lit(interval),
        )
        .collect()
    )
    return conform(bars, BAR_SCHEMA).with_columns(bars["last_trade_ts"])


def stable(expr: pl.Expr) -> pl.Expr:
    """A rolling float aggregate rounded to 10 significant figures.

    Rolling sums and means carry rounding from wherever their frame starts (the
    16th digit): the batch engine starts at the file's first row, the stream at its
    tail's. Rounded, both give the same number, so their alerts agree to the bit.
    """
    return expr.round_sig_figs(SIGNIFICANT_DIGITS)


def book_events(book: pl.DataFrame, trades: pl.DataFrame) -> pl.DataFrame:
    """L2 updates and the trades of the same symbols in one frame sorted by venue, symbol, ts.

    At one timestamp trades come first: a level that shrinks in the same instant as a
    print at its price was traded away, not pulled.
    """
    levels = conform(book, BOOK_SCHEMA).with_columns(event=pl.lit("level"), order=pl.lit(1))
    prints = conform(trades, {name: BOOK_EVENT_SCHEMA[name] for name in BOOK_EVENT_SCHEMA if name != "event"})
    prints = prints.join(levels.select(KEY).unique(), on=KEY, how="semi") if not levels.is_empty() else prints
    prints = prints.with_columns(event=pl.lit("trade"), order=pl.lit(0))
    merged = pl.concat([frame for frame in (levels, prints) if not frame.is_empty()] or [levels])
    if merged.is_empty():
        return empty_frame(BOOK_EVENT_SCHEMA)
    return conform(merged.sort(*KEY, "ts", "order", maintain_order=True), BOOK_EVENT_SCHEMA)


def l2_from_l3(orders: pl.DataFrame) -> pl.DataFrame:
    """The level totals (BOOK_SCHEMA) a public feed would publish for these L3 events.

    Each order rests at its current price with its remaining amount: `new` adds it,
    fills take from it, `cancel` removes what is left and `modify` moves it. A level is
    published once per timestamp, and only when its total changed, so a taker order that
    arrives and fills in the same instant never shows.
    """
    if orders.is_empty():
        return empty_frame(BOOK_SCHEMA)
    deltas = _order_deltas(orders.with_row_index("row"))
    totals = (
        deltas.sort(*LEVEL, "ts", "row")
        .with_columns(amount=pl.col("delta").cum_sum().over(LEVEL).round(_DIGITS).clip(lower_bound=0.0))
        .group_by(*LEVEL, "ts", maintain_order=True)
        .agg(pl.col("amount").last(), pl.col("row").last())
    )
    changed = pl.col("amount") != pl.col("amount").shift(1).over(LEVEL).fill_null(0.0)
    return conform(
        totals.filter(changed)
        .sort(*KEY, "ts", "row")
        .with_columns(side=pl.col("side").replace_strict({"buy": "bid", "sell": "ask"})),
        BOOK_SCHEMA,
    )


def _order_deltas(events: pl.DataFrame) -> pl.DataFrame:
    """Signed changes to level totals, one or two per event (a modify leaves one level and joins another)."""
    order = [*KEY, "order_id"]
    events = events.sort(*order, "ts", "row")
    sets_price = pl.col("action").is_in(["new", "modify"])
    fill = pl.when(pl.col("action") == "fill").then(pl.col("amount")).otherwise(0.0)
    tracked = (
        events.with_columns(segment=sets_price.cast(pl.Int32).cum_sum().over(order))
        .with_columns(
            base=pl.col("amount").first().over(*order, "segment"),
            at=pl.col("price").first().over(*order, "segment"),
            used=fill.cum_sum().over(*order, "segment"),
        )
        .with_columns(
            left=pl.when(pl.col("action") == "cancel")
            .then(0.0)
            .otherwise((pl.col("base") - pl.col("used")).clip(lower_bound=0.0))
        )
        .with_columns(
            before=pl.col("left").shift(1).over(order).fill_null(0.0),
            before_at=pl.col("at").shift(1).over(order),
        )
    )
    leave = tracked.filter(pl.col("action").is_in(["cancel", "modify"]) & pl.col("before_at").is_not_null())
    fills = tracked.filter(pl.col("action") == "fill")
    columns = [*KEY, "side", "ts", "row"]
    return pl.concat(
        [
            tracked.filter(sets_price).select(*columns, price=pl.col("price"), delta=pl.col("amount")),
            fills.select(*columns, price=pl.col("at"), delta=-pl.min_horizontal("amount", "before")),
            leave.select(*columns, price=pl.col("before_at"), delta=-pl.col("before")),
        ]
    )


def side_code() -> pl.Expr:
    """The taker side as a small integer (0 buy, 1 sell, 2 unknown), for order keys."""
    return pl.when(pl.col("side") == "buy").then(0).when(pl.col("side") == "sell").then(1).otherwise(2)


def order_starts() -> pl.Expr:
    """True on one trade of each taker order, in a frame sorted by venue, symbol, ts.

    Trades sharing venue, symbol, ts and side are one order that swept several
    price levels. The flag marks the first of them in row order, but every count
    over a time window is the same whichever row carries it (all rows of one
    timestamp fall in the same windows), so counts do not depend on tie order.
    """
    new_moment = pl.any_horizontal(pl.col(name).ne_missing(pl.col(name).shift(1)) for name in (*KEY, "ts"))
    return pl.struct(moment=new_moment.cum_sum(), side=side_code()).map_batches(
        _first_of_orders, return_dtype=pl.Boolean
    )


def _first_of_orders(moments: pl.Series) -> pl.Series:
    """`order_starts` on a struct of (moment number, side code)."""
    moment, side = (moments.struct.field(name).to_numpy() for name in ("moment", "side"))
    return pl.Series(first_of_each_order(moment, side))


def first_of_each_order(moment: np.ndarray, side: np.ndarray) -> np.ndarray:
    """Per row: whether it is the first of its side in its moment, i.e. the previous row of its side
    belongs to an earlier moment. One pass over the rows of each side: a third of the cost of
    hashing every (moment, side)."""
    import numpy as np

    first = np.ones(len(side), dtype=bool)
    for code in range(SIDE_CODES - 1):
        rows = np.flatnonzero(side == code)
        first[rows[1:]] = moment[rows[1:]] != moment[rows[:-1]]
    return first


def taker_orders(trades: pl.DataFrame) -> pl.DataFrame:
    """One row per taker order with its number of fills (for inspection and tests)."""
    return (
        trades.group_by(*KEY, "ts", "side").agg(fills=pl.len()).sort(*KEY, "ts", pl.col("side").fill_null(""))
    )


def order_events(
    orders: pl.DataFrame, trades: pl.DataFrame, symbols: pl.DataFrame | None = None
) -> pl.DataFrame:
    """L3 order events with the executions the trades name merged in, sorted by venue, symbol, ts.

    Many venues' L3 feeds show an execution only in the trades: a taker's order may never
    appear, a maker's fill may not be sent. Each named buyer and seller of a trade on a symbol
    of the order stream becomes an `EXECUTION` row (its account, its side, the trade's price and
    amount, the trade id as order id). The batch engine and the stream of the `orders` kind both
    feed the L3 detector this frame, so they decide on the same rows. `symbols` (venue, symbol) are those
    of the order stream when `orders` is only part of it (a slice of time); by default, those in `orders`.
    """
    events = conform(orders, ORDER_SCHEMA)
    streamed = events.select(KEY).unique() if symbols is None else symbols.select(KEY)
    prints = conform(trades, TRADE_SCHEMA).join(streamed, on=KEY, how="semi")
    parties = [
        prints.filter(pl.col(column).is_not_null()).select(
            "ts",
            *KEY,
            "price",
            "amount",
            order_id=pl.col("trade_id").fill_null(""),
            account=pl.col(column),
            side=pl.lit(side),
            action=pl.lit(EXECUTION),
        )
        for column, side in (("buyer", "buy"), ("seller", "sell"))
    ]
    merged = pl.concat([events, *(conform(rows, ORDER_SCHEMA) for rows in parties)])
    return merged.sort(*KEY, "ts", maintain_order=True)
