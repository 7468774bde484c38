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
from tapewatch.io.formats import EXPECTED, BinanceName, Source, data_stem
from tapewatch.io.symbols import UNKNOWN_VENUE, canonical_column, canonical_symbol_of
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
COUNTED: dict[Kind, str] = {
    "trades": "trades",
    "bars": "bars",
    "orders": "order events",
    "book": "book updates",
}
"""Each kind in the words of a count in a summary ("12 order events")."""

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
    notes: tuple[str, ...] = ()
    """What the reading assumed that the user should hear (timestamps taken as epoch seconds)."""


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
        fixed = self.fixed_venue(default)
        if fixed is not None:
            return pl.lit(fixed)
        return pl.col(self.find("venue", "exchange")).cast(pl.String).fill_null(default)

    def fixed_venue(self, default: str) -> str | None:
        """The venue of every row (`--venue`, else the default when no column names one), or None."""
        if self.ctx.venue:
            return self.ctx.venue
        return None if self.find("venue", "exchange") else default


def _with_ts(raw: pl.DataFrame, cols: Columns, *names: str) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Add the parsed timestamp (`ts`) and whether one was given, from the first present of `names`;
    with the note to give when the column's epochs were taken as seconds."""
    name = cols.find(*names)
    assert name is not None, names
    parsed = parse_times(raw[name])
    frame = raw.with_columns(pl.Series("ts", parsed.values), pl.col(name).is_not_null().alias(TS_GIVEN))
    return frame, (f"timestamps read as epoch seconds (column '{name}')",) if parsed.seconds else ()


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


def _symbol(raw: pl.DataFrame, cols: Columns, venue_default: str, named: str | None = None) -> pl.Expr:
    """The `symbol` column in its venue's one spelling (`tapewatch.io.symbols`).

    From the file's symbol column (a blank cell is then a bad row), else `named` (what a
    Binance file name says), else the file name, which is what symbol-less files mean:
    `SP500` for sp500.csv.gz.
    """
    venue = cols.fixed_venue(venue_default)
    found = cols.find("symbol")
    if found is None:
        name = named or data_stem(cols.ctx.source.path)
        if venue is not None:
            return pl.lit(canonical_symbol_of(name, venue)).alias("symbol")
        column, values = pl.lit(name), pl.Series([name])
    else:
        column, values = pl.col(found).cast(pl.String), raw[found]
    return canonical_column(column, venue or cols.venue(venue_default), values).alias("symbol")


def _trade_columns(raw: pl.DataFrame, cols: Columns, id_names: tuple[str, ...]) -> list:
    """The trade record's columns from a file that names them (ccxt CSV, Parquet)."""
    return [
        "ts",
        cols.venue(UNKNOWN_VENUE).alias("venue"),
        _symbol(raw, cols, UNKNOWN_VENUE),
        cols.number("price").alias("price"),
        cols.number("amount").alias("amount"),
        _word(raw, cols, "side", TRADE_SIDES),
        cols.text(*id_names).alias("trade_id"),
        cols.text("buyer").alias("buyer"),
        cols.text("seller").alias("seller"),
        TS_GIVEN,
    ]


def convert_ccxt(raw: pl.DataFrame, ctx: FileContext) -> Converted:
    """ccxt `fetch_trades` CSV: symbol (else the file name), epoch timestamp (ms; seconds, µs, ns told apart), side, price, amount."""
    cols = Columns(raw, ctx)
    cols.require(("timestamp", "datetime", "ts"), ("price",), ("amount",))
    timed, notes = _with_ts(raw, cols, "timestamp", "datetime", "ts")
    return Converted("trades", timed.select(_trade_columns(raw, cols, ("id", "trade_id"))), notes=notes)


def _binance_symbol(raw: pl.DataFrame, cols: Columns) -> pl.Expr:
    """The symbol a Binance file name carries, else the file stem, as a Binance symbol."""
    binance = cols.ctx.binance
    return _symbol(raw, cols, "binance", binance.symbol if binance else None)


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
    timed, notes = _with_ts(raw, cols, "time", "transact_time")
    frame = timed.select(
        "ts",
        cols.venue("binance").alias("venue"),
        _binance_symbol(raw, cols),
        cols.number("price").alias("price"),
        cols.number("qty", "quantity").alias("amount"),
        side.alias("side"),
        cols.text("id", "agg_trade_id").alias("trade_id"),
        TS_GIVEN,
        why.alias(WHY),
    )
    return Converted("trades", frame, notes=notes)


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
    timed, notes = _with_ts(raw, cols, "open_time")
    frame = timed.select(_bar_columns(cols, _binance_symbol(raw, cols), "binance"))
    return Converted("bars", _add_interval(frame, ctx.binance.interval if ctx.binance else None), notes=notes)


DATE_COLUMNS = ("date", "datetime", "timestamp", "time", "open_time", "unix", "ts")


def convert_ohlcv(raw: pl.DataFrame, ctx: FileContext) -> Converted:
    """OHLCV CSV with any header case, a `volume…` column, dates or epochs; interval from the spacing."""
    cols = Columns(raw, ctx)
    volume = () if cols.starting("volume") else (("volume",),)
    cols.require(DATE_COLUMNS, ("open",), ("high",), ("low",), ("close",), *volume)
    timed, notes = _with_ts(raw, cols, *DATE_COLUMNS)
    frame = timed.select(_bar_columns(cols, _symbol(raw, cols, UNKNOWN_VENUE), UNKNOWN_VENUE))
    return Converted("bars", _add_interval(frame, None), notes=notes)


RECORD_TS = ("ts", "timestamp", "time", "datetime", "date")
"""What files written with the record columns call their time."""


def convert_orders(raw: pl.DataFrame, ctx: FileContext) -> Converted:
    """L3 order events with the record's columns (CSV or Parquet); symbol from the file name when absent."""
    cols = Columns(raw, ctx)
    cols.require(RECORD_TS, ("order_id",), ("side",), ("price",), ("amount",), ("action",))
    timed, notes = _with_ts(raw, cols, *RECORD_TS)
    frame = timed.select(
        "ts",
        cols.venue(UNKNOWN_VENUE).alias("venue"),
        _symbol(raw, cols, UNKNOWN_VENUE),
        cols.text("order_id").alias("order_id"),
        cols.text("account").alias("account"),
        _word(raw, cols, "side", TRADE_SIDES),
        cols.number("price").alias("price"),
        cols.number("amount").alias("amount"),
        _word(raw, cols, "action", ORDER_ACTIONS),
        TS_GIVEN,
    )
    return Converted("orders", frame, notes=notes)


def convert_book(raw: pl.DataFrame, ctx: FileContext) -> Converted:
    """L2 book updates with the record's columns (CSV or Parquet); symbol from the file name when absent."""
    cols = Columns(raw, ctx)
    cols.require(RECORD_TS, ("side",), ("price",), ("amount",))
    timed, notes = _with_ts(raw, cols, *RECORD_TS)
    frame = timed.select(
        "ts",
        cols.venue(UNKNOWN_VENUE).alias("venue"),
        _symbol(raw, cols, UNKNOWN_VENUE),
        _word(raw, cols, "side", BOOK_SIDES),
        cols.number("price").alias("price"),
        cols.number("amount").alias("amount"),
        TS_GIVEN,
    )
    return Converted("book", frame, notes=notes)


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
    venue = cols.fixed_venue("binance") or cols.venue("binance")
    timed, notes = _with_ts(messages, cols, "event_time")
    messages = timed.with_columns(
        cols.venue("binance").alias("venue"),
        canonical_column(pl.col("pair"), venue, messages["pair"]).alias("symbol"),
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
        "book",
        frame,
        raw=levels.select(depth.RAW_COLUMNS),
        lines=levels[depth.LINE],
        sequence=sequence,
        notes=notes,
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
        timed, notes = _with_ts(raw, cols, *RECORD_TS)
        return Converted("trades", timed.select(_trade_columns(raw, cols, ("trade_id", "id"))), notes=notes)
    cols.require(RECORD_TS, ("open",), ("high",), ("low",), ("close",), ("volume",))
    timed, notes = _with_ts(raw, cols, *RECORD_TS)
    frame = timed.select(_bar_columns(cols, _symbol(raw, cols, UNKNOWN_VENUE), UNKNOWN_VENUE))
    interval = cols.find("interval")
    if interval:
        frame = frame.with_columns(raw[interval].cast(pl.String).alias("interval"))
        return Converted("bars", frame, notes=notes)
    return Converted("bars", _add_interval(frame, None), notes=notes)


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
