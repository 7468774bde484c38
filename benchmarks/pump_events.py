"""Pump detection on real pump-and-dumps, held out forward in time: recall, false alarms, delay.

    python benchmarks/pump_events.py [PUMP_EVENTS_DIR]

PUMP_EVENTS_DIR holds `<COIN>_<time>.csv.gz` trade files and `events.csv` (default:
../shared/data/pump-events/dev, 31 Binance pumps 2020–2021). What it measures:

- Folds forward in time (`tapewatch.evaluate.scoring.forward_folds`): events sorted by
  announcement; fold 1 chooses on the earliest FIRST_TEST events and tests the next
  TEST_SIZE, fold 2 chooses on all before it and tests the last ones. Each part is a
  span of market time cut at its first event's announcement − 2 min, so choosing sees
  only earlier trading.
- Per fold, pump_onset's thresholds are chosen on the choosing part from the grid in
  _common.py (ONSET_GRID, every combination, read against the current
  PumpOnsetSettings at run time) by `best_choice`: most pumps caught, then fewest
  false alarms per symbol-day, then the smallest delays. Only the test parts' figures
  are printed, per fold and pooled (each fold's own choice on its own test part).
- A pump is caught when an alert on its symbol has detected_at within
  [announcement − 2 min, + 5 min]; delay = detected_at − announcement minute. A false
  alarm is a pump_and_dump alert more than 30 min from every pump on its symbol, per
  symbol-day of the part's trading outside those margins. "all default detectors"
  adds every other default detector's pump_and_dump alerts (e.g. kamps_kleinberg).
- Per held-out pump: its burst start (`burst_starts` in _common.py: the first 1-s window
  with ≥ 8 taker orders and ≥ 100× the symbol's 3-h order rate, measured on the tape, not
  by the detector) and the rule's delay after the announcement minute and after the burst
  start, so the delay splits into the pump's own start and the rule's lag.
- The shipped defaults on the same test parts, and each threshold moved one step
  (ONSET_STEPS: × or ÷ 1.5, a quantile ± 0.05) from them: is the default on a plateau?
  The defaults were set by people who had seen all 31 events, so their figures are
  labelled as such, not as held out.

Targets (issue 11, held-out parts, all default detectors): recall ≥ 30/31 (scaled to
the events tested), ≤ 0.02 false alarms per symbol-day, median delay ≤ 5 s, p90 ≤ 15 s.
Runs pump_onset once per grid point over all files (about a minute on 2 cores).
"""

from __future__ import annotations

import sys
import time

import polars as pl
from _common import (
    BURST_BASELINE_H,
    BURST_MIN_ORDERS,
    BURST_RATE_RATIO,
    BURST_WINDOW_S,
    ONSET_GRID,
    PumpData,
    burst_starts,
    changed,
    choose_onset,
    data_dir,
    onset_alerts,
    onset_grid,
    onset_neighbours,
    pump_checks,
    read_pump_data,
    seconds,
)
from rich.console import Console
from rich.table import Table

from tapewatch.cli.summary import wide_console
from tapewatch.config import Settings
from tapewatch.detect.pump.pump_onset import PumpOnsetDetector
from tapewatch.detect.pump.settings import PumpOnsetSettings
from tapewatch.evaluate.scoring import (
    ALL_DETECTORS,
    DetectorScore,
    HeldOutPart,
    Span,
    evaluate_alerts,
    forward_folds,
)

FIRST_TEST = 15
"""Fold 1 chooses on the earliest 15 events."""
TEST_SIZE = 8
"""Each fold tests the next 8 (with 31 events: 15 → 8, then 23 → 8)."""
RULE = PumpOnsetDetector.name


def main() -> None:
    directory = data_dir(sys.argv)
    console = wide_console()
    started = time.perf_counter()
    data = read_pump_data(directory)
    defaults = Settings().pump_onset
    grid, skipped = onset_grid(defaults)
    candidates = [(settings, onset_alerts(data.trades, settings)) for settings in grid]
    console.print(
        f"{data.trades.height:,} trades in {data.files} files "
        f"({data.duplicates_removed:,} duplicates removed), "
        f"{data.labels.height} pumps; grid of {len(grid)} settings over "
        + ", ".join(f"{name} {list(values)}" for name, values in ONSET_GRID.items() if name not in skipped)
        + (f" (not in PumpOnsetSettings, skipped: {', '.join(skipped)})" if skipped else "")
    )
    pooled, scores = _chosen_forward(console, data, candidates, defaults)
    _print_checks(console, "Held out, chosen forward (all default detectors)", scores[ALL_DETECTORS])
    _defaults_and_neighbours(console, data, defaults, pooled)
    console.print(f"[dim]{time.perf_counter() - started:.0f} s[/dim]")


def _chosen_forward(
    console: Console,
    data: PumpData,
    candidates: list[tuple[PumpOnsetSettings, pl.DataFrame]],
    defaults: PumpOnsetSettings,
) -> tuple[HeldOutPart, dict[str, DetectorScore]]:
    """Per fold: choose on the earlier part, score on the test part; then all test parts pooled, each
    with its own fold's choice. Prints the table; returns the pooled part and its scores."""
    folds = forward_folds(data.labels["event_time"].to_list(), first_test=FIRST_TEST, test_size=TEST_SIZE)
    table = _table("pump_onset chosen forward in time: held-out test parts only")
    held_out = []
    for number, fold in enumerate(folds, start=1):
        choosing = HeldOutPart.of(data.labels, data.trades, fold.choose)
        test = HeldOutPart.of(data.labels, data.trades, fold.test)
        chosen, alerts = choose_onset(candidates, choosing)
        held_out.append(alerts.filter(fold.test.holds(pl.col("detected_at"))))
        console.print(
            f"fold {number}: chose on {choosing.events.height} pumps "
            f"before {fold.test.since:%Y-%m-%d %H:%M}Z: "
            f"{changed(chosen, defaults)}; tests {test.events.height} pumps"
        )
        _add_rows(table, f"fold {number} ({test.events.height} pumps)", test, _scores(test, alerts, data))
    pooled = HeldOutPart.of(data.labels, data.trades, Span(since=folds[0].test.since))
    scores = _scores(pooled, pl.concat(held_out), data)
    _add_rows(table, f"pooled ({pooled.events.height} pumps)", pooled, scores)
    console.print(table)
    _print_burst_lags(console, data, pooled, pl.concat(held_out))
    return pooled, scores


def _print_burst_lags(console: Console, data: PumpData, part: HeldOutPart, alerts: pl.DataFrame) -> None:
    """Per held-out pump: when its buying burst starts (`burst_starts`) and when the rule, chosen forward,
    fires, after the announcement minute and after the burst start: the pump's part and the rule's."""
    caught = evaluate_alerts(alerts, part.events, detectors=[RULE]).detail.filter(pl.col("detector") == RULE)
    rows = burst_starts(data.trades, part.events).join(caught, on=["symbol", "event_time"], how="left")
    rows = rows.with_columns(lag_s=pl.col("delay_s") - pl.col("burst_s"))
    table = Table(
        title=f"Burst start (first {BURST_WINDOW_S:g}-s window with ≥ {BURST_MIN_ORDERS} taker orders and "
        f"≥ {BURST_RATE_RATIO:g}× the {BURST_BASELINE_H:g}-h order rate) and pump_onset's delay, held out"
    )
    for heading in ("pump", "announced", "orders needed", "burst start", "detected", "after burst start"):
        table.add_column(heading, justify="left" if heading in ("pump", "announced") else "right")
    for row in rows.iter_rows(named=True):
        table.add_row(
            row["symbol"],
            f"{row['event_time']:%Y-%m-%d %H:%M}",
            f"{row['burst_need']:.1f}",
            seconds(row["burst_s"]),
            seconds(row["delay_s"]),
            seconds(row["lag_s"]),
        )
    console.print(table)
    console.print(
        "seconds after the announcement minute, median / p90: "
        + "; ".join(
            f"{label} {seconds(rows[name].median())} / {seconds(rows[name].quantile(0.9, 'linear'))}"
            for label, name in (("burst start", "burst_s"), ("detected", "delay_s"), ("after burst", "lag_s"))
        )
    )


def _scores(part: HeldOutPart, rule_alerts: pl.DataFrame, data: PumpData) -> dict[str, DetectorScore]:
    """The rule's row and the all-default-detectors row on one part."""
    return part.scores(pl.concat([rule_alerts, data.others]), typology="pump_and_dump", detectors=[RULE])


def _defaults_and_neighbours(
    console: Console, data: PumpData, defaults: PumpOnsetSettings, pooled: HeldOutPart
) -> None:
    """The shipped defaults and their one-step neighbours on the pooled test parts."""
    default_scores = _scores(pooled, onset_alerts(data.trades, defaults), data)
    table = _table(
        "Shipped defaults on the same test parts (NOT held out: the defaults were set on all 31 events)"
    )
    _add_rows(table, "shipped defaults", pooled, default_scores)
    console.print(table)
    _print_checks(console, "Shipped defaults (all default detectors)", default_scores[ALL_DETECTORS])
    plateau = Table(
        title="Neighbourhood of the defaults (one threshold moved one step), pooled test parts, "
        "all default detectors"
    )
    for heading in ("thresholds", "caught", "FA / symbol-day", "delay median", "delay p90", "misses"):
        plateau.add_column(heading, justify="left" if heading in ("thresholds", "misses") else "right")
    baseline = _plateau_row(plateau, "shipped defaults", default_scores[ALL_DETECTORS])
    neighbours = onset_neighbours(defaults)
    missed = []
    for label, settings in neighbours:
        if settings is None:
            plateau.add_row(label, "", "", "", "", "value not allowed")
            continue
        score = _scores(pooled, onset_alerts(data.trades, settings), data)[ALL_DETECTORS]
        missed.append(_plateau_row(plateau, label, score))
    console.print(plateau)
    console.print(
        f"{sum(not names for names in missed)} of {len(neighbours)} one-step neighbours meet every target; "
        f"{sum(names <= baseline for names in missed)} meet every target the shipped defaults meet"
    )


def _plateau_row(table: Table, label: str, score: DetectorScore) -> set[str]:
    """Adds the row; returns the names of the targets missed."""
    missed = [check.name for check in pump_checks(score) if not check.met]
    table.add_row(
        label,
        f"{score.caught}/{score.events}",
        _rate(score.false_alarms_per_symbol_day),
        seconds(score.delay_median_s),
        seconds(score.delay_p90_s),
        ", ".join(missed) or "meets all",
    )
    return set(missed)


def _table(title: str) -> Table:
    table = Table(title=title)
    for heading in ("part", "alerts from", "symbol-days", "caught", "false alarms", "FA / symbol-day"):
        table.add_column(heading, justify="left" if heading in ("part", "alerts from") else "right")
    for heading in ("delay median", "delay p90", "delay max"):
        table.add_column(heading, justify="right")
    return table


def _add_rows(table: Table, label: str, part: HeldOutPart, scores: dict[str, DetectorScore]) -> None:
    for name, shown in ((RULE, RULE), (ALL_DETECTORS, "all default detectors")):
        score = scores[name]
        table.add_row(
            label if name == RULE else "",
            shown,
            f"{part.symbol_days:.1f}",
            f"{score.caught}/{score.events}",
            str(score.false_alarms),
            _rate(score.false_alarms_per_symbol_day),
            seconds(score.delay_median_s),
            seconds(score.delay_p90_s),
            seconds(score.delay_max_s),
        )
    table.add_section()


def _print_checks(console: Console, title: str, score: DetectorScore) -> None:
    console.print(f"{title}: " + "; ".join(check.line for check in pump_checks(score)))


def _rate(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
