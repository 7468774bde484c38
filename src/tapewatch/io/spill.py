"""Clean rows spilled to local Parquet by partition, so a run larger than memory holds one partition at
a time.

Two ways to partition: by symbol (`by_symbol`) for detection — every detector decides each venue/symbol
from that symbol's own rows, and trades, candles, order events and book updates of one symbol land in
one partition — and by time (`by_time`) for a replay, which must go through the whole market in time
order. Either way exact duplicates share a partition (they share symbol and time), and rows keep their
input order, so de-duplication and the stable sort (`tapewatch.io.readers.deduplicated`) see, partition
by partition, exactly what a whole read would have shown them.
"""

from __future__ import annotations

import math
import tempfile
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import polars as pl

from tapewatch.errors import InputError
from tapewatch.io.normalise import RECORD_KINDS, Kind
from tapewatch.io.readers import (
    REPEATS_ARE_EVENTS,
    FailedFile,
    FileRead,
    ReadTally,
    Rejected,
    SkippedFile,
    deduplicated,
    numbered_repeats,
    read_book_gaps,
    scan_files,
)

PART = "_part"
SLICE = "_slice"
SEED = 0x7A9E
"""A fixed hash seed: the same symbol goes to the same partition from every file of a run."""


def by_symbol(partitions: int) -> pl.Expr:
    """Partition number 0..partitions-1 of each row's venue and symbol."""
    if partitions < 1:
        raise ValueError(f"partitions must be at least 1, got {partitions}")
    return pl.struct("venue", "symbol").hash(seed=SEED) % partitions


def by_time(span: timedelta) -> pl.Expr:
    """Partition number of each row's `ts`: the number of the `span` it falls in, so numbers sort in time."""
    return pl.col("ts").dt.epoch("us") // (span // timedelta(microseconds=1))


BYTES_PER_ROW_HELD = 560
"""Memory a whole run needs per row it holds, de-duplicated, sorted and detected (measured on trades)."""
BYTES_IN_MEMORY_PER_FILE_BYTE = {".gz": 40, ".zip": 40, ".parquet": 45, ".pq": 45}
"""Memory a whole-input run needs per byte of input file, by suffix (measured on Binance trade dumps:
15 bytes a trade gzipped, about 560 bytes a trade held, de-duplicated, sorted and detected); plain
text is taken as 10."""
TEXT_BYTES_IN_MEMORY = 10
MAX_PARTITIONS = 1024
"""More partitions only add files: a partition still too large is detected a day at a time."""


def rows_held(memory_gib: float) -> int:
    """How many rows one partition may hold at once: half of `memory_gib` (the rest is for what detection
    builds beside them)."""
    return int(memory_gib * 2**30 / 2 / BYTES_PER_ROW_HELD)


def partitions_for(files: list[Path], memory_gib: float) -> int:
    """How many partitions keep one partition's detection within half of `memory_gib` (1: the whole
    input fits, read it at once)."""
    needed = sum(
        path.stat().st_size * BYTES_IN_MEMORY_PER_FILE_BYTE.get(path.suffix.lower(), TEXT_BYTES_IN_MEMORY)
        for path in files
    )
    return min(MAX_PARTITIONS, max(1, math.ceil(needed / (memory_gib * 2**30 / 2))))


def spill_folder(prefix: str, where: str = "") -> tempfile.TemporaryDirectory:
    """A temporary folder for a spill in `where` (`[batch] spill_dir`; empty: the temp folder), or one line
    saying why it cannot be made (a spill_dir that does not exist is a setting's typo, not a crash)."""
    try:
        return tempfile.TemporaryDirectory(prefix=prefix, dir=where or None)
    except OSError as error:
        raise InputError(
            f"spill folder in '{where or tempfile.gettempdir()}': {error.strerror or error}; "
            "set [batch] spill_dir to a local folder with room"
        ) from error


class Spill:
    """A folder of Parquet pieces, `<kind>/<partition>/<slice>/<flush number>.parquet`, written a few at a
    time.

    Each partition is cut into slices of `span` of time (one slice without a span), so a partition too
    large to hold can be read back slice by slice, in time order. Input files are often small (a coin's
    day), and a Parquet file costs milliseconds to write and to delete whatever its size, so pieces are
    buffered in memory up to `buffer_rows` rows and written together, each in input order.
    """

    def __init__(
        self, folder: Path, part: pl.Expr, *, span: timedelta | None = None, buffer_rows: int = 2_000_000
    ) -> None:
        self.folder = folder
        self.part = part
        self.slice = pl.lit(0, dtype=pl.Int64) if span is None else by_time(span)
        self.buffer_rows = buffer_rows
        self.rows: Counter[tuple[Kind, int]] = Counter()
        """Rows of each kind spilled into each partition, duplicates included."""
        self._buffer: dict[tuple[Kind, int, int], list[pl.DataFrame]] = {}
        self._buffered = 0
        self._flushes = 0

    def add(self, kind: Kind, rows: pl.DataFrame) -> None:
        """Buffer the clean rows of the next input file, split by partition and slice."""
        if rows.is_empty():
            return
        if kind in REPEATS_ARE_EVENTS:
            rows = numbered_repeats(rows, kind)  # within its own file: the same events repeated are events
        keyed = rows.with_columns(self.part.alias(PART), self.slice.alias(SLICE))
        for (number, piece_slice), piece in keyed.partition_by(
            PART, SLICE, as_dict=True, include_key=False
        ).items():
            self._buffer.setdefault((kind, number, piece_slice), []).append(piece)
            self.rows[kind, number] += piece.height
        self._buffered += rows.height
        if self._buffered >= self.buffer_rows:
            self.flush()

    def flush(self) -> None:
        """Write every buffered piece of a partition and slice as one file."""
        for (kind, number, piece_slice), pieces in self._buffer.items():
            folder = self.folder / kind / str(number) / str(piece_slice)
            folder.mkdir(parents=True, exist_ok=True)
            pl.concat(pieces).write_parquet(
                folder / f"{self._flushes:07d}.parquet", compression="lz4", statistics=False
            )
        self._buffer.clear()
        self._buffered = 0
        self._flushes += 1

    def numbers(self) -> list[int]:
        """The partitions holding rows, in order (in time order when partitioned `by_time`)."""
        self.flush()
        return sorted({number for _, number in self.rows})

    def slices(self, number: int) -> list[int]:
        """Partition `number`'s slices holding rows, in time order."""
        self.flush()
        return sorted({int(path.name) for path in self.folder.glob(f"*/{number}/*") if path.is_dir()})

    def symbols(self, kind: Kind, number: int) -> pl.DataFrame:
        """The venues and symbols with rows of `kind` in partition `number`."""
        self.flush()
        files = sorted((self.folder / kind / str(number)).glob("*/*.parquet"))
        if not files:
            return pl.DataFrame(schema={"venue": pl.String, "symbol": pl.String})
        return pl.scan_parquet(files).select("venue", "symbol").unique().collect()

    def read(self, number: int, piece_slice: int | None = None) -> dict[Kind, tuple[pl.DataFrame, int]]:
        """Partition `number`'s rows of each kind (of one slice, or all), de-duplicated and sorted as a whole
        read sorts them, with how many duplicates were removed.

        Rows of different slices never share a timestamp, so reading slice after slice and then sorting
        stably by the kind's keys orders every tie as the input did.
        """
        self.flush()
        pattern = "*" if piece_slice is None else str(piece_slice)

        def order(path: Path) -> tuple[int, str]:
            return int(path.parent.name), path.name

        return {
            kind: deduplicated(
                [
                    pl.read_parquet(path)
                    for path in sorted(
                        (self.folder / kind / str(number)).glob(f"{pattern}/*.parquet"), key=order
                    )
                ],
                kind,
                numbered=True,
            )
            for kind in RECORD_KINDS
        }


def spill_files(
    inputs: Sequence[str | Path],
    spill: Spill,
    *,
    fmt: str = "auto",
    venue: str | None = None,
    kinds: Collection[Kind] = RECORD_KINDS,
    on_file: Callable[[Path], None] | None = None,
    on_rejected: Callable[[pl.DataFrame], None] | None = None,
    set_aside: bool = False,
) -> ReadTally:
    """Read every input file (`scan_files`) into `spill`, handing each file's rejected rows to
    `on_rejected` as it goes; the tally counts each kind's rows as spilled, before the duplicates that
    reading the partitions back removes (`Spill.read` says how many).

    `set_aside`: a file that cannot be read is counted in `failed` and the rest are read (see
    `read_inputs`); reading no file at all is an InputError either way.
    """
    tally = ReadTally.empty()
    reads: list[FileRead] = []
    for outcome in scan_files(inputs, fmt, venue, kinds, set_aside=set_aside, spill_rejected=True):
        if on_file is not None:
            on_file(outcome.path)
        if isinstance(outcome, SkippedFile):
            tally.skipped[str(outcome.path)] = outcome.reason
            continue
        if isinstance(outcome, FailedFile):
            tally.failed[str(outcome.path)] = outcome.reason
            continue
        spill.add(outcome.kind, outcome.good)
        tally.add(outcome)
        for frame in outcome.rejected.frames():
            if on_rejected is not None:
                on_rejected(frame)
        reads.append(replace(outcome, good=outcome.good.clear(), rejected=Rejected()))
    tally.book_gaps = read_book_gaps(reads)
    tally.check_some_read()
    return tally
