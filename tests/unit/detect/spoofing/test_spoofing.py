"""Spoofing and layering on L3 order events and trades with accounts: account-level evidence."""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np
import polars as pl
import pytest

from tapewatch.detect.spoofing.settings import SpoofingL3Settings
from tapewatch.detect.spoofing.spoofing_l3 import SpoofingL3Detector, pattern_chance
from tapewatch.engine.batch import run_batch
from tapewatch.engine.kinds import ORDERS
from tapewatch.engine.stream import StreamEngine
from tapewatch.io.derive import EXECUTION, order_events
from tapewatch.records import BAR_SCHEMA, ORDER_SCHEMA, empty_frame
from unit.detect.spoofing.spoof_tapes import (
    SPOOF_AT,
    Tape,
    at,
    background,
    crowd,
    deep_book,
    flip,
    market_maker,
    spoof,
    spoof_by_trades,
    spoof_market,
    stream_like,
    wall,
)


def run_l3(tape: Tape, **overrides) -> list:
    return SpoofingL3Detector(SpoofingL3Settings(**overrides)).detect(tape.events())


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
    assert order["depth_ahead"] == 0.0
    assert order["life_s"] == pytest.approx(7.0)
    assert order["fill_ratio"] == 0.0
    assert [(e["source"], e["id"]) for e in alert.evidence["opposite_executions"]] == [("fill", execution)]
    assert alert.evidence["cancel_after_execution_s"] == pytest.approx(2.0)
    pattern = alert.evidence["account_pattern"]
    assert (pattern["large_quick_cancels"], pattern["with_opposite_execution"]) == (1, 1)
    assert pattern["executions_per_hour"] == 0.0
    # sold 2 s before the pull; never seen trading (one execution assumed) in its 20 minutes of history
    assert pattern["chance"] == pytest.approx(2 * 2.0 / 1200, rel=1e-2)
    assert alert.evidence["confidence"] == "high"


def spoof_tape(**options) -> Tape:
    tape = Tape()
    background(tape)
    spoof(tape, SPOOF_AT, "spf", [99.99], **options)
    return tape


def test_big_order_without_opposite_execution_is_quiet():
    assert run_l3(spoof_tape(execute=False)) == []
    assert run_l3(spoof_tape(execute=True))


def test_big_order_that_fills_is_quiet():
    assert run_l3(spoof_tape(fill=True)) == []
    assert run_l3(spoof_tape(fill=False))


def test_a_cancel_by_self_trade_prevention_in_the_account_s_own_sweep_is_quiet():
    """A bid the venue cancels in the instant the account's own sell printed at its price was taken off
    by self-trade prevention, not pulled; the same instant with the sell printed above the bid, or the
    bid pulled 2 s after the sell, is a pull."""
    assert run_l3(spoof_tape(pull_after=5.0)) == []
    assert run_l3(spoof_tape(pull_after=7.0))
    tape = Tape()
    background(tape)
    spoof(tape, SPOOF_AT, "spf", [99.98], pull_after=5.0)
    (alert,) = run_l3(tape)
    assert alert.evidence["cancel_after_execution_s"] == 0.0


def test_a_marketable_order_cancelled_at_once_is_a_taker_where_a_resting_one_is_bait():
    """A big buy priced through the ask that takes what is there and has its rest cancelled in the same
    instant (immediate-or-cancel) never rested; the same big bid resting 3 s at the touch and pulled
    2 s before the account sells is bait."""

    def tape_with(crossing: bool) -> Tape:
        tape = Tape()
        background(tape)
        tape.add(SPOOF_AT - 1, "bgask", "bg8", "sell", 100.01, 10.0, "new")
        price, life = (100.02, 0.0) if crossing else (99.99, 3.0)
        tape.add(SPOOF_AT, "big", "spf", "buy", price, 200.0, "new")
        if crossing:
            tape.add(SPOOF_AT, "bgask", "bg8", "sell", 100.01, 10.0, "fill")
            tape.add(SPOOF_AT, "big", "spf", "buy", 100.01, 10.0, "fill")
        tape.add(SPOOF_AT + life, "big", "spf", "buy", price, 200.0, "cancel")
        tape.add(SPOOF_AT + 4, "bgbid", "bg9", "buy", 99.99, 10.0, "new")
        tape.trade(SPOOF_AT + 5, "spf", "sell", "bgbid", "bg9", 99.99, 10.0)
        tape.rows.sort(key=lambda row: row["ts"])
        return tape

    assert run_l3(tape_with(crossing=True)) == []
    (alert,) = run_l3(tape_with(crossing=False))
    assert alert.evidence["execution_after_cancel_s"] == 2.0


def test_a_requote_moves_the_pressure_where_a_pull_withdraws_it():
    """A big bid cancelled in the instant the account places another big bid (a requote) took no
    pressure off the book; replaced by a bid of the usual size, it did."""
    assert run_l3(spoof_tape(replace_with=200.0)) == []
    (alert,) = run_l3(spoof_tape(replace_with=10.0))
    assert alert.evidence["account"] == "spf"


def test_one_tie_among_many_accounts_pulling_big_orders_is_chance_several_are_not():
    """One tie of a never-trading account is rare for one account, not for one of the dozen accounts
    pulling big orders on the symbol that hour; the same account tying three times is rare for any."""

    def tape_with(accounts: int, spoofs: int) -> Tape:
        tape = Tape()
        background(tape, until=SPOOF_AT + 120)
        crowd(tape, accounts)
        for k in range(spoofs):
            spoof(tape, SPOOF_AT + 30 * k, "spf", [99.99])
        return tape

    (alone,) = run_l3(tape_with(accounts=0, spoofs=1))
    assert alone.evidence["account_pattern"]["accounts_judged"] == 1
    assert run_l3(tape_with(accounts=12, spoofs=1)) == []
    alerts = run_l3(tape_with(accounts=12, spoofs=3))
    assert alerts and {alert.evidence["account"] for alert in alerts} == {"spf"}
    assert alerts[-1].evidence["account_pattern"]["accounts_judged"] > 1


def test_spoofer_seen_only_in_the_trades_fires_beside_a_market_maker_that_does_not():
    """A market maker cancelling 19 quotes in 20, trading both sides all day and pulling big quotes
    now and then is quiet; a spoofer added to the same tape, on a feed without fills, whose sell
    shows only in the trades (as taker, then as maker), fires."""
    honest = Tape()
    background(honest)
    market_maker(honest)
    assert not any(row["action"] == "fill" for row in honest.rows)
    assert run_l3(honest) == []
    assert run_l3(honest, max_chance=1.0)  # its big quotes do sit next to its executions, by chance
    for maker in (False, True):
        tape = Tape()
        background(tape)
        market_maker(tape)
        order_id, trade = spoof_by_trades(tape, SPOOF_AT, "spf", maker=maker)
        (alert,) = run_l3(tape)
        assert alert.evidence["account"] == "spf"
        assert [order["order_id"] for order in alert.evidence["orders"]] == [order_id]
        assert [(e["source"], e["id"]) for e in alert.evidence["opposite_executions"]] == [(EXECUTION, trade)]
        assert alert.detected_at == at(SPOOF_AT + 7)


def test_the_engine_feeds_the_trades_to_the_l3_detector():
    tape = Tape()
    background(tape)
    spoof_by_trades(tape, SPOOF_AT, "spf")
    bars = empty_frame(BAR_SCHEMA)
    (alert,) = run_batch([SpoofingL3Detector()], tape.trades(), bars, orders=tape.frame())
    assert alert.evidence["account"] == "spf"
    assert run_batch([SpoofingL3Detector()], tape.trades().clear(), bars, orders=tape.frame()) == []
    engine = StreamEngine([SpoofingL3Detector()], kind=ORDERS)
    engine.push(tape.events())
    streamed = [item.alert for item in engine.finish()]
    assert not engine.stats.set_aside
    assert [a.model_dump(exclude={"timing"}) for a in streamed] == [alert.model_dump(exclude={"timing"})]


def test_a_fill_and_the_trade_of_one_execution_count_once():
    tape = Tape()
    background(tape)
    spoof(tape, SPOOF_AT, "spf", [99.99])
    tape.print_trade(SPOOF_AT + 5, "bg9", "spf", "sell", 99.99, 10.0)  # the trade behind the L3 fills
    (alert,) = run_l3(tape)
    assert [e["source"] for e in alert.evidence["opposite_executions"]] == ["fill"]


@pytest.mark.parametrize("busy_side", ["sell", "buy"])
def test_a_trader_on_both_sides_all_day_is_quiet_where_a_rare_trader_fires(busy_side: str):
    """The same tie (sold 2 s before pulling a big bid) is chance for an account that trades every
    half minute, whichever side (a trader re-prices after every fill, on the bait's side too), and
    purpose for one that does not trade otherwise."""

    def tape_with(busy: bool) -> Tape:
        tape = Tape()
        background(tape)
        if busy:
            for k, t in enumerate(range(0, int(SPOOF_AT + 60), 30)):
                buyer, seller = ("spf", f"bg{k % 10}") if busy_side == "buy" else (f"bg{k % 10}", "spf")
                tape.print_trade(t, buyer, seller, busy_side, 99.99 if busy_side == "sell" else 100.01, 10.0)
        spoof_by_trades(tape, SPOOF_AT, "spf")
        return tape

    assert run_l3(tape_with(busy=True)) == []
    (alert,) = run_l3(tape_with(busy=False))
    assert alert.evidence["account_pattern"]["executions_per_hour"] == 0.0


def test_spoof_five_ticks_deep_in_a_book_of_many_small_orders_fires_one_behind_a_wall_does_not():
    """Many small orders on every level: a spoof five ticks from the touch still stands out; nine
    ticks deep, behind a wall of four big bids, it presses on nothing."""
    alerts = {}
    for price in (99.94, 99.90):
        tape = Tape()
        deep_book(tape)
        wall(tape, 99.92)
        spoof_by_trades(tape, SPOOF_AT, "spf", price=price)
        alerts[price] = run_l3(tape), run_l3(tape, max_depth_ahead=10.0)
    (alert,), _ = alerts[99.94]
    order = alert.evidence["orders"][0]
    assert order["levels_ahead"] == 5
    assert order["depth_ahead"] == pytest.approx(150.0)  # six orders of 5 on each better level
    behind, loosened = alerts[99.90]
    assert behind == []  # 9 levels of 30 and the wall's 1600 ahead of its 200
    assert [a.evidence["orders"][0]["depth_ahead"] for a in loosened] == [pytest.approx(1870.0)]


def test_one_tie_behind_a_wall_is_quiet_where_repeated_ties_behind_it_fire():
    """The book weakens the evidence, it does not veto it: nine ticks deep behind a wall, one tie of an
    account never seen trading is not enough; the same account tying three pulls in a row is."""

    def tape_with(spoofs: int) -> Tape:
        tape = Tape()
        deep_book(tape)
        wall(tape, 99.92)
        for k in range(spoofs):
            spoof_by_trades(tape, SPOOF_AT + 15 * k, "spf", price=99.90)
        return tape

    assert run_l3(tape_with(spoofs=1)) == []
    alerts = run_l3(tape_with(spoofs=3))
    assert alerts and {alert.evidence["account"] for alert in alerts} == {"spf"}
    assert alerts[-1].evidence["depth_ahead_ratio"] > 4
    assert alerts[-1].evidence["account_pattern"]["with_opposite_execution"] == 3


def test_orders_a_trade_printed_through_are_not_ahead_where_the_feed_sends_no_fills():
    """Bids above a later sell print were taken: they count for nothing ahead of the spoof."""
    tape = Tape()
    deep_book(tape)
    for k in range(8):
        tape.add(SPOOF_AT - 60, f"stale-{k}", f"bg{k}", "buy", 100.00, 100.0, "new")
    tape.print_trade(SPOOF_AT - 50, "bg1", "tk1", "sell", 99.99, 5.0)
    spoof_by_trades(tape, SPOOF_AT, "spf", price=99.94)
    (alert,) = run_l3(tape)
    assert alert.evidence["orders"][0]["depth_ahead"] == pytest.approx(150.0)
    tape.prints.pop(0)  # without the print the stale bids still rest: 950 ahead, more than 4 × 200
    (behind,) = run_l3(tape)
    assert behind.evidence["orders"][0]["depth_ahead"] == pytest.approx(950.0)
    chance = behind.evidence["account_pattern"]["chance"]  # weakened by (950 / 200 / 4)³, not vetoed
    assert chance == pytest.approx(alert.evidence["account_pattern"]["chance"] * (950 / 800) ** 3, rel=0.01)


def test_spoof_pulled_then_opposite_execution_fires_at_the_execution():
    """Pull the bait, then trade the other way two seconds later: the pattern is complete at the trade."""
    tape = Tape()
    background(tape)
    order_id, execution = flip(tape, SPOOF_AT, "spf", 99.99, gap=2.0)
    (alert,) = run_l3(tape)
    assert alert.typology == "spoofing"
    assert alert.detected_at == at(SPOOF_AT + 5)
    assert [order["order_id"] for order in alert.evidence["orders"]] == [order_id]
    assert [e["id"] for e in alert.evidence["opposite_executions"]] == [execution]
    assert alert.evidence["execution_after_cancel_s"] == pytest.approx(2.0)
    assert alert.evidence["cancel_after_execution_s"] is None
    frame = tape.events()
    assert SpoofingL3Detector().detect(frame.filter(pl.col("ts") < alert.detected_at)) == []
    (cut,) = SpoofingL3Detector().detect(frame.filter(pl.col("ts") <= alert.detected_at))
    assert cut.model_dump() == alert.model_dump()


def test_opposite_execution_long_after_the_pull_is_quiet():
    tape = Tape()
    background(tape, until=SPOOF_AT + 120)
    flip(tape, SPOOF_AT, "spf", 99.99, gap=60.0)
    assert run_l3(tape) == []
    assert run_l3(tape, exec_after_cancel_s=61.0, max_chance=0.5)  # a minute later is likely by chance


def test_flip_is_off_when_its_window_is_zero():
    tape = Tape()
    background(tape)
    flip(tape, SPOOF_AT, "spf", 99.99, gap=2.0)
    assert run_l3(tape, exec_after_cancel_s=0) == []
    assert run_l3(tape)


def test_three_level_stack_is_layering():
    tape = Tape()
    background(tape)
    ids, _ = spoof(tape, SPOOF_AT, "lay", [99.99, 99.98, 99.97])
    alerts = run_l3(tape)
    assert [alert.typology for alert in alerts] == ["layering"]
    assert alerts[0].evidence["levels"] == 3
    assert [order["order_id"] for order in alerts[0].evidence["orders"]] == ids
    assert alerts[0].detected_at == at(SPOOF_AT + 7.2)


def test_repeated_ties_outweigh_an_account_s_untied_cancels():
    """One tie among many untied big cancels is weak; several are not (no share vetoes them)."""
    (alone,) = pattern_chance(np.array([1]), np.array([1]), np.array([7.0]))
    assert alone == pytest.approx(math.exp(-7.0))
    one_of_eleven, four_of_eleven = pattern_chance(
        np.array([11, 11]), np.array([1, 4]), np.array([7.0, 28.0])
    )
    assert one_of_eleven == pytest.approx(11 * math.exp(-7.0))
    assert four_of_eleven < 1e-3 < one_of_eleven


def test_alert_is_causal_under_truncation():
    tape = Tape()
    background(tape)
    spoof(tape, SPOOF_AT, "spf", [99.99])
    frame = tape.events()
    (alert,) = SpoofingL3Detector().detect(frame)
    (cut,) = SpoofingL3Detector().detect(frame.filter(pl.col("ts") <= alert.detected_at))
    assert cut.model_dump() == alert.model_dump()
    assert SpoofingL3Detector().detect(frame.filter(pl.col("ts") < alert.detected_at)) == []


def fill_less_market() -> pl.DataFrame:
    """The simulated spoofing market as a venue without L3 fills sends it: executions only in the trades."""
    market = spoof_market()
    return order_events(market.orders.filter(pl.col("action") != "fill"), market.trades)


def test_l3_stream_equals_batch():
    for events in (spoof_market().orders, fill_less_market()):
        batch = SpoofingL3Detector().detect(events)
        assert len(batch) >= 3
        assert {alert.typology for alert in batch} == {"spoofing", "layering"}
        streamed = stream_like(SpoofingL3Detector(), events, timedelta(minutes=20))
        assert [a.model_dump() for a in streamed] == [a.model_dump() for a in batch]


def test_the_stream_engine_on_order_events_and_trades_gives_the_batch_alerts():
    market = spoof_market()
    orders = market.orders.filter(pl.col("action") != "fill").drop(pl.selectors.starts_with("_"))
    trades = market.trades.drop(pl.selectors.starts_with("_"))
    batch = run_batch([SpoofingL3Detector()], trades, empty_frame(BAR_SCHEMA), orders=orders)
    assert len(batch) >= 3
    engine = StreamEngine([SpoofingL3Detector()], kind=ORDERS)
    streamed = []
    rows = order_events(orders, trades).sort("ts", maintain_order=True)
    for index, chunk in enumerate(rows.iter_slices(rows.height // 17)):
        engine.push(chunk, arrived_at=float(index))
        streamed += [item.alert for item in engine.step(now=float(index))]
    streamed += [item.alert for item in engine.finish()]
    assert not engine.stats.set_aside
    comparable = [a.model_dump(exclude={"timing"}) for a in streamed]
    assert sorted(comparable, key=lambda a: a["id"]) == sorted(
        (a.model_dump(exclude={"timing"}) for a in batch), key=lambda a: a["id"]
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_rows_in_any_order_give_the_same_alerts(seed: int):
    events = fill_less_market()
    batch = SpoofingL3Detector().detect(events)
    assert len(batch) >= 3
    shuffled = events.sample(fraction=1.0, shuffle=True, seed=seed)
    assert [a.model_dump() for a in SpoofingL3Detector().detect(shuffled)] == [a.model_dump() for a in batch]


def test_empty_input():
    assert SpoofingL3Detector().detect(empty_frame(ORDER_SCHEMA)) == []
