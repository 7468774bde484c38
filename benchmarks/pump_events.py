"""Detection quality on real pump-and-dumps: recall, false alarms per symbol-day and delay, per detector.

    python benchmarks/pump_events.py [PUMP_EVENTS_DIR]

PUMP_EVENTS_DIR holds `<COIN>_<time>.csv.gz` trade files and `events.csv` (default:
../shared/data/pump-events/dev). A pump is caught when a pump_and_dump alert on its
symbol has detected_at within [announcement − 2 min, announcement + 5 min]; every
other alert is a false alarm. Targets (issue 2): recall ≥ 30/31, ≤ 0.05 false alarms
per symbol-day, median delay ≤ 10 s.
"""

from __future__ import annotations

import sys
import tempfile
from datetime import timedelta
from pathlib import Path

from _common import data_dir

from tapewatch.batch_job import detect_files
from tapewatch.config import load_settings
from tapewatch.evaluation import (
    ALL_DETECTORS,
    coverage_symbol_days,
    evaluate_alerts,
    load_alerts,
    load_labels,
    render_report,
)
from tapewatch.io.alerts import write_alerts
from tapewatch.report.summary import wide_console


def main() -> None:
    directory = data_dir(sys.argv)
    console = wide_console()
    run = detect_files(sorted(directory.glob("*.csv.gz")), load_settings())
    with tempfile.TemporaryDirectory() as tmp:
        alerts_path = Path(tmp) / "alerts.jsonl"
        write_alerts(run.alerts, alerts_path)
        report = evaluate_alerts(
            load_alerts(alerts_path),
            load_labels(directory / "events.csv", symbol_col="pair", time_col="announced_at_utc"),
            symbol_days=coverage_symbol_days(run.read.trades, max_gap=timedelta(days=1)),
            typology="pump_and_dump",
        )
    console.print(
        f"{run.read.trades.height:,} trades in {len(run.read.files)} files, "
        f"{run.read.duplicates_removed:,} duplicates removed, {report.symbol_days:.1f} symbol-days"
    )
    console.print(render_report(report))
    for score in report.scores:
        if score.detector == ALL_DETECTORS:
            continue
        verdicts = [
            f"recall {score.caught}/{score.events} (target ≥ {score.events - 1})",
            f"false alarms/symbol-day {score.false_alarms_per_symbol_day:.3f} (target ≤ 0.05)",
            f"median delay {_seconds(score.delay_median_s)} (target ≤ 10 s)",
        ]
        console.print(f"{score.detector}: " + "; ".join(verdicts))


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


if __name__ == "__main__":
    main()
