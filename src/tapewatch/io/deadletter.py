"""Dead letters: rows that could not become records, kept with where they came from and why.

One format for every way rows arrive (files, `stream --replay`, the streaming engine,
the exchange source, the API): a JSON object a line with `source` (the file, or
`stream`, `binance:ws`, … where there is no file), `row` (1-based line or position
where known, else null), `reason` (from `tapewatch.validity`, or the set-aside reason)
and `record` (the row as it came, as a JSON value).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import polars as pl

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
    reasons = norm.filter(bad).select(first_reason(problems))
    rows = pl.Series("row", bad.arg_true(), dtype=pl.Int64) + 1 if lines is None else lines.filter(bad)
    records = raw.filter(bad).select(pl.struct(pl.all()).struct.json_encode().alias("record"))
    columns = {"source": [source] * len(rows), "row": rows, "reason": reasons["reason"]}
    return pl.DataFrame(columns | {"record": records["record"]}, schema=REJECT_SCHEMA)


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
    lines = rejected.select(pl.concat_str([head, pl.lit(',"record":'), pl.col("record"), pl.lit("}")]))
    with path.open("a" if append else "w", encoding="utf-8") as handle:
        for chunk in lines.iter_slices(100_000):
            text = "\n".join(chunk.to_series())
            handle.write(text + "\n" if text else "")
