"""Wash trading, spoofing and layering on independent scenario families: held-out quality, and speed.

    python benchmarks/manipulation_sim.py [--families a,b] [--seeds N] [--symbols N] [--hours H]
                                          [--cut-rule f1|recall] [--trades N]

Quality. Every family registered in `tapewatch.sources.families` (generators written
independently of each other; `flow_sim` is the project's own simulator, pumps off) generates,
per seed, one market at each injected rate (0.2, 1 and 5 episodes per symbol-day) and one
honest-only market. Every wash/spoof detector runs on each market through the batch engine,
called as `tapewatch detect` calls it (trades with accounts, L3 order events, and the L2
book a public feed would show, rebuilt from the L3 events for `spoofing_l2`; when a family's
feed has no fills, the fills are inferred from the trades first), with default settings. Alerts are matched
to labels by `tapewatch.evaluate.episodes` (same symbol and typology, overlapping spans with 5 s of
slack, a shared account where both name accounts).

The one knob applied after detection is an alert-score cut (keep alerts with score ≥ cut),
here on each detector's raw score (`raw_score` in the evidence): the shipped calibration
(`tapewatch.detect.calibration`) was fitted on every family, and being monotone it adds no
cut the raw score does not have. Leave one family out: for each held-out family and
detector, the cut is chosen on the OTHER families (all their seeds and rates, honest-only
markets included, typologies of the detector pooled) by `--cut-rule`: `f1` (default)
maximises F1, `recall` takes the highest cut keeping recall ≥ 0.95. With a single family
there is nothing to choose on and the held-out columns stay empty.

Printed, per family, injected rate and typology (wash_accounts also per wash scheme; never
pooled over rates): labels, alerts, recall and precision at the defaults (cut 0) and at the
held-out cut, with the target verdict (precision ≥ 0.95 and recall ≥ 0.95) on the held-out
figures; false alarms per symbol-day on each family's honest-only markets (target ≤ 0.1), at
the defaults and at the held-out cut; and one verdict line per detector and typology over
all held-out family × rate cells.

`wash_public` decides a symbol's UTC day when the next day's first trade arrives, so the last
day of a run is never decided: it is scored on the decided days only (labels starting
before the last UTC midnight of the run, symbol-days up to it). Hence the default 48 hours
(markets start at midnight): with 24 it would decide nothing; with 48 it decides one whole
day per symbol, and every rate gets 16 symbol-days per family and seed. A default run (one
seed, 8 symbols, four families) took about 8.5 minutes on the 2-core development machine.

Speed (`--seeds 0` runs it alone): a 12-symbol, 48-hour `flow_sim` tape is tiled to
`--trades` rows (default 10M; copies laid end to end in time, each with its own accounts) and
the trade detectors are timed in batch; `spoofing_l3` is timed through the batch engine on the
order events. Target: wash_accounts ≥ 1M trades/s.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import polars as pl
from rich.table import Table

from tapewatch.cli.summary import wide_console
from tapewatch.config import Settings
from tapewatch.detect.registry import build_detectors
from tapewatch.engine.batch import run_batch
from tapewatch.evaluate.episodes import EpisodeScore, GradedEpisodes, grade_episodes
from tapewatch.io.derive import book_events, l2_from_l3
from tapewatch.records import BAR_SCHEMA, Alert, empty_frame
from tapewatch.sources.families import FAMILIES
from tapewatch.sources.families.flow_sim import generate as flow_sim
from tapewatch.sources.simulator.market import SimulatedMarket

RATES = (0.2, 1.0, 5.0)
HONEST = 0.0
"""The rate key of honest-only markets."""
TYPOLOGIES = {
    "wash_accounts": ("wash_trading",),
    "wash_public": ("wash_trading",),
    "spoofing_l3": ("spoofing", "layering"),
    "spoofing_l2": ("spoofing", "layering"),
}
REPORTED = {
    "wash_accounts": ("wash_trading", "wash_trading/self_trade", "wash_trading/round_trip"),
    "wash_public": ("wash_trading",),
    "spoofing_l3": ("spoofing", "layering"),
    "spoofing_l2": ("spoofing", "layering"),
}
"""What each detector is scored on; wash_public cannot tell schemes apart (no accounts)."""
DETECTORS = tuple(TYPOLOGIES)
DAILY_WINDOW = ("wash_public",)
"""Detectors that decide a UTC day only when the next one begins."""
MIN_PRECISION = MIN_RECALL = 0.95
MAX_HONEST_FALSE_ALARMS = 0.1
CUT_RULES = ("f1", "recall")
SPEED_SYMBOLS, SPEED_HOURS = 12, 48.0

Key = tuple[str, float, str, str]
"""(family, rate — HONEST for honest-only markets, detector, typology[/scheme])."""
Grades = dict[Key, GradedEpisodes]
"""Alerts and labels graded per key, summed over seeds."""


def detect_family_market(market: SimulatedMarket, names: tuple[str, ...] = DETECTORS) -> list[Alert]:
    """The named detectors at default settings through the batch engine on trades + L3 order events,
    as `tapewatch detect` runs them, and on the L2 book those events imply — rebuilt here, with the
    fills a feed without fill rows leaves out inferred from the trades (`with_maker_fills`), which
    `tapewatch detect` does not do: a real public L2 feed shows the book after executions."""
    detectors = build_detectors(Settings(), list(names))
    book = book_events(l2_from_l3(with_maker_fills(market.orders, market.trades)), market.trades)
    return run_batch(detectors, market.trades, empty_frame(BAR_SCHEMA), orders=market.orders, book=book)


def with_maker_fills(orders: pl.DataFrame, trades: pl.DataFrame) -> pl.DataFrame:
    """The order events plus a `fill` for each resting order a trade executed, on every symbol whose
    feed has no fills of its own (executions only in the trades; a market may mix both feeds):
    without them the L2 book rebuilt for `spoofing_l2` would keep every executed order forever, a
    book no public feed shows.

    A trade's maker is its seller when the taker bought and its buyer when the taker sold; among
    the maker's open orders on that side and price the oldest fills first (price-time priority);
    order events apply before the trades of the same microsecond.
    """
    key = ["venue", "symbol"]
    with_fills = orders.filter(pl.col("action") == "fill").select(key).unique()
    bare = orders.join(with_fills, on=key, how="anti")
    if bare.is_empty():
        return orders
    inferred = _inferred_fills(bare, trades.join(bare.select(key).unique(), on=key, how="semi"))
    return pl.concat([orders, inferred.select(orders.columns)]).sort(*key, "ts", maintain_order=True)


def _inferred_fills(orders: pl.DataFrame, trades: pl.DataFrame) -> pl.DataFrame:
    """The fills alone that `with_maker_fills` infers from these symbols' order events and trades."""
    order_rows = orders.select(
        "venue", "symbol", "ts", "order_id", "account", "side", "price", "amount", "action", kind=pl.lit(0)
    )
    taker_bought = pl.col("side") == "buy"
    trade_rows = trades.filter(pl.col("side").is_not_null()).select(
        "venue",
        "symbol",
        "ts",
        order_id=pl.lit(None, dtype=pl.String),
        account=pl.when(taker_bought).then("seller").otherwise("buyer"),
        side=pl.when(taker_bought).then(pl.lit("sell")).otherwise(pl.lit("buy")),
        price="price",
        amount="amount",
        action=pl.lit("trade"),
        kind=pl.lit(1),
    )
    events = pl.concat([order_rows, trade_rows]).sort("venue", "symbol", "ts", "kind", maintain_order=True)
    return _fifo_fills(events)


def _fifo_fills(events: pl.DataFrame) -> pl.DataFrame:
    """Replays order events and trades (time order) against each maker's FIFO queues of open orders."""
    queues: dict[tuple, dict[str, float]] = {}
    """(venue, symbol, account, side, price) → open order id → open amount, oldest first."""
    placed: dict[tuple[str, str, str], tuple] = {}
    fills = []
    for venue, symbol, ts, order_id, account, side, price, amount, action, _ in events.iter_rows():
        level = (venue, symbol, account, side, round(price, 12))
        if action == "trade":
            queue = queues.get(level, {})
            for resting in list(queue):
                if amount <= 0:
                    break
                taken = min(amount, queue[resting])
                amount -= taken
                queue[resting] -= taken
                fills.append((venue, symbol, ts, resting, account, side, price, taken, "fill"))
                if queue[resting] <= 1e-12:
                    del queue[resting]
            continue
        key = (venue, symbol, order_id)
        if action == "modify" and placed.get(key) == level and order_id in queues[level]:
            queues[level][order_id] = amount  # a size change at the same price keeps its place
            continue
        if key in placed:
            queues[placed.pop(key)].pop(order_id, None)
        if action in ("new", "modify") and amount > 0:
            placed[key] = level
            queues.setdefault(level, {})[order_id] = amount
    columns = ["venue", "symbol", "ts", "order_id", "account", "side", "price", "amount", "action"]
    return pl.DataFrame(fills, schema={c: events.schema[c] for c in columns}, orient="row")


def scored_part(name: str, market: SimulatedMarket, hours: float) -> tuple[pl.DataFrame, float]:
    """The labels a detector can be held to in this `hours`-long market and the symbol-days it decided.

    Daily-window detectors never decide the run's last, still open UTC day: they are held to
    the labels that start before the last midnight and to the symbol-days up to it."""
    symbols = market.trades["symbol"].n_unique()
    if name not in DAILY_WINDOW:
        return market.labels, symbols * hours / 24
    first, last = market.trades["ts"].min(), market.trades["ts"].max()
    end = datetime(last.year, last.month, last.day, tzinfo=UTC)
    days = max((end - first) / timedelta(days=1), 0.0)
    return market.labels.filter(pl.col("start") < end), symbols * days


def with_raw_score(alert: Alert) -> Alert:
    """The alert scored by its detector's raw score: the shipped calibration was fitted on every
    family, so a cut on calibrated scores would have seen the held-out family. Calibration is
    monotone, so every calibrated cut is also a raw one."""
    return alert.model_copy(update={"score": float(alert.evidence.get("raw_score", alert.score))})


def grade_market(family: str, rate: float, market: SimulatedMarket, hours: float, grades: Grades) -> None:
    """Detect on one `hours`-long market and add its graded alerts to `grades`."""
    alerts = detect_family_market(market)
    for name in DETECTORS:
        labels, symbol_days = scored_part(name, market, hours)
        mine = [with_raw_score(alert) for alert in alerts if alert.detector == name]
        for graded in grade_episodes(mine, labels, symbol_days, typologies=TYPOLOGIES[name]):
            key = (family, rate, name, graded.name)
            grades[key] = grades[key] + graded if key in grades else graded


def grade_families(families: Iterable[str], seeds: int, symbols: int, hours: float) -> Grades:
    """Every family × (honest-only and each rate) × seed, graded per detector and typology."""
    grades: Grades = {}
    for family in families:
        generate = FAMILIES[family]
        for rate in (HONEST, *RATES):
            for seed in range(1, seeds + 1):
                market = generate(
                    seed, symbols=symbols, hours=hours, rate=rate or 1.0, honest_only=rate == HONEST
                )
                grade_market(family, rate, market, hours, grades)
    return grades


def _together(parts: list[GradedEpisodes]) -> GradedEpisodes:
    """Several typologies' alerts and labels as one (a non-empty list)."""
    return sum(parts[1:], start=parts[0])


def f1(score: EpisodeScore) -> float:
    precision, recall = score.precision or 0.0, score.recall or 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def training(grades: Grades, name: str, families: list[str]) -> GradedEpisodes | None:
    """A detector's alerts and labels on `families` (all seeds, rates and honest-only markets, its
    typologies pooled), or None when there are none."""
    parts = [
        graded
        for (family, _, detector, kind), graded in grades.items()
        if family in families and detector == name and kind in TYPOLOGIES[name]
    ]
    return _together(parts) if parts else None


def choose_cut(pooled: GradedEpisodes, rule: str) -> float:
    """The F1-best cut (the lowest of ties), or the highest cut keeping recall ≥ 0.95 (0 when none does)."""
    cuts = pooled.cuts
    if rule == "f1":
        scores = [f1(pooled.at(cut)) for cut in cuts]
        return float(cuts[scores.index(max(scores))])
    kept = [cut for cut in cuts if (pooled.at(cut).recall or 0.0) >= MIN_RECALL]
    return float(max(kept, default=0.0))


Cuts = dict[tuple[str, str], float | None]
"""(held-out family, detector) → the cut chosen on the other families (None: nothing to choose on)."""


def held_out_cuts(grades: Grades, families: list[str], rule: str) -> Cuts:
    cuts: Cuts = {}
    for family in families:
        others = [other for other in families if other != family]
        for name in DETECTORS:
            pooled = training(grades, name, others)
            cuts[family, name] = choose_cut(pooled, rule) if pooled is not None else None
    return cuts


def cut_table(grades: Grades, families: list[str], cuts: Cuts) -> Table:
    """Each held-out cut and what it scored on the families that chose it."""
    table = Table(title="Cuts chosen on the other families (typologies, rates and honest markets pooled)")
    for column in ("held out", "detector", "chosen on"):
        table.add_column(column)
    for column in ("cut", "recall", "precision", "F1"):
        table.add_column(column, justify="right")
    for (family, name), cut in sorted(cuts.items()):
        others = [other for other in families if other != family]
        pooled = training(grades, name, others)
        if cut is None or pooled is None:
            continue
        score = pooled.at(cut)
        table.add_row(
            family,
            name,
            ",".join(others),
            _cut(cut),
            _ratio(score.recall),
            _ratio(score.precision),
            f"{f1(score):.3f}",
        )
    return table


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _cut(cut: float | None) -> str:
    return "–" if cut is None else f"{cut:.3f}"


def target(score: EpisodeScore | None) -> str:
    """MET/MISSED against precision and recall ≥ 0.95; "–" when there is nothing to judge (no cut, or
    neither labels nor alerts). Alerts without labels fail on precision, labels without alerts on recall."""
    if score is None or not (score.labels or score.alerts):
        return "–"
    ok = (score.precision or 0.0) >= MIN_PRECISION and (score.recall or 0.0) >= MIN_RECALL
    return "MET" if ok else "MISSED"


def quality_table(grades: Grades, cuts: Cuts) -> Table:
    """Per family, injected rate, detector and typology: defaults and held-out cut side by side."""
    table = Table(
        title="Injected markets (summed over seeds): defaults (cut 0), then the cut chosen on the other "
        f"families; target precision ≥ {MIN_PRECISION:g} and recall ≥ {MIN_RECALL:g} held out"
    )
    for column in ("family", "rate", "detector", "typology"):
        table.add_column(column)
    for column in ("labels", "alerts", "recall", "precision", "cut", "alerts", "recall", "precision"):
        table.add_column(column, justify="right")
    table.add_column("held-out")
    for (family, rate, name, kind), graded in sorted(grades.items()):
        default = graded.at()
        if rate == HONEST or kind not in REPORTED[name] or not (default.labels or default.alerts):
            continue
        cut = cuts[family, name]
        held = graded.at(cut) if cut is not None else None
        table.add_row(
            family,
            f"{rate:g}",
            name,
            kind,
            str(default.labels),
            str(default.alerts),
            _ratio(default.recall),
            _ratio(default.precision),
            _cut(cut),
            str(held.alerts) if held else "–",
            _ratio(held.recall) if held else "–",
            _ratio(held.precision) if held else "–",
            target(held),
        )
    return table


def honest_table(grades: Grades, cuts: Cuts) -> Table:
    """False alarms per symbol-day on each family's honest-only markets, defaults and held-out cut."""
    table = Table(
        title=f"Honest-only markets: false alarms per symbol-day (target ≤ {MAX_HONEST_FALSE_ALARMS:g})"
    )
    for column in ("family", "detector"):
        table.add_column(column)
    for column in ("symbol-days", "alerts", "FA/sym-day", "default", "cut", "alerts", "FA/sym-day"):
        table.add_column(column, justify="right")
    table.add_column("held-out")
    for family, name in sorted({(family, name) for family, rate, name, _ in grades if rate == HONEST}):
        parts = [grades[family, HONEST, name, typology] for typology in TYPOLOGIES[name]]
        pooled = replace(_together(parts), symbol_days=parts[0].symbol_days)  # the same markets
        default, cut = pooled.at(), cuts[family, name]
        held = pooled.at(cut) if cut is not None else None
        table.add_row(
            family,
            name,
            f"{default.symbol_days:.1f}",
            str(default.alerts),
            f"{default.false_alarms_per_symbol_day:.3f}",
            _fa_verdict(default),
            _cut(cut),
            str(held.alerts) if held else "–",
            f"{held.false_alarms_per_symbol_day:.3f}" if held else "–",
            _fa_verdict(held),
        )
    return table


def _fa_verdict(score: EpisodeScore | None) -> str:
    if score is None:
        return "–"
    return "MET" if score.false_alarms_per_symbol_day <= MAX_HONEST_FALSE_ALARMS else "MISSED"


def verdicts(grades: Grades, cuts: Cuts) -> list[str]:
    """One line per detector and typology: held-out cells meeting the target, and the worst of them."""
    lines = []
    for name in DETECTORS:
        for kind in REPORTED[name]:
            cells = [
                (graded.at(cut), family, rate)
                for (family, rate, detector, k), graded in sorted(grades.items())
                if detector == name and k == kind and rate != HONEST
                if (cut := cuts[family, name]) is not None
            ]
            judged = [cell for cell in cells if target(cell[0]) != "–"]
            if not judged:
                continue
            met = sum(target(score) == "MET" for score, _, _ in judged)
            lines.append(
                f"{name} {kind} held out: {met}/{len(judged)} family×rate cells MET; "
                f"{_worst(judged, 'precision')}; {_worst(judged, 'recall')} "
                f"{'MET' if met == len(judged) else 'MISSED'}"
            )
    return lines


def _worst(cells: list[tuple[EpisodeScore, str, float]], measure: str) -> str:
    """The lowest defined `measure` among the cells, with where it was measured."""
    defined = [(getattr(score, measure), family, rate) for score, family, rate in cells]
    defined = [cell for cell in defined if cell[0] is not None]
    if not defined:
        return f"{measure} undefined"
    value, family, rate = min(defined)
    return f"lowest {measure} {value:.3f} ({family}, rate {rate:g})"


def tiled_trades(market: SimulatedMarket, rows: int) -> pl.DataFrame:
    """Copies of the tape laid end to end in time (each with its own accounts) until `rows` trades:
    the same symbols over many days, as a long backfill is."""
    copies = -(-rows // market.trades.height)
    span = timedelta(hours=SPEED_HOURS)
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
    market = flow_sim(1, symbols=SPEED_SYMBOLS, hours=SPEED_HOURS, rate=1.0)
    trades = tiled_trades(market, rows)
    lines = []
    for name in ("wash_accounts", "wash_public"):
        (detector,) = build_detectors(Settings(), [name])
        started = time.perf_counter()
        alerts = detector.detect(trades)
        seconds = time.perf_counter() - started
        rate = trades.height / seconds
        verdict = f" (target ≥ 1M/s) {'MET' if rate >= 1e6 else 'MISSED'}" if name == "wash_accounts" else ""
        lines.append(
            f"{name}: {trades.height:,} trades in {seconds:.2f}s = {rate / 1e6:.2f}M trades/s, "
            f"{len(alerts):,} alerts{verdict}"
        )
    detectors = build_detectors(Settings(), ["spoofing_l3"])
    started = time.perf_counter()
    run_batch(detectors, market.trades, empty_frame(BAR_SCHEMA), orders=market.orders)
    seconds = time.perf_counter() - started
    lines.append(
        f"spoofing_l3: {market.orders.height:,} order events in {seconds:.2f}s = "
        f"{market.orders.height / seconds / 1e6:.2f}M events/s "
        f"({market.orders.height / market.trades.height:.0f} order events per trade)"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--families", default=",".join(FAMILIES), help=f"comma-separated, from {', '.join(FAMILIES)}"
    )
    parser.add_argument("--seeds", type=int, default=1, help="seeds per family and rate (0: speed only)")
    parser.add_argument("--symbols", type=int, default=8, help="symbols per market")
    parser.add_argument("--hours", type=float, default=48.0, help="hours per market (wash_public needs > 24)")
    parser.add_argument("--cut-rule", choices=CUT_RULES, default="f1", help="how the held-out cut is chosen")
    parser.add_argument("--trades", type=int, default=10_000_000, help="trades for the speed run")
    args = parser.parse_args()
    families = [name.strip() for name in args.families.split(",") if name.strip()]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        parser.error(f"unknown families {unknown}; registered: {', '.join(FAMILIES)}")
    console = wide_console()
    if args.seeds:
        started = time.perf_counter()
        grades = grade_families(families, args.seeds, args.symbols, args.hours)
        cuts = held_out_cuts(grades, families, args.cut_rule)
        rule = "maximises F1" if args.cut_rule == "f1" else "is the highest keeping recall ≥ 0.95"
        console.print(
            f"families {', '.join(families)}; {args.seeds} seed(s) × {args.symbols} symbols × "
            f"{args.hours:g} h per family and rate; held-out cut {rule} on the other families",
            highlight=False,
        )
        console.print(cut_table(grades, families, cuts))
        console.print(quality_table(grades, cuts))
        console.print(honest_table(grades, cuts))
        for line in verdicts(grades, cuts):
            console.print(line, highlight=False)
        console.print(f"(quality runs took {time.perf_counter() - started:.0f}s)")
    for line in speed(args.trades):
        console.print(line, highlight=False)


if __name__ == "__main__":
    main()
