"""`tapewatch ingest crypto`: options in, markets synced, history backfilled, live trades kept, summary out.

Kept import-light (ccxt, which takes a second to import, loads only when the command
runs), so registering it does not slow down `tapewatch --help`. Progress and the
summary go to stderr; user errors are InputError, which the CLI turns into one line
and exit code 2.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from tapewatch.cli.options import ConfigOption
from tapewatch.cli.terminal import err, progress_bar
from tapewatch.durations import parse_duration
from tapewatch.errors import InputError
from tapewatch.extras import require

if TYPE_CHECKING:
    from tapewatch.config import ExchangeSettings, Settings
    from tapewatch.io.lake import Lake
    from tapewatch.sources.exchange.backfill import BackfillReport
    from tapewatch.sources.exchange.live import SourceBatch
    from tapewatch.store.instruments import SyncResult


@dataclass
class IngestSummary:
    """What one `ingest crypto` run did, filled in as it goes (so Ctrl-C still reports)."""

    venue: str
    synced: SyncResult | None = None
    symbols: list[str] = field(default_factory=list)
    backfills: list[BackfillReport] = field(default_factory=list)
    live_stats: dict[str, int] = field(default_factory=dict)
    live_gaps: list[tuple[str, Any]] = field(default_factory=list)  # (symbol, sequence.Gap) no refill closed
    live_written: int = 0
    book_written: int = 0
    rejected: int = 0
    rejected_path: Path | None = None


@dataclass
class IngestPlan:
    """The run the options ask for."""

    symbols: list[str]
    quote: str | None
    all_markets: bool
    start: datetime | None
    end: datetime
    trades: bool
    ohlcv: str | None
    live: bool
    book: bool
    live_for_s: float | None
    lake: str | None
    db: str | None

    def check(self, until: str | None) -> None:
        """One-line errors for options that cannot go together."""
        if (self.start is not None or self.live) and not (self.symbols or self.quote or self.all_markets):
            raise InputError(
                "--since/--live: no markets chosen; add --symbols BTC/USDT, --quote BTC or --all"
            )
        for given, option in ((until, "--until"), (self.ohlcv, "--ohlcv")):
            if given is not None and self.start is None:
                raise InputError(f"{option} {given}: needs --since (the start of the range to backfill)")
        if self.start is not None and self.start >= self.end:
            raise InputError(f"--since {_iso(self.start)}: expected a time before --until ({_iso(self.end)})")
        if self.live_for_s is not None and not self.live:
            raise InputError("--live-for: only with --live")
        if self.book and not self.live:
            raise InputError("--book: only with --live (book updates are recorded as they come)")


def ingest_crypto(
    exchange: Annotated[
        str | None,
        typer.Option(
            "--exchange", help="ccxt exchange id (default: the config's exchange.exchange, binance)."
        ),
    ] = None,
    symbols: Annotated[
        list[str] | None,
        typer.Option("--symbols", help="Markets as BASE/QUOTE, e.g. BTC/USDT; repeat or comma-separate."),
    ] = None,
    quote: Annotated[
        str | None, typer.Option("--quote", help="Every trading spot market quoted in this asset, e.g. BTC.")
    ] = None,
    all_markets: Annotated[
        bool,
        typer.Option(
            "--all", help="Every trading spot market (narrowed by --quote or the config's exchange.quote)."
        ),
    ] = False,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Backfill from this ISO date/time (UTC) or this long ago (2d, 6h)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", help="Backfill up to this ISO date/time or this long ago (default: now)."),
    ] = None,
    trades: Annotated[
        bool, typer.Option("--trades/--no-trades", help="Backfill trades (with --since).")
    ] = True,
    ohlcv: Annotated[
        str | None,
        typer.Option("--ohlcv", help="Also backfill candles of this timeframe, e.g. 1m, 1h (with --since)."),
    ] = None,
    live: Annotated[
        bool, typer.Option("--live", help="Then keep running: live trades into the lake until Ctrl-C.")
    ] = False,
    book: Annotated[
        bool,
        typer.Option(
            "--book", help="With --live: also L2 order book updates (changed levels) into the lake."
        ),
    ] = False,
    live_for: Annotated[
        str | None,
        typer.Option("--live-for", help="With --live: stop after this long (e.g. 30m) instead of Ctrl-C."),
    ] = None,
    lake: Annotated[
        str | None,
        typer.Option("--lake", help="Parquet lake folder or URL, s3://… (default: the config's store.lake)."),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db", help="Instruments database: SQLite path or URL (default: the config's store.db)."
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Sync a crypto exchange's markets, backfill trades and candles into the lake, and stay live if asked."""
    require("live", "ccxt", command="ingest crypto")
    from tapewatch.config import load_settings

    settings = load_settings(config)
    venue = settings.exchange.model_copy(update={"exchange": exchange}) if exchange else settings.exchange
    now = datetime.now(UTC)
    plan = IngestPlan(
        symbols=[part.strip() for item in symbols or [] for part in item.split(",") if part.strip()],
        quote=quote or (venue.quote if all_markets and venue.quote else None),
        all_markets=all_markets,
        start=parse_moment(since, option="--since", now=now) if since else None,
        end=parse_moment(until, option="--until", now=now) if until else now,
        trades=trades,
        ohlcv=ohlcv,
        live=live,
        book=book,
        live_for_s=parse_duration(live_for, what="--live-for").total_seconds() if live_for else None,
        lake=lake,
        db=db,
    )
    plan.check(until)
    summary = IngestSummary(venue.exchange)
    try:
        asyncio.run(_ingest(settings, venue, plan, summary))
    except KeyboardInterrupt:
        err.print("stopped", highlight=False)
    print_summary(err, summary)


def parse_moment(text: str, *, option: str, now: datetime) -> datetime:
    """An ISO date or time (UTC unless it says otherwise), or a duration with a unit meaning that long ago."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is not None:
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if text.strip()[-1:].isalpha():
        try:
            return now - parse_duration(text, what=option)
        except InputError:
            pass
    raise InputError(
        f"{option} '{text}': expected an ISO date or time (2024-01-31, 2024-01-31T12:00Z) "
        "or a duration back from now (90m, 6h, 2d)"
    )


async def _ingest(
    settings: Settings, venue: ExchangeSettings, plan: IngestPlan, summary: IngestSummary
) -> None:
    """Sync, backfill, then live, sharing one REST exchange object (markets load once)."""
    from tapewatch.io.lake import open_lake
    from tapewatch.sources.exchange.connect import exchange_class, make_exchange
    from tapewatch.sources.exchange.markets import sync_markets
    from tapewatch.store.alert_store import default_db_path, open_engine
    from tapewatch.store.instruments import InstrumentStore

    if plan.live:  # an exchange without WebSockets fails now, not after the backfill
        exchange_class(venue.exchange, pro=True)
    engine = open_engine(plan.db or settings.store.db or default_db_path())
    lake = open_lake(plan.lake, settings.store.lake)
    summary.rejected_path = lake.root / "_rejected" / f"{venue.exchange}.jsonl"
    exchange = make_exchange(venue)
    try:
        summary.synced, summary.symbols = await sync_markets(
            venue,
            InstrumentStore(engine),
            symbols=plan.symbols,
            quote=plan.quote,
            all_markets=plan.all_markets,
            exchange=exchange,
        )
        if plan.start is not None:
            await _backfill(venue, plan, summary, lake, exchange)
    finally:
        await exchange.close()
        engine.dispose()
    if plan.live:
        await _live(venue, summary, lake, plan)


async def _backfill(
    venue: ExchangeSettings, plan: IngestPlan, summary: IngestSummary, lake: Lake, exchange: Any
) -> None:
    """Trades and/or candles of the plan's range for the chosen symbols, under progress bars."""
    from tapewatch.sources.exchange.backfill import backfill_ohlcv, backfill_trades

    assert plan.start is not None
    timeframes = exchange.timeframes or {}
    if plan.ohlcv is not None and plan.ohlcv not in timeframes:
        known = ", ".join(timeframes) or "none"
        raise InputError(
            f"--ohlcv {plan.ohlcv}: not a timeframe of {venue.exchange} (expected one of {known})"
        )
    symbols, start, end = summary.symbols, plan.start, plan.end
    with progress_bar() as progress:
        if plan.trades:
            summary.backfills.append(
                await backfill_trades(venue, symbols, start, end, lake, progress, exchange=exchange)
            )
        if plan.ohlcv is not None:
            summary.backfills.append(
                await backfill_ohlcv(
                    venue, symbols, plan.ohlcv, start, end, lake, progress, exchange=exchange
                )
            )
    for report in summary.backfills:
        _set_aside(summary, [row for result in report.symbols.values() for row in result.rejected])


async def _live(venue: ExchangeSettings, summary: IngestSummary, lake: Lake, plan: IngestPlan) -> None:
    """Live trades (and book updates) into the lake, written every `live_flush_s`, until Ctrl-C or --live-for."""
    from tapewatch.pipeline.gaps import GapLedger
    from tapewatch.sources.exchange.live import ExchangeLiveSource

    source = ExchangeLiveSource(venue, summary.symbols, lake=lake, book=plan.book)
    writer = _LakeWriter(lake)
    known_gaps = GapLedger(lake)  # what no refill repaired, for the console's data-quality view and alerts

    async def consume() -> None:
        async for batch in source.batches():
            writer.add(batch)
            _set_aside(summary, batch.rejected)
            known_gaps.record_new(venue.exchange, source.unrepaired)

    async def flush_regularly() -> None:
        while True:
            await asyncio.sleep(venue.live_flush_s)
            await writer.flush(summary)

    flusher = asyncio.ensure_future(flush_regularly())
    try:
        await asyncio.wait_for(consume(), plan.live_for_s)
    except TimeoutError:
        pass
    finally:
        flusher.cancel()
        await writer.flush(summary)
        summary.live_stats = dict(source.stats)
        summary.live_gaps = list(source.unrepaired)


class _LakeWriter:
    """Live trades and book updates waiting for the next lake write; one write at a time (the lake merges day files)."""

    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self.trades: list[Any] = []
        self.book: list[Any] = []
        self.lock = asyncio.Lock()

    def add(self, batch: SourceBatch) -> None:
        if batch.trades.height:
            self.trades.append(batch.trades)
        if batch.book.height:
            self.book.append(batch.book)

    async def flush(self, summary: IngestSummary) -> None:
        import polars as pl

        async with self.lock:
            trades, self.trades = self.trades, []
            book, self.book = self.book, []
            if trades:
                summary.live_written += await asyncio.to_thread(self.lake.write, "trades", pl.concat(trades))
            if book:
                summary.book_written += await asyncio.to_thread(self.lake.write, "book", pl.concat(book))


def _set_aside(summary: IngestSummary, rejected: list[dict]) -> None:
    """Append rejected messages to the venue's dead-letter file, one JSON object a line."""
    if not rejected or summary.rejected_path is None:
        return
    from tapewatch.io.deadletter import letters_frame, write_dead_letters  # Polars: not for every `--help`

    summary.rejected += len(rejected)
    write_dead_letters(letters_frame(rejected), summary.rejected_path, append=True)


def print_summary(console: Console, summary: IngestSummary) -> None:
    """Markets added/delisted, rows written per symbol and where each backfill resumed, live counters."""
    from tapewatch.sources.exchange.summary import live_lines

    def say(text: str) -> None:
        console.print(text, highlight=False)

    if summary.synced is not None:
        sync = summary.synced
        listed = len(sync.added) + len(sync.relisted) + sync.unchanged
        say(
            f"{summary.venue}: {listed:,} spot market(s) listed, {len(sync.added):,} added, "
            f"{len(sync.delisted):,} delisted, {len(sync.relisted):,} relisted"
            + _sample(sync.added, "new")
            + _sample(sync.delisted, "gone")
        )
    for report in summary.backfills:
        say(f"{report.kind}: {report.written:,} new row(s) for {len(report.symbols):,} symbol(s)")
        for symbol, result in report.symbols.items():
            line = f"  {symbol}: {result.written:,} new of {result.fetched:,} fetched"
            if result.up_to_date:
                line += " (already up to date)"
            elif result.resumed_from is not None:
                line += f", resumed from {_iso(result.resumed_from)}"
            if result.error:
                line += f"; stopped: {result.error}"
            say(line)
            for first, last in result.not_available:
                say(
                    f"    not available from {report.venue}: {_iso(first)} → {_iso(last)}"
                    + (f" ({report.capabilities.paging})" if report.capabilities else "")
                )
    if summary.live_stats:
        for line in live_lines(summary.live_stats, summary.live_gaps, written=summary.live_written):
            say(line)
    if summary.book_written:
        say(f"book: {summary.book_written:,} level update(s) new in the lake")
    if summary.rejected:
        say(f"{summary.rejected:,} message(s) set aside → {summary.rejected_path}")


def _iso(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _sample(symbols: list[str], label: str, most: int = 5) -> str:
    if not symbols:
        return ""
    more = f" +{len(symbols) - most}" if len(symbols) > most else ""
    return f"; {label}: {', '.join(symbols[:most])}{more}"
