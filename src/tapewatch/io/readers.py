"""Read input files of any supported format into clean, de-duplicated trade and bar frames.

This is what `tapewatch detect INPUT...` calls. Files are read in parallel
(gzip inflation dominates the cost and runs outside the GIL), each one is
normalised and checked with vectorised Polars expressions, bad rows become dead
letters instead of errors, and exact duplicates (paging overlaps, overlapping
downloads) are dropped across all files at once.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from tapewatch.errors import InputError
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
from tapewatch.io.normalise import CONVERTERS, KINDS, PROBLEMS, Converted, FileContext, Kind
from tapewatch.records import BAR_SCHEMA, TRADE_SCHEMA, conform, empty_frame

__all__ = ["FORMATS", "ReadResult", "expand_inputs", "read_inputs", "write_dead_letters"]

SCHEMAS: dict[Kind, dict[str, pl.DataType]] = {"trades": TRADE_SCHEMA, "bars": BAR_SCHEMA}
SORT_KEYS: dict[Kind, tuple[str, ...]] = {
    "trades": ("venue", "symbol", "ts"),
    "bars": ("venue", "symbol", "interval", "ts"),
}
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


@dataclass(frozen=True)
class _Input:
    """One file to read, and whether the user named it (so an unrecognisable one is an error, not skipped)."""

    path: Path
    named: bool


@dataclass(frozen=True)
class _FileRead:
    """One file's outcome: its clean rows (already conformed), dead letters and counts."""

    path: Path
    fmt: str
    kind: Kind
    good: pl.DataFrame
    rejected: pl.DataFrame
    rows: int


@dataclass(frozen=True)
class _Skipped:
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
    """The file's rows as raw columns: Parquet typed, CSV all text (headerless Binance dumps get their names)."""
    if fmt == "parquet":
        if source.compression != "parquet":
            raise source.fail(f"not a Parquet file; expected {EXPECTED['parquet']}")
        try:
            return pl.read_parquet(source.path)
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise source.fail(f"cannot read as Parquet ({str(exc).strip().splitlines()[0]})") from exc
    if source.compression == "parquet":
        raise source.fail(f"is a Parquet file; expected {EXPECTED[fmt]} (or pass --format parquet)")
    if fmt in BINANCE_COLUMNS and not source.has_header:
        canonical = BINANCE_COLUMNS[fmt]
        count = len(source.fields)
        names = [*canonical[:count], *(f"column_{i + 1}" for i in range(len(canonical), count))]
        return source.read_csv(fmt, has_header=False, names=names)
    return source.read_csv(fmt, has_header=True)


def _check(converted: Converted, raw: pl.DataFrame, file: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split converted rows into clean records (conformed to the schema) and dead letters."""
    frame = converted.frame
    problems = PROBLEMS[converted.kind](frame.columns)
    bad = frame.select(pl.any_horizontal([is_bad for is_bad, _ in problems])).to_series()
    schema = SCHEMAS[converted.kind]
    if not bad.any():
        return conform(frame, schema), empty_rejected()
    return conform(frame.filter(~bad), schema), dead_letters(raw, bad, problems, frame, file)


def _read_file(entry: _Input, fmt: str, venue: str | None) -> _FileRead | _Skipped:
    """Detect, load, convert and check one file; an unrecognisable file found by expansion is skipped."""
    source = open_source(entry.path)
    if fmt == "auto":
        try:
            fmt = detect_format(source)
        except InputError as exc:
            if entry.named:
                raise
            return _Skipped(entry.path, str(exc))
    if source.is_empty and fmt in KINDS:
        kind = KINDS[fmt]
        return _FileRead(entry.path, fmt, kind, empty_frame(SCHEMAS[kind]), empty_rejected(), 0)
    ctx = FileContext(source, fmt, venue, parse_binance_name(entry.path))
    raw = _load(source, fmt)
    converted = CONVERTERS[fmt](raw, ctx)
    good, rejected = _check(converted, raw, source.display)
    return _FileRead(entry.path, fmt, converted.kind, good, rejected, raw.height)


def _read_all(
    entries: list[_Input], fmt: str, venue: str | None, on_file: Callable[[Path], None] | None
) -> list[_FileRead | _Skipped]:
    """Read files on a few threads, reporting each to `on_file` in input order as it completes."""
    workers = max(1, min(len(entries), os.cpu_count() or 1, MAX_READERS))
    outcomes: list[_FileRead | _Skipped] = []
    with ThreadPoolExecutor(workers) as pool:
        futures: list[Future[_FileRead | _Skipped]] = [
            pool.submit(_read_file, e, fmt, venue) for e in entries
        ]
        try:
            for entry, future in zip(entries, futures, strict=True):
                outcomes.append(future.result())
                if on_file is not None:
                    on_file(entry.path)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return outcomes


def _row_hashes(frame: pl.DataFrame, columns: list[str]) -> pl.Series:
    """A 64-bit hash of every row over `columns`."""
    return frame.select(pl.struct(columns).hash()).to_series()


def _drop_duplicates(frame: pl.DataFrame) -> pl.DataFrame:
    """Exact-duplicate rows removed, first occurrences kept in place.

    A 64-bit row hash finds duplicates at a fraction of the cost of
    `unique(maintain_order=True)`; every dropped row is then matched column by
    column against the kept rows with its hash, so a collision can never lose a
    trade (should one happen, the exact method runs instead). Columns that are
    null throughout (e.g. buyer/seller) cannot tell rows apart and are skipped.
    """
    columns = [name for name in frame.columns if frame[name].null_count() < frame.height] or frame.columns
    hashes = _row_hashes(frame, columns)
    first = hashes.is_first_distinct()
    if first.all():
        return frame
    kept = frame.filter(first)
    dropped = frame.filter(~first)
    originals = kept.filter(hashes.filter(first).is_in(hashes.filter(~first).implode()))
    if dropped.join(originals, on=columns, how="anti", nulls_equal=True).height:
        return frame.unique(maintain_order=True)
    return kept


def _deduplicated(frames: list[pl.DataFrame], kind: Kind) -> tuple[pl.DataFrame, int]:
    """Concatenate, drop exact duplicates and sort stably by the kind's keys; also return how many were dropped.

    Stable sorting keeps the files' own order among trades of the same
    timestamp, which matters for "last price" style calculations.
    """
    if not frames:
        return empty_frame(SCHEMAS[kind]), 0
    combined = pl.concat(frames, how="vertical", rechunk=True)
    unique = _drop_duplicates(combined).sort(SORT_KEYS[kind], maintain_order=True)
    return unique, combined.height - unique.height


def read_inputs(
    inputs: Sequence[str | Path],
    fmt: str = "auto",
    venue: str | None = None,
    on_file: Callable[[Path], None] | None = None,
) -> ReadResult:
    """Read every input into trade and bar records; bad rows go to `rejected`, bad files raise InputError.

    `fmt` is one of FORMATS ("auto" detects each file from its name and first
    line). `venue` overrides the venue of every record; without it a file's
    `venue`/`exchange` column is used, else "binance" for Binance dumps and
    "unknown" otherwise. `on_file` is called once per file, in order, after it
    has been read (for progress display).
    """
    if fmt not in FORMATS:
        raise InputError(f"--format '{fmt}': unknown format; expected one of {', '.join(FORMATS)}")
    entries = _expand(inputs)
    outcomes = _read_all(entries, fmt, venue, on_file)
    reads = [o for o in outcomes if isinstance(o, _FileRead)]
    trades, trade_dups = _deduplicated([r.good for r in reads if r.kind == "trades"], "trades")
    bars, bar_dups = _deduplicated([r.good for r in reads if r.kind == "bars"], "bars")
    rejected = [r.rejected for r in reads if r.rejected.height]
    return ReadResult(
        trades=trades,
        bars=bars,
        rejected=pl.concat(rejected) if rejected else empty_rejected(),
        files=[r.path for r in reads],
        rows_read=sum(r.rows for r in reads),
        duplicates_removed=trade_dups + bar_dups,
        formats={str(r.path): r.fmt for r in reads},
        skipped={str(o.path): o.reason for o in outcomes if isinstance(o, _Skipped)},
    )
