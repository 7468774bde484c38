"""The Parquet lake: normalised trades, bars and L2 book updates, partitioned by venue, symbol and day.

Layout: `ROOT/<kind>/venue=<v>/symbol=<s>/date=<YYYY-MM-DD>/data.parquet`, values
percent-encoded (`BTC%2FUSDT`) as Hive partitioning expects. Each day is one file
that every write merges into (read, add, drop exact duplicates and trades an
aggregate row already stands for (`io.aggregates`), sort, replace atomically), so
re-running a backfill or resuming after a crash never duplicates a row and never
loses one already stored. Files carry every record column, so they
read back correctly with or without partition decoding.

ROOT is a local folder or any fsspec URL (`s3://bucket/lake`, `gs://…`, `abfs://…`,
`memory://…`): `tapewatch.io.storage` does the file work, with the same layout, merge
and atomic replace on every store. `list_partitions` and `read_partition` take a URL
alone, so workers on other machines (a Spark executor) can read one day each.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote

import polars as pl

from tapewatch.errors import InputError
from tapewatch.home import home_dir
from tapewatch.io.aggregates import drop_covered
from tapewatch.io.storage import Store, open_store, read_parquet_url
from tapewatch.records import BAR_SCHEMA, BOOK_SCHEMA, TRADE_SCHEMA, conform

Kind = Literal["trades", "bars", "book"]
SCHEMAS: dict[str, dict[str, pl.DataType]] = {"trades": TRADE_SCHEMA, "bars": BAR_SCHEMA, "book": BOOK_SCHEMA}
SORT_KEYS: dict[str, list[str]] = {"trades": ["ts", "trade_id"], "bars": ["interval", "ts"], "book": ["ts"]}
"""Book updates sort by time only, keeping arrival order within a timestamp: a level may change twice."""
DATA_FILE = "data.parquet"


def open_lake(given: str | Path | None, configured: str = "") -> Lake:
    """The lake `--lake` names, else the configured `store.lake`, else `lake/` in the Tapewatch home."""
    return Lake(given or configured or home_dir() / "lake")


@dataclass(frozen=True)
class Partition:
    """One venue/symbol/day file of a lake; `url` alone is enough to read it (`read_partition`)."""

    kind: str
    venue: str
    symbol: str
    day: date
    url: str


def list_partitions(
    lake: str | Path,
    kind: Kind,
    *,
    venue: str | None = None,
    symbol: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[Partition]:
    """The day files of a lake (a folder or URL) that may hold records of [start, end), by symbol then day."""
    return Lake(lake).partitions(kind, venue=venue, symbol=symbol, start=start, end=end)


def read_partition(url: str, columns: list[str] | None = None) -> pl.DataFrame:
    """One partition's records, as stored (sorted within the day), from its `Partition.url`."""
    return read_parquet_url(url, columns)


class Lake:
    """Partitioned Parquet in a local folder or at any fsspec URL, the same layout and rules on each."""

    def __init__(self, root: str | Path) -> None:
        self.store: Store = open_store(root)
        # Where the data lives: the folder, or the URL as given.
        self.location = self.store.location
        # A local folder for what an object store cannot take (appended dead letters): the lake itself
        # when it is a folder, else one per URL in the Tapewatch home.
        self.root = self.store.local_folder

    def write(self, kind: Kind, frame: pl.DataFrame) -> int:
        """Merge records into their day partitions; returns how many rows were new."""
        if frame.is_empty():
            return 0
        frame = conform(frame, _schema(kind))
        added = 0
        for (venue, symbol, day), part in frame.group_by(
            "venue", "symbol", pl.col("ts").dt.date().alias("day"), maintain_order=True
        ):
            added += self._merge(kind, str(venue), str(symbol), day, part)
        return added

    def _merge(self, kind: Kind, venue: str, symbol: str, day: date, part: pl.DataFrame) -> int:
        key = _partition_key(kind, venue, symbol, day)
        existing = self.store.read_parquet(key)
        if existing is None:
            existing = part.clear()
        merged = pl.concat([existing, part]).unique(maintain_order=True)
        if kind == "trades":  # an aggregate row (OKX live) and the trades it stands for: counted once
            merged = drop_covered(merged)
        merged = merged.sort(SORT_KEYS[kind], nulls_last=True, maintain_order=True)
        if merged.height == existing.height:
            return 0
        self.store.write_parquet(key, merged)  # atomic: a reader sees the old day or the new one, never half
        return merged.height - existing.height

    def partition(self, kind: Kind, venue: str, symbol: str, day: date) -> str:
        """The data file of one venue/symbol/day (a path or URL, whether or not it exists yet)."""
        return self.store.url(_partition_key(kind, venue, symbol, day))

    def partitions(
        self,
        kind: Kind,
        *,
        venue: str | None = None,
        symbol: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Partition]:
        """The stored day files that may hold records of one venue/symbol and [start, end), by symbol then day."""
        found = []
        for key in self._files(kind, venue, symbol, start, end):
            _, venue_part, symbol_part, date_part, _ = key.split("/")
            found.append(
                Partition(
                    kind=kind,
                    venue=_decode(venue_part),
                    symbol=_decode(symbol_part),
                    day=date.fromisoformat(_decode(date_part)),
                    url=self.store.url(key),
                )
            )
        return found

    def read(
        self,
        kind: Kind,
        *,
        venue: str | None = None,
        symbol: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pl.DataFrame:
        """Records of one kind, optionally one venue/symbol and a [start, end) time range, sorted."""
        files = sorted(self._files(kind, venue, symbol, start, end))
        if not files:
            return conform(pl.DataFrame(), _schema(kind))
        frame = self.store.scan_parquet(files)
        if start is not None:
            frame = frame.filter(pl.col("ts") >= start)
        if end is not None:
            frame = frame.filter(pl.col("ts") < end)
        return frame.collect().sort(
            ["venue", "symbol", *SORT_KEYS[kind]], nulls_last=True, maintain_order=True
        )

    def high_water(self, kind: Kind, venue: str, symbol: str, interval: str | None = None) -> datetime | None:
        """The latest timestamp stored for a venue/symbol (bars: of one `interval`): where a backfill resumes."""
        for key in reversed(self._files(kind, venue, symbol, None, None)):
            stored = self.store.read_parquet(key, columns=["ts", "interval"] if interval else ["ts"])
            if stored is None:  # removed since the listing
                continue
            if interval:
                stored = stored.filter(pl.col("interval") == interval)
            if stored.height:
                return stored["ts"].max()
        return None

    def symbols(self, kind: Kind, venue: str) -> list[str]:
        """Symbols that have data for a venue."""
        found = self.store.glob(f"{_checked_kind(kind)}/venue={_encode(venue)}/symbol=*")
        return sorted(_decode(key.rsplit("/", 1)[1]) for key in found)

    def _files(
        self, kind: Kind, venue: str | None, symbol: str | None, start: datetime | None, end: datetime | None
    ) -> list[str]:
        venue_glob = f"venue={_encode(venue)}" if venue else "venue=*"
        symbol_glob = f"symbol={_encode(symbol)}" if symbol else "symbol=*"
        found = []
        for key in self.store.glob(f"{_checked_kind(kind)}/{venue_glob}/{symbol_glob}/date=*/{DATA_FILE}"):
            folder = key.rsplit("/", 1)[0]
            day = date.fromisoformat(folder.rsplit("=", 1)[1])
            if start is not None and day < start.date():
                continue
            if end is not None and day > end.date():
                continue
            found.append(key)
        # Sorted by date within a symbol, so the last file holds the high-water mark.
        return sorted(found)


def _partition_key(kind: Kind, venue: str, symbol: str, day: date) -> str:
    return f"{_checked_kind(kind)}/venue={_encode(venue)}/symbol={_encode(symbol)}/date={day.isoformat()}/{DATA_FILE}"


def _decode(part: str) -> str:
    return unquote(part.split("=", 1)[1])


def _checked_kind(kind: str) -> str:
    _schema(kind)
    return kind


def _encode(value: str) -> str:
    return quote(value, safe="")


def _schema(kind: str) -> dict[str, pl.DataType]:
    if kind not in SCHEMAS:
        raise InputError(f"lake kind '{kind}': expected one of {', '.join(SCHEMAS)}")
    return SCHEMAS[kind]
