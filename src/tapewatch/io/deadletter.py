"""Dead letters: rows that could not become records, kept with where they came from and why.

One format for every way rows arrive (files, `stream --replay`, the streaming engine,
the exchange source, the API): a JSON object a line with `source` (the file, or
`stream`, `binance:ws`, … where there is no file), `row` (1-based line or position
where known, else null), `reason` (from `tapewatch.validity`, or the set-aside reason)
and `record` (the row as it came, as a JSON value).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

from tapewatch.errors import InputError
from tapewatch.validity import Problems, first_reason

REJECT_SCHEMA: dict[str, pl.DataType] = {
    "source": pl.String(),
    "row": pl.Int64(),
    "reason": pl.String(),
    "record": pl.String(),
}
"""`row` is the 1-based data row in its file; `record` is the raw row as JSON text."""


def empty_rejected() -> pl.DataFrame:
    """No dead letters, with the columns callers rely on."""
    return pl.DataFrame(schema=REJECT_SCHEMA)


def dead_letters(
    raw: pl.DataFrame,
    bad: pl.Series,
    problems: Problems,
    norm: pl.DataFrame,
    source: str,
    lines: pl.Series | None = None,
) -> pl.DataFrame:
    """The rejected rows of one file: each with its first failed check's reason, the raw row as JSON.

    `row` is the raw row's position, or its entry in `lines` where rows are
    not lines of their own (the levels of one JSON message share its line).
    Only the (few) bad rows are formatted, so a clean file pays nothing here.
    """
    # rechunked: Polars 1.44 panics ("i < self.len()") formatting a filtered string column of several chunks
    reasons = norm.filter(bad).rechunk().select(first_reason(problems))
    rows = pl.Series("row", bad.arg_true(), dtype=pl.Int64) + 1 if lines is None else lines.filter(bad)
    return _letters(raw.filter(bad), rows, source, reasons["reason"])


def refused_rows(raw: pl.DataFrame, lines: pl.Series, source: str, reason: str) -> pl.DataFrame:
    """Dead letters for raw rows refused before conversion (undecodable bytes), all for one `reason`;
    `lines` are their 1-based rows in the file."""
    return _letters(raw, lines, source, pl.Series("reason", [reason] * raw.height, dtype=pl.String))


def _letters(raw: pl.DataFrame, rows: pl.Series, source: str, reasons: pl.Series) -> pl.DataFrame:
    """Raw rows as dead letters: each row JSON-encoded as it came, with its place and its reason."""
    records = raw.select(pl.struct(pl.all()).struct.json_encode().alias("record"))
    columns = {"source": [source] * len(rows), "row": rows, "reason": reasons}
    return pl.DataFrame(columns | {"record": records["record"]}, schema=REJECT_SCHEMA)


WRITE_ROWS = 50_000
"""Dead letters formatted as JSON at a time when written."""

_COMPACT: dict[str, Any] = {"default": str, "separators": (",", ":")}
"""Records encoded as Polars encodes file rows: no spaces, anything else as text."""


def letter(source: str, reason: str, record: Any, row: int | None = None) -> dict[str, Any]:
    """One dead letter as a dict (sources that refuse rows one at a time collect these)."""
    return {"source": source, "row": row, "reason": reason, "record": record}


def letters_frame(letters: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Dead letters given as dicts (`letter`) as a frame of the common columns; `record` JSON-encoded."""
    rows = [
        (item["source"], item.get("row"), item["reason"], json.dumps(item["record"], **_COMPACT))
        for item in letters
    ]
    return pl.DataFrame(rows, schema=REJECT_SCHEMA, orient="row") if rows else empty_rejected()


def write_dead_letters(rejected: pl.DataFrame, path: Path, *, append: bool = False) -> None:
    """Write one JSON object a line (`record` nested as JSON), creating the folder, so people can grep it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    head = pl.struct("source", "row", "reason").struct.json_encode().str.strip_suffix("}")
    line = pl.concat_str([head, pl.lit(',"record":'), pl.col("record"), pl.lit("}")])
    with path.open("a" if append else "w", encoding="utf-8") as handle:
        for chunk in rejected.iter_slices(WRITE_ROWS):  # formatted a slice at a time: memory stays flat
            text = "\n".join(chunk.select(line).to_series())
            handle.write(text + "\n" if text else "")


class DeadLetterFile:
    """Dead letters appended to `path` as they come, keeping only their counts.

    Memory stays flat however many rows a run sets aside (a flood of bad rows must not cost more than
    the good data). The file is created with the first row, so a clean run leaves none; `path` None
    counts without writing (a run that was asked for no dead-letter file).
    """

    def __init__(self, path: Path | None) -> None:
        self.target = Path(path) if path is not None else None
        self.count = 0
        self.reasons: Counter[str] = Counter()
        self._started = False

    @property
    def path(self) -> Path | None:
        """Where dead letters were written: the target once a row arrived, else None."""
        return self.target if self._started else None

    def add(self, rejected: pl.DataFrame) -> None:
        """Append `rejected` (REJECT_SCHEMA rows) to the file and count them by reason."""
        if not rejected.height:
            return
        self.count += rejected.height
        self.reasons.update(dict(rejected["reason"].fill_null("").value_counts().iter_rows()))
        if self.target is not None:
            write_dead_letters(rejected, self.target, append=self._started)
            self._started = True

    __call__ = add
    """A DeadLetterFile is itself the callback readers hand rejected rows to."""


def check_writable(path: Path, what: str = "--dead-letter") -> None:
    """Raise InputError (one line naming `path`) unless a file can be written there.

    Checked before a long read, so a run does not fail after hours at its last step. It is tried, not
    guessed from permission bits (root, read-only mounts, /proc): an existing file is opened for append,
    a new one is created and removed, a missing folder is tried by a scratch folder in its nearest
    existing ancestor, so the check leaves nothing behind.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{what} '{path}': is a directory; expected a file path")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise InputError(f"{what} '{path}': '{folder}' is not a directory; expected a folder to write in")
    try:
        if path.exists():
            path.open("a").close()
        elif folder == path.parent:
            path.open("x").close()
            path.unlink()
        else:
            os.rmdir(tempfile.mkdtemp(dir=folder))
    except OSError as error:
        reason = error.strerror or str(error)
        raise InputError(
            f"{what} '{path}': cannot write there ({reason}); expected a writable file path"
        ) from None
