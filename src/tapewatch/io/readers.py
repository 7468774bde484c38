"""Read input files of any supported format into clean, de-duplicated trade, bar, order event and book frames.

This is what `tapewatch detect INPUT...` calls. Files are read in parallel
(gzip inflation dominates the cost and runs outside the GIL), each one is
normalised and checked with vectorised Polars expressions, bad rows become dead
letters instead of errors, and exact duplicates (paging overlaps, overlapping
downloads) are dropped across all files at once.
"""

from __future__ import annotations

import glob
import os
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from tapewatch import validity
from tapewatch.errors import InputError
from tapewatch.io import depth
from tapewatch.io.deadletter import dead_letters, empty_rejected, write_dead_letters
from tapewatch.io.formats import (
    BINANCE_COLUMNS,
    DATA_SUFFIXES,
    EXPECTED,
    FORMATS,
    Source,
    detect_format,
    open_source,
    parse_binance_name,
)
from tapewatch.io.normalise import (
    CONVERTERS,
    KINDS,
    NOUNS,
    RECORD_KINDS,
    Converted,
    FileContext,
    Kind,
)
from tapewatch.records import BAR_SCHEMA, BOOK_SCHEMA, ORDER_SCHEMA, TRADE_SCHEMA, conform, empty_frame

__all__ = [
    "FORMATS",
    "RECORD_KINDS",
    "Kind",
    "ReadResult",
    "ReadTally",
    "expand_inputs",
    "read_inputs",
    "write_dead_letters",
]

SCHEMAS: dict[Kind, dict[str, pl.DataType]] = {
    "trades": TRADE_SCHEMA,
    "bars": BAR_SCHEMA,
    "orders": ORDER_SCHEMA,
    "book": BOOK_SCHEMA,
}
SORT_KEYS: dict[Kind, tuple[str, ...]] = {
    "trades": ("venue", "symbol", "ts"),
    "bars": ("venue", "symbol", "interval", "ts"),
    "orders": ("venue", "symbol", "ts"),
    "book": ("venue", "symbol", "ts"),
}
REPEATS_ARE_EVENTS: frozenset[Kind] = frozenset({"orders"})
"""Kinds whose identical rows within one file are separate events (two equal fills of one order in
the same µs); only the copies another file adds are re-reads."""
REPEAT = "_repeat"
"""Helper column: how many identical rows precede this one in its file."""
MAX_READERS = 8
"""Files read at once; more threads than cores only adds memory."""


@dataclass
class ReadResult:
    """Everything read from the inputs: clean records, dead letters, and the counts a run summary reports."""

    trades: pl.DataFrame
    bars: pl.DataFrame
    rejected: pl.DataFrame
    files: list[Path]
    rows_read: int
    duplicates_removed: int
    formats: dict[str, str]
    skipped: dict[str, str] = field(default_factory=dict)
    """Files found inside a directory or glob that are not market data (e.g. a README.csv), with why."""
    orders: pl.DataFrame = field(default_factory=lambda: empty_frame(ORDER_SCHEMA))
    """L3 order events, when asked for (`kinds`)."""
    book: pl.DataFrame = field(default_factory=lambda: empty_frame(BOOK_SCHEMA))
    """L2 book updates, when asked for (`kinds`)."""
    book_gaps: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=depth.GAP_SCHEMA))
    """Update-id gaps in diff-depth inputs, first in time first: rows read fine, but a book rebuilt
    across a gap is wrong, so callers should say so."""

    def book_gap_summary(self) -> str | None:
        """One line for a run summary: how many diff-depth gaps and where the first is; None without any."""
        return depth.describe_gaps(self.book_gaps)

    def tally(self) -> ReadTally:
        """The counts a run summary reports, without the frames."""
        return ReadTally(
            files=len(self.files),
            rows_read=self.rows_read,
            records={kind: getattr(self, kind).height for kind in RECORD_KINDS},
            duplicates_removed=self.duplicates_removed,
            rejected=self.rejected.height,
            skipped=self.skipped,
            book_gaps=self.book_gaps,
        )


@dataclass
class ReadTally:
    """What a read found, in counts: all a run summary needs, and all a run that never holds the whole
    input in memory (`tapewatch.pipeline.batch.detect_in_partitions`) can give."""

    files: int
    rows_read: int
    records: dict[Kind, int]
    """Clean records kept of each kind, after duplicates were removed."""
    duplicates_removed: int
    rejected: int
    skipped: dict[str, str]
    book_gaps: pl.DataFrame

    def book_gap_summary(self) -> str | None:
        """See `ReadResult.book_gap_summary`."""
        return depth.describe_gaps(self.book_gaps)


@dataclass(frozen=True)
class _Input:
    """One file to read, and whether the user named it (so an unrecognisable one is an error, not skipped)."""

    path: Path
    named: bool


@dataclass(frozen=True)
class FileRead:
    """One file's outcome: its clean rows (already conformed), dead letters and counts."""

    path: Path
    fmt: str
    kind: Kind
    good: pl.DataFrame
    rejected: pl.DataFrame
    rows: int
    sequence: pl.DataFrame | None = None
    """Diff-depth files: each message's update ids, with this file's name, for the gap check."""


@dataclass(frozen=True)
class SkippedFile:
    """A file found by expansion that is not in any known format."""

    path: Path
    reason: str


def _is_data_file(path: Path) -> bool:
    """A visible file with a data extension: what a directory contributes."""
    return path.is_file() and not path.name.startswith(".") and path.name.lower().endswith(DATA_SUFFIXES)


def _expand_one(text: str) -> list[_Input]:
    """A file as given; a directory's data files (recursive, sorted); a glob's matches (sorted)."""
    path = Path(text)
    if path.is_file():
        return [_Input(path, named=True)]
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if _is_data_file(p))
        if not found:
            raise InputError(f"input '{text}': no data files ({', '.join(DATA_SUFFIXES)}) in this directory")
        return [_Input(p, named=False) for p in found]
    if glob.has_magic(text):
        found = []
        for match in sorted(glob.glob(text, recursive=True)):
            found.extend(_expand_one(match) if Path(match).is_dir() else [_Input(Path(match), named=False)])
        if found:
            return found
    raise InputError(f"input '{text}': no such file or directory")


def _expand(inputs: Sequence[str | Path]) -> list[_Input]:
    """All inputs expanded in the order given, each file once."""
    seen: set[Path] = set()
    unique: list[_Input] = []
    for item in inputs:
        for entry in _expand_one(str(item)):
            key = entry.path.resolve()
            if key not in seen:
                seen.add(key)
                unique.append(entry)
    return unique


def expand_inputs(inputs: Sequence[str | Path]) -> list[Path]:
    """The files the inputs stand for, so the CLI can list or count them before reading.

    Files are kept as given, directories give their data files (.csv, .csv.gz,
    .gz, .zip, .parquet, .pq; recursively), globs their matches; each
    expansion is sorted and a file appears once. A path matching nothing is an
    InputError naming it.
    """
    return [entry.path for entry in _expand(inputs)]


def _load(source: Source, fmt: str) -> pl.DataFrame:
    """The file's rows as raw columns: Parquet typed, CSV text (headerless Binance dumps get their names),
    JSON lines one row per line."""
    if fmt == "parquet":
        if source.compression != "parquet":
            raise source.fail(f"not a Parquet file; expected {EXPECTED['parquet']}")
        try:
            return pl.read_parquet(source.path)
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise source.fail(f"cannot read as Parquet ({str(exc).strip().splitlines()[0]})") from exc
    if source.compression == "parquet":
        raise source.fail(f"is a Parquet file; expected {EXPECTED[fmt]} (or pass --format parquet)")
    if fmt == "binance-depth":
        return depth.message_lines(source.read_text())
    if fmt in BINANCE_COLUMNS and not source.has_header:
        canonical = BINANCE_COLUMNS[fmt]
        count = len(source.fields)
        names = [*canonical[:count], *(f"column_{i + 1}" for i in range(len(canonical), count))]
        return source.read_csv(fmt, has_header=False, names=names)
    return source.read_csv(fmt, has_header=True)


def _check(converted: Converted, raw: pl.DataFrame, file: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split converted rows into clean records (conformed to the schema) and dead letters."""
    frame = converted.frame
    problems = validity.problems(converted.kind, frame.columns)
    bad = frame.select(pl.any_horizontal([is_bad for is_bad, _ in problems])).to_series()
    schema = SCHEMAS[converted.kind]
    if not bad.any():
        return conform(frame, schema), empty_rejected()
    if converted.raw is not None:
        raw = converted.raw
    rejected = dead_letters(raw, bad, problems, frame, file, converted.lines)
    return conform(frame.filter(~bad), schema), rejected


def _refuse(entry: _Input, error: InputError) -> SkippedFile:
    """A file the run cannot use: an error when the user named it, skipped (with why) when a directory had it."""
    if entry.named:
        raise error
    return SkippedFile(entry.path, str(error))


def _unwanted(source: Source, kind: Kind, kinds: Collection[Kind]) -> InputError:
    """The error for a file of a kind the caller does not read (`detect` given L3 order events)."""
    wanted = " or ".join(NOUNS[k] for k in RECORD_KINDS if k in kinds)
    return source.fail(f"holds {NOUNS[kind]}, which this command does not read; expected {wanted}")


def _read_file(entry: _Input, fmt: str, venue: str | None, kinds: Collection[Kind]) -> FileRead | SkippedFile:
    """Detect, load, convert and check one file; an unrecognisable or unwanted file found by expansion is skipped."""
    source = open_source(entry.path)
    if fmt == "auto":
        try:
            fmt = detect_format(source)
        except InputError as exc:
            return _refuse(entry, exc)
    kind = KINDS.get(fmt)
    if kind is not None and kind not in kinds:
        return _refuse(entry, _unwanted(source, kind, kinds))
    if source.is_empty and kind is not None:
        return FileRead(entry.path, fmt, kind, empty_frame(SCHEMAS[kind]), empty_rejected(), 0)
    ctx = FileContext(source, fmt, venue, parse_binance_name(entry.path))
    raw = _load(source, fmt)
    converted = CONVERTERS[fmt](raw, ctx)
    if converted.kind not in kinds:
        return _refuse(entry, _unwanted(source, converted.kind, kinds))
    good, rejected = _check(converted, raw, source.display)
    sequence = converted.sequence
    if sequence is not None:
        sequence = sequence.with_columns(pl.lit(source.display).alias("file"))
    return FileRead(entry.path, fmt, converted.kind, good, rejected, raw.height, sequence)


def scan_files(
    inputs: Sequence[str | Path],
    fmt: str = "auto",
    venue: str | None = None,
    kinds: Collection[Kind] = ("trades", "bars"),
) -> Iterator[FileRead | SkippedFile]:
    """Each input file read and checked (`read_inputs`' rules), yielded in input order as soon as it and
    every file before it are done.

    Files are read on a few threads, at most one more than there are threads ahead of the consumer, so a
    caller that spills each file (`tapewatch.io.spill.spill_files`) holds a few files at a time, not the input.
    """
    if fmt not in FORMATS:
        raise InputError(f"--format '{fmt}': unknown format; expected one of {', '.join(FORMATS)}")
    unknown = set(kinds) - set(RECORD_KINDS)
    if unknown:
        raise ValueError(f"unknown record kind(s) {sorted(unknown)}; expected some of {RECORD_KINDS}")
    entries = _expand(inputs)
    workers = max(1, min(len(entries), os.cpu_count() or 1, MAX_READERS))
    with ThreadPoolExecutor(workers) as pool:
        waiting: deque[Future[FileRead | SkippedFile]] = deque()
        try:
            for entry in entries:
                waiting.append(pool.submit(_read_file, entry, fmt, venue, kinds))
                if len(waiting) > workers:
                    yield waiting.popleft().result()
            while waiting:
                yield waiting.popleft().result()
        finally:
            for future in waiting:
                future.cancel()


def _row_hashes(frame: pl.DataFrame, columns: list[str]) -> pl.Series:
    """A 64-bit hash of every row over `columns`."""
    return frame.select(pl.struct(columns).hash()).to_series()


def _drop_duplicates(frame: pl.DataFrame, keys: Sequence[str]) -> pl.DataFrame:
    """Exact-duplicate rows removed from a frame sorted by `keys`, first copies kept in place.

    Copies share their keys, so only rows with a neighbour of the same keys (a third of
    real trades: sweeps print several trades in one millisecond) can be copies, and only
    they are compared (`_later_copies`).
    """
    shared = pl.all_horizontal(pl.col(key).eq_missing(pl.col(key).shift(1)) for key in keys) & (
        pl.int_range(pl.len()) > 0
    )
    tied = frame.select(shared | shared.shift(-1, fill_value=False)).to_series()
    positions = tied.arg_true()
    copies = _later_copies(frame[positions])
    if not copies.any():
        return frame
    return frame.filter(~tied.scatter(positions, copies))  # the copies among the tied rows, nothing else


def _later_copies(frame: pl.DataFrame) -> pl.Series:
    """True on each row identical to an earlier row.

    A 64-bit row hash finds them at a fraction of the cost of comparing whole rows;
    every flagged row is then matched column by column against the first rows with its
    hash, so a collision can never lose a trade (should one happen, the exact method
    runs instead). Columns that are null throughout (e.g. buyer/seller) cannot tell
    rows apart and are skipped.
    """
    columns = [name for name in frame.columns if frame[name].null_count() < frame.height] or frame.columns
    hashes = _row_hashes(frame, columns)
    first = hashes.is_first_distinct()
    if first.all():
        return ~first
    originals = frame.filter(first & hashes.is_in(hashes.filter(~first).implode()))
    if frame.filter(~first).join(originals, on=columns, how="anti", nulls_equal=True).height:
        return ~frame.select(pl.struct(frame.columns).is_first_distinct()).to_series()
    return ~first


def numbered_repeats(frame: pl.DataFrame) -> pl.DataFrame:
    """Each row numbered among the identical rows before it in its file, so only other files' copies match it."""
    return frame.with_columns(pl.int_range(pl.len()).over(frame.columns).alias(REPEAT))


def deduplicated(
    frames: list[pl.DataFrame], kind: Kind, *, numbered: bool = False
) -> tuple[pl.DataFrame, int]:
    """Concatenate, drop exact duplicates and sort stably by the kind's keys; also return how many were dropped.

    `frames` are the input files' rows in input order. Stable sorting keeps the files' own order among
    rows of the same timestamp, which matters for "last price" style calculations and for replaying order
    events or book updates in sequence. `numbered`: event kinds' frames already carry their repeats'
    numbers within their files (`numbered_repeats`), as frames gathered from several files do.
    """
    if not frames:
        return empty_frame(SCHEMAS[kind]), 0
    if kind in REPEATS_ARE_EVENTS and not numbered:
        frames = [numbered_repeats(frame) for frame in frames]
    keys = SORT_KEYS[kind]
    combined = pl.concat(frames, how="vertical", rechunk=True).sort(keys, maintain_order=True)
    unique = _drop_duplicates(combined, keys)
    return unique.drop(REPEAT, strict=False), combined.height - unique.height


def read_book_gaps(reads: list[FileRead]) -> pl.DataFrame:
    """Update-id gaps over the diff-depth messages of all files together (a capture split across files)."""
    sequences = [r.sequence for r in reads if r.sequence is not None]
    if not sequences:
        return pl.DataFrame(schema=depth.GAP_SCHEMA)
    return depth.sequence_gaps(pl.concat(sequences, how="vertical"))


def read_inputs(
    inputs: Sequence[str | Path],
    fmt: str = "auto",
    venue: str | None = None,
    on_file: Callable[[Path], None] | None = None,
    kinds: Collection[Kind] = ("trades", "bars"),
) -> ReadResult:
    """Read every input into records of the asked `kinds`; bad rows go to `rejected`, bad files raise InputError.

    `fmt` is one of FORMATS ("auto" detects each file from its name and first
    line). `venue` overrides the venue of every record; without it a file's
    `venue`/`exchange` column is used, else "binance" for Binance dumps and
    "unknown" otherwise. `on_file` is called once per file, in order, after it
    has been read (for progress display). `kinds` (of RECORD_KINDS) says what
    the caller uses: a file of another kind is an InputError when named and
    skipped when a directory or glob found it, so trade detection never takes
    order events for trades. `rows_read` counts a diff-depth message as one row.
    """
    outcomes = []
    for outcome in scan_files(inputs, fmt, venue, kinds):
        outcomes.append(outcome)
        if on_file is not None:
            on_file(outcome.path)
    reads = [o for o in outcomes if isinstance(o, FileRead)]
    frames = {kind: deduplicated([r.good for r in reads if r.kind == kind], kind) for kind in RECORD_KINDS}
    rejected = [r.rejected for r in reads if r.rejected.height]
    return ReadResult(
        trades=frames["trades"][0],
        bars=frames["bars"][0],
        rejected=pl.concat(rejected) if rejected else empty_rejected(),
        files=[r.path for r in reads],
        rows_read=sum(r.rows for r in reads),
        duplicates_removed=sum(dropped for _, dropped in frames.values()),
        formats={str(r.path): r.fmt for r in reads},
        skipped={str(o.path): o.reason for o in outcomes if isinstance(o, SkippedFile)},
        orders=frames["orders"][0],
        book=frames["book"][0],
        book_gaps=read_book_gaps(reads),
    )
