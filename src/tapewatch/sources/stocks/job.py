"""One stocks ingestion: listings and facts (the catalog) → penny filter → bars in the lake.

`StocksIngest.run` is the whole job (what `tapewatch ingest stocks` does once, and
what the daily close job repeats); `StocksIngest.poll` only fetches new intraday
bars for the tickers the last run selected (what each `--every` tick does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from tapewatch.config import StocksSettings
from tapewatch.io.lake import Lake
from tapewatch.sources.stocks.bars import BarsReport, BarWindow, Marks, ProgressCallback, download_bars
from tapewatch.sources.stocks.catalog import INSTRUMENT_SCHEMA, Catalog, CatalogReport
from tapewatch.sources.stocks.penny import PENNY, UNKNOWN, PennyBounds, classify_penny
from tapewatch.sources.stocks.schedule import clock_time, market_zone
from tapewatch.sources.stocks.venues import Venue
from tapewatch.sources.stocks.yahoo import YahooClient
from tapewatch.store.instruments import InstrumentStore

DEAD_LETTERS = Path("rejected") / "stock-listings.jsonl"
"""Where malformed listing lines go, under the lake's root."""


@dataclass(frozen=True)
class IngestOptions:
    """What to ingest: the command's options, checked."""

    venues: list[Venue]
    interval: str = "1d"
    penny: bool = True
    max_price: float | None = None
    period: timedelta = timedelta(days=30)
    since: datetime | None = None
    limit: int | None = None


@dataclass
class IngestReport:
    """What one run did, for the summary."""

    catalog: CatalogReport = field(default_factory=CatalogReport)
    instruments: int = 0
    with_facts: int = 0
    penny: int = 0
    unknown: int = 0
    bars: BarsReport = field(default_factory=BarsReport)


class StocksIngest:
    """The stocks job on one lake and one instruments table."""

    def __init__(
        self,
        settings: StocksSettings,
        lake: Lake,
        store: InstrumentStore,
        yahoo: YahooClient,
        options: IngestOptions,
    ) -> None:
        self.settings = settings
        self.lake = lake
        self.yahoo = yahoo
        self.options = options
        self.catalog = Catalog(settings, store, yahoo, options.venues, lake.root / DEAD_LETTERS)
        self.tickers = pl.DataFrame(schema=INSTRUMENT_SCHEMA)
        """The tickers the last run selected: what `poll` fetches."""
        self.marks: Marks = {}

    def run(
        self,
        now: datetime,
        *,
        interval: str | None = None,
        strict: bool = True,
        progress: ProgressCallback | None = None,
    ) -> IngestReport:
        """Refresh listings and facts, select the tickers, download their bars.

        `strict=False` (the live loop's close job) reports a listing that cannot be
        fetched instead of stopping, and carries on with the stored instruments.
        """
        report = IngestReport(catalog=self.catalog.refresh(now, limit=self.options.limit, strict=strict))
        instruments = self.catalog.instruments(limit=self.options.limit)
        classified = classify_penny(
            instruments, PennyBounds.from_settings(self.settings, self.options.max_price)
        )
        report.instruments = classified.height
        report.with_facts = classified.filter(pl.col("last_price").is_not_null()).height
        report.penny = classified.filter(pl.col("penny") == PENNY).height
        report.unknown = classified.filter(pl.col("penny") == UNKNOWN).height
        self.tickers = classified.filter(pl.col("penny") == PENNY) if self.options.penny else classified
        report.bars = self.fetch_bars(now, interval or self.options.interval, progress)
        return report

    def poll(self, now: datetime, interval: str, progress: ProgressCallback | None = None) -> BarsReport:
        """New final bars of `interval` for the tickers the last run selected."""
        return self.fetch_bars(now, interval, progress)

    def fetch_bars(self, now: datetime, interval: str, progress: ProgressCallback | None) -> BarsReport:
        """Bars of the selected tickers, each from its own high-water mark."""
        window = BarWindow(
            interval=interval,
            now=now,
            first_start=self.options.since or now - self.options.period,
            close_time=clock_time(self.settings.close_time, "close_time"),
            market_tz=market_zone(self.settings.market_tz),
        )
        return download_bars(
            self.tickers,
            window,
            self.lake,
            self.yahoo,
            workers=self.settings.workers,
            progress=progress,
            marks=self.marks,
        )
