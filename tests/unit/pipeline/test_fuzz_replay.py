"""Fuzzing `stream --replay` with hostile files: no traceback, no hang, no row unaccounted for.

Every drawn file (any format, malformed cells and lines, blank lines, repeats, gzip cut short) is
replayed through the streaming engine as `tapewatch stream` replays it, and must either end with
rows in = rows the engine decided + dead letters (the files' and the engine's, all in the
`--dead-letter` file) + duplicates removed + blank lines + records of a kind the stream does not carry
(whatever kind it streams: trades, or a file's order events), or be refused with one line. TAPEWATCH_FUZZ_FILES raises the number of cases for a deeper run.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from tapewatch.config import Settings
from tapewatch.errors import InputError
from tapewatch.pipeline.stream import open_stream
from unit.io.fuzz_files import FuzzFile, fuzz_files, write_fuzz_file

CASES = max(int(os.environ.get("TAPEWATCH_FUZZ_FILES", "1500")) // 5, 50)
"""A replay costs more than a read (detectors are built and run), so a fifth of the readers' cases."""


@settings(
    max_examples=CASES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(fuzz_files())
def test_every_row_of_a_hostile_file_replayed_is_decided_dead_lettered_or_a_duplicate(
    drawn: FuzzFile,
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = write_fuzz_file(drawn, Path(folder) / "in")
        dead = Path(folder) / "dead.jsonl"
        try:
            job = open_stream(
                Settings(),
                replay=[str(path)],
                dead_letter=dead,
                output=Path(folder) / "alerts.jsonl",
                use_store=False,
            )
        except InputError as exc:  # not a file a stream can replay (candles, cut short, unreadable)
            assert "\n" not in str(exc), str(exc)
            return
        job.run()
        assert job.tally is not None
        read, letters = job.tally, job.letters
        written = len(dead.read_text().splitlines()) if dead.exists() else 0
        assert written == letters.count  # every dead letter counted is in the file, and no more
        decided = job.engine.stats.trades_processed
        accounted = (
            decided + letters.count + read.duplicates_removed + read.blank_lines + sum(job.unused.values())
        )
        # A stream of order events or book updates merges in rows derived from the files' trades (two
        # parties per trade; only prints of the book's symbols), which no count of the read covers; a
        # fuzzed file holds one kind, so such a stream has no trades to merge and its rows are the file's.
        assert job.engine.kind.name == "trades" or not read.records["trades"], read
        assert read.rows_read == accounted, (drawn.lines, read, decided, letters.reasons, job.unused)
