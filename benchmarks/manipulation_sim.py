"""Wash trading, spoofing and layering on simulated ground truth: precision, recall, false alarms, speed.

    python benchmarks/manipulation_sim.py [--seeds N] [--trades N]

Quality: for each injected rate (episodes per symbol-day, from rare to common) and
each seed, a 12-symbol, 48-hour market is simulated and every wash/spoof detector
runs on it through the batch engine (trades with accounts, L3 order events, and
the L2 book rebuilt from them). Alerts are matched to labels by
`tapewatch.episodes` (same symbol and typology, overlapping spans, a shared
account where both name accounts). A clean market (no wash, no spoofing; pumps,
news and bursts on) gives the false-alarm rate.
Targets (issue 5): precision ≥ 0.9 and recall ≥ 0.9 for self-trades, round trips,
L3 spoofing and layering; ≤ 1 false alarm per symbol-day on clean markets.

Speed: the simulated tape is tiled to `--trades` rows (default 10M; copies laid end
to end in time, each with its own accounts) and the trade detectors are timed in batch; the
L3 detector is timed on the order events. Target: ≥ 1M trades/s.
"""

from __future__ import annotations

import argparse
import time
from datetime import timedelta

import polars as pl
from rich.table import Table

from tapewatch.config import Settings
from tapewatch.detect.registry import build_detectors
from tapewatch.detect.spoofing_l2 import book_events, l2_from_l3
from tapewatch.engine.batch import run_batch
from tapewatch.episodes import EpisodeScore, score_episodes
from tapewatch.records import BAR_SCHEMA, empty_frame
from tapewatch.report.summary import wide_console
from tapewatch.sources.sim_config import SimulationConfig
from tapewatch.sources.simulator import SimulatedMarket, simulate_market

RATES = (0.2, 1.0, 5.0)
SYMBOLS = 12
HOURS = 48.0
"""Two days, so the public-tape tests (one decision per symbol and UTC day, made when the
next day begins) decide the first day."""
TYPOLOGIES = {
    "wash_accounts": ("wash_trading",),
    "wash_public": ("wash_trading",),
    "spoofing_l3": ("spoofing", "layering"),
    "spoofing_l2": ("spoofing", "layering"),
}
DETECTORS = tuple(TYPOLOGIES)
TARGETED = ("wash_trading/self_trade", "wash_trading/round_trip", "spoofing", "layering")
MAX_CLEAN_FALSE_ALARMS = 1.0


def market_for(seed: int, rate: float) -> SimulatedMarket:
    return simulate_market(
        SimulationConfig(
            seed=seed,
            symbols=SYMBOLS,
            hours=HOURS,
            wash_groups_per_symbol_day=rate,
            spoofs_per_symbol_day=rate,
        )
    )


def detect(market: SimulatedMarket, names: tuple[str, ...]) -> list:
    detectors = build_detectors(Settings(), list(names))
    book = book_events(l2_from_l3(market.orders), market.trades)
    return run_batch(detectors, market.trades, empty_frame(BAR_SCHEMA), orders=market.orders, book=book)


Tallies = dict[tuple[float, str, str], EpisodeScore]
"""Scores summed over seeds per (rate, detector, typology[/scheme]); rate 0 is the clean market."""


def quality(seeds: int) -> Tallies:
    """Every detector on every seed and rate, scored against the injected episodes."""
    tallies: Tallies = {}
    symbol_days = SYMBOLS * HOURS / 24
    for rate in (0.0, *RATES):
        for seed in range(1, seeds + 1):
            market = market_for(seed, rate)
            labels = market.labels.filter(pl.col("typology") != "pump_and_dump")
            alerts = detect(market, DETECTORS)
            for name in DETECTORS:
                mine = [alert for alert in alerts if alert.detector == name]
                for score in score_episodes(mine, labels, symbol_days, typologies=TYPOLOGIES[name]):
                    key = (rate, name, score.name)
                    tallies[key] = tallies[key] + score if key in tallies else score
    return tallies


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def quality_table(tallies: Tallies) -> Table:
    table = Table(title="Simulated ground truth (summed over seeds)")
    for column in (
        "rate/sym-day",
        "detector",
        "typology",
        "labels",
        "alerts",
        "recall",
        "precision",
        "FA/sym-day",
    ):
        table.add_column(column, justify="right" if column not in ("detector", "typology") else "left")
    for (rate, name, typology), tally in sorted(tallies.items()):
        if not tally.labels and not tally.alerts:
            continue
        table.add_row(
            f"{rate:g}",
            name,
            typology,
            str(tally.labels),
            str(tally.alerts),
            _ratio(tally.recall),
            _ratio(tally.precision),
            f"{tally.false_alarms_per_symbol_day:.3f}",
        )
    return table


def verdicts(tallies: Tallies) -> list[str]:
    """Target lines: each typology's best account-level detector over all injected rates, and clean FA."""
    lines = []
    owners = {"wash_trading": "wash_accounts", "spoofing": "spoofing_l3", "layering": "spoofing_l3"}
    for typology in TARGETED:
        owner = owners[typology.split("/")[0]]
        injected = [
            t for (rate, name, kind), t in tallies.items() if rate > 0 and name == owner and kind == typology
        ]
        total = (
            sum(injected[1:], start=injected[0]) if injected else EpisodeScore(typology, None, 0, 0, 0, 0, 0)
        )
        ok = (total.recall or 0) >= 0.9 and (total.precision or 0) >= 0.9
        lines.append(
            f"{owner} {typology}: recall {_ratio(total.recall)}, precision {_ratio(total.precision)} "
            f"(targets ≥ 0.9) {'MET' if ok else 'MISSED'}"
        )
    for name in DETECTORS:
        clean = [t for (rate, n, kind), t in tallies.items() if rate == 0 and n == name and "/" not in kind]
        false = sum(t.false_alarms for t in clean)
        days = max((t.symbol_days for t in clean), default=0.0)
        per_day = false / days if days else 0.0
        verdict = "MET" if per_day <= MAX_CLEAN_FALSE_ALARMS else "MISSED"
        lines.append(
            f"{name} on clean markets: {false} false alarm(s), {per_day:.3f} per symbol-day "
            f"(target ≤ {MAX_CLEAN_FALSE_ALARMS:g}) {verdict}"
        )
    return lines


def tiled_trades(market: SimulatedMarket, rows: int) -> pl.DataFrame:
    """Copies of the tape laid end to end in time (each with its own accounts) until `rows` trades:
    the same symbols over many days, as a long backfill is."""
    copies = -(-rows // market.trades.height)
    span = timedelta(hours=HOURS)
    base = market.trades.select(
        "ts", "venue", "symbol", "price", "amount", "side", "trade_id", "buyer", "seller"
    )
    tiled = pl.concat(
        base.with_columns(
            pl.col("ts") + span * k,
            pl.col("trade_id") + f"-{k}",
            pl.col("buyer") + f"-{k}",
            pl.col("seller") + f"-{k}",
        )
        for k in range(copies)
    )
    return tiled.head(rows).sort("venue", "symbol", "ts", maintain_order=True)


def speed(rows: int) -> list[str]:
    market = market_for(1, 1.0)
    trades = tiled_trades(market, rows)
    lines = []
    for name in ("wash_accounts", "wash_public"):
        (detector,) = build_detectors(Settings(), [name])
        started = time.perf_counter()
        alerts = detector.detect(trades)
        seconds = time.perf_counter() - started
        rate = trades.height / seconds
        lines.append(
            f"{name}: {trades.height:,} trades in {seconds:.2f}s = {rate / 1e6:.2f}M trades/s, "
            f"{len(alerts):,} alerts (target ≥ 1M/s) {'MET' if rate >= 1e6 else 'MISSED'}"
        )
    (l3,) = build_detectors(Settings(), ["spoofing_l3"])
    started = time.perf_counter()
    l3.detect(market.orders)
    seconds = time.perf_counter() - started
    lines.append(
        f"spoofing_l3: {market.orders.height:,} order events in {seconds:.2f}s = "
        f"{market.orders.height / seconds / 1e6:.2f}M events/s "
        f"({market.orders.height / market.trades.height:.0f} order events per trade)"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per injected rate (0: speed only)")
    parser.add_argument("--trades", type=int, default=10_000_000, help="trades for the speed run")
    args = parser.parse_args()
    console = wide_console()
    if args.seeds:
        started = time.perf_counter()
        tallies = quality(args.seeds)
        console.print(quality_table(tallies))
        for line in verdicts(tallies):
            console.print(line, highlight=False)
        console.print(f"(quality runs took {time.perf_counter() - started:.0f}s)")
    for line in speed(args.trades):
        console.print(line, highlight=False)


if __name__ == "__main__":
    main()
