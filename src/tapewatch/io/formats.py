"""Which format a file is in, told from its name and first line, and how to open it as raw text columns.

Detection reads one line (decompressed), never the whole file, so it costs
nothing next to the read itself.
"""

from __future__ import annotations

import gzip
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import polars as pl

from tapewatch.errors import InputError
from tapewatch.io.depth import is_depth_message
from tapewatch.records import BOOK_SIDES

FORMATS: tuple[str, ...] = (
    "auto",
    "ccxt-trades",
    "binance-trades",
    "binance-aggtrades",
    "binance-klines",
    "ohlcv",
    "l3-orders",
    "l2-book",
    "binance-depth",
    "parquet",
)
"""The accepted `--format` names; "auto" tells them apart per file."""

DATA_SUFFIXES: tuple[str, ...] = (".csv", ".gz", ".zip", ".parquet", ".pq", ".jsonl", ".json")
"""Extensions a directory is searched for (`.csv.gz` and `.jsonl.gz` end in `.gz`)."""

EXPECTED: dict[str, str] = {
    "ccxt-trades": "ccxt trades (symbol,timestamp,datetime,side,price,amount[,cost]; or a ts column)",
    "binance-trades": "Binance trades (id,price,qty,quote_qty,time,is_buyer_maker[,is_best_match])",
    "binance-aggtrades": (
        "Binance aggTrades (agg_trade_id,price,quantity,first_trade_id,last_trade_id,"
        "transact_time,is_buyer_maker[,is_best_match])"
    ),
    "binance-klines": (
        "Binance klines (open_time,open,high,low,close,volume,close_time,quote_volume,count,"
        "taker_buy_volume,taker_buy_quote_volume,ignore)"
    ),
    "ohlcv": "OHLCV (date,open,high,low,close,volume)",
    "l3-orders": "L3 order events (ts,symbol,order_id,side,price,amount,action[,venue,account])",
    "l2-book": "L2 book updates (ts,symbol,side,price,amount[,venue]) with side bid/ask",
    "binance-depth": (
        'Binance diff-depth JSON lines ({"e":"depthUpdate","E":…,"s":…,"U":…,"u":…,"b":[…],"a":[…]}, '
        'bare or as {"stream":…,"data":{…}})'
    ),
    "parquet": (
        "Parquet with trade columns (ts,symbol,price,amount[,side,venue,trade_id,buyer,seller]), "
        "bar columns (ts,symbol,open,high,low,close,volume[,interval,quote_volume,trades]), "
        "order event columns (ts,symbol,order_id,side,price,amount,action[,venue,account]) "
        "or book columns (ts,symbol,side,price,amount[,venue]) with side bid/ask"
    ),
}
"""What each format must look like, quoted in every error about it."""

BINANCE_COLUMNS: dict[str, tuple[str, ...]] = {
    "binance-trades": ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match"),
    "binance-aggtrades": (
        "agg_trade_id",
        "price",
        "quantity",
        "first_trade_id",
        "last_trade_id",
        "transact_time",
        "is_buyer_maker",
        "is_best_match",
    ),
    "binance-klines": (
        "open_time",
        "open",
        "high",
        "low",
        "close",
        "volume",
        "close_time",
        "quote_volume",
        "count",
        "taker_buy_volume",
        "taker_buy_quote_volume",
        "ignore",
    ),
}
"""Column order of headerless Binance dumps; futures files drop the trailing `is_best_match`."""

_F64 = pl.Float64()
_I64 = pl.Int64()
TYPED_COLUMNS: dict[str, dict[str, pl.DataType]] = {
    "ccxt-trades": {"timestamp": _I64, "price": _F64, "amount": _F64},
    "binance-trades": {"time": _I64, "price": _F64, "qty": _F64},
    "binance-aggtrades": {"transact_time": _I64, "price": _F64, "quantity": _F64},
    "binance-klines": {
        "open_time": _I64,
        **dict.fromkeys(("open", "high", "low", "close", "volume", "quote_volume"), _F64),
        "count": _I64,
    },
    "ohlcv": dict.fromkeys(("open", "high", "low", "close", "volume"), _F64),
    "l3-orders": {"price": _F64, "amount": _F64},
    "l2-book": {"price": _F64, "amount": _F64},
}
"""Columns parsed as numbers while reading (in parallel, far cheaper than casting text afterwards).

A file where one of them holds text is read again all as text, so the bad
value still reaches the dead letters verbatim.
"""

QUOTE_ASSETS: tuple[str, ...] = tuple(
    sorted(
        (
            "USDT", "BUSD", "USDC", "FDUSD", "TUSD", "USDP", "USDS", "DAI", "PAX", "AEUR", "EURI",
            "BTC", "ETH", "BNB", "XRP", "TRX", "DOGE", "DOT", "SOL",
            "EUR", "GBP", "AUD", "TRY", "BRL", "RUB", "UAH", "NGN", "ZAR", "PLN", "RON", "ARS",
            "JPY", "MXN", "COP", "CZK", "IDRT", "BIDR", "BKRW", "BVND", "VAI",
        ),
        key=len,
        reverse=True,
    )
)  # fmt: skip
"""Binance quote assets, longest first so `ETHFDUSD` splits as ETH/FDUSD, not ETHFD/USD."""

_BINANCE_NAME = re.compile(
    r"^(?P<symbol>[A-Z0-9_]+)-(?P<kind>trades|aggTrades|\d+(?:s|m|h|d|w|mo|M))-\d{4}-\d{2}(?:-\d{2})?$"
)
_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$")
_SEPARATORS = (",", ";", "\t", "|")


@dataclass(frozen=True)
class BinanceName:
    """What a data.binance.vision file name says: the symbol, the dump kind and (klines) the interval."""

    symbol: str
    fmt: str
    interval: str | None


def unify_symbol(symbol: str) -> str:
    """`BTCUSDT` → `BTC/USDT` (ccxt unified form) when it ends in a known quote asset, else unchanged."""
    for quote in QUOTE_ASSETS:
        if symbol.endswith(quote) and len(symbol) > len(quote):
            return f"{symbol[: -len(quote)]}/{quote}"
    return symbol


def data_stem(path: Path) -> str:
    """The file name without its data extensions: `sp500.csv.gz` → `sp500`."""
    name = path.name
    while True:
        lowered = name.lower()
        suffix = next((s for s in (*DATA_SUFFIXES, ".txt") if lowered.endswith(s)), None)
        if suffix is None or len(name) == len(suffix):
            return name
        name = name[: -len(suffix)]


def parse_binance_name(path: Path) -> BinanceName | None:
    """Symbol, kind and interval from e.g. `BTCUSDT-1m-2024-01-01.zip`; None when the name is not Binance's."""
    match = _BINANCE_NAME.match(data_stem(path))
    if match is None:
        return None
    kind = match["kind"]
    symbol = unify_symbol(match["symbol"])
    if kind == "trades":
        return BinanceName(symbol, "binance-trades", None)
    if kind == "aggTrades":
        return BinanceName(symbol, "binance-aggtrades", None)
    interval = "1mo" if kind.endswith("M") else kind  # Binance writes a month as "1M", a minute as "1m"
    return BinanceName(symbol, "binance-klines", interval)


@dataclass(frozen=True)
class Source:
    """One input file opened just enough to know its compression, separator and first line."""

    path: Path
    display: str
    compression: Literal["none", "gzip", "zip", "parquet"]
    first_line: str
    zip_member: str | None = None
    second_line: str = ""
    """The first data row under a header: book and trade CSVs share a header, only a side value differs."""

    @property
    def separator(self) -> str:
        """The most frequent candidate delimiter in the first line (comma when there is none)."""
        counts = [self.first_line.count(sep) for sep in _SEPARATORS]
        return _SEPARATORS[counts.index(max(counts))] if max(counts) else ","

    @property
    def fields(self) -> list[str]:
        """The first line split into fields, lower-cased and unquoted: the header, if there is one."""
        return [f.strip().strip('"').strip().lower() for f in self.first_line.split(self.separator)]

    def first_value(self, name: str) -> str | None:
        """The first data row's value (lower-cased, unquoted) under header `name`, or None."""
        fields = self.fields
        if name not in fields:
            return None
        values = self.second_line.split(self.separator)
        index = fields.index(name)
        return values[index].strip().strip('"').strip().lower() if index < len(values) else None

    @property
    def is_empty(self) -> bool:
        """A CSV with nothing in it: zero rows rather than an error when its format is known."""
        return self.compression != "parquet" and not self.first_line.strip()

    @property
    def has_header(self) -> bool:
        """False when the first field is a number: old Binance dumps start straight with data."""
        return not (self.fields and _NUMBER.match(self.fields[0]))

    def fail(self, problem: str) -> InputError:
        """A one-line error naming this file."""
        return InputError(f"input '{self.display}': {problem}")

    def read_csv(self, fmt: str, has_header: bool, names: list[str] | None = None) -> pl.DataFrame:
        """The CSV with the format's numeric columns typed and every other column as text.

        Should a numeric column hold text somewhere, the file is read again all
        as text: no value can fail the read, and bad ones reach the dead
        letters as written.
        """
        data: Path | bytes = self.path
        if self.compression == "zip":
            with zipfile.ZipFile(self.path) as archive:
                data = archive.read(self.zip_member or "")
        typed = TYPED_COLUMNS.get(fmt, {})
        headers = names or [f.strip().strip('"') for f in self.first_line.split(self.separator)]
        overrides = {name: typed[name.strip().lower()] for name in headers if name.strip().lower() in typed}
        if overrides:
            try:
                return self._read(data, has_header, names, overrides)
            except pl.exceptions.ComputeError:
                pass  # text in a numeric column: read everything as text below
        try:
            return self._read(data, has_header, names, {})
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise self.fail(f"cannot read as CSV ({_first_line(exc)})") from exc

    def read_text(self) -> str:
        """The whole file decompressed, for line formats that are not CSV (JSON lines)."""
        try:
            if self.compression == "zip":
                with zipfile.ZipFile(self.path) as archive:
                    data = archive.read(self.zip_member or "")
            elif self.compression == "gzip":
                with gzip.open(self.path) as unzipped:
                    data = unzipped.read()
            else:
                data = self.path.read_bytes()
        except (OSError, EOFError, zipfile.BadZipFile) as exc:
            raise self.fail(f"cannot read ({_first_line(exc)})") from exc
        return data.decode("utf-8-sig", errors="replace")

    def _read(
        self, data: Path | bytes, has_header: bool, names: list[str] | None, overrides: dict[str, pl.DataType]
    ) -> pl.DataFrame:
        """One `pl.read_csv` with the lenient settings every format shares."""
        return pl.read_csv(
            data,
            has_header=has_header,
            new_columns=names,
            separator=self.separator,
            infer_schema=False,
            schema_overrides=overrides,
            truncate_ragged_lines=True,
            raise_if_empty=False,
        )


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's text, so errors stay one line."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def open_source(path: Path, display: str | None = None) -> Source:
    """Look at a file's magic bytes and first line; a corrupt archive is an InputError, not a traceback."""
    display = display or str(path)
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
            handle.seek(0)
            if magic == b"PAR1":
                return Source(path, display, "parquet", "")
            if magic[:2] == b"\x1f\x8b":
                with gzip.open(handle) as unzipped:
                    first, second = _head(unzipped)
                    return Source(path, display, "gzip", first, second_line=second)
            if magic[:2] == b"PK" and zipfile.is_zipfile(path):  # also an empty archive
                return _open_zip(path, display)
            first, second = _head(handle)
            return Source(path, display, "none", first, second_line=second)
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"input '{display}': cannot open ({_first_line(exc)})") from exc


def _open_zip(path: Path, display: str) -> Source:
    """A zip must hold exactly one data file, as Binance ships them."""
    with zipfile.ZipFile(path) as archive:
        members = [
            m.filename
            for m in archive.infolist()
            if not m.is_dir()
            and not m.filename.startswith("__MACOSX")
            and not m.filename.endswith(".CHECKSUM")
        ]
        if len(members) != 1:
            raise InputError(
                f"input '{display}': expected a zip holding one CSV file, found {len(members)} files"
            )
        with archive.open(members[0]) as member:
            first, second = _head(member)
            return Source(path, display, "zip", first, members[0], second_line=second)


def _head(stream: IO[bytes]) -> tuple[str, str]:
    """The first two lines: a header and the first row, which is all detection looks at."""
    first = _decode(stream.readline())
    return first, _decode(stream.readline())


def _decode(line: bytes) -> str:
    """Text of a first line, without BOM or line ending; undecodable bytes do not stop detection."""
    return line.decode("utf-8-sig", errors="replace").rstrip("\r\n")


def detect_format(source: Source) -> str:
    """The format name for a file under `--format auto`, or an InputError saying what was expected."""
    if source.compression == "parquet":
        return "parquet"
    binance = parse_binance_name(source.path)
    if binance is not None:
        return binance.fmt
    if is_depth_message(source.first_line):
        return "binance-depth"
    fields = set(source.fields)
    if {"order_id", "action"} <= fields:
        return "l3-orders"
    if {"side", "price", "amount"} <= fields and source.first_value("side") in BOOK_SIDES:
        return "l2-book"
    if {"price", "amount"} <= fields:
        return "ccxt-trades"
    if {"open_time", "close_time"} <= fields:
        return "binance-klines"
    if "agg_trade_id" in fields:
        return "binance-aggtrades"
    if {"id", "qty", "is_buyer_maker"} <= fields:
        return "binance-trades"
    if {"open", "high", "low", "close"} <= fields:
        return "ohlcv"
    seen = f"the first line {source.first_line[:80]!r}" if not source.is_empty else "an empty file"
    raise source.fail(
        f"cannot tell the format from the name or {seen}; expected "
        f"{EXPECTED['ccxt-trades']}, a Binance dump named SYMBOL-trades|aggTrades|INTERVAL-DATE.csv|.zip, "
        f"{EXPECTED['ohlcv']}, {EXPECTED['l3-orders']}, {EXPECTED['l2-book']}, "
        f"{EXPECTED['binance-depth']} or Parquet, or pass --format"
    )
