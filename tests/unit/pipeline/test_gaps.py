"""Known gaps as data, and alerts decided across one saying so in their evidence."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import polars as pl
import pytest
from conftest import START

from tapewatch.config import Settings, StreamSettings
from tapewatch.detect.registry import build_detectors
from tapewatch.engine.stream import StreamEngine
from tapewatch.io.deadletter import DeadLetterFile
from tapewatch.io.lake import Lake
from tapewatch.pipeline import stream as pipeline_stream
from tapewatch.pipeline.gaps import GapLedger
from tapewatch.pipeline.stream import run_stream
from tapewatch.sources.exchange.coverage import Coverage
from tapewatch.sources.exchange.sequence import Gap
from tapewatch.sources.replay import replay

EPOCH = datetime(1970, 1, 1, tzinfo=START.tzinfo)


def micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


def gap_between(start: datetime, end: datetime, ids: tuple[int, int] | None = None) -> Gap:
    after, before = ids or (None, None)
    return Gap(micros(start), micros(end), after, before)


def test_an_unrepaired_gap_is_kept_in_the_lake_and_found_by_overlap(tmp_path) -> None:
    lake = Lake(tmp_path / "lake")
    at = START + timedelta(hours=1)
    GapLedger(lake).record("binance", "PUMP/BTC", gap_between(at, at + timedelta(minutes=5), (100, 250)))

    reread = GapLedger(lake)  # another process: it knows only what the lake holds
    (gap,) = reread.overlapping("binance", "PUMP/BTC", at + timedelta(minutes=4), at + timedelta(hours=2))
    assert (gap.start, gap.end, gap.state) == (at, at + timedelta(minutes=5), "unrepaired")
    assert gap.evidence()["missing_ids"] == [101, 249]
    assert reread.overlapping("binance", "PUMP/BTC", at + timedelta(minutes=6), at + timedelta(hours=2)) == []
    assert reread.overlapping("binance", "OTHER/BTC", START, at + timedelta(hours=2)) == []
    assert reread.symbols() == [("binance", "PUMP/BTC")]


def test_two_streams_recording_into_one_lake_keep_each_others_gaps(tmp_path) -> None:
    lake = Lake(tmp_path / "lake")
    first, second = GapLedger(lake), GapLedger(lake)
    assert first.gaps("binance", "A/B") == second.gaps("binance", "A/B") == []  # both have read the ledger
    first.record("binance", "A/B", gap_between(START, START + timedelta(minutes=1)))
    second.record("binance", "A/B", gap_between(START + timedelta(hours=1), START + timedelta(hours=2)))
    assert [g.start for g in GapLedger(lake).gaps("binance", "A/B")] == [START, START + timedelta(hours=1)]


def test_not_available_history_is_a_known_gap_and_a_later_fetch_repairs_an_unrepaired_one(tmp_path) -> None:
    lake = Lake(tmp_path / "lake")
    hole = (START, START + timedelta(hours=1))
    lost = (START + timedelta(hours=2), START + timedelta(hours=2, minutes=1))
    Coverage(lake.store, "trades", "bybit", "X/USDT", "trades").add(
        [(ms(START), ms(START + timedelta(hours=2)))], [(ms(hole[0]), ms(hole[1]))]
    )
    GapLedger(lake).record("bybit", "X/USDT", gap_between(*lost))
    assert [(g.start, g.end, g.state) for g in GapLedger(lake).gaps("bybit", "X/USDT")] == [
        (*hole, "not available"),
        (*lost, "unrepaired"),
    ]

    Coverage(lake.store, "trades", "bybit", "X/USDT", "trades").add(  # an ingest fetched the lost minute
        [(ms(lost[0]) - 1000, ms(lost[1]) + 1000)]
    )
    assert [g.state for g in GapLedger(lake).gaps("bybit", "X/USDT")] == ["not available"]


def test_a_live_sources_growing_list_is_recorded_once_and_without_a_lake_in_memory() -> None:
    ledger = GapLedger(None)
    first = gap_between(START, START + timedelta(minutes=1))
    found: list[tuple[str, Gap]] = [("A/B", first)]
    ledger.record_new("okx", found)
    found.append(("A/B", gap_between(START + timedelta(hours=1), START + timedelta(hours=2))))
    ledger.record_new("okx", found)
    ledger.record_new("okx", found)
    assert len(ledger.gaps("okx", "A/B")) == 2
    assert ledger.symbols() == [("okx", "A/B")]


def pump_alerts(trades: pl.DataFrame, ledger: GapLedger | None) -> list[Any]:
    engine = StreamEngine(
        build_detectors(Settings(), ["pump_onset"]),
        StreamSettings(hold_ms=0),
        gaps=None if ledger is None else ledger.evidence,
    )
    emitted: list[Any] = []
    run_stream(replay(trades, speed=None, batch_trades=500), engine, [emitted.extend])
    return [item.alert for item in emitted if not item.update]


def test_an_alert_decided_across_an_unrepaired_gap_says_so_and_one_without_has_no_key(pumped_market) -> None:
    trades, at = pumped_market
    (clean,) = pump_alerts(trades, None)
    assert "data_gaps" not in clean.evidence
    ledger = GapLedger(None)
    (unaffected,) = pump_alerts(trades, ledger)  # a ledger with no gap adds nothing
    assert "data_gaps" not in unaffected.evidence

    lost = (at - timedelta(minutes=30), at - timedelta(minutes=20))
    ledger.record("testex", "AAA/BTC", gap_between(*lost))
    ledger.record("testex", "BBB/BTC", gap_between(*lost))  # another symbol's gap is not this alert's
    (alert,) = pump_alerts(trades, ledger)
    assert alert.id == clean.id
    assert alert.evidence["data_gaps"] == [
        {"start": "2024-03-01T03:30:00.000Z", "end": "2024-03-01T03:40:00.000Z", "state": "unrepaired"}
    ]
    assert {k: v for k, v in alert.evidence.items() if k != "data_gaps"} == clean.evidence


def test_a_gap_older_than_the_detectors_lookback_is_not_in_the_evidence(pumped_market) -> None:
    trades, at = pumped_market
    ledger = GapLedger(None)
    lookback = build_detectors(Settings(), ["pump_onset"])[0].lookback
    ledger.record(
        "testex",
        "AAA/BTC",
        gap_between(at - lookback - timedelta(minutes=20), at - lookback - timedelta(minutes=10)),
    )
    (alert,) = pump_alerts(trades, ledger)
    assert "data_gaps" not in alert.evidence


class StubSource:
    """A live source whose refill gives up on a gap before the batch holding the trades after it."""

    venue = "binance"

    def __init__(self) -> None:
        self.unrepaired: list[tuple[str, Gap]] = []

    async def batches(self) -> AsyncIterator[Any]:
        self.unrepaired.append(("PUMP/BTC", gap_between(START, START + timedelta(minutes=2))))
        yield type("Batch", (), {"rejected": [], "trades": pl.DataFrame(), "arrived_at": 1.0})()


def test_the_live_stream_records_a_gap_before_handing_on_the_trades_after_it(tmp_path) -> None:
    lake = Lake(tmp_path / "lake")
    seen: list[int] = []

    async def first_batch() -> None:
        live = pipeline_stream._exchange_batches(StubSource(), DeadLetterFile(None), GapLedger(lake))
        async for _ in live:
            seen.append(len(GapLedger(lake).gaps("binance", "PUMP/BTC")))

    asyncio.run(first_batch())
    assert seen == [1]  # in the lake by the time the batch reached the engine


@pytest.mark.parametrize("damage", [b"not json", b'[{"start_us": "x"}]'])
def test_a_damaged_gap_ledger_reads_as_empty(tmp_path, damage: bytes) -> None:
    lake = Lake(tmp_path / "lake")
    lake.store.write_bytes("_gaps/trades/venue=binance/symbol=A%2FB.json", damage)
    assert GapLedger(lake).gaps("binance", "A/B") == []
