"""Run summaries for people, as rich tables: what was read, what was set aside, what was found, how it scored."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from pathlib import Path

    import polars as pl

    # the CLI imports this module at start-up: the detectors load only when a run needs them
    from tapewatch.evaluate.episodes import EpisodeScore
    from tapewatch.evaluate.scoring import EvaluationReport
    from tapewatch.io.readers import ReadTally
    from tapewatch.pipeline.batch import DetectRun
    from tapewatch.pipeline.demo import DemoResult
    from tapewatch.records import Alert

SEVERITIES = ("critical", "high", "medium", "low")


def wide_console() -> Console:
    """Tables on stdout; when piped, wide enough that rich does not squeeze columns to 80 characters."""
    return Console() if sys.stdout.isatty() else Console(width=160)


def print_detect_summary(console: Console, run: DetectRun) -> None:
    """One short block: input counts (with rejected rows and where they went) and alerts per detector."""
    print_read_summary(console, run.tally, run.dead_letter_path)
    if run.engine != "local":
        console.print(f"detected on {run.engine}", highlight=False)
    if run.partitions > 1:
        console.print(
            f"larger than memory: detected in {run.partitions} partitions by symbol", highlight=False
        )
    detectors = ", ".join(f"{name} {count}" for name, count in sorted(run.by_detector.items())) or "none"
    console.print(f"{len(run.alerts)} alert(s) in {run.seconds:.2f}s ({detectors})", highlight=False)


def print_read_summary(console: Console, read: ReadTally, dead_letter_path: Path | None) -> None:
    """What the files held, so every row read is accounted for (records kept, duplicates removed,
    rejected and where they went, blank lines passed over), then book gaps, what conversion noted about
    a file, files set aside as unreadable (an error: the command exits 2 at the end) and files skipped as
    not market data (no error): `detect`, `stream` and `bus publish` read files alike and say so alike."""
    console.print(
        f"read {read.files} file(s), {read.rows_read:,} rows: {read.records['trades']:,} trades, "
        f"{read.records['bars']:,} bars{_more_kinds(read)}; {read.duplicates_removed:,} duplicates removed; "
        f"{read.rejected:,} rejected"
        + (f" → {dead_letter_path}" if dead_letter_path else "")
        + (f"; {read.blank_lines:,} blank lines passed over" if read.blank_lines else ""),
        highlight=False,
        markup=False,  # file names may hold [brackets]
    )
    gaps = read.book_gap_summary()
    if gaps:
        console.print(f"warning: {gaps}", highlight=False)
    for path, notes in read.notes.items():
        for note in notes:
            console.print(f"note: '{path}': {note}", highlight=False, markup=False)
    for reason in read.failed.values():  # unreadable: the command fails at the end (exit 2)
        console.print(f"set aside (cannot be read): {reason}", highlight=False, markup=False, soft_wrap=True)
    for reason in read.skipped.values():
        console.print(f"skipped: {reason}", highlight=False, markup=False)  # the reason says why


def fail_if_set_aside(read: ReadTally, rest: str) -> None:
    """End a command that read files with one error line (exit 2) when some were set aside as unreadable:
    the rest was processed (`rest` says what came of it), but a script must notice."""
    if read.failed:
        from tapewatch.errors import InputError

        raise InputError(
            f"{len(read.failed)} input file(s) could not be read and were set aside (named above); {rest}"
        )


def _more_kinds(read: ReadTally) -> str:
    """Order events and book updates, named only when a run read some (most runs are trades or bars)."""
    from tapewatch.io.normalise import COUNTED

    return "".join(
        f", {read.records[kind]:,} {COUNTED[kind]}" for kind in ("orders", "book") if read.records[kind]
    )


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


def print_demo_summary(console: Console, result: DemoResult) -> None:
    """What the demo injected and found, and where it put things."""
    trades, labels = result.trades, result.labels
    console.print(
        f"Simulated {trades:,} trades with {labels.height} injected manipulations "
        f"({_count_by_typology(labels)})."
    )
    console.print(alerts_table(result.alerts))
    console.print(evaluation_table(result.report))
    console.print(episodes_table(result.episodes))
    console.print(f"alerts: {result.alerts_path}\nstore:  {result.db_path}")
    if result.chart_png:
        console.print(f"chart of the top alert: {result.chart_png} and {result.chart_html}")
    console.print(
        f"work these alerts in the console: tapewatch serve --db {result.db_path} --lake {result.lake.root}"
        " (after `tapewatch users add NAME --role admin --with-password --db …`; serve needs"
        " `pip install 'tapewatch[service]'`)",
        highlight=False,
        markup=False,  # [service] is not a style
    )


def episodes_table(scores: list[EpisodeScore]) -> Table:
    """Injected wash trading, spoofing and layering against the alerts of those typologies."""
    table = Table(title="Wash trading, spoofing and layering: alerts against the injected episodes")
    for column in ("typology", "injected", "caught", "alerts", "true alerts", "false alarms"):
        table.add_column(column, justify="left" if column == "typology" else "right")
    for score in scores:
        table.add_row(
            score.name,
            str(score.labels),
            str(score.caught),
            str(score.alerts),
            str(score.true_alerts),
            str(score.false_alarms),
        )
    return table


def _count_by_typology(labels: pl.DataFrame) -> str:
    counts = labels.group_by("typology").len().sort("typology")
    return ", ".join(f"{row['typology']} {row['len']}" for row in counts.iter_rows(named=True))


_TABLE_COLUMNS = (
    "detector",
    "alerts",
    "events",
    "caught",
    "recall",
    "precision",
    "false alarms",
    "FA / symbol-day",
    "delay median",
    "delay p90",
    "delay max",
)


def evaluation_table(report: EvaluationReport) -> Table:
    """The scores as a table a person reads at a glance: one row per detector, the union last."""
    from tapewatch.evaluate.scoring import ALL_DETECTORS

    before, after = (_format_seconds(span.total_seconds()) for span in (report.before, report.after))
    days = "symbol-days unknown" if report.symbol_days is None else f"{report.symbol_days:,.1f} symbol-days"
    scope = f", typology {report.typology}" if report.typology else ""
    table = Table(title=f"Detector evaluation (window −{before} / +{after}, {days}{scope})")
    for heading in _TABLE_COLUMNS:
        table.add_column(heading, justify="left" if heading == "detector" else "right")
    for score in report.scores:
        if score.detector == ALL_DETECTORS and len(report.scores) > 1:
            table.add_section()
        table.add_row(
            score.detector,
            str(score.alerts),
            str(score.events),
            str(score.caught),
            _format_ratio(score.recall),
            _format_ratio(score.precision),
            str(score.false_alarms),
            "–" if score.false_alarms_per_symbol_day is None else f"{score.false_alarms_per_symbol_day:.3g}",
            *(
                _format_seconds(value)
                for value in (score.delay_median_s, score.delay_p90_s, score.delay_max_s)
            ),
        )
    return table


def _format_ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _format_seconds(value: float | None) -> str:
    """Seconds as ``-40s``, ``1m35s`` or ``2h03m``: delays span seconds to hours."""
    if value is None:
        return "–"
    sign = "-" if value < 0 else ""
    if abs(value) < 60:
        return f"{sign}{abs(value):.1f}".removesuffix(".0") + "s"
    seconds = round(abs(value))
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{sign}{minutes}m{rest:02d}s" if rest else f"{sign}{minutes}m"
    hours, rest = divmod(seconds // 60, 60)
    return f"{sign}{hours}h{rest:02d}m"
