"""The streaming engine on L3 order events and L2 book events: same alerts as the batch engine."""

from __future__ import annotations

import polars as pl
import pytest
from spoof_tapes import layering_market, spoof_market

from tapewatch.detect.pump_onset import PumpOnsetDetector
from tapewatch.detect.spoofing_l2 import SpoofingL2Detector, book_events, l2_from_l3
from tapewatch.detect.spoofing_l3 import SpoofingL3Detector
from tapewatch.engine.batch import run_batch
from tapewatch.engine.kinds import BOOK, ORDERS, RecordKind
from tapewatch.engine.stream import StreamEngine
from tapewatch.errors import InputError
from tapewatch.records import BAR_SCHEMA, empty_frame
from tapewatch.sources.simulator import write_market
from tapewatch.stream_job import replay_rows


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
    assert engine.stats.set_aside[ORDERS.malformed_reason] == 2
    assert engine.stats.trades_processed == rows.height


def test_replay_picks_the_kind_the_files_hold_and_asks_when_ambiguous(tmp_path):
    paths = write_market(spoof_market(), tmp_path / "sim")
    with pytest.raises(InputError, match="--kind trades or --kind orders"):
        replay_rows([str(paths["trades"]), str(paths["orders"])], "auto", None, "auto")
    rows, kind = replay_rows([str(paths["orders"])], "auto", None, "auto")
    assert kind is ORDERS and rows.height == spoof_market().orders.height
    rows, kind = replay_rows([str(paths["trades"]), str(paths["orders"])], "auto", None, "trades")
    assert kind.name == "trades" and rows.height == spoof_market().trades.height
    with pytest.raises(InputError, match="--kind 'bars'"):
        replay_rows([str(paths["orders"])], "auto", None, "bars")
