"""`tapewatch detect` as a function: read inputs, run the batch engine, set bad rows aside."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from tapewatch.config import Settings
from tapewatch.detect.base import Detector
from tapewatch.detect.pump.pump_model import PumpModelDetector
from tapewatch.detect.registry import build_detectors, check_detector_names, default_detector_names
from tapewatch.engine.batch import run_batch
from tapewatch.engine.kinds import BOOK
from tapewatch.io.derive import book_events
from tapewatch.io.readers import RECORD_KINDS, ReadResult, expand_inputs, read_inputs, write_dead_letters
from tapewatch.progress import SILENT, Progress
from tapewatch.records import Alert


@dataclass
class DetectRun:
    """What a detection run produced and what it set aside, for the summary and for callers."""

    alerts: list[Alert]
    read: ReadResult
    dead_letter_path: Path | None
    seconds: float
    by_detector: Counter = field(default_factory=Counter)


def default_dead_letter_path(output: Path | None) -> Path:
    """Bad rows go next to the output file, or into the working directory when alerts go to stdout."""
    if output is None:
        return Path("tapewatch-rejected.jsonl")
    return output.with_name(output.name.split(".")[0] + ".rejected.jsonl")


def detect_files(
    inputs: Sequence[str | Path],
    settings: Settings,
    *,
    fmt: str = "auto",
    venue: str | None = None,
    detectors: Sequence[str] | None = None,
    model: Path | None = None,
    dead_letter: Path | None = None,
    progress: Progress = SILENT,
) -> DetectRun:
    """Run detection over files; rejected rows are written to `dead_letter` only when there are some.

    `model` is a trained pump model file: it becomes `[pump_model] model`, and its detector runs beside
    the chosen ones.
    """
    started = time.perf_counter()
    if model is not None:
        settings = settings.model_copy(
            update={"pump_model": settings.pump_model.model_copy(update={"model": model})}
        )
    check_detector_names(_with_model(list(detectors or []), model), settings)
    reading = progress.add_task("reading", total=len(expand_inputs(inputs)))
    read = read_inputs(
        inputs, fmt=fmt, venue=venue, on_file=lambda _: progress.advance(reading), kinds=RECORD_KINDS
    )
    names = list(detectors or default_detector_names(candles=read.bars.height > 0))
    chosen = build_detectors(settings, _with_model(names, model))
    detecting = progress.add_task("detecting", total=len(chosen))
    alerts = run_batch(
        chosen,
        read.trades,
        read.bars,
        on_detector=lambda _: progress.advance(detecting),
        orders=read.orders if read.orders.height else None,
        book=book_events(read.book, read.trades) if _reads_book(chosen, read.book) else None,
    )
    written = None
    if read.rejected.height and dead_letter is not None:
        write_dead_letters(read.rejected, dead_letter)
        written = dead_letter
    return DetectRun(
        alerts=alerts,
        read=read,
        dead_letter_path=written,
        seconds=time.perf_counter() - started,
        by_detector=Counter(alert.detector for alert in alerts),
    )


def _with_model(names: list[str], model: Path | None) -> list[str]:
    """The detector names, with the pump model's when a model file is given and it is not named yet."""
    if model is None or PumpModelDetector.name in names:
        return names
    return [*names, PumpModelDetector.name]


def _reads_book(detectors: list[Detector], book: pl.DataFrame) -> bool:
    """Whether to build book events: the L2 detector is opt-in, and rebuilding the book costs."""
    return book.height > 0 and any(BOOK.serves(detector) for detector in detectors)
