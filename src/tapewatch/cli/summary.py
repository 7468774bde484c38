"""Run summaries for people: what was read, what was set aside, what was found."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # the CLI imports this module at start-up: the detectors load only when a run needs them
    from tapewatch.io.readers import ReadResult
    from tapewatch.pipeline.batch import DetectRun
    from tapewatch.records import Alert

SEVERITIES = ("critical", "high", "medium", "low")


def wide_console() -> Console:
    """Tables on stdout; when piped, wide enough that rich does not squeeze columns to 80 characters."""
    return Console() if sys.stdout.isatty() else Console(width=160)


def print_detect_summary(console: Console, run: DetectRun) -> None:
    """One short block: input counts (with rejected rows and where they went) and alerts per detector."""
    read = run.read
    console.print(
        f"read {len(read.files)} file(s), {read.rows_read:,} rows: {read.trades.height:,} trades, "
        f"{read.bars.height:,} bars{_more_kinds(read)}; {read.duplicates_removed:,} duplicates removed; "
        f"{read.rejected.height:,} rejected" + (f" → {run.dead_letter_path}" if run.dead_letter_path else ""),
        highlight=False,
    )
    gaps = read.book_gap_summary()
    if gaps:
        console.print(f"warning: {gaps}", highlight=False)
    for reason in read.skipped.values():
        console.print(f"skipped (not market data): {reason}", highlight=False)
    detectors = ", ".join(f"{name} {count}" for name, count in sorted(run.by_detector.items())) or "none"
    console.print(f"{len(run.alerts)} alert(s) in {run.seconds:.2f}s ({detectors})", highlight=False)


def _more_kinds(read: ReadResult) -> str:
    """Order events and book updates, named only when a run read some (most runs are trades or bars)."""
    counts = [(read.orders.height, "order events"), (read.book.height, "book updates")]
    return "".join(f", {count:,} {noun}" for count, noun in counts if count)


def alerts_table(alerts: Iterable[Alert], title: str = "Alerts by typology and severity") -> Table:
    """Counts by typology × severity, the first thing an analyst wants to see."""
    counts = Counter((alert.typology, alert.severity) for alert in alerts)
    table = Table(title=title)
    table.add_column("typology")
    for severity in SEVERITIES:
        table.add_column(severity, justify="right")
    table.add_column("total", justify="right")
    for typology in sorted({typology for typology, _ in counts}):
        row = [counts[(typology, severity)] for severity in SEVERITIES]
        table.add_row(typology, *map(str, row), str(sum(row)))
    return table
