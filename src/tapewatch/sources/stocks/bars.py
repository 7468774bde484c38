"""Download bars for many tickers into the lake, each resuming where the lake left off.

Only *final* bars are written — an intraday bar once its interval has passed, a
daily bar once the day's close job time has passed (16:15 New York by default) —
because the lake keeps every distinct row: a half-formed bar written now and its
final version written later would both stay. So every bar is written exactly once,
and a run repeated at the same moment writes nothing and asks Yahoo for nothing.

Tickers are fetched one by one on a small thread pool rather than with
`yf.download`, because each ticker resumes from its own high-water mark and
`yf.download`'s threading offers no per-ticker start. Results are written from the
calling thread, so lake writes never race.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import polars as pl

from tapewatch.errors import InputError
from tapewatch.io.lake import Lake
from tapewatch.records import BAR_SCHEMA, conform
from tapewatch.sources.stocks.yahoo import YahooClient

INTERVALS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "2m": timedelta(minutes=2),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "90m": timedelta(minutes=90),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
ALIASES = {"60m": "1h"}
LOOKBACK: dict[str, timedelta] = {"1m": timedelta(days=7), "1h": timedelta(days=729), "1d": timedelta.max}
"""How far back Yahoo serves each bar size (other intraday sizes: 59 days); older starts are clamped."""
RECENT = timedelta(days=10)
"""Where a symbol's high-water mark for one interval is looked for first (see `interval_high_water`)."""

ProgressCallback = Callable[[int, int], None]
"""Called with (tickers done, tickers in all) as downloads finish."""
Marks = dict[tuple[str, str, str], datetime]
"""Known high-water marks by (venue, symbol, interval), kept between polls so each tick reads no Parquet."""


def normalise_interval(interval: str, what: str = "--interval") -> str:
    """The bar size as stored in the lake (`60m` → `1h`); anything Yahoo cannot serve is an InputError."""
    name = ALIASES.get(interval.strip().lower(), interval.strip().lower())
    if name not in INTERVALS:
        raise InputError(f"{what} '{interval}': expected one of {', '.join([*INTERVALS, *ALIASES])}")
    return name


@dataclass(frozen=True)
class BarWindow:
    """The bar size and clock of one download: when bars become final, how far back to start."""

    interval: str
    now: datetime
    first_start: datetime
    close_time: time
    market_tz: ZoneInfo

    @property
    def step(self) -> timedelta:
        """The bar size as a duration."""
        return INTERVALS[self.interval]

    @property
    def daily(self) -> bool:
        """Daily bars settle at the close job time, not when their 24 hours are over."""
        return self.interval == "1d"

    def final(self, bars: pl.DataFrame) -> pl.DataFrame:
        """Only the bars that can no longer change at `now`."""
        if self.daily:
            day = pl.col("ts").dt.convert_time_zone(self.market_tz.key).dt.date()
            settled = (
                day.dt.combine(self.close_time)
                .dt.replace_time_zone(self.market_tz.key)
                .dt.convert_time_zone("UTC")
            )
            return bars.filter(settled <= self.now)
        return bars.filter(pl.col("ts") + self.step <= self.now)

    def start(self, high_water: datetime | None) -> datetime:
        """Where a ticker's download starts: after its last stored bar, not before `first_start`."""
        start = self.first_start if high_water is None else max(self.first_start, high_water + self.step)
        limit = LOOKBACK.get(self.interval, timedelta(days=59))
        return start if limit == timedelta.max else max(start, self.now - limit)

    def due(self, start: datetime) -> bool:
        """Whether a bar starting at or after `start` can be final by now (else skip the request)."""
        if not self.daily:
            return start + self.step <= self.now
        day = start.astimezone(self.market_tz).date()
        return datetime.combine(day, self.close_time, self.market_tz) <= self.now


@dataclass
class BarsReport:
    """What a bar download did, for the run summary."""

    interval: str = ""
    tickers: int = 0
    written: int = 0
    up_to_date: int = 0
    no_data: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def add(self, other: BarsReport) -> None:
        """Fold another run's counts in (for the totals of a long-running --every)."""
        self.tickers += other.tickers
        self.written += other.written
        self.up_to_date += other.up_to_date
        self.no_data = sorted({*self.no_data, *other.no_data})
        self.failed.update(other.failed)


def interval_high_water(lake: Lake, venue: str, symbol: str, interval: str) -> datetime | None:
    """The latest stored bar of one interval (`Lake.high_water` spans every interval of a symbol).

    The symbol's overall high-water mark bounds it; the last RECENT days are read
    first, and the whole history only when this interval has nothing recent.
    """
    latest = lake.high_water("bars", venue, symbol)
    if latest is None:
        return None
    for since in (latest - RECENT, None):
        stored = lake.read("bars", venue=venue, symbol=symbol, start=since)
        found = stored.filter(pl.col("interval") == interval)["ts"].max()
        if found is not None:
            return found  # type: ignore[return-value]
    return None


def download_bars(
    tickers: pl.DataFrame,
    window: BarWindow,
    lake: Lake,
    yahoo: YahooClient,
    *,
    workers: int = 4,
    progress: ProgressCallback | None = None,
    marks: Marks | None = None,
) -> BarsReport:
    """Fetch and store the final bars of each (venue, symbol, yahoo) row of `tickers` since its high-water mark.

    A ticker Yahoo has no data for (none stored, none returned) is listed in
    `no_data`; one whose request fails is listed in `failed` with the reason; the
    run goes on either way. `marks` remembers each ticker's high-water mark for the next call.
    """
    marks = {} if marks is None else marks
    report = BarsReport(interval=window.interval, tickers=tickers.height)
    jobs = []
    for venue, symbol, ticker in tickers.select("venue", "symbol", "yahoo").iter_rows():
        key = (venue, symbol, window.interval)
        high_water = marks[key] if key in marks else interval_high_water(lake, venue, symbol, window.interval)
        start = window.start(high_water)
        if window.due(start) and start < window.now:
            jobs.append((venue, symbol, ticker, start, high_water))
        else:
            report.up_to_date += 1
    done = report.up_to_date
    if progress:
        progress(done, tickers.height)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="yahoo") as pool:
        futures = {
            pool.submit(yahoo.bars, ticker, window.interval, start, window.now): (venue, symbol, ticker, hw)
            for venue, symbol, ticker, start, hw in jobs
        }
        for future in as_completed(futures):
            venue, symbol, ticker, high_water = futures[future]
            label = f"{venue}:{symbol}" + ("" if ticker == symbol else f" ({ticker})")
            try:
                fetched = future.result()
            except Exception as exc:  # noqa: BLE001  (yfinance raises many types; one ticker never stops the rest)
                report.failed[label] = f"{type(exc).__name__}: {exc}".strip().splitlines()[0][:200]
            else:
                new = window.final(fetched)
                if high_water is not None:
                    new = new.filter(pl.col("ts") > high_water)
                if fetched.is_empty() and high_water is None:
                    report.no_data.append(label)
                report.written += lake.write("bars", _records(new, venue, symbol, window.interval))
                if not new.is_empty():
                    marks[(venue, symbol, window.interval)] = new["ts"].max()  # type: ignore[assignment]
            done += 1
            if progress:
                progress(done, tickers.height)
    report.no_data.sort()
    return report


def _records(bars: pl.DataFrame, venue: str, symbol: str, interval: str) -> pl.DataFrame:
    return conform(
        bars.with_columns(venue=pl.lit(venue), symbol=pl.lit(symbol), interval=pl.lit(interval)), BAR_SCHEMA
    )
