from datetime import timedelta

import polars as pl
from conftest import START, burst, market, quiet_trades

from tapewatch.config import PumpOnsetSettings
from tapewatch.detect.pump_onset import PumpOnsetDetector, taker_orders


def test_pump_is_caught_within_seconds_once(pumped_market):
    trades, at = pumped_market
    alerts = PumpOnsetDetector().detect(trades)
    assert len(alerts) == 1
    alert = alerts[0]
    assert alert.typology == "pump_and_dump" and alert.detector == "pump_onset"
    assert at <= alert.detected_at <= at + timedelta(seconds=10)
    assert alert.start <= alert.detected_at == alert.end
    assert alert.severity in ("medium", "high", "critical") and 0.5 <= alert.score <= 1


def test_evidence_compares_now_with_baseline(pumped_market):
    trades, _ = pumped_market
    evidence = PumpOnsetDetector().detect(trades)[0].evidence
    assert evidence["rule"] == "big_move"  # 19 orders had already lifted the price 15 % in 3 s
    assert evidence["orders"]["now"] >= 8 and evidence["price"]["rise"] >= 0.15
    assert evidence["orders"]["now"] / evidence["orders"]["baseline"] >= 100
    assert evidence["price"]["rise"] >= 0.03
    assert evidence["buy_share"]["now"] >= 0.5
    assert evidence["trades"]["now"] >= 2 * evidence["orders"]["now"] - 1  # every order swept two levels
    assert (
        evidence["rush_orders"]["now"] == evidence["orders"]["now"]
    )  # every order is a buy sweeping 2 levels


def test_dump_follow_up_confirms_when_price_gives_back_the_rise(pumped_market):
    trades, _at = pumped_market
    dump = PumpOnsetDetector().detect(trades)[0].followup["dump"]
    assert dump["status"] == "confirmed"
    assert dump["peak_gain"] > 0.2
    assert dump["confirmed_at"] > dump["peak_at"]


def test_dump_follow_up_is_pending_when_data_ends_first():
    at = START + timedelta(hours=4)
    trades = market(quiet_trades(hours=4), burst(at))
    assert PumpOnsetDetector().detect(trades)[0].followup["dump"]["status"] == "pending"


def test_quiet_market_raises_nothing():
    assert PumpOnsetDetector().detect(quiet_trades(hours=12, per_minute=6)) == []


def test_sell_crowd_is_not_a_pump():
    at = START + timedelta(hours=4)
    assert PumpOnsetDetector().detect(market(quiet_trades(), burst(at, side="sell"))) == []


def test_one_big_order_sweeping_many_levels_is_not_a_crowd():
    at = START + timedelta(hours=4)
    sweep = burst(at, orders=1, fills_per_order=80, rise=0.2)
    assert taker_orders(sweep).height == 1
    assert PumpOnsetDetector().detect(market(quiet_trades(), sweep)) == []


def test_no_decision_during_warmup():
    trades = market(quiet_trades(), burst(START + timedelta(minutes=30)))
    assert PumpOnsetDetector().detect(trades) == []
    assert len(PumpOnsetDetector(PumpOnsetSettings(warmup_h=0.25)).detect(trades)) == 1


def test_second_wave_after_cooldown_is_a_new_alert_but_not_within_it():
    first = START + timedelta(hours=3)
    near = market(quiet_trades(), burst(first), burst(first + timedelta(minutes=10), seed=5))
    far = market(quiet_trades(), burst(first), burst(first + timedelta(minutes=45), seed=5))
    assert len(PumpOnsetDetector().detect(near)) == 1
    assert len(PumpOnsetDetector().detect(far)) == 2


def test_thresholds_come_from_settings():
    at = START + timedelta(hours=4)
    small = market(quiet_trades(), burst(at, orders=30, seconds=20, rise=0.1))
    assert PumpOnsetDetector().detect(small) == []
    assert len(PumpOnsetDetector(PumpOnsetSettings(min_orders=4, min_rate_ratio=20)).detect(small)) == 1


def test_symbols_are_independent():
    at = START + timedelta(hours=4)
    trades = market(quiet_trades("AAA/BTC"), quiet_trades("BBB/BTC", seed=9), burst(at, symbol="BBB/BTC"))
    alerts = PumpOnsetDetector().detect(trades)
    assert [alert.symbol for alert in alerts] == ["BBB/BTC"]


def test_alert_ids_are_deterministic(pumped_market):
    trades, _ = pumped_market
    first = PumpOnsetDetector().detect(trades)
    again = PumpOnsetDetector().detect(
        trades.sample(fraction=1.0, shuffle=True, seed=4).sort("venue", "symbol", "ts", maintain_order=True)
    )
    assert [a.id for a in first] == [a.id for a in again]


def test_empty_input():
    assert PumpOnsetDetector().detect(quiet_trades().clear()) == []
    assert isinstance(taker_orders(quiet_trades()), pl.DataFrame)


def test_follow_up_reads_only_its_own_symbol():
    at = START + timedelta(hours=4)
    # AAA's data ends right after its pump; BBB (sorted after it) goes on for hours and falls.
    trades = market(quiet_trades("AAA/BTC", hours=4), burst(at), quiet_trades("BBB/BTC", hours=9, price=5e-6))
    alerts = PumpOnsetDetector().detect(trades)
    assert [alert.symbol for alert in alerts] == ["AAA/BTC"]
    assert alerts[0].followup["dump"]["status"] == "pending"


def test_a_smaller_crowd_suffices_when_the_price_jump_is_big():
    at = START + timedelta(hours=4)
    big_move = market(quiet_trades(), burst(at, orders=10, seconds=3, rise=0.4))
    small_move = market(quiet_trades(), burst(at, orders=10, seconds=3, rise=0.05))
    alerts = PumpOnsetDetector().detect(big_move)
    assert len(alerts) == 1 and alerts[0].evidence["orders"]["now"] < 20
    assert alerts[0].evidence["rule"] == "big_move"
    assert PumpOnsetDetector().detect(small_move) == []
    assert PumpOnsetDetector(PumpOnsetSettings(big_move_price_rise=0.5)).detect(big_move) == []
