"""What makes a record unusable, decided once per record kind, with the reason a dead letter gives.

Files, `stream --replay`, the streaming engine, the exchange source and the API all
call `problems` / `first_reason`, so a bad row is refused with the same words
whichever way it arrives. The rules are Polars expressions over the record
columns (vectorised: a clean frame pays a few column scans). They check what a
detector cannot decide without (time, symbol, finite positive prices and sizes,
known words); plausibility ranges of timestamps are not checked here.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import polars as pl

from tapewatch.records import BOOK_EVENTS, BOOK_SIDES, ORDER_ACTIONS, TRADE_SIDES

TS_GIVEN = "_ts_given"
"""Optional helper column: the row had a timestamp value (so a null `ts` means unparsable, not missing)."""
WHY = "_why"
"""Optional helper column: a source-specific reason (e.g. a bad Binance `is_buyer_maker`), null when fine."""

Problems = list[tuple[pl.Expr, pl.Expr]]
"""(is bad, reason) pairs in the order they are tried; each condition is never null."""


def _positive(name: str) -> pl.Expr:
    """True only for a finite number above zero (NaN sorts above +inf in Polars, so `< inf` drops it)."""
    value = pl.col(name)
    return ((value > 0) & (value < float("inf"))).fill_null(False)


def _not_negative(name: str) -> pl.Expr:
    """True only for a finite number at or above zero."""
    value = pl.col(name)
    return ((value >= 0) & (value < float("inf"))).fill_null(False)


def _must_be_positive(name: str) -> tuple[pl.Expr, pl.Expr]:
    return ~_positive(name), pl.lit(f"{name} is not a positive number")


def _must_not_be_negative(name: str) -> tuple[pl.Expr, pl.Expr]:
    return ~_not_negative(name), pl.lit(f"{name} is not a non-negative number")


def _blank(name: str) -> pl.Expr:
    value = pl.col(name)
    return (value.is_null() | (value == "")).fill_null(True)


def _time_and_symbol(columns: Collection[str]) -> Problems:
    """What every record needs: a timestamp (missing and unparsable told apart where known) and a symbol."""
    no_ts = pl.col("ts").is_null()
    given = pl.col(TS_GIVEN) if TS_GIVEN in columns else pl.lit(False)
    return [
        (no_ts & ~given, pl.lit("missing timestamp")),
        (no_ts & given, pl.lit("unparsable timestamp")),
        (_blank("symbol"), pl.lit("missing symbol")),
    ]


def _one_of(name: str, allowed: tuple[str, ...], *, required: bool = True) -> Problems:
    """A word column must hold one of `allowed`; null is a missing value unless not `required`."""
    value = pl.col(name)
    problems = [
        (
            (value.is_not_null() & ~value.is_in(allowed)).fill_null(False),
            pl.format(f"unknown {name} '{{}}' (expected {'/'.join(allowed)})", value),
        )
    ]
    if required:
        problems.append((value.is_null(), pl.lit(f"missing {name}")))
    return problems


def _when_stated(name: str) -> tuple[pl.Expr, pl.Expr]:
    """Not negative, for a column that may be null (not stated): only a stated value can fail."""
    is_bad, why = _must_not_be_negative(name)
    return pl.col(name).is_not_null() & is_bad, why


def _source_reason(columns: Collection[str]) -> Problems:
    return [(pl.col(WHY).is_not_null(), pl.col(WHY))] if WHY in columns else []


def trade_problems(columns: Collection[str]) -> Problems:
    """A trade: time, symbol, positive finite price and amount, side buy/sell or not stated."""
    return [
        *_time_and_symbol(columns),
        _must_be_positive("price"),
        _must_be_positive("amount"),
        *_one_of("side", TRADE_SIDES, required=False),
        *_source_reason(columns),
    ]


def bar_problems(columns: Collection[str]) -> Problems:
    """A candle: time, symbol, positive finite open/high/low/close, volume >= 0, high not below low;
    quote volume and trade count, where stated, not negative."""
    return [
        *_time_and_symbol(columns),
        *(_must_be_positive(name) for name in ("open", "high", "low", "close")),
        _must_not_be_negative("volume"),
        ((pl.col("high") < pl.col("low")).fill_null(False), pl.lit("high is below low")),
        _when_stated("quote_volume"),
        _when_stated("trades"),
    ]


def order_problems(columns: Collection[str], execution: str | None = None) -> Problems:
    """An L3 order event: only a cancel may have amount 0 (nothing left).

    `execution`, when given, is one more action: an execution merged in from the trades
    (`detect.spoofing.spoofing_l3`, as streams and the batch L3 detector see them), whose order id is
    the trade's id and may be empty.
    """
    action = pl.col("action")
    actions = ORDER_ACTIONS if execution is None else (*ORDER_ACTIONS, execution)
    keyless = (action == execution) if execution is not None else pl.lit(False)
    no_id = (pl.col("order_id").is_null() | ((pl.col("order_id") == "") & ~keyless)).fill_null(True)
    zero_amount = ((pl.col("amount") == 0) & (action != "cancel")).fill_null(False)
    return [
        *_time_and_symbol(columns),
        (no_id, pl.lit("missing order_id")),
        *_one_of("side", TRADE_SIDES),
        *_one_of("action", actions),
        _must_be_positive("price"),
        _must_not_be_negative("amount"),
        (zero_amount, pl.format("amount is 0 on a '{}' event (only a cancel may have 0)", action)),
    ]


def book_problems(columns: Collection[str]) -> Problems:
    """An L2 update: side bid/ask, positive finite price, amount not negative (0 removes the level).

    A row of an unusable depth message (WHY) is refused for that alone: its
    other fields are null because the message was, not because they are wrong.
    """
    problems = [
        *_time_and_symbol(columns),
        *_one_of("side", BOOK_SIDES),
        _must_be_positive("price"),
        _must_not_be_negative("amount"),
    ]
    if WHY not in columns:
        return problems
    usable = pl.col(WHY).is_null()
    return [*_source_reason(columns), *((usable & is_bad, why) for is_bad, why in problems)]


def book_event_problems(columns: Collection[str]) -> Problems:
    """A row of the merged L2 stream: a `level` follows the book rule, a `trade` the trade rule."""
    event = pl.col("event")
    level, trade = (event == "level").fill_null(False), (event == "trade").fill_null(False)
    return [
        *_one_of("event", BOOK_EVENTS),
        *((level & is_bad, why) for is_bad, why in book_problems(columns)),
        *((trade & is_bad, why) for is_bad, why in trade_problems(columns)),
    ]


RULES: dict[str, Callable[[Collection[str]], Problems]] = {
    "trades": trade_problems,
    "bars": bar_problems,
    "orders": order_problems,
    "book": book_problems,
    "book_events": book_event_problems,
}
"""The rule of each record kind (`book_events`: L2 updates and trades merged, as streams carry them)."""


def problems(kind: str, columns: Collection[str]) -> Problems:
    """The (is bad, reason) checks of `kind` for a frame with `columns` (which tells the optional helpers)."""
    return RULES[kind](columns)


def first_reason(checks: Problems) -> pl.Expr:
    """Each row's first failed check's reason, null for a good row (the column `reason`)."""
    return pl.coalesce([pl.when(is_bad).then(why) for is_bad, why in checks]).alias("reason")
