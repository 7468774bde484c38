"""The streaming engine on L3 order events and L2 book events: same alerts as the batch engine."""

from __future__ import annotations

import polars as pl
import pytest

from tapewatch.config import Settings
from tapewatch.detect.pump.pump_onset import PumpOnsetDetector
from tapewatch.detect.registry import build_detectors
from tapewatch.detect.spoofing.spoofing_l2 import SpoofingL2Detector
from tapewatch.detect.spoofing.spoofing_l3 import SpoofingL3Detector
from tapewatch.engine.batch import run_batch
from tapewatch.engine.kinds import BOOK, ORDERS, RecordKind
from tapewatch.engine.stream import StreamEngine
from tapewatch.errors import InputError
from tapewatch.io.deadletter import DeadLetterFile
from tapewatch.io.derive import book_events, l2_from_l3
from tapewatch.pipeline.stream import open_stream, replay_rows
from tapewatch.records import BAR_SCHEMA, empty_frame
from tapewatch.sources.simulator.market import write_market
from unit.detect.spoofing.spoof_tapes import layering_market, spoof_market


def streamed(detector, kind: RecordKind, rows: pl.DataFrame, chunks: int = 37) -> list:
    """Push the rows in uneven chunks, stepping after each, as a replay at max speed does."""
    engine = StreamEngine([detector, PumpOnsetDetector()], kind=kind)
    assert [d.name for d in engine.detectors] == [detector.name]  # the trade detector is not this kind's
    alerts = []
    for i, chunk in enumerate(rows.iter_slices(max(1, rows.height // chunks))):
        engine.push(chunk, arrived_at=float(i))
        alerts += [item.alert for item in engine.step(now=float(i))]
    alerts += [item.alert for item in engine.finish()]
    assert engine.stats.trades_processed == rows.height
    return alerts


def stripped(alerts: list) -> list[dict]:
    return sorted((a.model_dump(exclude={"timing"}) for a in alerts), key=lambda a: a["id"])


def test_order_events_stream_gives_the_batch_alerts():
    market = spoof_market()
    batch = run_batch(
        [SpoofingL3Detector()], market.trades.clear(), empty_frame(BAR_SCHEMA), orders=market.orders
    )
    assert len(batch) >= 3
    assert stripped(streamed(SpoofingL3Detector(), ORDERS, market.orders)) == stripped(batch)


def test_book_event_stream_gives_the_batch_alerts():
    market = layering_market()
    book = book_events(l2_from_l3(market.orders), market.trades)
    batch = run_batch([SpoofingL2Detector()], market.trades.clear(), empty_frame(BAR_SCHEMA), book=book)
    assert batch
    assert stripped(streamed(SpoofingL2Detector(), BOOK, book)) == stripped(batch)


def test_malformed_order_events_are_set_aside_with_their_reason():
    rows = spoof_market().orders.head(50)
    broken = rows.head(2).with_columns(action=pl.lit("teleport"), order_id=pl.lit("x-1"))
    engine = StreamEngine([SpoofingL3Detector()], kind=ORDERS)
    engine.push(pl.concat([rows, broken]))
    engine.finish()
    assert engine.stats.set_aside["unknown action 'teleport' (expected new/cancel/fill/modify/trade)"] == 2
    assert engine.stats.trades_processed == rows.height


def test_replay_picks_the_kind_the_files_hold_and_asks_when_ambiguous(tmp_path):
    paths = write_market(spoof_market(), tmp_path / "sim")
    defaults, letters = build_detectors(Settings()), DeadLetterFile(None)
    with pytest.raises(InputError, match="--kind trades or --kind orders"):
        replay_rows([str(paths["trades"]), str(paths["orders"])], "auto", None, "auto", defaults, letters)
    orders = replay_rows([str(paths["orders"])], "auto", None, "auto", defaults, letters)
    assert orders.kind is ORDERS and orders.rows.height == spoof_market().orders.height
    assert orders.tally.rejected == letters.count == 0
    trades = replay_rows(
        [str(paths["trades"]), str(paths["orders"])], "auto", None, "trades", defaults, letters
    )
    assert trades.kind.name == "trades" and trades.rows.height == spoof_market().trades.height
    with pytest.raises(InputError, match="--kind 'bars'"):
        replay_rows([str(paths["orders"])], "auto", None, "bars", defaults, letters)


def test_replay_of_book_files_takes_the_book_only_when_a_chosen_detector_reads_it(tmp_path):
    """spoofing_l2 is opt-in: by default a replay of book and trade files streams the trades (pump_onset
    reads them) rather than a book no detector reads; named, the L2 detector gets the book."""
    market = spoof_market()
    paths = write_market(market, tmp_path / "sim")
    book = tmp_path / "book.parquet"
    l2_from_l3(market.orders).write_parquet(book)
    files = [str(paths["trades"]), str(book)]
    letters = DeadLetterFile(None)
    trades = replay_rows(files, "auto", None, "auto", build_detectors(Settings()), letters)
    assert trades.kind.name == "trades" and trades.rows.height == market.trades.height
    book = replay_rows(files, "auto", None, "auto", build_detectors(Settings(), ["spoofing_l2"]), letters)
    assert book.kind is BOOK and book.rows.height > market.trades.height


def test_a_stream_no_chosen_detector_can_read_is_a_clear_error(tmp_path):
    market = spoof_market()
    book = tmp_path / "book.parquet"
    l2_from_l3(market.orders).write_parquet(book)
    with pytest.raises(
        InputError, match=r"reads book events; name one that does with --detector \(spoofing_l2 reads"
    ):
        open_stream(Settings(), replay=[str(book)], kind="book", use_store=False, output=tmp_path / "a.jsonl")
    job = open_stream(
        Settings(),
        replay=[str(book)],
        kind="book",
        use_store=False,
        output=tmp_path / "a.jsonl",
        detectors=["spoofing_l2"],
    )
    assert [detector.name for detector in job.engine.detectors] == ["spoofing_l2"]
