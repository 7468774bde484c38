"""False alarms and detection of the public-trade wash tests (Cong et al. 2023), per test and overall.

    python benchmarks/wash_public.py [PUMP_EVENTS_DIR]

Rates are per decided symbol-window (default one UTC day, ≥ min_trades trades):
the share of windows where each test votes wash-like, and where the detector
alerts (≥ min_tests votes, or a vote of a sufficient test). Samples:
- real Binance small caps (PUMP_EVENTS_DIR, default ../shared/data/pump-events/dev),
  taken as background: every alert counts as a false alarm (skipped when absent);
- simulated clean markets (no wash groups), several seeds: false alarms;
- simulated markets with many wash groups: detection;
- a synthetic wash-heavy tape: a clean simulated tape plus fixed round-sized prints
  at the last traded price (volume without price impact, as a volume-faking bot prints it).
On the real trades it also times `detect` (best of 3): all windows are tested at once,
so the detector should cost a small fraction of reading the files (benchmarks/throughput.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
from _common import DEV_EVENTS, best_of

from tapewatch.detect.wash.wash_public import TESTS, WashPublicDetector
from tapewatch.io.readers import read_inputs
from tapewatch.records import TRADE_SCHEMA, conform
from tapewatch.sources.simulator.market import SimulationConfig, simulate_market

SEEDS = (1, 2, 3, 4)
SIM = {"symbols": 6, "hours": 96.0}
WASH_GROUPS_PER_DAY = 5.0
BOT_SHARE = 0.3
"""Synthetic sample: bot prints added, as a share of the clean tape's trades."""
BOT_SIZES = (20.0, 50.0, 100.0)
"""The bot's fixed sizes, in multiples of the symbol's median trade size rounded to one digit: with
BOT_SHARE they fake about three quarters of the volume (Cong et al. estimate over 70 % on unregulated venues)."""


def main() -> None:
    rows = [
        rates("simulated clean (false alarms)", simulated(0.0)),
        rates(
            f"simulated {WASH_GROUPS_PER_DAY:g} wash groups/day (detection)", simulated(WASH_GROUPS_PER_DAY)
        ),
        rates(f"synthetic volume bot, +{BOT_SHARE:.0%} prints (detection)", with_bot(simulated(0.0))),
    ]
    directory = Path(sys.argv[1]) if len(sys.argv) > 1 else DEV_EVENTS
    if directory.is_dir():
        trades = read_inputs(sorted(directory.glob("*.csv.gz"))).trades
        rows.insert(0, rates("real dev trades (false alarms)", [trades]))
        seconds, _ = best_of(3, lambda: WashPublicDetector().detect(trades))
        print(f"detect on {trades.height:,} real trades: {seconds * 1000:.0f} ms (best of 3)")
    else:
        print(f"real data directory '{directory}' not found: skipping the real-trade false-alarm rates")
    with pl.Config(
        tbl_cols=20, tbl_width_chars=200, tbl_hide_column_data_types=True, tbl_hide_dataframe_shape=True
    ):
        print(pl.DataFrame(rows))
    print("rates: share of decided symbol-windows where each test voted wash-like / the detector alerted")


def simulated(wash_groups: float) -> list[pl.DataFrame]:
    """One tape per seed, pumps and spoofs included (they are not wash trading)."""
    return [
        simulate_market(SimulationConfig(seed=seed, wash_groups_per_symbol_day=wash_groups, **SIM)).trades
        for seed in SEEDS
    ]


def with_bot(tapes: list[pl.DataFrame]) -> list[pl.DataFrame]:
    """Each tape with a volume bot added to every symbol."""
    return [
        pl.concat([tape, bot_prints(tape, seed)]).sort("venue", "symbol", "ts")
        for seed, tape in enumerate(tapes)
    ]


def bot_prints(tape: pl.DataFrame, seed: int) -> pl.DataFrame:
    """Fixed round-sized prints at random times, each at the price the symbol last traded (no impact)."""
    rng = np.random.default_rng(seed)
    parts = []
    for (venue, symbol), trades in tape.group_by("venue", "symbol", maintain_order=True):
        ts_us = trades["ts"].dt.epoch("us").to_numpy()
        count = int(trades.height * BOT_SHARE)
        at = np.sort(rng.integers(ts_us[0], ts_us[-1], count))
        last = np.clip(np.searchsorted(ts_us, at, side="right") - 1, 0, None)
        unit = float(f"{np.median(trades['amount'].to_numpy()):.0e}")
        parts.append(
            pl.DataFrame(
                {
                    "ts": pl.Series(at).cast(pl.Datetime("us", "UTC")),
                    "venue": venue,
                    "symbol": symbol,
                    "price": trades["price"].to_numpy()[last],
                    "amount": unit * rng.choice(BOT_SIZES, count),
                    "side": rng.choice(["buy", "sell"], count),
                }
            )
        )
    return conform(pl.concat(parts), TRADE_SCHEMA)


def rates(label: str, tapes: list[pl.DataFrame]) -> dict[str, object]:
    """Per-test wash-like rate and alert rate over every decided window of the tapes."""
    detector = WashPublicDetector()
    decided = [
        checks for tape in tapes for _, checks in detector.evaluate(tape.sort("venue", "symbol", "ts"))
    ]
    windows = len(decided)
    votes = [[c.verdict == "wash_like" for c in checks] for checks in decided]
    row: dict[str, object] = {"sample": label, "windows": windows}
    for index, test in enumerate(TESTS):
        row[test] = _rate(sum(v[index] for v in votes), windows)
    row["alerts"] = _rate(sum(detector.alerts_on(checks) for checks in decided), windows)
    return row


def _rate(count: int, total: int) -> str:
    return f"{count}/{total} ({count / total:.1%})" if total else "n/a"


if __name__ == "__main__":
    main()
