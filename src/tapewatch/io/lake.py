"""The Parquet lake: normalised trades, bars and L2 book updates, partitioned by venue, symbol and day.

Layout: `ROOT/<kind>/venue=<v>/symbol=<s>/date=<YYYY-MM-DD>/data.parquet`, values
percent-encoded (`BTC%2FUSDT`) as Hive partitioning expects. Each day is one file
that every write merges into (read, add, drop exact duplicates, sort, replace
atomically), so re-running a backfill or resuming after a crash never duplicates a
row and never loses one already stored. Files carry every record column, so they
read back correctly with or without partition decoding.
"""

from __future__ import annotations

import os
import uuid
from datetime import date, datetime
from pathlib import Path
from typing import Literal
from urllib.parse import quote, unquote

import polars as pl

from tapewatch.errors import InputError
from tapewatch.home import home_dir
from tapewatch.records import BAR_SCHEMA, BOOK_SCHEMA, TRADE_SCHEMA, conform

Kind = Literal["trades", "bars", "book"]
SCHEMAS: dict[str, dict[str, pl.DataType]] = {"trades": TRADE_SCHEMA, "bars": BAR_SCHEMA, "book": BOOK_SCHEMA}
SORT_KEYS: dict[str, list[str]] = {"trades": ["ts", "trade_id"], "bars": ["interval", "ts"], "book": ["ts"]}
"""Book updates sort by time only, keeping arrival order within a timestamp: a level may change twice."""
DATA_FILE = "data.parquet"


def open_lake(given: str | Path | None, configured: str = "") -> Lake:
    """The lake `--lake` names, else the configured `store.lake`, else `lake/` in the Tapewatch home."""
    return Lake(given or configured or home_dir() / "lake")


class Lake:
    """A local folder of partitioned Parquet (the default; object stores come with fsspec later)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

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
        folder = self.partition(kind, venue, symbol, day)
        target = folder / DATA_FILE
        existing = pl.read_parquet(target) if target.exists() else part.clear()
        merged = (
            pl.concat([existing, part])
            .unique(maintain_order=True)
            .sort(SORT_KEYS[kind], nulls_last=True, maintain_order=True)
        )
        if merged.height == existing.height:
            return 0
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{uuid.uuid4().hex}.tmp"
        merged.write_parquet(temporary)
        os.replace(temporary, target)  # atomic: a reader sees the old day or the new one, never half
        return merged.height - existing.height

    def partition(self, kind: Kind, venue: str, symbol: str, day: date) -> Path:
        """The folder of one venue/symbol/day."""
        return (
            self.root
            / kind
            / f"venue={_encode(venue)}"
            / f"symbol={_encode(symbol)}"
            / f"date={day.isoformat()}"
        )

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
        frame = pl.scan_parquet(files, hive_partitioning=False)
        if start is not None:
            frame = frame.filter(pl.col("ts") >= start)
        if end is not None:
            frame = frame.filter(pl.col("ts") < end)
        return frame.collect().sort(
            ["venue", "symbol", *SORT_KEYS[kind]], nulls_last=True, maintain_order=True
        )

    def high_water(self, kind: Kind, venue: str, symbol: str, interval: str | None = None) -> datetime | None:
        """The latest timestamp stored for a venue/symbol (bars: of one `interval`): where a backfill resumes."""
        for path in reversed(self._files(kind, venue, symbol, None, None)):
            stored = pl.read_parquet(path, columns=["ts", "interval"] if interval else ["ts"])
            if interval:
                stored = stored.filter(pl.col("interval") == interval)
            if stored.height:
                return stored["ts"].max()
        return None

    def symbols(self, kind: Kind, venue: str) -> list[str]:
        """Symbols that have data for a venue."""
        folder = self.root / kind / f"venue={_encode(venue)}"
        return (
            sorted(unquote(path.name.split("=", 1)[1]) for path in folder.glob("symbol=*"))
            if folder.is_dir()
            else []
        )

    def _files(
        self, kind: Kind, venue: str | None, symbol: str | None, start: datetime | None, end: datetime | None
    ) -> list[Path]:
        venue_glob = f"venue={_encode(venue)}" if venue else "venue=*"
        symbol_glob = f"symbol={_encode(symbol)}" if symbol else "symbol=*"
        found = []
        for path in (self.root / kind).glob(f"{venue_glob}/{symbol_glob}/date=*/{DATA_FILE}"):
            day = date.fromisoformat(path.parent.name.split("=", 1)[1])
            if start is not None and day < start.date():
                continue
            if end is not None and day > end.date():
                continue
            found.append(path)
        # Sorted by date within a symbol, so the last file holds the high-water mark.
        return sorted(found, key=lambda path: (path.parent.parent, path.parent.name))


def _encode(value: str) -> str:
    return quote(value, safe="")


def _schema(kind: str) -> dict[str, pl.DataType]:
    if kind not in SCHEMAS:
        raise InputError(f"lake kind '{kind}': expected one of {', '.join(SCHEMAS)}")
    return SCHEMAS[kind]
