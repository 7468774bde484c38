"""End to end: a live gap no refill closes reaches the lake's gap ledger (from `stream` and from
`ingest crypto --live`) and the evidence of an alert decided across it, through the real live source
(ccxt.pro against the local fake Binance)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import polars as pl

from tapewatch.cli.exchange import IngestPlan, IngestSummary, _live
from tapewatch.config import StreamSettings
from tapewatch.detect.base import DetectorState, FinalAlerts
from tapewatch.engine.stream import Emitted, StreamEngine
from tapewatch.io.deadletter import DeadLetterFile
from tapewatch.io.lake import Lake
from tapewatch.pipeline.gaps import GapLedger
from tapewatch.pipeline.stream import _exchange_batches, run_stream_async
from tapewatch.records import Alert
from tapewatch.sources.exchange import ExchangeLiveSource
from unit.sources.exchange.crypto_harness import T0, call, run, settings_for, steady, until
from unit.sources.exchange.fake_binance import FakeBinance

SYMBOLS = ["BTC/USDT", "ETH/USDT"]


class Above(FinalAlerts):
    """A made-up detector alerting once per trade priced above 120: the plumbing is under test, not detection."""

    name = "above"
    typology = "pump_and_dump"
    needs = "trades"
    lookback = timedelta(minutes=1)

    def detect(self, frame: pl.DataFrame, state: DetectorState | None = None) -> list[Alert]:
        key = ["venue", "symbol"]
        fresh = frame if state is None else state.undecided(frame, key)
        hits = fresh.filter(pl.col("price") > 120)
        if state is not None:
            state.advance(key, frame, hits)
        return [
            Alert.build(
                detector=self.name,
                typology=self.typology,
                venue=row["venue"],
                symbol=row["symbol"],
                start=row["ts"],
                end=row["ts"],
                detected_at=row["ts"],
                score=0.9,
                evidence={"price": row["price"]},
            )
            for row in hits.iter_rows(named=True)
        ]


async def trades_with_a_hole(server: FakeBinance, received_ten: Callable[[], bool]) -> None:
    """Five live trades of each symbol, a dropped connection, BTC/USDT's trades 6…9 made meanwhile with
    id 7 never reaching the REST history (the refill cannot close the gap), then one trade of each at 150."""
    await until(lambda: len(server.subscribed()) == 2, what="subscription")
    await call(server.add_trades, "BTC/USDT", steady(T0, 5, 10))  # ids 1…5
    await call(server.add_trades, "ETH/USDT", steady(T0, 5, 10))
    await until(received_ten, what="10 trades")
    await call(server.drop_connections)
    await call(server.add_trades, "BTC/USDT", steady(T0 + 100, 4, 10), broadcast=False)  # 6…9
    server.trades["BTCUSDT"][6:7] = []
    await until(lambda: len(server.subscribed()) == 2, what="reconnect")
    await call(server.add_trades, "BTC/USDT", steady(T0 + 200, 1, 10, price=150.0))  # id 10, after the gap
    await call(server.add_trades, "ETH/USDT", steady(T0 + 200, 1, 10, price=150.0))  # no gap on ETH


LOST = {  # id 7 lies between trade 6 (T0 + 100 ms) and trade 8 (T0 + 120 ms)
    "start": "2024-01-01T00:00:00.100Z",
    "end": "2024-01-01T00:00:00.120Z",
    "state": "unrepaired",
    "missing_ids": [7, 7],
}


def test_an_alert_after_a_gap_no_refill_closed_names_the_gap_and_the_lake_keeps_it(tmp_path) -> None:
    lake = Lake(tmp_path / "lake")
    alerts: dict[str, Alert] = {}

    def keep(emitted: list[Emitted]) -> None:
        alerts.update((item.alert.symbol, item.alert) for item in emitted)

    async def scenario(server: FakeBinance) -> None:
        source = ExchangeLiveSource(settings_for(server), SYMBOLS)
        engine = StreamEngine([Above()], StreamSettings(hold_ms=0, batch_ms=10))
        ledger = GapLedger(lake)
        engine.gaps = ledger.evidence
        live = _exchange_batches(source, DeadLetterFile(None), ledger)
        streaming = asyncio.ensure_future(run_stream_async(live, engine, [keep]))
        try:
            await trades_with_a_hole(server, lambda: source.stats["trades"] == 10)
            await until(lambda: len(alerts) == 2, what="both alerts")
        finally:
            streaming.cancel()
            await asyncio.gather(streaming, return_exceptions=True)

    with FakeBinance(SYMBOLS) as server:
        run(scenario(server), timeout=60)

    assert alerts["BTC/USDT"].evidence["data_gaps"] == [LOST]
    assert "data_gaps" not in alerts["ETH/USDT"].evidence
    (kept,) = GapLedger(lake).gaps("binance", "BTC/USDT")  # another process reads it from the lake
    assert kept.evidence() == LOST


def test_ingest_live_keeps_the_gaps_no_refill_closed_in_the_lake(tmp_path) -> None:
    lake = Lake(tmp_path / "lake")

    async def scenario(server: FakeBinance) -> None:
        plan = IngestPlan(
            SYMBOLS, None, False, None, datetime.now(UTC), False, None, True, False, None, None, None
        )
        venue = settings_for(server, live_flush_s=0.05)
        ingesting = asyncio.ensure_future(_live(venue, IngestSummary("binance", symbols=SYMBOLS), lake, plan))
        try:
            await trades_with_a_hole(server, lambda: lake.read("trades").height == 10)
            await until(lambda: bool(GapLedger(lake).gaps("binance", "BTC/USDT")), what="the gap recorded")
        finally:
            ingesting.cancel()
            await asyncio.gather(ingesting, return_exceptions=True)

    with FakeBinance(SYMBOLS) as server:
        run(scenario(server), timeout=60)

    assert [gap.evidence() for gap in GapLedger(lake).gaps("binance", "BTC/USDT")] == [LOST]
    assert GapLedger(lake).gaps("binance", "ETH/USDT") == []
