"""Raw columns of each file format → the record columns of its kind (what makes a row bad: `tapewatch.validity`).

One converter per format; each says only how that format names and encodes
things. What makes a row bad is decided once per record kind in `tapewatch.validity`,
so every format, and every other way rows arrive, rejects the same
things with the same words.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import polars as pl

from tapewatch.io import depth
from tapewatch.io.formats import EXPECTED, BinanceName, Source, data_stem, unify_symbol
from tapewatch.io.timeparse import infer_interval, parse_times
from tapewatch.records import BOOK_SIDES, ORDER_ACTIONS, TRADE_SIDES
from tapewatch.validity import TS_GIVEN, WHY

Kind = Literal["trades", "bars", "orders", "book"]
RECORD_KINDS: tuple[Kind, ...] = ("trades", "bars", "orders", "book")

NOUNS: dict[Kind, str] = {
    "trades": "trades",
    "bars": "bars",
    "orders": "L3 order events (order_id, action)",
    "book": "L2 book updates (side bid/ask)",
}
"""Each kind in the words of an error about a file holding it."""

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
    raw: pl.DataFrame | None = None
    """The raw fields behind each row, when one raw row gives many (a depth message's levels)."""
    lines: pl.Series | None = None
    """With `raw`: the file line of each row, for dead letters."""
    sequence: pl.DataFrame | None = None
    """Diff-depth only: each usable message's venue, symbol, ts, line and update ids, for gap checks."""


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


def _word(raw: pl.DataFrame, cols: Columns, name: str, allowed: tuple[str, ...]) -> pl.Expr:
    """A column of a few known words (side, action): other spellings lower-cased, blanks null (not stated).

    The clean-up runs only when some value needs it, so tidy files pay one check.
    """
    found = cols.find(name)
    if found is None:
        return pl.lit(None, dtype=pl.String).alias(name)
    values = raw[found]
    if values.dtype == pl.String and (values.is_in(allowed) | values.is_null()).all():
        return pl.col(found).alias(name)
    cleaned = pl.col(found).cast(pl.String).str.strip_chars().str.to_lowercase()
    return pl.when(cleaned != "").then(cleaned).alias(name)


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
        _word(raw, cols, "side", TRADE_SIDES),
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


RECORD_TS = ("ts", "timestamp", "time", "datetime", "date")
"""What files written with the record columns call their time."""


def convert_orders(raw: pl.DataFrame, ctx: FileContext) -> Converted:
    """L3 order events with the record's columns (CSV or Parquet); symbol from the file name when absent."""
    cols = Columns(raw, ctx)
    cols.require(RECORD_TS, ("order_id",), ("side",), ("price",), ("amount",), ("action",))
    frame = _with_ts(raw, cols, *RECORD_TS).select(
        "ts",
        cols.venue(UNKNOWN_VENUE).alias("venue"),
        _stem_symbol(cols),
        cols.text("order_id").alias("order_id"),
        cols.text("account").alias("account"),
        _word(raw, cols, "side", TRADE_SIDES),
        cols.number("price").alias("price"),
        cols.number("amount").alias("amount"),
        _word(raw, cols, "action", ORDER_ACTIONS),
        TS_GIVEN,
    )
    return Converted("orders", frame)


def convert_book(raw: pl.DataFrame, ctx: FileContext) -> Converted:
    """L2 book updates with the record's columns (CSV or Parquet); symbol from the file name when absent."""
    cols = Columns(raw, ctx)
    cols.require(RECORD_TS, ("side",), ("price",), ("amount",))
    frame = _with_ts(raw, cols, *RECORD_TS).select(
        "ts",
        cols.venue(UNKNOWN_VENUE).alias("venue"),
        _stem_symbol(cols),
        _word(raw, cols, "side", BOOK_SIDES),
        cols.number("price").alias("price"),
        cols.number("amount").alias("amount"),
        TS_GIVEN,
    )
    return Converted("book", frame)


def _unified_pairs(pairs: pl.Series) -> pl.Series:
    """`BNBBTC` → `BNB/BTC` as for Binance file names, worked out once per distinct pair (a few per file)."""
    return pairs.replace({pair: unify_symbol(pair) for pair in pairs.drop_nulls().unique()})


def convert_binance_depth(raw: pl.DataFrame, ctx: FileContext) -> Converted:
    """Binance diff-depth JSON lines: a row per bid/ask level, time from `E` (ms), venue binance.

    Messages are converted before their levels are exploded, so time and
    symbol are parsed once per message, not once per level.
    """
    try:
        messages = depth.decode_messages(raw)
    except pl.exceptions.ComputeError as exc:
        raise ctx.source.fail(
            f"cannot read as {EXPECTED[ctx.fmt]} ({str(exc).strip().splitlines()[0]})"
        ) from exc
    cols = Columns(messages, ctx)
    messages = _with_ts(messages, cols, "event_time").with_columns(
        cols.venue("binance").alias("venue"), _unified_pairs(messages["pair"]).alias("symbol")
    )
    levels = depth.explode_levels(messages)
    frame = levels.select(
        "ts",
        "venue",
        "symbol",
        "side",
        pl.col("price").cast(FLOAT, strict=False),
        pl.col("amount").cast(FLOAT, strict=False),
        TS_GIVEN,
        pl.col("problem").alias(WHY),
    )
    sequence = messages.filter(pl.col("problem").is_null()).select(
        "venue",
        "symbol",
        "ts",
        depth.LINE,
        *(depth.as_id(pl.col(name)) for name in ("first_id", "last_id", "prev_id")),
    )
    return Converted(
        "book", frame, raw=levels.select(depth.RAW_COLUMNS), lines=levels[depth.LINE], sequence=sequence
    )


def _first_side(raw: pl.DataFrame, cols: Columns) -> str | None:
    """The first stated side, lower-cased: bid/ask marks book updates, where trades say buy/sell."""
    found = cols.find("side")
    if found is None:
        return None
    first = raw[found].drop_nulls().head(1).cast(pl.String)
    return first[0].strip().lower() if len(first) else None


def convert_parquet(raw: pl.DataFrame, ctx: FileContext) -> Converted:
    """Parquet with record columns, told apart by them: order events, book updates, trades or bars."""
    cols = Columns(raw, ctx)
    if cols.find("order_id") and cols.find("action"):
        return convert_orders(raw, ctx)
    if _first_side(raw, cols) in BOOK_SIDES:
        return convert_book(raw, ctx)
    if cols.find("price") and cols.find("amount"):
        cols.require(RECORD_TS)
        frame = _with_ts(raw, cols, *RECORD_TS).select(_trade_columns(raw, cols, ("trade_id", "id")))
        return Converted("trades", frame)
    cols.require(RECORD_TS, ("open",), ("high",), ("low",), ("close",), ("volume",))
    frame = _with_ts(raw, cols, *RECORD_TS).select(_bar_columns(cols, _stem_symbol(cols), UNKNOWN_VENUE))
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
    "l3-orders": convert_orders,
    "l2-book": convert_book,
    "binance-depth": convert_binance_depth,
    "parquet": convert_parquet,
}


KINDS: dict[str, Kind] = {
    "ccxt-trades": "trades",
    "binance-trades": "trades",
    "binance-aggtrades": "trades",
    "binance-klines": "bars",
    "ohlcv": "bars",
    "l3-orders": "orders",
    "l2-book": "book",
    "binance-depth": "book",
}
"""The record kind each non-Parquet format yields (Parquet holds any), so an empty file still has a kind."""
