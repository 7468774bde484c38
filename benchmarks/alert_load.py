"""Alert load on ordinary trading: what all default detectors raise away from the pumps, per symbol-day.

    python benchmarks/alert_load.py [PUMP_EVENTS_DIR]

PUMP_EVENTS_DIR holds `<COIN>_<time>.csv.gz` trade files and `events.csv` (default:
../shared/data/pump-events/dev: 31 small Binance coins, about four days each). What it
measures: every default detector, run as `tapewatch detect` runs them (`detect_files`
with default Settings, candles built from the trades by the batch engine), over all the
files; the alerts decided more than 30 min from every pump announcement on their symbol
are counted per detector and severity and divided by the symbol-days of trading outside
those margins (`tapewatch.evaluate.scoring.quiet_symbol_days`). The same counts are split into
the earlier and the later half of the data by time (cut 30 min before the announcement
of the 16th of 31 pumps), so a figure can be quoted on a part no threshold was tuned on.

Targets (issue 11, ordinary trading): ≤ 0.1 alerts per symbol-day from all default
detectors together, ≤ 0.02 of them high or critical.
"""

from __future__ import annotations

import sys
from collections import Counter

import polars as pl
from _common import check, data_dir
from rich.table import Table

from tapewatch.cli.summary import wide_console
from tapewatch.config import Settings
from tapewatch.detect.registry import build_detectors
from tapewatch.evaluate.scoring import (
    QUIET_MARGIN,
    HeldOutPart,
    Span,
    alerts_to_frame,
    forward_folds,
    load_labels,
    outside_events,
)
from tapewatch.pipeline.batch import detect_files

ALERTS_PER_SYMBOL_DAY = 0.1
HIGH_PER_SYMBOL_DAY = 0.02
SERIOUS = ("high", "critical")
TOTAL = "all default detectors"


def main() -> None:
    directory = data_dir(sys.argv)
    console = wide_console()
    run = detect_files(sorted(directory.glob("*.csv.gz")), Settings())
    labels = load_labels(directory / "events.csv", symbol_col="pair", time_col="announced_at_utc")
    alerts = alerts_to_frame(run.alerts)
    quiet = outside_events(alerts, labels, "detected_at", QUIET_MARGIN)
    (halves,) = forward_folds(
        labels["event_time"].to_list(),
        first_test=labels.height // 2,
        test_size=labels.height,
        before=QUIET_MARGIN,
    )
    parts = {
        "all files": Span(),
        "earlier half": halves.choose,
        "later half": halves.test,
    }
    held = {name: HeldOutPart.of(labels, run.read.trades, span) for name, span in parts.items()}
    names = [detector.name for detector in build_detectors(Settings())]
    console.print(
        f"{run.read.trades.height:,} trades in {len(run.read.files)} files, {labels.height} pumps; default "
        f"detectors: {', '.join(names)}; {alerts.height} alerts in all, "
        f"{alerts.height - quiet.height} of them "
        f"within ±{QUIET_MARGIN.total_seconds() / 60:g} min of a pump (not counted); later half from "
        f"{halves.test.since:%Y-%m-%d %H:%M}Z"
    )
    console.print(_table(quiet, held, names))
    for name, part in held.items():
        counted = quiet.filter(part.span.holds(pl.col("detected_at")))
        serious = counted.filter(pl.col("severity").is_in(SERIOUS)).height
        checks = (
            check("alerts/symbol-day", counted.height / part.symbol_days, ALERTS_PER_SYMBOL_DAY),
            check("high+critical/symbol-day", serious / part.symbol_days, HIGH_PER_SYMBOL_DAY),
        )
        console.print(
            f"{name} ({part.symbol_days:.1f} symbol-days, {counted.height} alerts, {serious} high/critical): "
            + "; ".join(item.line for item in checks)
        )


def _table(quiet: pl.DataFrame, parts: dict[str, HeldOutPart], names: list[str]) -> Table:
    """Per detector and in total: alerts away from pumps by severity, and per symbol-day in each part."""
    table = Table(
        title=f"Alerts on ordinary trading (> {QUIET_MARGIN.total_seconds() / 60:g} min from every pump)"
    )
    table.add_column("detector")
    for severity in ("low", "medium", "high", "critical"):
        table.add_column(severity, justify="right")
    for name in parts:
        table.add_column(f"{name}\nper symbol-day", justify="right")
        table.add_column(f"{name}\nhigh+crit / s-d", justify="right")
    detectors = sorted(set(names) | set(quiet["detector"].to_list()))
    for detector in [*detectors, TOTAL]:
        mine = quiet if detector == TOTAL else quiet.filter(pl.col("detector") == detector)
        if detector == TOTAL:
            table.add_section()
        severities = Counter(mine["severity"].to_list())
        cells = [str(severities[severity]) for severity in ("low", "medium", "high", "critical")]
        for part in parts.values():
            inside = mine.filter(part.span.holds(pl.col("detected_at")))
            serious = inside.filter(pl.col("severity").is_in(SERIOUS)).height
            cells += [f"{inside.height / part.symbol_days:.3f}", f"{serious / part.symbol_days:.3f}"]
        table.add_row(detector, *cells)
    return table


if __name__ == "__main__":
    main()
