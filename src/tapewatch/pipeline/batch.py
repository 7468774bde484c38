"""`tapewatch detect` as a function: read inputs, run the batch engine, set bad rows aside."""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import polars as pl

from tapewatch.config import Settings
from tapewatch.detect.base import Detector
from tapewatch.detect.registry import build_detectors, check_detector_names, default_detector_names
from tapewatch.engine.batch import detection_order, run_batch
from tapewatch.engine.kinds import BOOK
from tapewatch.errors import InputError
from tapewatch.io.deadletter import DeadLetterFile, check_writable
from tapewatch.io.derive import book_events
from tapewatch.io.readers import (
    RECORD_KINDS,
    Kind,
    ReadResult,
    ReadTally,
    expand_inputs,
    read_inputs,
)
from tapewatch.io.spill import Spill, by_symbol, partitions_for, rows_held, spill_files, spill_folder
from tapewatch.progress import SILENT, Progress
from tapewatch.records import Alert

PUMP_MODEL = "pump_model"
"""The trained model's detector, run beside the chosen ones when a model file is given."""
SLICE = timedelta(days=1)
"""A partition too large to hold is detected a day at a time."""


@dataclass
class DetectRun:
    """What a detection run produced and what it set aside, for the summary and for callers."""

    alerts: list[Alert]
    tally: ReadTally
    dead_letter_path: Path | None
    seconds: float
    by_detector: Counter = field(default_factory=Counter)
    read: ReadResult | None = None
    """The records read, when the whole input was held at once (None for a run in partitions)."""
    partitions: int = 1
    engine: str = "local"
    """What ran the detectors, for the summary: this process, or Spark and its master."""


def default_dead_letter_path(output: Path | None) -> Path:
    """Bad rows go next to the output file, or into the working directory when alerts go to stdout.

    A working directory nobody may write in (a read-only checkout, `/`) must not stop a run of clean
    files, so its default falls back to the temporary folder; the summary names wherever rows went.
    """
    if output is not None:
        return output.with_name(output.name.split(".")[0] + ".rejected.jsonl")
    here = Path("tapewatch-rejected.jsonl")
    try:
        check_writable(here)
    except InputError:
        return Path(tempfile.gettempdir()) / f"tapewatch-rejected-{os.getpid()}.jsonl"
    return here


def detect_files(
    inputs: Sequence[str | Path],
    settings: Settings,
    *,
    fmt: str = "auto",
    venue: str | None = None,
    detectors: Sequence[str] | None = None,
    model: Path | None = None,
    dead_letter: Path | None = None,
    partitions: int | None = None,
    progress: Progress = SILENT,
) -> DetectRun:
    """Run detection over files; rejected rows are written to `dead_letter` as they are found, only when
    there are some (without `dead_letter` they are kept in `run.read.rejected`).

    A file that cannot be read is set aside (`run.tally.failed`, with its one-line error) and the rest
    are detected; callers should tell the user and fail the run at the end (the CLI exits with 2).
    Reading no file at all is an InputError. `dead_letter` is checked writable before anything is read.

    `model` is a trained pump model file: it becomes `[pump_model] model`, and its detector runs beside
    the chosen ones. An input too large for `[batch] memory_gib` (or any run given `partitions` > 1) is
    detected in partitions of symbols, one at a time (`detect_in_partitions`); the alerts are the same.
    """
    started = time.perf_counter()
    choice = choose_detectors(settings, detectors, model)
    settings = choice.settings
    if dead_letter is not None:
        check_writable(dead_letter, "--dead-letter")
    files = expand_inputs(inputs)
    count = partitions or partitions_for(files, settings.batch.memory_gib)
    reading = progress.add_task("reading", total=len(files))
    if count > 1:
        choice.check_split(f"detecting in {count} partitions of symbols (or raise [batch] memory_gib)")
        run = detect_in_partitions(
            inputs,
            choice,
            count,
            fmt=fmt,
            venue=venue,
            dead_letter=dead_letter,
            on_file=lambda _: progress.advance(reading),
            progress=progress,
        )
        run.seconds = time.perf_counter() - started
        return run
    written = DeadLetterFile(dead_letter)
    read = read_inputs(
        inputs,
        fmt=fmt,
        venue=venue,
        on_file=lambda _: progress.advance(reading),
        kinds=RECORD_KINDS,
        set_aside=True,
        on_rejected=written if dead_letter is not None else None,
    )
    chosen = build_detectors(settings, choice.names(candles=read.bars.height > 0))
    detecting = progress.add_task("detecting", total=len(chosen))
    alerts = detect_records(
        chosen,
        {kind: getattr(read, kind) for kind in RECORD_KINDS},
        on_detector=lambda _: progress.advance(detecting),
    )
    return DetectRun(
        alerts=alerts,
        tally=read.tally(),
        dead_letter_path=written.path,
        seconds=time.perf_counter() - started,
        by_detector=Counter(alert.detector for alert in alerts),
        read=read,
    )


def detect_in_partitions(
    inputs: Sequence[str | Path],
    choice: DetectorChoice,
    partitions: int,
    *,
    fmt: str = "auto",
    venue: str | None = None,
    dead_letter: Path | None = None,
    on_file: Callable[[Path], None] | None = None,
    progress: Progress = SILENT,
) -> DetectRun:
    """Detection on inputs larger than memory: each file is read, checked and spilled to local Parquet
    split into `partitions` partitions of symbols (`tapewatch.io.spill`), its rejected rows appended to
    `dead_letter` (`on_file` is told of each file read; a file that cannot be read is set aside, as in
    `detect_files`); then each partition is de-duplicated, sorted and detected on its own.

    Peak memory is a few files being read plus one partition, not the input; a partition holding more
    rows than `[batch] memory_gib` allows (one coin's long history) is detected a day at a time. The
    alerts are those of one whole-input run: every detector decides a symbol from its own rows,
    calibration is per alert, and a day at a time goes through the streaming engine, which decides as
    the batch engine does. Candle files and L2 book updates are not sliced: a partition holding them is
    read whole.
    """
    settings = choice.settings
    alerts: list[Alert] = []
    with spill_folder("tapewatch-spill-", settings.batch.spill_dir) as folder:
        spill = Spill(Path(folder), by_symbol(partitions), span=SLICE)
        written = DeadLetterFile(dead_letter)
        tally = spill_files(
            inputs,
            spill,
            fmt=fmt,
            venue=venue,
            on_file=on_file,
            on_rejected=written,
            set_aside=True,
        )
        chosen = build_detectors(settings, choice.names(candles=tally.records["bars"] > 0))
        numbers = spill.numbers()
        detecting = progress.add_task("detecting", total=len(numbers))
        for number in numbers:
            alerts += _detect_partition(spill, number, chosen, tally, rows_held(settings.batch.memory_gib))
            progress.advance(detecting)
    alerts.sort(key=detection_order)
    return DetectRun(
        alerts=alerts,
        tally=tally,
        dead_letter_path=written.path,
        seconds=0.0,
        by_detector=Counter(alert.detector for alert in alerts),
        partitions=partitions,
    )


def _detect_partition(
    spill: Spill, number: int, chosen: list[Detector], tally: ReadTally, most: int
) -> list[Alert]:
    """One partition's alerts: read whole when it holds at most `most` rows, else a day at a time through
    the streaming engine (`run_in_slices`), which gives the same alerts; counts its duplicates in `tally`."""

    def records(piece_slice: int | None) -> dict[Kind, pl.DataFrame]:
        frames = {}
        for kind, (rows, removed) in spill.read(number, piece_slice).items():
            frames[kind] = rows
            tally.records[kind] -= removed
            tally.duplicates_removed += removed
        return frames

    held = {kind: spill.rows[kind, number] for kind in RECORD_KINDS}
    if sum(held.values()) <= most or held["bars"] or held["book"]:  # see SLICED_KINDS
        return detect_records(chosen, records(None))
    from tapewatch.engine.slices import run_in_slices  # the streaming engine: only a run this large needs it

    return run_in_slices(chosen, map(records, spill.slices(number)), spill.symbols("orders", number))


def detect_records(
    chosen: list[Detector],
    frames: dict[Kind, pl.DataFrame],
    on_detector: Callable[[Detector], None] | None = None,
) -> list[Alert]:
    """The batch engine over one set of records: order events as they are, book updates merged with the
    trades only when a detector reads them (rebuilding the book costs)."""
    return run_batch(
        chosen,
        frames["trades"],
        frames["bars"],
        on_detector=on_detector,
        orders=frames["orders"] if frames["orders"].height else None,
        book=book_events(frames["book"], frames["trades"]) if _reads_book(chosen, frames["book"]) else None,
    )


@dataclass(frozen=True)
class DetectorChoice:
    """The detectors a run asked for, checked before a long read; which run depends on what it reads."""

    settings: Settings
    named: list[str]
    """`--detector` names; none: the defaults for what the input holds."""
    model: bool
    """A trained pump model file was given: its detector runs beside the others."""

    def names(self, *, candles: bool) -> list[str]:
        """The detectors to build, once it is known whether the input holds candles."""
        names = self.named or default_detector_names(candles=candles)
        return [*names, PUMP_MODEL] if self.model and PUMP_MODEL not in names else names

    def check_split(self, how: str) -> None:
        """Refuse a run that splits the symbols apart (partitions, Spark) when a chosen detector pools them:
        its alerts would silently differ from one whole run's."""
        pooled = self.settings.pooling(self.named)
        if pooled:
            why = "; ".join(f"{name}: {reason}" for name, reason in pooled.items())
            raise InputError(f"{why}; so it cannot decide the same when {how}")


def choose_detectors(
    settings: Settings, detectors: Sequence[str] | None, model: Path | None
) -> DetectorChoice:
    """The run's choice of detectors; `model` (a trained pump model file) becomes `[pump_model] model`.

    Names are checked here, before the input is read: a typo should not wait for a long read."""
    if model is not None:
        settings = settings.model_copy(
            update={"pump_model": settings.pump_model.model_copy(update={"model": model})}
        )
    named = list(detectors or [])
    check_detector_names([*named, PUMP_MODEL] if model is not None else named, settings)
    return DetectorChoice(settings, named, model is not None)


def _reads_book(detectors: list[Detector], book: pl.DataFrame) -> bool:
    """Whether to build book events: the L2 detector is opt-in, and rebuilding the book costs."""
    return book.height > 0 and any(BOOK.serves(detector) for detector in detectors)
