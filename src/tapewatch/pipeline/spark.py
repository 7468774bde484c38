"""`tapewatch detect --engine spark`: the same detectors over history too large for one machine.

Spark does what `detect_in_partitions` does on one machine, across many: executors read the input files
(`read_file`, one file per task; one that cannot be read is set aside, as locally), split each file's
clean rows by venue and symbol, and Spark shuffles those pieces so that every row of one venue/symbol (trades, candles, order events, book updates) meets
in one group. Each group is handed through Arrow to the batch engine (`detect_records`); only the alerts
and the counts come back to the driver, which writes them exactly as the local engine does.

The alerts are identical to a local run's because every detector decides a venue/symbol from that
symbol's own rows, and a group sees those rows in the order a whole read shows them: a piece carries its
input file's index and keeps its rows in file order (Arrow IPC, so every type round-trips exactly), and
the group re-assembles one frame per file, in file order, for `deduplicated`.

A lake given by URL (`s3://bucket/lake`, `file:///data/lake`) is read the same way: the driver lists
its day files (`tapewatch.io.lake`) and each executor reads its own through fsspec, so an object store
needs no Hadoop jars, only its fsspec backend (s3fs) on every node.

Spark must be able to import tapewatch in its executors (a local master uses this Python; a cluster
needs tapewatch[spark] installed on its nodes and the input paths visible to every executor). Nothing
is downloaded at run time: no --packages, no Ivy.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from tapewatch import validity
from tapewatch.config import Settings
from tapewatch.detect.base import Detector
from tapewatch.detect.registry import build_detectors
from tapewatch.engine.batch import detection_order
from tapewatch.errors import InputError
from tapewatch.io.deadletter import DeadLetterFile, check_writable
from tapewatch.io.lake import list_partitions, read_partition
from tapewatch.io.readers import (
    FORMATS,
    RECORD_KINDS,
    SCHEMAS,
    FailedFile,
    FileRead,
    Kind,
    ReadTally,
    Rejected,
    SkippedFile,
    deduplicated,
    expand_inputs,
    read_book_gaps,
    read_file,
)
from tapewatch.io.storage import shown
from tapewatch.pipeline.batch import DetectorChoice, DetectRun, choose_detectors, detect_records
from tapewatch.records import Alert, conform

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DEFAULT_MASTER = "local[*]"
LAKE_KINDS = ("trades", "bars", "book")
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")
"""An input with a scheme (two letters or more, so never a Windows drive) is a lake's URL."""
PIECE_ROWS = 250_000
"""Rows of one file and symbol per shuffled piece (about 20 MB as Arrow IPC): small enough for Spark's
sorter and Arrow batches, large enough that a piece costs nothing to look after."""
SESSION_CONF = {
    "spark.sql.execution.arrow.useLargeVarTypes": "true",  # a group's pieces may pass 2 GiB together
    "spark.sql.execution.arrow.maxRecordsPerBatch": "16",  # pieces are large: few per Arrow batch
    "spark.sql.inMemoryColumnarStorage.batchSize": "8",  # the read kept on disk: a few pieces per block
}

READ_SCHEMA = pa.schema(
    [
        ("file", pa.int64()),  # the input file's index in expansion order
        ("piece", pa.bool_()),  # a piece of clean rows, or (false) the file's own outcome
        ("kind", pa.large_string()),
        ("venue", pa.large_string()),
        ("symbol", pa.large_string()),
        ("part", pa.int64()),  # a piece's number within its file and symbol, in row order
        ("rows", pa.int64()),  # a piece's rows; the file's raw rows read
        ("clean", pa.int64()),  # the file's clean rows
        ("data", pa.large_binary()),  # a piece's rows as Arrow IPC
        ("fmt", pa.large_string()),
        ("rejected", pa.large_binary()),  # the file's dead letters as Arrow IPC (null: none)
        ("letters", pa.int64()),  # how many dead letters the file has
        ("sequence", pa.large_binary()),  # a diff-depth file's update ids as Arrow IPC
        ("skipped", pa.large_string()),  # why a file found by a directory or glob is not market data
        ("error", pa.large_string()),  # why a file cannot be read (it is set aside)
        ("blank", pa.int64()),  # the file's blank lines passed over
        ("notes", pa.large_string()),  # what conversion noted about the file, a JSON list
    ]
)
READ_DDL = (
    "file long, piece boolean, kind string, venue string, symbol string, part long, rows long, "
    "clean long, data binary, fmt string, rejected binary, letters long, sequence binary, skipped string, "
    "error string, blank long, notes string"
)
DETECT_SCHEMA = pa.schema(
    [
        ("venue", pa.large_string()),
        ("symbol", pa.large_string()),
        ("seq", pa.int64()),  # an alert's place in its group's detection order
        ("alert", pa.large_string()),  # Alert.model_dump_json(); null on a count row
        ("kind", pa.large_string()),  # count rows: one per kind
        ("kept", pa.int64()),
        ("removed", pa.int64()),
    ]
)
DETECT_DDL = "venue string, symbol string, seq long, alert string, kind string, kept long, removed long"


def spark_session(master: str | None = None, *, shuffle_partitions: int | None = None) -> SparkSession:
    """A Spark session for detection: `master` (local[*] when None) with the UI, the console progress bar
    and Spark's INFO logs off. A local master's executors run this Python, so they import this tapewatch.

    Raises InputError in one line when Spark cannot start (no Java, a master that does not answer).
    """
    from pyspark.sql import SparkSession

    warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
    master = master or DEFAULT_MASTER
    if master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        shuffle_partitions = shuffle_partitions or 4 * (os.cpu_count() or 1)
    builder = (
        SparkSession.builder.master(master)
        .appName("tapewatch detect")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.log.level", "ERROR")
    )
    if shuffle_partitions:
        builder = builder.config("spark.sql.shuffle.partitions", str(shuffle_partitions))
    for key, value in SESSION_CONF.items():
        builder = builder.config(key, value)
    try:
        return builder.getOrCreate()
    except Exception as exc:  # py4j and pyspark raise their own types for a JVM that did not start
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(
            f"Spark could not start on '{master}' ({first}); it needs Java 17 or later (JAVA_HOME)"
        ) from exc


def stop_spark(session: SparkSession) -> None:
    """Stop the session and the JVM this process started for it (SparkSession.stop leaves the JVM
    running until Python exits: a test suite or a long-lived caller would keep it)."""
    from pyspark import SparkContext

    session.stop()
    gateway = SparkContext._gateway
    if gateway is None:
        return
    gateway.shutdown()
    process = getattr(gateway, "proc", None)
    if process is not None:  # the JVM exits when its stdin closes
        process.stdin.close()
        process.wait(timeout=60)
    SparkContext._gateway = None
    SparkContext._jvm = None


def detect_files_on_spark(
    inputs: Sequence[str | Path],
    settings: Settings,
    *,
    fmt: str = "auto",
    venue: str | None = None,
    detectors: Sequence[str] | None = None,
    model: Path | None = None,
    dead_letter: Path | None = None,
    master: str | None = None,
    spark: SparkSession | None = None,
    piece_rows: int = PIECE_ROWS,
) -> DetectRun:
    """`detect_files` on Spark: the same alerts, counts and dead letters as the local engine.

    Runs on `spark` when given, or on the session this process already runs (either is left running),
    else on a session started for `master` (local[*] when None) and stopped at the end. `piece_rows`
    bounds the rows of one file and symbol shuffled as one piece.
    """
    started = time.perf_counter()
    choice = choose_detectors(settings, detectors, model)
    choice.check_split("run on Spark (which groups the rows by venue and symbol)")
    if fmt not in FORMATS:
        raise InputError(f"--format '{fmt}': unknown format; expected one of {', '.join(FORMATS)}")
    if dead_letter is not None:
        check_writable(dead_letter, "--dead-letter")
    sources = _sources(inputs)
    if spark is None:
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()  # a session this process already runs is reused
    own = spark is None
    session = spark_session(master) if spark is None else spark
    try:
        reader = _FileReader(sources, fmt, venue, piece_rows, settings.input.time_bounds())
        run = _detect(session, reader, choice, dead_letter)
        run.engine = f"Spark ({session.sparkContext.master})"
    finally:
        if own:
            stop_spark(session)
    run.seconds = time.perf_counter() - started
    return run


def _detect(
    spark: SparkSession, reader: _FileReader, choice: DetectorChoice, dead_letter: Path | None
) -> DetectRun:
    """Read in executors (kept on their disks), check on the driver, then detect by venue and symbol."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    for key, value in SESSION_CONF.items():
        spark.conf.set(key, value)
    read = (
        spark.range(0, len(reader.sources), 1, numPartitions=max(1, len(reader.sources)))
        .mapInArrow(reader, READ_DDL)
        .persist(StorageLevel.DISK_ONLY)
    )
    try:
        outcomes = pl.from_arrow(read.where(~F.col("piece")).drop("data", "rejected").toArrow()).sort("file")
        tally, candles = _read_tally(reader.sources, outcomes)
        letters = DeadLetterFile(dead_letter)
        refused = read.where(~F.col("piece") & F.col("rejected").isNotNull()).select("file", "rejected")
        for row in refused.orderBy("file").toLocalIterator():  # a partition at a time, in input order
            letters.add(pl.read_ipc(io.BytesIO(row["rejected"])))
        chosen = choice.names(candles=candles)
        pieces = read.where(F.col("piece")).select("venue", "symbol", "file", "kind", "part", "data")
        results = pieces.groupBy("venue", "symbol").applyInArrow(
            _group_detector(choice.settings, chosen), DETECT_DDL
        )
        found = pl.from_arrow(results.toArrow())
    finally:
        read.unpersist()
    counts = found.filter(pl.col("alert").is_null())
    for kind in RECORD_KINDS:
        mine = counts.filter(pl.col("kind") == kind)
        tally.records[kind] = int(mine["kept"].sum())
        tally.duplicates_removed += int(mine["removed"].sum())
    lines = found.filter(pl.col("alert").is_not_null()).sort("venue", "symbol", "seq")["alert"]
    alerts = sorted((Alert.model_validate_json(line) for line in lines), key=detection_order)
    return DetectRun(
        alerts=alerts,
        tally=tally,
        dead_letter_path=letters.path,
        seconds=0.0,
        by_detector=Counter(alert.detector for alert in alerts),
    )


@dataclass(frozen=True)
class _Source:
    """One thing an executor reads: an input file, or one day file of a lake given by URL."""

    location: str
    named: bool = True
    """Whether the user named the file: one that is not market data is then an error, not skipped."""
    lake_kind: str | None = None
    """The record kind of a lake partition; None for an input file."""


def _sources(inputs: Sequence[str | Path]) -> list[_Source]:
    """Each input file once, in the order `expand_inputs` gives, then the day files of every lake URL
    (`s3://bucket/lake`, `file:///data/lake`: by kind, symbol, day), which executors read themselves."""
    urls = [str(item) for item in inputs if URL.match(str(item))]
    paths = [item for item in inputs if not URL.match(str(item))]
    named: dict[Path, bool] = {}
    for item in paths:
        for path in expand_inputs([item]):
            named.setdefault(path.resolve(), Path(item).is_file())
    found = [_Source(str(path), named[path.resolve()]) for path in (expand_inputs(paths) if paths else [])]
    for url in urls:
        days = [part for kind in LAKE_KINDS for part in list_partitions(url, kind)]
        if not days:
            raise InputError(f"lake {shown(url)}: no trades, bars or book updates")
        found += [_Source(part.url, lake_kind=part.kind) for part in days]
    return found


def _read_tally(sources: list[_Source], outcomes: pl.DataFrame) -> tuple[ReadTally, bool]:
    """The counts of the read, in input order (the dead letters themselves are fetched apart, a few
    files at a time); a file that could not be read is set aside in `failed`, as the local engine does,
    and reading none is an InputError. Also whether any file held candles."""
    tally = ReadTally.empty()
    reads: list[FileRead] = []
    candles = False
    for row in outcomes.iter_rows(named=True):
        path = Path(sources[row["file"]].location)
        if row["skipped"] is not None:
            tally.skipped[str(path)] = row["skipped"]
            continue
        if row["error"] is not None:
            tally.failed[str(path)] = row["error"]
            continue
        tally.files += 1
        tally.rows_read += row["rows"]
        tally.rejected += row["letters"] or 0
        tally.blank_lines += row["blank"] or 0
        if row["notes"]:
            tally.notes[str(path)] = json.loads(row["notes"])
        candles = candles or (row["kind"] == "bars" and row["clean"] > 0)
        sequence = _frame(row["sequence"])
        reads.append(FileRead(path, row["fmt"], row["kind"], pl.DataFrame(), Rejected(), 0, sequence))
    tally.book_gaps = read_book_gaps(reads)
    tally.check_some_read()
    return tally, candles


def _ipc(frame: pl.DataFrame) -> bytes:
    """A frame as Arrow IPC bytes: every Polars type, time zone and row order comes back as it was."""
    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression="lz4")
    return buffer.getvalue()


def _frame(data: bytes | None) -> pl.DataFrame | None:
    return None if data is None else pl.read_ipc(io.BytesIO(data))


@dataclass
class _FileReader:
    """mapInArrow's function (in executors): each source numbered in the batch read (an input file read
    and checked by `read_file`, a lake day file as stored), its clean rows split into pieces by venue and
    symbol, in file order."""

    sources: list[_Source]
    fmt: str
    venue: str | None
    piece_rows: int
    bounds: validity.TimeBounds
    """The driver's `[input]` time bounds: executors are other Python processes, which never loaded the
    settings, so without them they would check rows against the defaults."""

    def __call__(self, batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        validity.use_time_bounds(self.bounds)
        for batch in batches:
            for index in batch.column(0).to_pylist():
                yield pa.RecordBatch.from_pylist(list(self._rows(index)), schema=READ_SCHEMA)

    def _rows(self, index: int) -> Iterator[dict]:
        source = self.sources[index]
        outcome = self._read(source)
        if isinstance(outcome, SkippedFile):
            yield {"file": index, "piece": False, "skipped": outcome.reason}
            return
        if isinstance(outcome, FailedFile):
            yield {"file": index, "piece": False, "error": outcome.reason}
            return
        rejected = outcome.rejected.frame()
        yield {
            "file": index,
            "piece": False,
            "kind": outcome.kind,
            "rows": outcome.rows,
            "clean": outcome.good.height,
            "fmt": outcome.fmt,
            "rejected": _ipc(rejected) if rejected.height else None,
            "letters": rejected.height,
            "sequence": None if outcome.sequence is None else _ipc(outcome.sequence),
            "blank": outcome.blank_lines,
            "notes": json.dumps(outcome.notes) if outcome.notes else None,
        }
        if outcome.good.is_empty():
            return
        groups = outcome.good.partition_by("venue", "symbol", maintain_order=True, as_dict=True)
        for (venue, symbol), rows in groups.items():
            for part, start in enumerate(range(0, rows.height, self.piece_rows)):
                piece = rows.slice(start, self.piece_rows)
                yield {
                    "file": index,
                    "piece": True,
                    "kind": outcome.kind,
                    "venue": venue,
                    "symbol": symbol,
                    "part": part,
                    "rows": piece.height,
                    "data": _ipc(piece),
                }

    def _read(self, source: _Source) -> FileRead | SkippedFile | FailedFile:
        if source.lake_kind is None:
            return read_file(Path(source.location), self.fmt, self.venue, RECORD_KINDS, named=source.named)
        kind = source.lake_kind
        rows = conform(read_partition(source.location), SCHEMAS[kind])
        if self.venue is not None:
            rows = rows.with_columns(pl.lit(self.venue).alias("venue"))
        return FileRead(Path(source.location), "lake", kind, rows, Rejected(), rows.height)


def _group_detector(settings: Settings, names: list[str]) -> Callable[[tuple, pa.Table], pa.Table]:
    """applyInArrow's function (in executors): one venue/symbol's pieces re-assembled as a whole read
    orders them (one frame per input file, files in input order), de-duplicated, and detected. The
    detectors are built once per task. (A plain function: Spark counts its arguments.)"""
    built: list[Detector] = []

    def detect_group(key: tuple, table: pa.Table) -> pa.Table:
        venue, symbol = (value.as_py() for value in key)
        assembled = _assembled(pl.from_arrow(table))
        frames = {kind: rows for kind, (rows, _) in assembled.items()}
        rows = [
            {"venue": venue, "symbol": symbol, "kind": kind, "kept": kept.height, "removed": removed}
            for kind, (kept, removed) in assembled.items()
        ]
        if not built:
            built.extend(build_detectors(settings, names))
        alerts = detect_records(built, frames)
        rows += [
            {"venue": venue, "symbol": symbol, "seq": seq, "alert": alert.model_dump_json()}
            for seq, alert in enumerate(alerts)
        ]
        return pa.Table.from_pylist(rows, schema=DETECT_SCHEMA)

    return detect_group


def _assembled(pieces: pl.DataFrame) -> dict[Kind, tuple[pl.DataFrame, int]]:
    """One group's pieces, in whatever order the shuffle delivered them, as a whole read gives their
    rows: each file's pieces joined in row order into one frame (`deduplicated` numbers an order's
    repeated events within a file), files in input order; de-duplicated and sorted, with how many
    duplicates were removed, for every record kind."""
    pieces = pieces.sort("kind", "file", "part")
    assembled = {}
    for kind in RECORD_KINDS:
        mine = pieces.filter(pl.col("kind") == kind)
        per_file = [
            pl.concat([pl.read_ipc(io.BytesIO(data)) for data in group["data"]], how="vertical")
            for _, group in mine.group_by("file", maintain_order=True)
        ]
        assembled[kind] = deduplicated(per_file, kind)
    return assembled
