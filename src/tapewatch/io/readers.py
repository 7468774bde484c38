"""Read input files of any supported format into clean, de-duplicated trade, bar, order event and book frames.

This is what `tapewatch detect INPUT...` calls. Files are read in parallel
(gzip inflation dominates the cost and runs outside the GIL), each one a batch of
rows at a time (`formats.BATCH_ROWS`: a small file full of junk costs one batch, not
its length), normalised and checked with vectorised Polars expressions; bad rows
become dead letters instead of errors, blank rows are counted, and exact duplicates
(paging overlaps, overlapping downloads) are dropped across all files at once.

A file that cannot be read (corrupt, cut short, of no known format, missing columns)
is an InputError naming it, or with `set_aside` is set aside in `failed` while the
rest are read; one a directory merely contains that is not market data is skipped.
Every row read is accounted for: rows_read = records kept + dead letters +
duplicates removed + blank lines.
"""

from __future__ import annotations

import glob
import os
import tempfile
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from tapewatch import validity
from tapewatch.errors import InputError
from tapewatch.io import depth
from tapewatch.io.deadletter import dead_letters, empty_rejected, refused_rows, write_dead_letters
from tapewatch.io.formats import (
    BATCH_ROWS,
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
    "FailedFile",
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
REPEATS_ARE_EVENTS: frozenset[Kind] = frozenset({"orders", "trades"})
"""Kinds whose identical rows within one file are separate events (two equal fills of one order in
the same µs; two equal trades in one second of second-resolution data); only the copies another file
adds are re-reads. Trades only when they carry no trade_id: a trade with an id is one trade, so a row
repeating it is a copy wherever it comes from."""
REPEAT = "_repeat"
"""Helper column: how many identical rows precede this one in its file."""
MAX_READERS = 8
"""Files read at once; more threads than cores only adds memory."""
MESSAGE_LINES = 200_000
MESSAGE_BYTES = 16 * 2**20
"""Lines and bytes of a JSON lines file converted at once: a diff-depth message holds tens of levels,
each a row, so a batch is bounded by its text as well as by its lines (blank ones cost nothing)."""
LETTER_ROWS = 100_000
"""Rows of a batch formatted as dead letters at a time."""
HELD_REJECTS = 100_000
"""Dead letters of one file held in memory while it waits for its turn; more go to a temporary file."""


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
    failed: dict[str, str] = field(default_factory=dict)
    """Files set aside because they cannot be read (corrupt, cut short, missing columns, of a format
    nobody can tell), each with its one-line error; only with `set_aside`, else the first one raises."""
    blank_lines: int = 0
    """Rows with no value in any field (empty lines): counted in `rows_read`, neither records nor dead
    letters, so rows_read = records + dead letters + duplicates removed + blank_lines."""
    rejected_streamed: int = 0
    """Dead letters handed to `on_rejected` as they came instead of being kept in `rejected`."""
    notes: dict[str, list[str]] = field(default_factory=dict)
    """What the converters noticed about a file and did (e.g. timestamps read as epoch seconds)."""
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
            rejected=self.rejected.height + self.rejected_streamed,
            skipped=self.skipped,
            book_gaps=self.book_gaps,
            failed=self.failed,
            blank_lines=self.blank_lines,
            notes=self.notes,
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
    failed: dict[str, str] = field(default_factory=dict)
    """See `ReadResult.failed`."""
    blank_lines: int = 0
    """See `ReadResult.blank_lines`."""
    notes: dict[str, list[str]] = field(default_factory=dict)
    """See `ReadResult.notes`."""

    @classmethod
    def empty(cls) -> ReadTally:
        """Nothing read yet: what a run counting file by file starts from."""
        return cls(0, 0, dict.fromkeys(RECORD_KINDS, 0), 0, 0, {}, pl.DataFrame(schema=depth.GAP_SCHEMA))

    def add(self, read: FileRead) -> None:
        """Count one file read (its records as read, before duplicates across files are removed)."""
        self.files += 1
        self.rows_read += read.rows
        self.records[read.kind] += read.good.height
        self.rejected += read.rejected.rows
        self.blank_lines += read.blank_lines
        if read.notes:
            self.notes[str(read.path)] = list(read.notes)

    def book_gap_summary(self) -> str | None:
        """See `ReadResult.book_gap_summary`."""
        return depth.describe_gaps(self.book_gaps)

    def check_some_read(self) -> None:
        """Raise InputError (one line) when no file could be read: all were set aside or none held market
        data. Exit status 0 after reading nothing would tell a script all was well."""
        if self.files:
            return
        if len(self.failed) == 1 and not self.skipped:
            raise InputError(next(iter(self.failed.values())))
        first = next(iter(self.failed.values()), None) or next(iter(self.skipped.values()), "")
        if not self.failed:
            raise InputError(
                f"no market data in the input: {len(self.skipped)} file(s) skipped as not market data; "
                f"first: {first}"
            )
        raise InputError(
            f"no input file could be read: {len(self.failed)} set aside as unreadable"
            + (f", {len(self.skipped)} skipped as not market data" if self.skipped else "")
            + f"; first: {first}"
        )


@dataclass(frozen=True)
class _Input:
    """One file to read, and whether the user named it (so an unrecognisable one is an error, not skipped)."""

    path: Path
    named: bool


class Rejected:
    """One file's dead letters, in row order: held in memory, or (`spill`) beyond HELD_REJECTS rows
    written to a temporary folder as Arrow files until the file's turn comes to hand them on.

    Files are read on several threads but their dead letters are written in input order, so a file may
    have to wait with its dead letters; spilling keeps that wait from costing memory.
    """

    def __init__(self, *, spill: bool = False) -> None:
        self.rows = 0
        self._spill = spill
        self._held: list[pl.DataFrame] = []
        self._held_rows = 0
        self._folder: tempfile.TemporaryDirectory | None = None
        self._files: list[Path] = []

    def add(self, frame: pl.DataFrame) -> None:
        """The next dead letters of the file."""
        if not frame.height:
            return
        self.rows += frame.height
        self._held.append(frame)
        self._held_rows += frame.height
        if self._spill and self._held_rows > HELD_REJECTS:
            if self._folder is None:
                self._folder = tempfile.TemporaryDirectory(prefix="tapewatch-rejected-")
            path = Path(self._folder.name) / f"{len(self._files):06d}.arrow"
            pl.concat(self._held).write_ipc(path, compression="lz4")
            self._files.append(path)
            self._held, self._held_rows = [], 0

    def frames(self) -> Iterator[pl.DataFrame]:
        """The dead letters in row order, a batch at a time; spilled ones are read back and removed."""
        for path in self._files:
            yield pl.read_ipc(path, memory_map=False)
            path.unlink()
        yield from self._held
        self.discard()

    def frame(self) -> pl.DataFrame:
        """All the dead letters as one frame."""
        frames = list(self.frames())
        return pl.concat(frames) if frames else empty_rejected()

    def discard(self) -> None:
        """Forget them (the file was set aside, or they were handed on)."""
        self._held, self._files = [], []
        if self._folder is not None:
            self._folder.cleanup()
            self._folder = None


@dataclass(frozen=True)
class FileRead:
    """One file's outcome: its clean rows (already conformed), dead letters and counts."""

    path: Path
    fmt: str
    kind: Kind
    good: pl.DataFrame
    rejected: Rejected
    rows: int
    """Rows read, blank ones included (a diff-depth message counts as one)."""
    sequence: pl.DataFrame | None = None
    """Diff-depth files: each message's update ids, with this file's name, for the gap check."""
    blank_lines: int = 0
    """Rows with no value in any field, passed over."""
    notes: tuple[str, ...] = ()
    """What conversion noticed and did about the file, for the summary."""


@dataclass(frozen=True)
class SkippedFile:
    """A file found by expansion that is not market data (not in any known format, or of a kind the
    command does not read): passed over, not an error."""

    path: Path
    reason: str


@dataclass(frozen=True)
class FailedFile:
    """A file that cannot be read (corrupt, cut short, missing columns; or named and not market data):
    set aside with its one-line error while the rest of the input is read."""

    path: Path
    reason: str


Outcome = FileRead | SkippedFile | FailedFile


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


def _load(source: Source, fmt: str) -> Iterator[pl.DataFrame]:
    """The file's rows as raw columns, BATCH_ROWS at a time: Parquet typed, CSV text (headerless Binance
    dumps get their names), JSON lines one row per line (read whole)."""
    if fmt == "parquet":
        if source.compression != "parquet":
            raise source.fail(f"not a Parquet file; expected {EXPECTED['parquet']}")
        return _parquet_batches(source)
    if source.compression == "parquet":
        raise source.fail(f"is a Parquet file; expected {EXPECTED[fmt]} (or pass --format parquet)")
    if fmt == "binance-depth":
        return _message_batches(source)
    if fmt in BINANCE_COLUMNS and not source.has_header:
        canonical = BINANCE_COLUMNS[fmt]
        count = len(source.fields)
        names = [*canonical[:count], *(f"column_{i + 1}" for i in range(len(canonical), count))]
        return source.csv_batches(fmt, names)
    return source.csv_batches(fmt)


def _message_batches(source: Source) -> Iterator[pl.DataFrame]:
    """A JSON lines file's non-blank lines with their line numbers, a batch at a time (MESSAGE_LINES,
    MESSAGE_BYTES; at least one batch, so a file of blank lines still converts to nothing)."""
    empty = True
    for before, text in source.line_batches(MESSAGE_LINES, MESSAGE_BYTES):
        empty = False
        yield depth.message_lines(text).with_columns(pl.col(depth.LINE) + before)
    if empty:
        yield depth.message_lines("")


def _parquet_batches(source: Source) -> Iterator[pl.DataFrame]:
    """A Parquet file BATCH_ROWS rows at a time (at least one batch, so an empty file has its columns);
    a file Polars cannot read (corrupt pages, a cut-off footer) is an InputError naming it."""
    try:
        total = pl.scan_parquet(source.path).select(pl.len()).collect().item()
        for start in range(0, max(total, 1), BATCH_ROWS):
            yield pl.scan_parquet(source.path).slice(start, BATCH_ROWS).collect()
    except (pl.exceptions.PolarsError, OSError, pl.exceptions.PanicException) as exc:
        problem = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise source.fail(f"cannot read as Parquet ({problem}); expected {EXPECTED['parquet']}") from None


def _blank_rows(raw: pl.DataFrame) -> pl.Series | None:
    """True on each row with no value in any field (an empty line, or separators only); None when none."""
    if not raw.width or not raw.height:
        return None
    blank = raw.select(pl.all_horizontal(pl.all().is_null())).to_series()
    return blank if blank.any() else None


UNDECODABLE = "undecodable bytes: not UTF-8 text"
"""The reason for a row whose bytes are not UTF-8 (read with U+FFFD in their place)."""


def _undecodable_rows(raw: pl.DataFrame) -> pl.Series | None:
    """True on each row with a U+FFFD in a text field, what undecodable bytes become when read (CSV is
    read leniently, so one bad byte costs its row, not the file); None when there are none."""
    text = [name for name, dtype in raw.schema.items() if dtype == pl.String]
    if not text or not raw.height:
        return None
    garbled = raw.select(
        pl.any_horizontal(pl.col(text).str.contains("\ufffd", literal=True).fill_null(False))
    ).to_series()
    return garbled if garbled.any() else None


def _check(
    converted: Converted, raw: pl.DataFrame, file: str, lines: pl.Series, rejected: Rejected
) -> pl.DataFrame:
    """Clean records (conformed to the schema) of converted rows; the others become dead letters in
    `rejected`, formatted a slice at a time so a batch of bad rows does not double its memory. `lines`
    are the rows' 1-based places in the file (a depth message's levels carry their own)."""
    frame = converted.frame
    problems = validity.problems(converted.kind, frame.columns)
    bad = frame.select(pl.any_horizontal([is_bad for is_bad, _ in problems])).to_series()
    if not bad.any():
        return conform(frame, SCHEMAS[converted.kind])
    if converted.raw is not None:
        raw, lines = converted.raw, converted.lines if converted.lines is not None else lines
    for start in range(0, frame.height, LETTER_ROWS):
        piece = slice(start, start + LETTER_ROWS)
        rejected.add(dead_letters(raw[piece], bad[piece], problems, frame[piece], file, lines[piece]))
    return conform(frame.filter(~bad), SCHEMAS[converted.kind])


def _refuse(entry: _Input, error: InputError) -> SkippedFile | FailedFile:
    """A file that is not market data the run can use: set aside (an error) when the user named it,
    skipped (with why) when a directory or glob found it."""
    if entry.named:
        return FailedFile(entry.path, str(error))
    return SkippedFile(entry.path, str(error))


def _unwanted(source: Source, kind: Kind, kinds: Collection[Kind]) -> InputError:
    """The error for a file of a kind the caller does not read (`detect` given L3 order events)."""
    wanted = " or ".join(NOUNS[k] for k in RECORD_KINDS if k in kinds)
    return source.fail(f"holds {NOUNS[kind]}, which this command does not read; expected {wanted}")


def read_file(
    path: Path, fmt: str, venue: str | None, kinds: Collection[Kind], *, named: bool = True
) -> Outcome:
    """One file read and checked as `scan_files` reads it, for callers that spread files over workers
    themselves (Spark); `named`: the user named it, so not being market data is a failure, not a skip."""
    return _read_file(_Input(path, named), fmt, venue, kinds, spill=False)


def _read_file(entry: _Input, fmt: str, venue: str | None, kinds: Collection[Kind], spill: bool) -> Outcome:
    """Detect, load, convert and check one file; one that cannot be read is a FailedFile with its one-line
    error, an unrecognisable or unwanted one found by expansion a SkippedFile. `spill`: see `Rejected`."""
    try:
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
            return FileRead(entry.path, fmt, kind, empty_frame(SCHEMAS[kind]), Rejected(), 0)
        return _read_batches(entry, source, fmt, venue, kinds, Rejected(spill=spill))
    except InputError as exc:
        return FailedFile(entry.path, str(exc))


def _read_batches(
    entry: _Input, source: Source, fmt: str, venue: str | None, kinds: Collection[Kind], rejected: Rejected
) -> Outcome:
    """Convert and check a file batch by batch (`_load`), so its memory is its clean rows and one batch."""
    ctx = FileContext(source, fmt, venue, parse_binance_name(entry.path))
    kind: Kind | None = None
    good: list[pl.DataFrame] = []
    sequences: list[pl.DataFrame] = []
    notes: dict[str, None] = {}
    rows = blanks = 0
    try:
        for raw in _load(source, fmt):
            lines = pl.int_range(rows + 1, rows + 1 + raw.height, dtype=pl.Int64, eager=True)
            rows += raw.height
            blank = _blank_rows(raw) if fmt != "binance-depth" else None
            if blank is not None:
                blanks += int(blank.sum())
                raw, lines = raw.filter(~blank), lines.filter(~blank)
            garbled = _undecodable_rows(raw)
            if garbled is not None:
                rejected.add(
                    refused_rows(raw.filter(garbled), lines.filter(garbled), source.display, UNDECODABLE)
                )
                raw, lines = raw.filter(~garbled), lines.filter(~garbled)
            converted = CONVERTERS[fmt](raw, ctx)
            if converted.kind not in kinds:
                rejected.discard()
                return _refuse(entry, _unwanted(source, converted.kind, kinds))
            if kind is not None and converted.kind != kind:
                raise source.fail(f"holds {NOUNS[kind]} and then {NOUNS[converted.kind]}; expected one kind")
            kind = converted.kind
            good.append(_check(converted, raw, source.display, lines, rejected))
            notes.update(dict.fromkeys(converted.notes))
            if converted.sequence is not None:
                sequences.append(converted.sequence.with_columns(pl.lit(source.display).alias("file")))
    except BaseException:
        rejected.discard()
        raise
    assert kind is not None, "every load yields at least one batch"
    frame = good[0] if len(good) == 1 else pl.concat(good, how="vertical", rechunk=True)
    sequence = pl.concat(sequences) if sequences else None
    return FileRead(entry.path, fmt, kind, frame, rejected, rows, sequence, blanks, tuple(notes))


def scan_files(
    inputs: Sequence[str | Path],
    fmt: str = "auto",
    venue: str | None = None,
    kinds: Collection[Kind] = ("trades", "bars"),
    *,
    set_aside: bool = False,
    spill_rejected: bool = False,
) -> Iterator[Outcome]:
    """Each input file read and checked (`read_inputs`' rules), yielded in input order as soon as it and
    every file before it are done.

    Files are read on a few threads, at most one more than there are threads ahead of the consumer, so a
    caller that spills each file (`tapewatch.io.spill.spill_files`) holds a few files at a time, not the input.
    A file that cannot be read raises its InputError, or with `set_aside` is yielded as a FailedFile.
    `spill_rejected`: a file's dead letters beyond a few are kept on disk until the caller takes them
    (`Rejected`), for callers that write them away rather than hold them.
    """
    if fmt not in FORMATS:
        raise InputError(f"--format '{fmt}': unknown format; expected one of {', '.join(FORMATS)}")
    unknown = set(kinds) - set(RECORD_KINDS)
    if unknown:
        raise ValueError(f"unknown record kind(s) {sorted(unknown)}; expected some of {RECORD_KINDS}")
    entries = _expand(inputs)
    workers = max(1, min(len(entries), os.cpu_count() or 1, MAX_READERS))
    with ThreadPoolExecutor(workers) as pool:
        waiting: deque[Future[Outcome]] = deque()
        try:
            for entry in entries:
                waiting.append(pool.submit(_read_file, entry, fmt, venue, kinds, spill_rejected))
                if len(waiting) > workers:
                    yield _settled(waiting.popleft().result(), set_aside)
            while waiting:
                yield _settled(waiting.popleft().result(), set_aside)
        finally:
            for future in waiting:
                if not future.cancel() and future.done() and future.exception() is None:
                    outcome = future.result()
                    if isinstance(outcome, FileRead):
                        outcome.rejected.discard()


def _settled(outcome: Outcome, set_aside: bool) -> Outcome:
    """The outcome, or its error raised when failed files are not to be set aside."""
    if isinstance(outcome, FailedFile) and not set_aside:
        raise InputError(outcome.reason)
    return outcome


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


def numbered_repeats(frame: pl.DataFrame, kind: Kind) -> pl.DataFrame:
    """Each row numbered among the identical rows before it in its file, so only other files' copies match
    it (REPEATS_ARE_EVENTS: for trades only those without a trade_id; the others are all 0)."""
    repeat = pl.int_range(pl.len()).over(frame.columns)
    if kind == "trades":
        if not frame["trade_id"].null_count():
            return frame.with_columns(pl.lit(0, dtype=pl.Int64).alias(REPEAT))
        repeat = pl.when(pl.col("trade_id").is_null()).then(repeat).otherwise(0)
    return frame.with_columns(repeat.cast(pl.Int64).alias(REPEAT))


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
        frames = [numbered_repeats(frame, kind) for frame in frames]
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
    *,
    set_aside: bool = False,
    on_rejected: Callable[[pl.DataFrame], None] | None = None,
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

    `set_aside`: a file that cannot be read goes to `failed` (with its one-line error) and the rest are
    read; reading no file at all is still an InputError. `on_rejected` takes each file's dead letters,
    in input order, as they come (`rejected` then stays empty), so a flood of bad rows costs no memory.
    """
    outcomes: list[Outcome] = []
    rejected: list[pl.DataFrame] = []
    streamed = 0
    for outcome in scan_files(
        inputs, fmt, venue, kinds, set_aside=set_aside, spill_rejected=on_rejected is not None
    ):
        if isinstance(outcome, FileRead):
            for frame in outcome.rejected.frames():
                if on_rejected is None:
                    rejected.append(frame)
                else:
                    on_rejected(frame)
                    streamed += frame.height
        outcomes.append(outcome)
        if on_file is not None:
            on_file(outcome.path)
    reads = [o for o in outcomes if isinstance(o, FileRead)]
    frames = {kind: deduplicated([r.good for r in reads if r.kind == kind], kind) for kind in RECORD_KINDS}
    result = ReadResult(
        trades=frames["trades"][0],
        bars=frames["bars"][0],
        rejected=pl.concat(rejected) if rejected else empty_rejected(),
        files=[r.path for r in reads],
        rows_read=sum(r.rows for r in reads),
        duplicates_removed=sum(dropped for _, dropped in frames.values()),
        formats={str(r.path): r.fmt for r in reads},
        skipped={str(o.path): o.reason for o in outcomes if isinstance(o, SkippedFile)},
        failed={str(o.path): o.reason for o in outcomes if isinstance(o, FailedFile)},
        blank_lines=sum(r.blank_lines for r in reads),
        rejected_streamed=streamed,
        notes={str(r.path): list(r.notes) for r in reads if r.notes},
        orders=frames["orders"][0],
        book=frames["book"][0],
        book_gaps=read_book_gaps(reads),
    )
    result.tally().check_some_read()
    return result
