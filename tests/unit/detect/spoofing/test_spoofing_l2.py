"""Spoofing on public L2 book updates merged with trades: lower confidence, no account ids."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest

from tapewatch.detect.base import DetectorState
from tapewatch.detect.spoofing.settings import SpoofingL2Settings
from tapewatch.detect.spoofing.spoofing_l2 import SpoofingL2Detector
from tapewatch.io.derive import book_events, l2_from_l3
from tapewatch.records import BOOK_EVENT_SCHEMA, BOOK_SCHEMA, ORDER_SCHEMA, TRADE_SCHEMA, conform, empty_frame
from unit.detect.spoofing.spoof_tapes import SPOOF_AT, Tape, at, layering_market, stream_like


def test_l2_stream_equals_batch():
    market = layering_market()
    frame = book_events(l2_from_l3(market.orders), market.trades)
    batch = SpoofingL2Detector().detect(frame)
    assert batch
    streamed = stream_like(SpoofingL2Detector(), frame, timedelta(minutes=20))
    assert [a.model_dump() for a in streamed] == [a.model_dump() for a in batch]


def test_l2_from_l3_level_totals():
    tape = Tape()
    tape.add(1, "a", "x", "buy", 1.0, 10.0, "new")
    tape.add(2, "b", "y", "buy", 1.0, 5.0, "new")
    tape.trade(3, "z", "sell", "a", "x", 1.0, 3.0)  # the taker never rests: no ask level appears
    tape.add(4, "b", "y", "buy", 1.0, 5.0, "cancel")
    tape.add(5, "a", "x", "buy", 0.99, 7.0, "modify")
    book = l2_from_l3(tape.frame())
    assert book.schema == pl.Schema(BOOK_SCHEMA)
    assert book.select("ts", "side", "price", "amount").rows() == [
        (at(1), "bid", 1.0, 10.0),
        (at(2), "bid", 1.0, 15.0),
        (at(3), "bid", 1.0, 12.0),
        (at(4), "bid", 1.0, 7.0),
        (at(5), "bid", 0.99, 7.0),
        (at(5), "bid", 1.0, 0.0),
    ]


def _l2_case(traded_at_spoof_level: bool = False, mirrored: bool = False, cycles: int = 2) -> pl.DataFrame:
    """Twenty minutes of small two-sided quotes, then spoof cycles on the bid a minute apart.

    Each cycle adds 300 at two bid levels (the book leans to the bid), three buys print at
    the ask, and a second later both bids are pulled. `traded_at_spoof_level` sells into
    the spoof bid before the pull (it traded: no spoof); `mirrored` adds the same size on
    the ask at the same moments (a market maker's two-sided requote).
    """
    levels, trades = [], []
    for k, t in enumerate(range(0, int(SPOOF_AT) + 60 * cycles, 3)):
        levels.append((at(t), "bid", 99.98, 10.0 + k % 3))
        levels.append((at(t + 1), "ask", 100.01, 10.0 + k % 3))
    for start in (SPOOF_AT + 60 * n for n in range(cycles)):
        levels += [(at(start), "bid", 99.99, 300.0), (at(start + 0.5), "bid", 99.97, 300.0)]
        levels += [(at(start + 5), "bid", 99.99, 0.0), (at(start + 5.1), "bid", 99.97, 0.0)]
        if mirrored:
            levels += [(at(start), "ask", 100.02, 300.0), (at(start + 0.5), "ask", 100.03, 300.0)]
            levels += [(at(start + 5), "ask", 100.02, 0.0), (at(start + 5.1), "ask", 100.03, 0.0)]
        trades += [(at(start + 2 + n), 100.01, 5.0, "buy") for n in range(3)]
        if traded_at_spoof_level:
            trades.append((at(start + 4.5), 99.99, 100.0, "sell"))
    book = pl.DataFrame(levels, schema=["ts", "side", "price", "amount"], orient="row").with_columns(
        venue=pl.lit("v"), symbol=pl.lit("S/BTC")
    )
    prints = pl.DataFrame(trades, schema=["ts", "price", "amount", "side"], orient="row").with_columns(
        venue=pl.lit("v"), symbol=pl.lit("S/BTC")
    )
    return book_events(conform(book.sort("ts"), BOOK_SCHEMA), conform(prints, TRADE_SCHEMA))


def test_l2_repeated_one_sided_cycles_fire_with_low_confidence():
    frame = _l2_case()
    assert frame.schema == pl.Schema(BOOK_EVENT_SCHEMA)
    alerts = SpoofingL2Detector().detect(frame)
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.detected_at == at(SPOOF_AT + 65.1)
    assert alert.start == at(SPOOF_AT)
    assert alert.typology == "spoofing"
    assert alert.evidence["confidence"] == "low"
    assert alert.evidence["basis"] == "public L2 book, no account ids"
    assert alert.score <= SpoofingL2Settings().max_score
    assert alert.evidence["side"] == "bid" and alert.evidence["pulled_additions"] == 4
    cycle = alert.evidence["cycles"][-1]
    assert [a["price"] for a in cycle["additions"]] == [99.99, 99.97]
    assert cycle["additions"][0]["life_s"] == pytest.approx(5.0)
    assert cycle["additions"][0]["pulled_after_last_print_s"] == pytest.approx(1.0)
    assert len(cycle["far_side_prints"]) == 3
    lean = cycle["imbalance_toward_side"]
    assert lean["during"] > lean["before"] + 0.5 and lean["during"] > lean["after"] + 0.5


@pytest.mark.parametrize(
    "confounder",
    [
        pytest.param({"cycles": 1}, id="a_single_cycle"),
        pytest.param({"traded_at_spoof_level": True}, id="additions_traded_at_their_level"),
        pytest.param({"mirrored": True}, id="symmetric_market_maker_requotes"),
    ],
)
def test_l2_confounder_is_quiet_where_the_same_book_without_it_fires(confounder):
    """Each confounder changes one thing in the spoof book of `_l2_case()`, which fires (the twin)."""
    assert SpoofingL2Detector().detect(_l2_case(**confounder)) == []
    (spoof,) = SpoofingL2Detector().detect(_l2_case())
    assert spoof.typology == "spoofing" and spoof.start == at(SPOOF_AT)


def test_empty_inputs():
    detector, state = SpoofingL2Detector(), DetectorState()
    assert detector.detect(empty_frame(BOOK_EVENT_SCHEMA), state) == []
    assert len(detector.detect(_l2_case(), state)) == 1  # the state an empty batch leaves still decides
    assert l2_from_l3(empty_frame(ORDER_SCHEMA)).schema == pl.Schema(BOOK_SCHEMA)
    merged = book_events(empty_frame(BOOK_SCHEMA), empty_frame(TRADE_SCHEMA))
    assert merged.is_empty() and merged.schema == pl.Schema(BOOK_EVENT_SCHEMA)
