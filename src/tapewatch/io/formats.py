"""Which format a file is in, told from its name and first line, and how to open it as raw text columns.

Detection reads one line (decompressed), never the whole file, so it costs
nothing next to the read itself. Reading gives a CSV's rows in batches
(`Source.csv_batches`), inflated as they are read, so no file is held whole; a file
that cannot be read (cut short, a bad CRC, a corrupt archive) is an InputError
naming it and what it should have been, never a traceback.
"""

from __future__ import annotations

import gzip
import queue
import re
import threading
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import polars as pl

from tapewatch.errors import InputError
from tapewatch.io.depth import is_depth_message
from tapewatch.io.symbols import canonical_symbol_of
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

BATCH_ROWS = 500_000
"""Rows of a CSV converted and checked at once: a file's memory is bounded by this, not by its length."""
BLOCK_BYTES = 16 * 2**20
"""Decompressed bytes read at a time while cutting a CSV into batches."""
BATCH_BYTES = 256 * 2**20
"""A batch also ends once it holds this much text, so long rows keep a batch's memory bounded too."""
LONGEST_ROW = 64 * 2**20
"""A quoted field still open after this many bytes is taken as a stray quote: the row ends at its line."""
_WHOLE = {
    "gzip": "a complete gzip file",
    "zip": "a complete zip archive holding one CSV file",
    "none": "a readable file",
    "parquet": "a complete Parquet file",
}
"""What a file of each container must be, for errors about reading it."""

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
    symbol = canonical_symbol_of(match["symbol"], "binance")  # BTCUSDT: BTC/USDT
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
        """A CSV with nothing but blank lines in it: zero rows rather than an error when its format is
        known (`_head` reads past blank lines, so a file starting with some is not taken for empty)."""
        return self.compression != "parquet" and not self.first_line.strip()

    @property
    def has_header(self) -> bool:
        """False when the first field is a number: old Binance dumps start straight with data."""
        return not (self.fields and _NUMBER.match(self.fields[0]))

    def fail(self, problem: str) -> InputError:
        """A one-line error naming this file."""
        return InputError(f"input '{self.display}': {problem}")

    def csv_batches(self, fmt: str, names: list[str] | None = None) -> Iterator[pl.DataFrame]:
        """The CSV's rows, BATCH_ROWS at a time, with the format's numeric columns typed and every other column
        as text; `names`: the file has no header, these are its columns. A read that fails (a gzip cut
        short, a bad CRC, a corrupt zip) is an InputError naming the file.

        Batches keep a file's cost bounded by its batch, not its length: a small `.gz` can hold tens of
        millions of blank or junk lines. Each batch is parsed under the header (the names of a headerless
        file written as one), so a batch starting with a blank line still has every column. Should a
        numeric column hold text somewhere in a batch, that batch is read again all as text: no value can
        fail the read, and bad ones reach the dead letters as written; undecodable bytes become U+FFFD,
        so the row is refused rather than the file.
        """
        typed = TYPED_COLUMNS.get(fmt, {})
        headers = names or [f.strip().strip('"') for f in self.first_line.split(self.separator)]
        overrides = {name: typed[name.strip().lower()] for name in headers if name.strip().lower() in typed}
        with self._stream() as stream:
            header = (self.separator.join(names) + "\n").encode() if names else b""
            while not header.strip():  # blank lines before the header are no rows
                header = stream.readline(LONGEST_ROW)
                if not header:
                    break
            empty = True
            with closing(
                read_ahead(row_chunks(stream, BATCH_ROWS))
            ) as chunks:  # stopped before the stream closes
                for chunk in chunks:
                    empty = False
                    yield self._parse(header + chunk, fmt, overrides)
            if empty:  # a header and nothing more: its columns, no rows
                yield self._parse(header, fmt, overrides)

    def line_batches(self, rows: int, size: int) -> Iterator[tuple[int, str]]:
        """The file's text (for line formats that are not CSV: JSON lines) at most `rows` whole lines and
        about `size` bytes at a time, each with how many lines came before it; never the whole file."""
        with self._stream() as stream, closing(read_ahead(row_chunks(stream, rows, size))) as chunks:
            before = 0
            for chunk in chunks:
                yield before, chunk.decode("utf-8-sig" if before == 0 else "utf-8", errors="replace")
                before += chunk.count(b"\n")

    @contextmanager
    def _stream(self) -> Iterator[IO[bytes]]:
        """The file's bytes, decompressed as they are read; any failure to read them (a gzip cut short, a
        bad CRC, a corrupt zip member, an I/O error) is an InputError that says what was expected."""
        try:
            with self.path.open("rb") as raw:
                if self.compression == "gzip":
                    with gzip.open(raw) as unzipped:
                        yield unzipped
                elif self.compression == "zip":
                    with zipfile.ZipFile(raw) as archive, archive.open(self.zip_member or "") as member:
                        yield member
                else:
                    yield raw
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
            raise self.fail(
                f"cannot read: {_read_problem(exc)}; expected {_WHOLE[self.compression]}"
            ) from None

    def _parse(self, data: bytes, fmt: str, overrides: dict[str, pl.DataType]) -> pl.DataFrame:
        """One batch under its header: typed when it can be, else all text; a batch Polars cannot parse
        is an InputError."""
        if overrides:
            try:
                return self._read(data, overrides)
            except pl.exceptions.ComputeError:
                pass  # text in a numeric column: read everything as text below
        try:
            return self._read(data, {})
        except pl.exceptions.PolarsError as exc:
            raise self.fail(
                f"cannot read as CSV ({_first_line(exc)}); expected {EXPECTED.get(fmt, 'CSV rows')}"
            ) from None

    def _read(self, data: bytes, overrides: dict[str, pl.DataType]) -> pl.DataFrame:
        """One `pl.read_csv` with the lenient settings every format shares."""
        return pl.read_csv(
            data,
            separator=self.separator,
            infer_schema=False,
            schema_overrides=overrides,
            truncate_ragged_lines=True,
            raise_if_empty=False,
            encoding="utf8-lossy",
        )


def row_chunks(stream: IO[bytes], rows: int = BATCH_ROWS, size: int = BATCH_BYTES) -> Iterator[bytes]:
    """`stream`'s bytes in chunks of whole CSV rows: at most `rows` rows and about `size` bytes each.

    A row ends at a newline outside double quotes (a quoted field may hold newlines), so a chunk parses
    exactly as its rows would in the whole file; blank lines are rows, as Polars counts them.
    """
    pending: list[bytes] = []
    pending_rows = pending_bytes = 0
    rest = b""
    while True:
        data = stream.read(BLOCK_BYTES)
        buffer = rest + data if rest else data
        if not data:
            if buffer:
                pending.append(buffer)
            if pending:
                yield b"".join(pending)
            return
        start = 0
        while True:
            end, count = _rows_end(buffer, start, rows - pending_rows, strict=len(buffer) < LONGEST_ROW)
            if not count:
                break
            pending.append(buffer[start:end])
            pending_rows += count
            pending_bytes += end - start
            start = end
            if pending_rows >= rows or pending_bytes >= size:
                yield b"".join(pending)
                pending, pending_rows, pending_bytes = [], 0, 0
        rest = buffer[start:]


def read_ahead(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """`chunks`, the next one produced on a thread while the caller works on this one.

    Inflating a gzip and cutting it into rows costs about as much as parsing, and zlib releases the GIL,
    so they overlap; one chunk ahead at most, so memory grows by one chunk. An error reading is raised
    here, in the caller; a caller that stops early stops the thread before the stream closes.
    """
    ahead: queue.Queue[tuple[bytes | None, BaseException | None]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        ahead.put((chunk, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ahead.put((None, None))
        except BaseException as exc:  # handed to the caller, raised there  # noqa: BLE001
            ahead.put((None, exc))

    worker = threading.Thread(target=produce, name="tapewatch-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            chunk, error = ahead.get()
            if error is not None:
                raise error
            if chunk is None:
                return
            yield chunk
    finally:
        stop.set()
        while worker.is_alive():  # let a producer blocked on a full queue see the stop
            try:
                ahead.get_nowait()
            except queue.Empty:
                worker.join(0.05)


def _rows_end(buffer: bytes, start: int, wanted: int, *, strict: bool) -> tuple[int, int]:
    """Where up to `wanted` whole rows from `start` end, and how many there are ((start, 0): none).

    A row ends at a newline outside double quotes when `strict` (an even number of quotes before it),
    else at any newline (a stray quote must not swallow the file). Without quotes, newlines are counted
    by memchr, and listed (numpy) only to find the `wanted`-th, in a window just large enough, so a
    block of millions of blank lines is not listed again for every batch cut from it. NumPy is imported
    here, not with the module: `detect` must start without it (`tests/unit/test_imports.py`).
    """
    import numpy as np

    quoted = strict and b'"' in buffer
    if not quoted:
        count = buffer.count(b"\n", start)
        if count <= wanted:
            return (buffer.rfind(b"\n", start) + 1, count) if count else (start, 0)
        window = 2 * wanted
        while buffer.count(b"\n", start, start + window) < wanted:
            window *= 2
        ends = np.flatnonzero(
            np.frombuffer(buffer, dtype=np.uint8, count=min(window, len(buffer) - start), offset=start) == 10
        )
        return start + int(ends[wanted - 1]) + 1, wanted
    data = np.frombuffer(buffer, dtype=np.uint8, offset=start)
    ends = np.flatnonzero(data == 10)
    ends = ends[np.searchsorted(np.flatnonzero(data == 34), ends) % 2 == 0]
    count = min(wanted, len(ends))
    return (start + int(ends[count - 1]) + 1, count) if count else (start, 0)


def _read_problem(exc: BaseException) -> str:
    """What went wrong reading a file's bytes, in words: truncation and corruption are the usual two."""
    if isinstance(exc, EOFError):
        return f"the data ends early, the file is cut short ({_first_line(exc)})"
    if isinstance(exc, (zlib.error, gzip.BadGzipFile, zipfile.BadZipFile)):
        return f"the compressed data is corrupt ({_first_line(exc)})"
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's text, so errors stay one line."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def open_source(path: Path, display: str | None = None) -> Source:
    """Look at a file's magic bytes and first line; a corrupt archive is an InputError, not a traceback."""
    display = display or str(path)
    container = "none"
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
            handle.seek(0)
            if magic == b"PAR1":
                return Source(path, display, "parquet", "")
            if magic[:2] == b"\x1f\x8b":
                container = "gzip"
                with gzip.open(handle) as unzipped:
                    first, second = _head(unzipped)
                    return Source(path, display, "gzip", first, second_line=second)
            if magic in (b"PK\x03\x04", b"PK\x05\x06"):  # a member, or an empty archive
                container = "zip"
                if not zipfile.is_zipfile(path):
                    raise zipfile.BadZipFile("no central directory: cut short?")
                return _open_zip(path, display)
            first, second = _head(handle)
            return Source(path, display, "none", first, second_line=second)
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
        raise InputError(
            f"input '{display}': cannot read: {_read_problem(exc)}; expected {_WHOLE[container]}"
        ) from None


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


HEAD_BYTES = 2**20
"""The most of a first line detection reads: a file without line breaks is not read whole to find one."""


def _head(stream: IO[bytes]) -> tuple[str, str]:
    """The first two lines holding something (blank lines before them passed over): a header and the
    first row, which is all detection looks at. Both empty only when the whole file is blank."""
    first = b" "
    while first and not first.strip():
        first = stream.readline(HEAD_BYTES)
    return _decode(first), _decode(stream.readline(HEAD_BYTES))


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
