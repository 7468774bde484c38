from datetime import datetime, timedelta

import polars as pl
import pytest
from conftest import START, burst, market, quiet_trades

from tapewatch.detect.pump.pump_onset import PumpOnsetDetector
from tapewatch.detect.pump.settings import PumpOnsetSettings
from tapewatch.errors import InputError
from tapewatch.io.derive import taker_orders
from tapewatch.records import TRADE_SCHEMA, conform

PUMP_AT = START + timedelta(hours=4)


def real_pump(at: datetime = PUMP_AT, *, rise: float = 0.3) -> pl.DataFrame:
    """What the dev pumps look like: 300 taker buy orders in 10 s, each sweeping two levels, +`rise`."""
    return burst(at, orders=300, seconds=10, rise=rise)


def bad_print(at: datetime, *, price: float = 3e-4) -> pl.DataFrame:
    """One trade 30× away from a 1e-5 market, as a bad tick or a fat finger prints it."""
    row = {"ts": [at], "venue": "testex", "symbol": "AAA/BTC", "price": [price], "amount": [5.0]}
    return conform(pl.DataFrame(row | {"side": "buy"}), TRADE_SCHEMA)


def trade_times(trades: pl.DataFrame) -> list[datetime]:
    return trades.get_column("ts").unique().sort().to_list()


def within_two_trades(moment: datetime, expected: datetime, trades: pl.DataFrame) -> bool:
    """`moment` is `expected` or one of the two trade times either side of it."""
    times = trade_times(trades)
    return abs(times.index(moment) - times.index(expected)) <= 2


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
    assert evidence["orders"]["now"] >= 20
    assert evidence["orders"]["now"] / evidence["orders"]["baseline"] >= 100
    price = evidence["price"]
    assert price["baseline_median"] < price["baseline_high"] < price["now_median"] <= price["now_max"]
    assert price["rise"] >= 0.03 and price["now_median"] / price["baseline_high"] - 1 == pytest.approx(
        price["rise"], abs=1e-4
    )
    assert evidence["buy_share"]["now"] == 1.0
    assert evidence["trades"]["now"] == 2 * evidence["orders"]["now"]  # every order swept two levels
    assert evidence["rush_orders"]["now"] == evidence["orders"]["now"]  # every order a buy of 2 fills


def test_dump_follow_up_confirms_when_price_gives_back_the_rise(pumped_market):
    trades, _at = pumped_market
    dump = PumpOnsetDetector().detect(trades)[0].followup["dump"]
    assert dump["status"] == "confirmed"
    assert dump["peak_gain"] > 0.2
    assert dump["confirmed_at"] > dump["peak_at"]


def test_dump_follow_up_is_pending_when_data_ends_first():
    trades = market(quiet_trades(hours=4), burst(PUMP_AT))
    assert PumpOnsetDetector().detect(trades)[0].followup["dump"]["status"] == "pending"


def test_quiet_market_raises_nothing_and_the_same_market_pumped_does():
    quiet = quiet_trades(hours=12, per_minute=6)
    assert PumpOnsetDetector().detect(quiet) == []
    assert len(PumpOnsetDetector().detect(market(quiet, real_pump()))) == 1


def test_sell_crowd_pushing_the_price_down_is_not_a_pump_but_the_buy_crowd_is():
    assert PumpOnsetDetector().detect(market(quiet_trades(), burst(PUMP_AT, side="sell"))) == []
    assert len(PumpOnsetDetector().detect(market(quiet_trades(), burst(PUMP_AT, side="buy")))) == 1


def test_taker_sells_into_a_rising_price_still_make_a_pump():
    """Early in real pumps the pumpers' limit bids are hit by sellers: the direction is the price's."""
    sells_hitting_rising_bids = real_pump().with_columns(side=pl.lit("sell"))
    alerts = PumpOnsetDetector().detect(market(quiet_trades(), sells_hitting_rising_bids))
    assert len(alerts) == 1 and alerts[0].evidence["buy_share"]["now"] == 0.0


def test_one_big_order_sweeping_many_levels_is_not_a_crowd_but_as_many_orders_are():
    sweep = burst(PUMP_AT, orders=1, fills_per_order=80, rise=0.2)
    assert taker_orders(sweep).height == 1
    assert PumpOnsetDetector().detect(market(quiet_trades(), sweep)) == []
    crowd = burst(PUMP_AT, orders=80, fills_per_order=1, seconds=3, rise=0.2)
    assert taker_orders(crowd).height == 80
    assert len(PumpOnsetDetector().detect(market(quiet_trades(), crowd))) == 1


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
    small = market(quiet_trades(), burst(PUMP_AT, orders=30, seconds=20, rise=0.1))
    assert PumpOnsetDetector().detect(small) == []
    assert len(PumpOnsetDetector(PumpOnsetSettings(min_orders=4, min_rate_ratio=20)).detect(small)) == 1


def test_the_rise_is_measured_against_the_symbols_own_price_range():
    """A +15 % burst is a move in a coin that trades in a narrow band, not in one that swings ±15 %."""
    calm = quiet_trades()
    swing = pl.when(pl.int_range(pl.len()) % 2 == 0).then(0.85).otherwise(1.15)
    wide = calm.with_columns(price=pl.col("price") * swing)
    level = float(calm.get_column("price").median())
    rise = burst(PUMP_AT, orders=120, seconds=6, price=level, rise=0.15)
    assert len(PumpOnsetDetector().detect(market(calm, rise))) == 1
    assert PumpOnsetDetector().detect(market(wide, rise)) == []


def test_symbols_are_independent():
    pump = burst(PUMP_AT, symbol="BBB/BTC")
    trades = market(quiet_trades("AAA/BTC"), quiet_trades("BBB/BTC", seed=9), pump)
    alerts = PumpOnsetDetector().detect(trades)
    assert [alert.symbol for alert in alerts] == ["BBB/BTC"]


def test_same_trades_in_any_row_order_give_identical_alerts():
    """Rows sharing a timestamp (a sweep, a buy and a sell in one millisecond) come in any order."""
    pump = burst(PUMP_AT, orders=300, seconds=10, rise=0.3, fills_per_order=3)
    middle_fill_sells = pl.when(pl.int_range(pl.len()) % 3 == 1).then(pl.lit("sell")).otherwise("side")
    mixed = pump.with_columns(side=middle_fill_sells)
    trades = market(quiet_trades(), mixed)
    expected = [alert.model_dump() for alert in PumpOnsetDetector().detect(trades)]
    assert len(expected) == 1
    for seed in range(5):
        shuffled = market(trades.sample(fraction=1.0, shuffle=True, seed=seed))
        assert [alert.model_dump() for alert in PumpOnsetDetector().detect(shuffled)] == expected


def test_a_bad_print_an_hour_before_does_not_hide_the_pump():
    clean = market(quiet_trades(), real_pump())
    dirty = market(clean, bad_print(PUMP_AT - timedelta(hours=1)))
    [expected] = PumpOnsetDetector().detect(clean)
    [alert] = PumpOnsetDetector().detect(dirty)
    assert within_two_trades(alert.detected_at, expected.detected_at, dirty)
    assert alert.evidence["price"]["baseline_median"] == pytest.approx(
        expected.evidence["price"]["baseline_median"], rel=0.01
    )


def test_a_bad_print_in_the_first_second_neither_hides_nor_makes_a_pump():
    print_at = PUMP_AT + timedelta(milliseconds=500)
    clean = market(quiet_trades(), real_pump())
    dirty = market(clean, bad_print(print_at))
    [expected] = PumpOnsetDetector().detect(clean)
    [alert] = PumpOnsetDetector().detect(dirty)
    assert within_two_trades(alert.detected_at, expected.detected_at, dirty)
    crowd_without_move = market(quiet_trades(), real_pump(rise=0.0))
    assert PumpOnsetDetector().detect(crowd_without_move) == []
    assert PumpOnsetDetector().detect(market(crowd_without_move, bad_print(print_at))) == []


def jump_after_flat_crowd(orders: int, *, pause_s: float = 0.6, crowd_s: float = 10.0) -> pl.DataFrame:
    """A crowd of 300 orders at the old price for `crowd_s`, then `orders` single-fill buys at +30 % in 0.3 s
    after a `pause_s` pause: the burst window's median stays flat, only its end has moved."""
    jump_at = PUMP_AT + timedelta(seconds=crowd_s + pause_s)
    jump = burst(jump_at, orders=orders, seconds=0.3, price=1.3e-5, rise=0.0, fills_per_order=1)
    return market(quiet_trades(), burst(PUMP_AT, orders=300, seconds=crowd_s, rise=0.0), jump)


def test_the_latest_orders_confirm_a_rise_only_when_enough_and_recent():
    """The price may be confirmed by the trades of the window's latest confirm_min_orders orders alone,
    when they lie in its last confirm_window_s: a crowd's first move is seen without waiting for the
    window's median."""
    [alert] = PumpOnsetDetector().detect(jump_after_flat_crowd(orders=12))
    assert 0 < alert.evidence["price"]["median_over_s"] <= 0.3  # the jump's orders only
    assert alert.evidence["price"]["rise"] >= 0.05
    assert PUMP_AT + timedelta(seconds=10.6) < alert.detected_at <= PUMP_AT + timedelta(seconds=10.9)
    assert PumpOnsetDetector().detect(jump_after_flat_crowd(orders=5)) == []
    # 13 orders reach back past the pause, beyond the last 0.5 s.
    assert PumpOnsetDetector(PumpOnsetSettings(confirm_min_orders=13)).detect(jump_after_flat_crowd(12)) == []


def test_a_fast_crowds_unmoved_first_orders_do_not_hold_back_the_confirmation():
    """30 orders a second at the old price, then 10 at +30 % with no pause: most trades of the last half
    second are unmoved, the latest 8 orders have moved, and they confirm the rise as the jump prints."""
    trades = jump_after_flat_crowd(orders=10, pause_s=0.0, crowd_s=2.0)
    [alert] = PumpOnsetDetector().detect(trades)
    assert alert.detected_at <= PUMP_AT + timedelta(seconds=2.3)
    assert alert.evidence["price"]["median_over_s"] < 0.5


def test_a_lone_bad_print_in_a_quiet_tape_is_not_a_pump():
    quiet_with_print = market(quiet_trades(), bad_print(PUMP_AT))
    assert PumpOnsetDetector().detect(quiet_with_print) == []
    pumped = market(quiet_with_print, real_pump(PUMP_AT + timedelta(hours=1)))
    assert len(PumpOnsetDetector().detect(pumped)) == 1


def test_empty_input():
    assert PumpOnsetDetector().detect(quiet_trades().clear()) == []
    assert taker_orders(quiet_trades()).height == quiet_trades().height


def test_follow_up_reads_only_its_own_symbol():
    # AAA's data ends right after its pump; BBB (sorted after it) goes on for hours and falls.
    trades = market(
        quiet_trades("AAA/BTC", hours=4), burst(PUMP_AT), quiet_trades("BBB/BTC", hours=9, price=5e-6)
    )
    alerts = PumpOnsetDetector().detect(trades)
    assert [alert.symbol for alert in alerts] == ["AAA/BTC"]
    assert alerts[0].followup["dump"]["status"] == "pending"


def test_symbols_beyond_two_thousand_and_far_apart_times_keep_the_clock_in_order():
    """The symbols share one clock laid end to end: a pump on the 2,100th symbol is caught as when
    alone, and a symbol with trades centuries away neither breaks the clock nor hides it."""
    pumped = market(quiet_trades(hours=5, per_minute=6), real_pump())
    one_trade = pumped.head(1)
    others = pl.concat(
        [one_trade.with_columns(symbol=pl.lit(f"A{number:04d}/BTC")) for number in range(2100)]
        + [
            one_trade.with_columns(
                symbol=pl.lit("A9999/BTC"), ts=pl.lit(datetime(1194, 12, 13), pl.Datetime("us", "UTC"))
            )
        ]
    )
    last = pumped.with_columns(symbol=pl.lit("ZZZ/BTC"))
    alone = PumpOnsetDetector().detect(last)
    crowded = PumpOnsetDetector().detect(pl.concat([others, last]).sort("venue", "symbol", "ts"))
    assert len(alone) == 1
    assert [(a.symbol, a.detected_at, a.score) for a in crowded] == [
        (a.symbol, a.detected_at, a.score) for a in alone
    ]


def test_timestamps_too_far_apart_for_any_clock_are_a_clear_error():
    trades = quiet_trades(hours=1, per_minute=6).head(2)
    far = pl.concat(
        [
            trades.with_columns(
                symbol=pl.lit(f"S{number}"),
                ts=pl.Series([datetime(1, 1, 2), datetime(9999, 1, 1)])
                .dt.replace_time_zone("UTC")
                .cast(pl.Datetime("us", "UTC")),
            )
            for number in range(40)
        ]
    )
    with pytest.raises(InputError, match="ts: trades from 0001-01-02.* to 9999-01-01"):
        PumpOnsetDetector().detect(far.sort("venue", "symbol", "ts"))
