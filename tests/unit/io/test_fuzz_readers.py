"""Fuzzing the readers with hostile files: no traceback, no hang, no row unaccounted for.

Every drawn file (any format, malformed cells and lines, blank lines, repeats, gzip cut short)
must either be read with rows in = records kept + dead letters + duplicates removed (+ blank lines
passed over), or be set aside with one line that names it. A few thousand cases run in CI
(TAPEWATCH_FUZZ_FILES raises them for a deeper run).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings

from tapewatch.errors import InputError
from tapewatch.io.readers import RECORD_KINDS, read_inputs

from .fuzz_files import FuzzFile, depth_files, fuzz_files, write_fuzz_file

CASES = int(os.environ.get("TAPEWATCH_FUZZ_FILES", "1500"))
FUZZ = settings(
    max_examples=CASES,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _read(drawn: FuzzFile):
    """Read the drawn file on its own; an InputError must be one line naming the file."""
    with tempfile.TemporaryDirectory() as folder:
        path = write_fuzz_file(drawn, Path(folder))
        try:
            return read_inputs([path], kinds=RECORD_KINDS), path
        except InputError as exc:
            message = str(exc)
            assert "\n" not in message, message
            assert path.name in message, message
            return None, path


def test_every_row_of_a_hostile_csv_is_kept_dead_lettered_or_a_duplicate() -> None:
    seen: Counter[str] = Counter()

    @FUZZ
    @given(fuzz_files())
    def account(drawn: FuzzFile) -> None:
        result, path = _read(drawn)
        if drawn.container == "cut":
            assert result is None or str(path) in result.failed, "a gzip cut short was read as whole"
            return
        if result is None:
            return
        kept = sum(getattr(result, kind).height for kind in RECORD_KINDS)
        accounted = kept + result.rejected.height + result.duplicates_removed + result.blank_lines
        assert result.rows_read == accounted, (drawn.lines, result.rows_read, accounted)
        seen.update(
            kept=kept > 0, rejected=result.rejected.height > 0, duplicates=result.duplicates_removed > 0
        )

    account()
    # the accounting was tried on files that kept records, removed copies and refused rows, not only on junk
    # (about a quarter of the drawn files keep records: 368 of 1,500 in one run)
    assert min(seen["kept"], seen["rejected"]) > CASES // 5 and seen["duplicates"] > CASES // 50, seen


@settings(max_examples=max(CASES // 5, 50), deadline=None, derandomize=True)
@given(depth_files())
def test_a_hostile_depth_capture_reads_or_is_refused_in_one_line(drawn: FuzzFile) -> None:
    result, _ = _read(drawn)
    if result is None:
        return
    levels = sum(_levels(line) for line in drawn.lines if line.strip())
    assert result.book.height + result.rejected.height + result.duplicates_removed == levels
    assert set(result.rejected["row"].drop_nulls().to_list()) <= set(range(1, len(drawn.lines) + 1))


def _levels(line: str) -> int:
    """What a depth line should become: one record per level, or one dead letter when it has none usable."""
    try:
        message = json.loads(line)
    except ValueError:
        return 1
    return len(message.get("b", [])) + len(message.get("a", [])) or 1
