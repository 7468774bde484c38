from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats

from tapewatch.detect.wash.public_stats import (
    Mantissas,
    benford_test,
    clustering_test,
    hill_exponent,
    mann_whitney_auc,
    mantissas,
)
from tapewatch.detect.wash.settings import WashPublicSettings
from tapewatch.detect.wash.wash_public import WashPublicDetector
from tapewatch.engine.stream import StreamEngine
from tapewatch.records import TRADE_SCHEMA, conform

DAY0 = datetime(2024, 3, 1, tzinfo=UTC)
RNG = np.random.default_rng


def genuine_sizes(n: int, seed: int = 0, round_share: float = 0.2) -> np.ndarray:
    """Log-normal sizes (log-sd 1: close to Benford, off by a trivial MAD of 0.003), a share typed as
    round numbers with two significant digits."""
    rng = RNG(seed)
    sizes = rng.lognormal(3.0, 1.0, n)
    rounded = rng.random(n) < round_share
    scale = 10.0 ** (np.floor(np.log10(sizes[rounded])) - 1)
    sizes[rounded] = np.round(sizes[rounded] / scale) * scale  # two significant digits
    return sizes


def one_window(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Sizes as a sample of a single window (the tests run on many windows at once)."""
    return sizes, np.zeros(sizes.size, dtype=np.int64), 1


def tape(
    days: int, per_day: int, *, seed: int = 0, bot_share: float = 0.0, symbol: str = "AAA/BTC"
) -> pl.DataFrame:
    """`days` UTC days of genuine trades (price a random walk on a tick grid: half the trades move it); a
    bot optionally adds prints of one fixed round size at the last price (volume without impact)."""
    rng = RNG(seed)
    n = days * per_day
    ts_us = np.sort(rng.integers(0, days * 86_400_000_000, n))
    price = 1e-5 + 1e-8 * np.cumsum(rng.choice([-1, 0, 0, 1], n))
    amount = genuine_sizes(n, seed)
    bots = int(n * bot_share)
    if bots:
        at = np.sort(rng.integers(0, days * 86_400_000_000, bots))
        last = np.clip(np.searchsorted(ts_us, at, side="right") - 1, 0, None)
        ts_us, price = np.concatenate([ts_us, at]), np.concatenate([price, price[last]])
        amount = np.concatenate([amount, np.full(bots, 50_000.0)])
        order = np.argsort(ts_us, kind="stable")
        ts_us, price, amount = ts_us[order], price[order], amount[order]
    frame = pl.DataFrame(
        {
            "ts": pl.Series(ts_us + int(DAY0.timestamp() * 1e6)).cast(pl.Datetime("us", "UTC")),
            "venue": "testex",
            "symbol": symbol,
            "price": price,
            "amount": amount,
            "side": rng.choice(["buy", "sell"], ts_us.size),
        }
    )
    return conform(frame, TRADE_SCHEMA)


def test_mantissa_reads_decimal_sizes_exactly():
    assert np.floor(mantissas(np.array([0.3, 0.7, 3.0, 1000.0, 0.0999]))).tolist() == [3, 7, 3, 1, 9]


def test_benford_sample_conforms_and_uniform_digits_do_not():
    benford_like = 10 ** RNG(1).uniform(0, 5, 20_000)  # log-uniform: exactly Benford
    uniform_digits = RNG(2).integers(1, 10, 20_000) * 10.0 ** RNG(3).integers(0, 4, 20_000)
    good, bad = (benford_test(Mantissas.of(*one_window(x))).at(0) for x in (benford_like, uniform_digits))
    assert good.effect < 0.006 and good.p_value > 1e-3  # Nigrini's close conformity
    assert bad.effect > 0.04 and bad.p_value < 1e-10


def test_round_clustering_found_when_injected_and_not_in_lognormal():
    lognormal = RNG(4).lognormal(3, 2, 20_000)
    injected = genuine_sizes(20_000, seed=4, round_share=0.3)
    plain, clustered = (
        clustering_test(Mantissas.of(*one_window(x)), 10, 3, 1.3, 40).at(0) for x in (lognormal, injected)
    )
    assert plain.effect == pytest.approx(1.0, abs=0.15)
    assert plain.p_value < 1e-6  # no human clustering at all: below the plausible range
    assert clustered.effect > 3 and clustered.p_value == 1.0  # genuine-looking: inside the range


def test_hill_recovers_pareto_exponent():
    sizes = RNG(5).pareto(1.5, 50_000) + 1  # Pareto with tail exponent 1.5
    alpha, se, k = (x[0] for x in hill_exponent(*one_window(sizes), 0.1, 50))
    assert k == 5000
    assert alpha == pytest.approx(1.5, abs=3 * se) and se < 0.03


def test_one_repeated_size_in_the_tail_is_infinite_exponent():
    assert hill_exponent(*one_window(np.full(1000, 7.0)), 0.1, 50)[0][0] == np.inf


def test_mann_whitney_on_many_windows_matches_scipy_per_window():
    """Ranks, ties and the continuity-corrected normal approximation as scipy computes them, per window."""
    rng = RNG(6)
    ids = rng.integers(0, 5, 3000)
    values = rng.integers(0, 40, 3000).astype(float)  # many ties
    first = rng.random(3000) < 0.4
    first[ids == 4] = True  # one window without a second group
    auc, p_value = mann_whitney_auc(values, first, ids, 6)  # window 5 is empty
    for window in range(4):
        x, y = values[(ids == window) & first], values[(ids == window) & ~first]
        expected = stats.mannwhitneyu(x, y, alternative="greater", method="asymptotic")
        assert auc[window] == pytest.approx(expected.statistic / (x.size * y.size), rel=1e-12)
        assert p_value[window] == pytest.approx(expected.pvalue, rel=1e-12)
    assert auc[4:].tolist() == [0.5, 0.5] and p_value[4:].tolist() == [1.0, 1.0]


def test_bot_tape_alerts_with_low_confidence_evidence():
    alerts = WashPublicDetector().detect(tape(3, 3000, bot_share=0.5))
    assert [a.start for a in alerts] == [DAY0, DAY0 + timedelta(days=1)]  # the third day is never closed
    evidence = alerts[0].evidence
    assert evidence["confidence"] == "low" and evidence["basis"] == "public trades, no account ids"
    assert len(evidence["tests_wash_like"]) >= 2
    for test in evidence["tests"].values():
        assert {"statistic", "p_value", "effect", "threshold", "n", "verdict"} <= set(test)
    assert alerts[0].typology == "wash_trading" and alerts[0].end == DAY0 + timedelta(days=1)
    assert alerts[0].detected_at >= alerts[0].end  # decided by the first trade after the window


def test_clean_tape_is_quiet_and_the_same_tape_with_a_bot_is_not():
    assert WashPublicDetector().detect(tape(3, 3000)) == []
    with_bot = WashPublicDetector().detect(tape(3, 3000, bot_share=0.5))  # the same trades plus the bot
    assert [(a.start, a.typology) for a in with_bot] == [
        (DAY0, "wash_trading"),
        (DAY0 + timedelta(days=1), "wash_trading"),
    ]


def test_huge_clean_sample_does_not_fire_on_tiny_deviations_but_on_a_real_one():
    """A 200k-trade day: Benford's p-value is tiny for a trivial deviation, but the effect stays small;
    2 % of the same day's trades at one repeated size is a real deviation."""
    settings = WashPublicSettings(min_tests=1)
    detector = WashPublicDetector(settings)
    frame = tape(2, 200_000, seed=3)
    decided = detector.evaluate(frame)
    assert len(decided) == 1
    assert not any(check.verdict == "wash_like" for check in decided[0][1])
    benford = decided[0][1][0].result
    assert benford.p_value < settings.max_p_value and benford.effect < settings.benford_max_mad
    assert detector.detect(frame) == []
    bot = tape(2, 200_000, seed=3, bot_share=0.02)  # the twin: the same day with 2 % of one repeated size
    (alert,) = detector.detect(bot)
    assert alert.start == DAY0 and "tail_exponent" in alert.evidence["tests_wash_like"]


def test_stream_gives_the_batch_alerts():
    trades = pl.concat([tape(4, 2000, bot_share=0.5), tape(4, 1500, seed=9, symbol="BBB/BTC")]).sort(
        "venue", "symbol", "ts"
    )
    detector = WashPublicDetector()
    batch = detector.detect(trades)
    engine = StreamEngine([WashPublicDetector()])
    streamed = []
    for chunk in trades.sort("ts").iter_slices(2500):
        engine.push(chunk, arrived_at=0.0)
        streamed += [item.alert for item in engine.step(now=0.0)]
    streamed += [item.alert for item in engine.finish()]
    assert len(batch) == 3
    key = lambda alerts: sorted((a.id, a.detected_at, a.score, a.evidence["trades"]) for a in alerts)
    assert key(streamed) == key(batch)


def test_windows_tested_together_decide_as_alone_and_in_any_row_order():
    """All windows are tested at once without mixing; rows are gathered per symbol whatever their order,
    as long as each symbol is in time order."""
    bot = tape(3, 2000, bot_share=0.5)
    trades = pl.concat([bot, tape(3, 1500, seed=9, symbol="BBB/BTC")])
    key = lambda frame: sorted(
        (w["symbol"], w["window"], w["trades"], checks) for w, checks in WashPublicDetector().evaluate(frame)
    )
    grouped = key(trades.sort("venue", "symbol", "ts"))
    assert len(grouped) == 4 and key(trades.sort("ts")) == grouped
    assert key(bot) == grouped[:2]


def test_empty_input_and_thin_windows_decide_nothing():
    assert WashPublicDetector().detect(conform(pl.DataFrame(), TRADE_SCHEMA)) == []
    thin = tape(3, 100, bot_share=0.5)
    assert WashPublicDetector().evaluate(thin) == []  # below min_trades
    assert WashPublicDetector().detect(thin) == []
    enough = WashPublicDetector(WashPublicSettings(min_trades=100))  # the same windows are decided above it
    assert len(enough.evaluate(thin)) == 2 and len(enough.detect(thin)) == 2


def test_price_impact_alone_suffices_and_the_others_need_company():
    from tapewatch.detect.wash.public_stats import TestResult
    from tapewatch.detect.wash.settings import WashPublicSettings
    from tapewatch.detect.wash.wash_public import Check

    def checks(*wash_like: str) -> list[Check]:
        result = TestResult(statistic=9.0, p_value=1e-9, effect=1.0, n=1000)
        return [
            Check(test, result, {}, "wash_like" if test in wash_like else "normal", 1.0)
            for test in ("benford", "round_clustering", "tail_exponent", "price_impact")
        ]

    detector = WashPublicDetector()
    assert detector.alerts_on(checks("price_impact"))
    assert not detector.alerts_on(checks("benford")) and not detector.alerts_on(checks("tail_exponent"))
    assert detector.alerts_on(checks("benford", "tail_exponent"))
    strict = WashPublicDetector(WashPublicSettings(sufficient_tests=[]))
    assert not strict.alerts_on(checks("price_impact"))
