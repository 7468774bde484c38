"""What makes a record unusable, decided once per record kind, with the reason a dead letter gives.

Files, `stream --replay`, the streaming engine, the exchange source and the API all
call `problems` / `first_reason`, so a bad row is refused with the same words
whichever way it arrives. The rules are Polars expressions over the record
columns (vectorised: a clean frame pays a few column scans). They check what a
detector cannot decide without (time, symbol, finite positive prices and sizes,
known words) and what no market prints: prices and sizes outside `PRICES` and
`SIZES`, times before the kind's earliest plausible time or later than now
plus a skew (`TimeBounds`, set from the `[input]` settings).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from tapewatch.records import BOOK_EVENTS, BOOK_SIDES, ORDER_ACTIONS, TIME, TRADE_SIDES

TS_GIVEN = "_ts_given"
"""Optional helper column: the row had a timestamp value (so a null `ts` means unparsable, not missing)."""
WHY = "_why"
"""Optional helper column: a source-specific reason (e.g. a bad Binance `is_buyer_maker`), null when fine."""

Problems = list[tuple[pl.Expr, pl.Expr]]
"""(is bad, reason) pairs in the order they are tried; each condition is never null."""


@dataclass(frozen=True)
class Printed:
    """The magnitudes a market prints for a quantity: zero aside (where allowed), `low` to `high`."""

    low: float
    high: float


PRICES = Printed(1e-18, 1e12)
"""Prices, in any quote asset. The highest real prices are a few 1e9 (BTC quoted in VND or
IDR on Binance: 1e9–3e9; Berkshire A: 7e5 USD), so 1e12 leaves a 300-fold margin. The
lowest are meme coins quoted in BTC: a 1e-9 USD token is 1e-14 BTC, and no venue quotes
beyond 18 decimals (the ERC-20 precision), hence 1e-18. Beyond these lie only mistakes and
the values that break arithmetic (1e308 overflows a notional, 1e-320 is a subnormal).
"""
SIZES = Printed(1e-18, 1e18)
"""Amounts and bar volumes, in base units. The largest token supplies traded are near 1e17
(BabyDoge 4e17, SHIB 6e14), so no trade, book level or day's volume reaches 1e18; the smallest
unit of a token is 1e-18 (18 decimals), of a share about 1e-9 (fractional shares).
"""


@dataclass(frozen=True)
class TimeBounds:
    """When a record can have happened: from its kind's earliest time to now plus a skew.

    Nothing Tapewatch reads for trades, orders or books is older than Bitcoin (2009-01-03),
    so an earlier time is a misread unit or a placeholder (epoch 0, -1). Daily bars of stock
    indices go back decades (the S&P 500 files start in 1999, public ones in 1927), so bars
    start at 1900. A clock may run a little ahead, hence the skew; "now" is the time of checking.
    """

    earliest: datetime
    earliest_bars: datetime
    max_future_skew_s: float


DEFAULT_TIME_BOUNDS = TimeBounds(datetime(2009, 1, 1, tzinfo=UTC), datetime(1900, 1, 1, tzinfo=UTC), 300.0)
_in_force = DEFAULT_TIME_BOUNDS


def use_time_bounds(bounds: TimeBounds) -> None:
    """Make `bounds` what rules use when not given any: `config.load_settings` sets the `[input]` ones."""
    global _in_force
    _in_force = bounds


def time_bounds() -> TimeBounds:
    """The time bounds rules use when not given any (the `[input]` settings, else the defaults)."""
    return _in_force


def _exponent(value: float) -> str:
    """`1e12`, `1e-18`: a bound as people write it."""
    return f"{value:.0e}".replace("e+", "e")


def _positive(name: str) -> pl.Expr:
    """True only for a finite number above zero (NaN sorts above +inf in Polars, so `< inf` drops it)."""
    value = pl.col(name)
    return ((value > 0) & (value < float("inf"))).fill_null(False)


def _not_negative(name: str) -> pl.Expr:
    """True only for a finite number at or above zero."""
    value = pl.col(name)
    return ((value >= 0) & (value < float("inf"))).fill_null(False)


def _printed(name: str, printed: Printed) -> Problems:
    """A finite value above zero must lie within what markets print (tried after the sign check)."""
    value = pl.col(name)
    return [
        (
            (value > printed.high).fill_null(False),
            pl.format(f"{name} {{}} is beyond what any market prints (max {_exponent(printed.high)})", value),
        ),
        (
            ((value > 0) & (value < printed.low)).fill_null(False),
            pl.format(f"{name} {{}} is below what any market prints (min {_exponent(printed.low)})", value),
        ),
    ]


def _must_be_positive(name: str, printed: Printed) -> Problems:
    return [(~_positive(name), pl.lit(f"{name} is not a positive number")), *_printed(name, printed)]


def _must_not_be_negative(name: str, printed: Printed) -> Problems:
    return [(~_not_negative(name), pl.lit(f"{name} is not a non-negative number")), *_printed(name, printed)]


def _blank(name: str) -> pl.Expr:
    value = pl.col(name)
    return (value.is_null() | (value == "")).fill_null(True)


def _time_and_symbol(columns: Collection[str], noun: str, earliest: datetime, skew_s: float) -> Problems:
    """What every record needs: a plausible timestamp (missing and unparsable told apart where known)
    and a symbol.

    `ts` may be a datetime or epoch µs (the exchange source's candidates); the future bound is
    taken now, when the rule is built, so callers build rules per check, not once.
    """
    no_ts = pl.col("ts").is_null()
    given = pl.col(TS_GIVEN) if TS_GIVEN in columns else pl.lit(False)
    ts = pl.col("ts").cast(TIME)
    shown = ts.dt.to_string("%Y-%m-%d %H:%M:%S%.f")
    latest = datetime.now(UTC) + timedelta(seconds=skew_s)
    return [
        (no_ts & ~given, pl.lit("missing timestamp")),
        (no_ts & given, pl.lit("unparsable timestamp")),
        (
            (ts < earliest).fill_null(False),
            pl.format(
                f"timestamp {{}} UTC is before {earliest:%Y-%m-%d}, the earliest plausible time for {noun}",
                shown,
            ),
        ),
        (
            (ts > latest).fill_null(False),
            pl.format(f"timestamp {{}} UTC is more than {skew_s:g} s in the future", shown),
        ),
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
    return pl.col(name).is_not_null() & ~_not_negative(name), pl.lit(f"{name} is not a non-negative number")


def _source_reason(columns: Collection[str]) -> Problems:
    return [(pl.col(WHY).is_not_null(), pl.col(WHY))] if WHY in columns else []


def trade_problems(columns: Collection[str], bounds: TimeBounds | None = None) -> Problems:
    """A trade: time, symbol, positive price and amount that markets print, side buy/sell or not stated.

    `bounds`: the plausible times, by default those in force (`time_bounds`).
    """
    bounds = bounds or time_bounds()
    return [
        *_time_and_symbol(columns, "trades", bounds.earliest, bounds.max_future_skew_s),
        *_must_be_positive("price", PRICES),
        *_must_be_positive("amount", SIZES),
        *_one_of("side", TRADE_SIDES, required=False),
        *_source_reason(columns),
    ]


def bar_problems(columns: Collection[str], bounds: TimeBounds | None = None) -> Problems:
    """A candle: time, symbol, positive open/high/low/close and volume >= 0 that markets print, high not
    below low; quote volume and trade count, where stated, not negative."""
    bounds = bounds or time_bounds()
    return [
        *_time_and_symbol(columns, "bars", bounds.earliest_bars, bounds.max_future_skew_s),
        *(check for name in ("open", "high", "low", "close") for check in _must_be_positive(name, PRICES)),
        *_must_not_be_negative("volume", SIZES),
        ((pl.col("high") < pl.col("low")).fill_null(False), pl.lit("high is below low")),
        _when_stated("quote_volume"),
        _when_stated("trades"),
    ]


def order_problems(
    columns: Collection[str], execution: str | None = None, *, bounds: TimeBounds | None = None
) -> Problems:
    """An L3 order event: only a cancel may have amount 0 (nothing left).

    `execution`, when given, is one more action: an execution merged in from the trades
    (`detect.spoofing.spoofing_l3`, as streams and the batch L3 detector see them), whose order id is
    the trade's id and may be empty.
    """
    bounds = bounds or time_bounds()
    action = pl.col("action")
    actions = ORDER_ACTIONS if execution is None else (*ORDER_ACTIONS, execution)
    keyless = (action == execution) if execution is not None else pl.lit(False)
    no_id = (pl.col("order_id").is_null() | ((pl.col("order_id") == "") & ~keyless)).fill_null(True)
    zero_amount = ((pl.col("amount") == 0) & (action != "cancel")).fill_null(False)
    return [
        *_time_and_symbol(columns, "order events", bounds.earliest, bounds.max_future_skew_s),
        (no_id, pl.lit("missing order_id")),
        *_one_of("side", TRADE_SIDES),
        *_one_of("action", actions),
        *_must_be_positive("price", PRICES),
        *_must_not_be_negative("amount", SIZES),
        (zero_amount, pl.format("amount is 0 on a '{}' event (only a cancel may have 0)", action)),
    ]


def book_problems(columns: Collection[str], bounds: TimeBounds | None = None) -> Problems:
    """An L2 update: side bid/ask, positive price, amount not negative (0 removes the level), both as
    markets print them.

    A row of an unusable depth message (WHY) is refused for that alone: its
    other fields are null because the message was, not because they are wrong.
    """
    bounds = bounds or time_bounds()
    problems = [
        *_time_and_symbol(columns, "book updates", bounds.earliest, bounds.max_future_skew_s),
        *_one_of("side", BOOK_SIDES),
        *_must_be_positive("price", PRICES),
        *_must_not_be_negative("amount", SIZES),
    ]
    if WHY not in columns:
        return problems
    usable = pl.col(WHY).is_null()
    return [*_source_reason(columns), *((usable & is_bad, why) for is_bad, why in problems)]


def book_event_problems(columns: Collection[str], bounds: TimeBounds | None = None) -> Problems:
    """A row of the merged L2 stream: a `level` follows the book rule, a `trade` the trade rule."""
    event = pl.col("event")
    level, trade = (event == "level").fill_null(False), (event == "trade").fill_null(False)
    return [
        *_one_of("event", BOOK_EVENTS),
        *((level & is_bad, why) for is_bad, why in book_problems(columns, bounds)),
        *((trade & is_bad, why) for is_bad, why in trade_problems(columns, bounds)),
    ]


RULES: dict[str, Callable[..., Problems]] = {
    "trades": trade_problems,
    "bars": bar_problems,
    "orders": order_problems,
    "book": book_problems,
    "book_events": book_event_problems,
}
"""The rule of each record kind (`book_events`: L2 updates and trades merged, as streams carry them)."""


def problems(kind: str, columns: Collection[str], bounds: TimeBounds | None = None) -> Problems:
    """The (is bad, reason) checks of `kind` for a frame with `columns` (which tells the optional helpers),
    with `bounds` (default: those in force) and now as the plausible times."""
    return RULES[kind](columns, bounds=bounds)


def first_reason(checks: Problems) -> pl.Expr:
    """Each row's first failed check's reason, null for a good row (the column `reason`)."""
    return pl.coalesce([pl.when(is_bad).then(why) for is_bad, why in checks]).alias("reason")
