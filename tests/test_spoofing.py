"""Spoofing and layering on L3 order events: account-level evidence."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from spoof_tapes import SPOOF_AT, Tape, at, background, flip, spoof, spoof_market, stream_like

from tapewatch.config import SpoofingL3Settings
from tapewatch.detect.spoofing_l3 import SpoofingL3Detector
from tapewatch.records import ORDER_SCHEMA, empty_frame


def run_l3(tape: Tape, **overrides) -> list:
    frame = tape.frame().sort("ts", maintain_order=True)
    return SpoofingL3Detector(SpoofingL3Settings(**overrides)).detect(frame)


def test_spoof_with_opposite_execution_fires_with_evidence():
    tape = Tape()
    background(tape)
    ids, execution = spoof(tape, SPOOF_AT, "spf", [99.99])
    alerts = run_l3(tape)
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.typology == "spoofing"
    assert alert.evidence["account"] == "spf"
    assert alert.detected_at == at(SPOOF_AT + 7)
    assert alert.start == at(SPOOF_AT)
    order = alert.evidence["orders"][0]
    assert order["order_id"] == ids[0]
    assert order["vs_book_typical"] == pytest.approx(20.0, rel=0.01)
    assert order["levels_ahead"] == 0
    assert order["life_s"] == pytest.approx(7.0)
    assert order["fill_ratio"] == 0.0
    assert [e["order_id"] for e in alert.evidence["opposite_executions"]] == [execution]
    assert alert.evidence["cancel_after_execution_s"] == pytest.approx(2.0)
    assert alert.evidence["confidence"] == "high"


def test_big_order_without_opposite_execution_is_quiet():
    tape = Tape()
    background(tape)
    spoof(tape, SPOOF_AT, "spf", [99.99], execute=False)
    assert run_l3(tape) == []


def test_big_order_that_fills_is_quiet():
    tape = Tape()
    background(tape)
    spoof(tape, SPOOF_AT, "spf", [99.99], fill=True)
    assert run_l3(tape) == []


def test_market_maker_big_requotes_do_not_fire():
    """A liquidity provider pulls big quotes all the time; the one that happens to bracket its own
    opposite fill is chance, not a pattern."""
    tape = Tape()
    background(tape)
    for k in range(10):
        t = 300 + 80 * k
        tape.add(t, f"mm{k}", "mm", "buy", 99.99, 200.0, "new")
        tape.add(t + 6, f"mm{k}", "mm", "buy", 99.99, 200.0, "cancel")
    tape.rows.sort(key=lambda row: row["ts"])
    spoof(tape, SPOOF_AT, "mm", [99.99])
    assert run_l3(tape) == []
    assert len(run_l3(tape, min_tied_share=0.0)) == 1  # the tied episode itself is there


def test_spoof_pulled_then_opposite_execution_fires_at_the_execution():
    """Pull the bait, then trade the other way two seconds later: the pattern is complete at the trade."""
    tape = Tape()
    background(tape)
    order_id, execution = flip(tape, SPOOF_AT, "spf", 99.99, gap=2.0)
    (alert,) = run_l3(tape)
    assert alert.typology == "spoofing"
    assert alert.detected_at == at(SPOOF_AT + 5)
    assert [order["order_id"] for order in alert.evidence["orders"]] == [order_id]
    assert [e["order_id"] for e in alert.evidence["opposite_executions"]] == [execution]
    assert alert.evidence["execution_after_cancel_s"] == pytest.approx(2.0)
    assert alert.evidence["cancel_after_execution_s"] is None
    frame = tape.frame()
    assert SpoofingL3Detector().detect(frame.filter(pl.col("ts") < alert.detected_at)) == []
    (cut,) = SpoofingL3Detector().detect(frame.filter(pl.col("ts") <= alert.detected_at))
    assert cut.model_dump() == alert.model_dump()


def test_opposite_execution_long_after_the_pull_is_quiet():
    tape = Tape()
    background(tape, until=SPOOF_AT + 120)
    flip(tape, SPOOF_AT, "spf", 99.99, gap=60.0)
    assert run_l3(tape) == []


def test_flip_is_off_when_its_window_is_zero():
    tape = Tape()
    background(tape)
    flip(tape, SPOOF_AT, "spf", 99.99, gap=2.0)
    assert run_l3(tape, exec_after_cancel_s=0) == []


def test_three_level_stack_is_layering():
    tape = Tape()
    background(tape)
    ids, _ = spoof(tape, SPOOF_AT, "lay", [99.99, 99.98, 99.97])
    alerts = run_l3(tape)
    assert [alert.typology for alert in alerts] == ["layering"]
    assert alerts[0].evidence["levels"] == 3
    assert [order["order_id"] for order in alerts[0].evidence["orders"]] == ids
    assert alerts[0].detected_at == at(SPOOF_AT + 7.2)


def test_alert_is_causal_under_truncation():
    tape = Tape()
    background(tape)
    spoof(tape, SPOOF_AT, "spf", [99.99])
    frame = tape.frame()
    (alert,) = SpoofingL3Detector().detect(frame)
    (cut,) = SpoofingL3Detector().detect(frame.filter(pl.col("ts") <= alert.detected_at))
    assert cut.model_dump() == alert.model_dump()
    assert SpoofingL3Detector().detect(frame.filter(pl.col("ts") < alert.detected_at)) == []


def test_l3_stream_equals_batch():
    market = spoof_market()
    detector = SpoofingL3Detector()
    batch = detector.detect(market.orders)
    assert len(batch) >= 3
    assert {alert.typology for alert in batch} == {"spoofing", "layering"}
    streamed = stream_like(SpoofingL3Detector(), market.orders, timedelta(minutes=20))
    assert [a.model_dump() for a in streamed] == [a.model_dump() for a in batch]


def test_empty_input():
    assert SpoofingL3Detector().detect(empty_frame(ORDER_SCHEMA)) == []
