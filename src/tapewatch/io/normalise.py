"""Raw columns of each file format → trade or bar record columns, plus the checks a record must pass.

One converter per format; each says only how that format names and encodes
things. What makes a row bad is decided once per record kind (`PROBLEMS`), so
every format rejects the same things with the same words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import polars as pl

from tapewatch.io.formats import EXPECTED, BinanceName, Source, data_stem, unify_symbol
from tapewatch.io.timeparse import infer_interval, parse_times
from tapewatch.records import TRADE_SIDES

Kind = Literal["trades", "bars"]

TS_GIVEN = "_ts_given"
"""Helper column: the row had a timestamp value (so a null `ts` means unparsable, not missing)."""
WHY = "_why"
"""Helper column: a format-specific reason (e.g. a bad Binance `is_buyer_maker`), null when fine."""

UNKNOWN_VENUE = "unknown"
FLOAT = pl.Float64()
INT = pl.Int64()
TRUE_WORDS = ("true", "True", "TRUE", "1")
FALSE_WORDS = ("false", "False", "FALSE", "0")


@dataclass(frozen=True)
class FileContext:
    """What a converter may know besides the columns: the file, `--venue`, and what the name says."""

    source: Source
    fmt: str
    venue: str | None
    binance: BinanceName | None


@dataclass(frozen=True)
class Converted:
    """A file's rows as record columns (same height and order as the raw frame) and which kind they are."""

    kind: Kind
    frame: pl.DataFrame


class Columns:
    """Case-insensitive access to a raw frame's columns, and the one-line error when some are missing."""

    def __init__(self, raw: pl.DataFrame, ctx: FileContext) -> None:
        self.by_name = {name.strip().lower(): name for name in raw.columns}
        self.ctx = ctx

    def find(self, *names: str) -> str | None:
        """The actual name of the first of `names` present, or None."""
        return next((self.by_name[n] for n in names if n in self.by_name), None)

    def starting(self, prefix: str) -> list[str]:
        """Lower-cased names of the columns that start with `prefix`, in file order (`Volume BTC`…)."""
        return [lower for lower in self.by_name if lower.startswith(prefix)]

    def require(self, *groups: tuple[str, ...]) -> None:
        """Each group lists acceptable names for one needed column; name the first of each missing group."""
        missing = [group[0] for group in groups if self.find(*group) is None]
        if missing:
            raise self.ctx.source.fail(
                f"missing column(s) {', '.join(missing)}; expected {EXPECTED[self.ctx.fmt]}"
            )

    def text(self, *names: str) -> pl.Expr:
        """An optional text column, or a null literal when the file does not have it."""
        found = self.find(*names)
        return pl.col(found).cast(pl.String) if found else pl.lit(None, dtype=pl.String)

    def number(self, *names: str, dtype: pl.DataType = FLOAT) -> pl.Expr:
        """An optional numeric column read leniently (bad text → null → rejected), or a null literal."""
        found = self.find(*names)
        return pl.col(found).cast(dtype, strict=False) if found else pl.lit(None, dtype=dtype)

    def venue(self, default: str) -> pl.Expr:
        """`--venue` wins, then a venue/exchange column, then the format's default."""
        if self.ctx.venue:
            return pl.lit(self.ctx.venue)
        found = self.find("venue", "exchange")
        return pl.col(found).cast(pl.String).fill_null(default) if found else pl.lit(default)


def _with_ts(raw: pl.DataFrame, cols: Columns, *names: str) -> pl.DataFrame:
    """Add the parsed timestamp (`ts`) and whether one was given, from the first present of `names`."""
    name = cols.find(*names)
    assert name is not None, names
    return raw.with_columns(
        pl.Series("ts", parse_times(raw[name])), pl.col(name).is_not_null().alias(TS_GIVEN)
    )


def _side(raw: pl.DataFrame, cols: Columns) -> pl.Expr:
    """Taker side as `buy`/`sell`: other spellings are lower-cased and blanks become null (not stated).

    The clean-up runs only when some value needs it, so tidy files pay one check.
    """
    name = cols.find("side")
    if name is None:
        return pl.lit(None, dtype=pl.String).alias("side")
    values = raw[name]
    if values.dtype == pl.String and (values.is_in(TRADE_SIDES) | values.is_null()).all():
        return pl.col(name).alias("side")
    cleaned = pl.col(name).cast(pl.String).str.strip_chars().str.to_lowercase()
    return pl.when(cleaned != "").then(cleaned).alias("side")


def _stem_symbol(cols: Columns) -> pl.Expr:
    """The `symbol` column when the file has one (a blank cell is then a bad row), else the file name.

    The file name is what symbol-less files mean: `sp500` for sp500.csv.gz.
    """
    found = cols.find("symbol")
    symbol = pl.col(found).cast(pl.String) if found else pl.lit(data_stem(cols.ctx.source.path))
    return symbol.alias("symbol")


def _trade_columns(raw: pl.DataFrame, cols: Columns, id_names: tuple[str, ...]) -> list:
    """The trade record's columns from a file that names them (ccxt CSV, Parquet)."""
    return [
        "ts",
        cols.venue(UNKNOWN_VENUE).alias("venue"),
        _stem_symbol(cols),
        cols.number("price").alias("price"),
        cols.number("amount").alias("amount"),
        _side(raw, cols),
        cols.text(*id_names).alias("trade_id"),
        cols.text("buyer").alias("buyer"),
        cols.text("seller").alias("seller"),
        TS_GIVEN,
    ]


def convert_ccxt(raw: pl.DataFrame, ctx: FileContext) -> Converted:
    """ccxt `fetch_trades` CSV: symbol (else the file name), epoch-ms timestamp, side, price, amount."""
    cols = Columns(raw, ctx)
    cols.require(("timestamp", "datetime", "ts"), ("price",), ("amount",))
    frame = _with_ts(raw, cols, "timestamp", "datetime", "ts").select(
        _trade_columns(raw, cols, ("id", "trade_id"))
    )
    return Converted("trades", frame)


def _binance_symbol(ctx: FileContext) -> pl.Expr:
    """The symbol a Binance file name carries (unified), else the unified file stem."""
    symbol = ctx.binance.symbol if ctx.binance else unify_symbol(data_stem(ctx.source.path))
    return pl.lit(symbol).alias("symbol")


def _maker_side(maker: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """Taker side from `is_buyer_maker` (buyer was maker → the taker sold), and the reason when it is neither."""
    side = (
        pl.when(maker.is_in(TRUE_WORDS))
        .then(pl.lit("sell"))
        .when(maker.is_in(FALSE_WORDS))
        .then(pl.lit("buy"))
    )
    unknown = maker.is_not_null() & side.is_null()
    why = pl.when(unknown).then(pl.format("is_buyer_maker is not true/false ('{}')", maker))
    return side, why


def convert_binance_trades(raw: pl.DataFrame, ctx: FileContext) -> Converted:
    """Binance `trades` and `aggTrades` dumps: same meaning, different column names."""
    cols = Columns(raw, ctx)
    cols.require(("price",), ("qty", "quantity"), ("time", "transact_time"), ("is_buyer_maker",))
    side, why = _maker_side(cols.text("is_buyer_maker"))
    frame = _with_ts(raw, cols, "time", "transact_time").select(
        "ts",
        cols.venue("binance").alias("venue"),
        _binance_symbol(ctx),
        cols.number("price").alias("price"),
        cols.number("qty", "quantity").alias("amount"),
        side.alias("side"),
        cols.text("id", "agg_trade_id").alias("trade_id"),
        TS_GIVEN,
        why.alias(WHY),
    )
    return Converted("trades", frame)


def _volume_columns(cols: Columns) -> tuple[str, str]:
    """Base and quote volume columns: `volume`/`Volume BTC` first, then `quote_volume` or a second `Volume …`.

    Files like CryptoDataDownload's carry `Volume BTC,Volume USDT`: base, then quote.
    """
    volumes = cols.starting("volume")
    base = volumes[0] if volumes else "volume"
    quote = next((n for n in ("quote_volume", "quote volume", "quote_asset_volume") if cols.find(n)), None)
    return base, quote or (volumes[1] if len(volumes) > 1 else "quote_volume")


def _bar_columns(cols: Columns, symbol: pl.Expr, venue_default: str) -> list[pl.Expr | str]:
    """The bar record columns shared by klines, OHLCV and Parquet bars (interval added by the caller)."""
    volume, quote_volume = _volume_columns(cols)
    return [
        "ts",
        cols.venue(venue_default).alias("venue"),
        symbol,
        cols.number("open").alias("open"),
        cols.number("high").alias("high"),
        cols.number("low").alias("low"),
        cols.number("close").alias("close"),
        cols.number(volume).alias("volume"),
        cols.number(quote_volume).alias("quote_volume"),
        cols.number("trades", "count", "tradecount", "number_of_trades", dtype=INT).alias("trades"),
        TS_GIVEN,
    ]


def _add_interval(frame: pl.DataFrame, interval: str | None) -> pl.DataFrame:
    """The interval a file name states, else the one its own timestamps show."""
    return frame.with_columns(pl.lit(interval or infer_interval(frame["ts"])).alias("interval"))


def convert_binance_klines(raw: pl.DataFrame, ctx: FileContext) -> Converted:
    """Binance klines: one bar per row, the interval from the file name (`BTCUSDT-1m-…`)."""
    cols = Columns(raw, ctx)
    cols.require(("open_time",), ("open",), ("high",), ("low",), ("close",), ("volume",))
    frame = _with_ts(raw, cols, "open_time").select(_bar_columns(cols, _binance_symbol(ctx), "binance"))
    return Converted("bars", _add_interval(frame, ctx.binance.interval if ctx.binance else None))


DATE_COLUMNS = ("date", "datetime", "timestamp", "time", "open_time", "unix", "ts")


def convert_ohlcv(raw: pl.DataFrame, ctx: FileContext) -> Converted:
    """OHLCV CSV with any header case, a `volume…` column, dates or epochs; interval from the spacing."""
    cols = Columns(raw, ctx)
    volume = () if cols.starting("volume") else (("volume",),)
    cols.require(DATE_COLUMNS, ("open",), ("high",), ("low",), ("close",), *volume)
    frame = _with_ts(raw, cols, *DATE_COLUMNS).select(_bar_columns(cols, _stem_symbol(cols), UNKNOWN_VENUE))
    return Converted("bars", _add_interval(frame, None))


PARQUET_TS = ("ts", "timestamp", "time", "datetime", "date")


def convert_parquet(raw: pl.DataFrame, ctx: FileContext) -> Converted:
    """Parquet with record columns: trades when it has price and amount, bars when it has OHLC."""
    cols = Columns(raw, ctx)
    if cols.find("price") and cols.find("amount"):
        cols.require(PARQUET_TS)
        frame = _with_ts(raw, cols, *PARQUET_TS).select(_trade_columns(raw, cols, ("trade_id", "id")))
        return Converted("trades", frame)
    cols.require(PARQUET_TS, ("open",), ("high",), ("low",), ("close",), ("volume",))
    frame = _with_ts(raw, cols, *PARQUET_TS).select(_bar_columns(cols, _stem_symbol(cols), UNKNOWN_VENUE))
    interval = cols.find("interval")
    if interval:
        return Converted("bars", frame.with_columns(raw[interval].cast(pl.String).alias("interval")))
    return Converted("bars", _add_interval(frame, None))


CONVERTERS: dict[str, Callable[[pl.DataFrame, FileContext], Converted]] = {
    "ccxt-trades": convert_ccxt,
    "binance-trades": convert_binance_trades,
    "binance-aggtrades": convert_binance_trades,
    "binance-klines": convert_binance_klines,
    "ohlcv": convert_ohlcv,
    "parquet": convert_parquet,
}


def _positive(name: str) -> pl.Expr:
    """True only for a finite number above zero (NaN sorts above +inf in Polars, so `< inf` drops it)."""
    value = pl.col(name)
    return ((value > 0) & (value < float("inf"))).fill_null(False)


def _not_negative(name: str) -> pl.Expr:
    """True only for a finite number at or above zero."""
    value = pl.col(name)
    return ((value >= 0) & (value < float("inf"))).fill_null(False)


def _common_problems() -> list[tuple[pl.Expr, pl.Expr]]:
    """What trades and bars both need: a timestamp (missing and unparsable told apart) and a symbol."""
    no_ts = pl.col("ts").is_null()
    return [
        (no_ts & ~pl.col(TS_GIVEN), pl.lit("missing timestamp")),
        (no_ts & pl.col(TS_GIVEN), pl.lit("unparsable timestamp")),
        (pl.col("symbol").is_null() | (pl.col("symbol") == ""), pl.lit("missing symbol")),
    ]


def trade_problems(columns: list[str]) -> list[tuple[pl.Expr, pl.Expr]]:
    """(is bad, reason) pairs a trade row must pass; each condition is never null."""
    side = pl.col("side")
    problems = [
        *_common_problems(),
        (~_positive("price"), pl.lit("price is not a positive number")),
        (~_positive("amount"), pl.lit("amount is not a positive number")),
        (
            side.is_not_null() & ~side.is_in(TRADE_SIDES),
            pl.format("unknown side '{}' (expected buy/sell)", side),
        ),
    ]
    if WHY in columns:
        problems.append((pl.col(WHY).is_not_null(), pl.col(WHY)))
    return problems


def bar_problems(columns: list[str]) -> list[tuple[pl.Expr, pl.Expr]]:
    """(is bad, reason) pairs a bar row must pass; each condition is never null."""
    prices = [
        (~_positive(name), pl.lit(f"{name} is not a positive number"))
        for name in ("open", "high", "low", "close")
    ]
    return [
        *_common_problems(),
        *prices,
        (~_not_negative("volume"), pl.lit("volume is not a non-negative number")),
        ((pl.col("high") < pl.col("low")).fill_null(False), pl.lit("high is below low")),
    ]


KINDS: dict[str, Kind] = {
    "ccxt-trades": "trades",
    "binance-trades": "trades",
    "binance-aggtrades": "trades",
    "binance-klines": "bars",
    "ohlcv": "bars",
}
"""The record kind each CSV format yields (Parquet holds either), so an empty file still has a kind."""

PROBLEMS: dict[Kind, Callable[[list[str]], list[tuple[pl.Expr, pl.Expr]]]] = {
    "trades": trade_problems,
    "bars": bar_problems,
}
