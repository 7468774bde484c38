"""`tapewatch ingest stocks`: the command-line face of the stocks job (options in, summary out).

Kept import-light (yfinance and pandas load only when the command runs), so
registering it does not slow down `tapewatch --help`. Progress and summaries go to
stderr; user errors are InputError, which the CLI turns into one line and exit 2.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console

from tapewatch.cli.options import ConfigOption
from tapewatch.cli.terminal import err, progress_bar
from tapewatch.durations import parse_duration
from tapewatch.errors import InputError
from tapewatch.extras import require

if TYPE_CHECKING:
    from tapewatch.sources.stocks.bars import BarsReport, ProgressCallback
    from tapewatch.sources.stocks.job import IngestReport, StocksIngest
    from tapewatch.sources.stocks.schedule import Clock, Schedule

T = TypeVar("T")

_PERIOD = re.compile(r"^\s*(\d+)\s*(wk|mo|y)\s*$")
_PERIOD_DAYS = {"wk": 7, "mo": 30, "y": 365}


def ingest_stocks(
    exchanges: Annotated[
        str, typer.Option(help="Comma-separated venues: nasdaq, nyse, amex, arca, cboe, iex, tsx, tsxv.")
    ] = "nasdaq,nyse,amex",
    penny: Annotated[
        bool,
        typer.Option(
            "--penny/--all-stocks", help="Bars only for penny stocks (default), or for every listing."
        ),
    ] = True,
    max_price: Annotated[
        float | None,
        typer.Option(
            min=0.0, help="Penny stock: last price under this (default: stocks.penny_max_price, 5)."
        ),
    ] = None,
    interval: Annotated[str, typer.Option(help="Bar size: 1m, 2m, 5m, 15m, 30m, 90m, 1h or 1d.")] = "1d",
    period: Annotated[
        str | None, typer.Option(help="History to fetch on a first run: 5d, 1wk, 1mo (default), 3mo, 1y.")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Fetch from this date or ISO time instead of --period.")
    ] = None,
    every: Annotated[
        str | None,
        typer.Option(
            help="Keep running: poll new intraday bars this often (e.g. 1m), refresh listings and daily "
            "bars after each close. Bar size: --interval, or stocks.live_interval (1m) if that is 1d."
        ),
    ] = None,
    lake: Annotated[
        str | None,
        typer.Option(
            help="Parquet lake folder or URL, s3://… (default: store.lake, else ~/.tapewatch/lake)."
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            help="Instruments database: SQLite path or URL (default: store.db, else ~/.tapewatch/tapewatch.db)."
        ),
    ] = None,
    config: ConfigOption = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Only the first N symbols, to try it out.")] = None,
) -> None:
    """Track stock listings, find penny stocks and store their bars from Yahoo Finance in the lake."""
    require("live", "yfinance", "curl_cffi", "peewee", "httpx", command="ingest stocks")
    from tapewatch.config import load_settings
    from tapewatch.io.lake import open_lake
    from tapewatch.sources.stocks.bars import normalise_interval
    from tapewatch.sources.stocks.job import IngestOptions, StocksIngest
    from tapewatch.sources.stocks.schedule import CLOCK, Schedule
    from tapewatch.sources.stocks.venues import parse_exchanges
    from tapewatch.sources.stocks.yahoo import YahooClient
    from tapewatch.store.alert_store import default_db_path, open_engine
    from tapewatch.store.instruments import InstrumentStore

    settings = load_settings(config)
    stocks = settings.stocks
    if max_price is not None and max_price <= 0:
        raise InputError(f"--max-price {max_price}: expected a price above 0")
    if period is not None and since is not None:
        raise InputError("--period and --since: give one of them, not both")
    options = IngestOptions(
        venues=parse_exchanges(exchanges),
        interval=normalise_interval(interval),
        penny=penny,
        max_price=max_price,
        period=parse_period(period or "1mo"),
        since=parse_since(since) if since else None,
        limit=limit,
    )
    schedule = Schedule.from_settings(stocks, parse_duration(every, what="--every")) if every else None
    live_interval = (
        options.interval
        if options.interval != "1d"
        else normalise_interval(stocks.live_interval, "stocks.live_interval")
    )
    engine = open_engine(db or settings.store.db or default_db_path())
    yahoo = YahooClient(
        stocks.yahoo_url,
        prepost=stocks.prepost,
        retries=stocks.http_retries,
        backoff_s=stocks.http_backoff_s,
        timeout_s=stocks.http_timeout_s,
    )
    job = StocksIngest(
        stocks,
        open_lake(lake, settings.store.lake),
        InstrumentStore(engine),
        yahoo,
        options,
    )
    try:
        now = CLOCK.now()
        print_report(err, _with_progress(lambda tick: job.run(now, progress=tick), "bars"))
        if schedule is not None:
            _live(job, schedule, CLOCK, err, live_interval, after_close=options.interval == "1d", now=now)
    finally:
        engine.dispose()


def _live(
    job: StocksIngest,
    schedule: Schedule,
    clock: Clock,
    console: Console,
    interval: str,
    *,
    after_close: bool,
    now: datetime,
) -> None:
    """Run the `--every` loop until Ctrl-C, one line per poll, the totals at the end."""
    from tapewatch.sources.stocks.bars import BarsReport
    from tapewatch.sources.stocks.schedule import run_live

    totals = BarsReport(interval=interval)

    def poll(moment: datetime) -> None:
        report = job.poll(moment, interval)
        totals.add(report)
        console.print(f"{_clock(moment)} {bars_line(report)}", highlight=False)

    def close_job(moment: datetime) -> None:
        console.print(f"{_clock(moment)} close job: listings, facts and daily bars", highlight=False)
        print_report(console, job.run(moment, interval="1d", strict=False))

    # The run that started the loop already did today's close job if it fetched daily bars after the close.
    already = schedule.close_due(now, None) if after_close else None
    console.print(f"polling {interval} bars every {schedule.every} (Ctrl-C stops)", highlight=False)
    try:
        run_live(schedule, clock, poll, close_job, last_close=already)
    except KeyboardInterrupt:
        console.print(f"stopped; polls wrote {totals.written:,} new bar(s) in all", highlight=False)


def _with_progress(work: Callable[[ProgressCallback], T], label: str) -> T:
    """Run `work(tick)` under a rich progress bar that `tick(done, total)` advances."""

    with progress_bar() as progress:
        task = progress.add_task(label, total=None)
        return work(lambda done, total: progress.update(task, completed=done, total=total))


def print_report(console: Console, report: IngestReport) -> None:
    """The run summary: listings added/delisted, rejected lines, penny candidates, bars written."""
    catalog = report.catalog
    for venue, sync in catalog.synced.items():
        listed = len(sync.added) + len(sync.relisted) + sync.unchanged
        console.print(
            f"{venue}: {listed:,} listed, {len(sync.added):,} added, {len(sync.delisted):,} delisted, "
            f"{len(sync.relisted):,} relisted" + _sample(sync.added, "new") + _sample(sync.delisted, "gone"),
            highlight=False,
        )
    for venue, reason in catalog.not_synced.items():
        console.print(f"{venue}: listing not synced: {reason}", highlight=False)
    if catalog.rejected or catalog.test_issues:
        where = f" → {catalog.dead_letter_path}" if catalog.dead_letter_path else ""
        console.print(
            f"{catalog.rejected:,} listing line(s) rejected{where}; {catalog.test_issues:,} test issue(s) skipped",
            highlight=False,
        )
    if catalog.facts_errors:
        console.print(
            f"Yahoo quotes failed for {len(catalog.facts_errors)} batch(es), stored facts kept "
            f"(e.g. {catalog.facts_errors[0]})",
            highlight=False,
        )
    console.print(
        f"{report.instruments:,} instrument(s), {report.with_facts:,} with a price: "
        f"{report.penny:,} penny candidate(s), {report.unknown:,} unknown (no price or facts yet)",
        highlight=False,
    )
    console.print(bars_line(report.bars), highlight=False)


def bars_line(report: BarsReport) -> str:
    """One line about a bar download: tickers, new bars, tickers without data, failures."""
    line = (
        f"bars {report.interval}: {report.tickers:,} ticker(s), {report.written:,} new bar(s), "
        f"{report.up_to_date:,} already up to date"
    )
    if report.no_data:
        line += f"; {len(report.no_data)} without data on Yahoo" + _sample(report.no_data, "")
    if report.failed:
        first = next(iter(report.failed.items()))
        line += f"; {len(report.failed)} failed (e.g. {first[0]}: {first[1]})"
    return line


def _sample(names: list[str], label: str, most: int = 5) -> str:
    if not names:
        return ""
    shown = ", ".join(names[:most]) + (", …" if len(names) > most else "")
    return f" ({label + ': ' if label else ''}{shown})"


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def parse_period(text: str) -> timedelta:
    """`5d`, `1wk`, `1mo`, `3mo`, `1y` (Yahoo's spellings; a month is 30 days) or any duration like `12h`."""
    match = _PERIOD.match(text.lower())
    if match:
        return timedelta(days=int(match.group(1)) * _PERIOD_DAYS[match.group(2)])
    return parse_duration(text, what="--period")


def parse_since(text: str) -> datetime:
    """`2024-03-01` or an ISO-8601 time; without a zone it is UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"--since '{text}': expected a date like 2024-03-01 or an ISO-8601 time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
