"""Dead letters: rows that could not become records, kept with file, row and reason instead of crashing the run."""

from __future__ import annotations

from pathlib import Path

import polars as pl

REJECT_SCHEMA: dict[str, pl.DataType] = {
    "file": pl.String(),
    "row": pl.Int64(),
    "reason": pl.String(),
    "record": pl.String(),
}
"""`row` is the 1-based data row in its file; `record` is the raw row as a JSON object."""


def empty_rejected() -> pl.DataFrame:
    """No dead letters, with the columns callers rely on."""
    return pl.DataFrame(schema=REJECT_SCHEMA)


def dead_letters(
    raw: pl.DataFrame,
    bad: pl.Series,
    problems: list[tuple[pl.Expr, pl.Expr]],
    norm: pl.DataFrame,
    file: str,
    lines: pl.Series | None = None,
) -> pl.DataFrame:
    """The rejected rows of one file: every failed check joined into one reason, the raw row as JSON.

    `row` is the raw row's position, or its entry in `lines` where rows are
    not lines of their own (the levels of one JSON message share its line).
    Only the (few) bad rows are formatted, so a clean file pays nothing here.
    """
    checked = norm.filter(bad)
    reasons = checked.select(
        pl.concat_str(
            [pl.when(is_bad).then(reason) for is_bad, reason in problems], separator="; ", ignore_nulls=True
        ).alias("reason")
    )
    rows = pl.Series("row", bad.arg_true(), dtype=pl.Int64) + 1 if lines is None else lines.filter(bad)
    records = raw.filter(bad).select(pl.struct(pl.all()).struct.json_encode().alias("record"))
    return pl.DataFrame(
        {"file": [file] * len(rows), "row": rows, "reason": reasons["reason"], "record": records["record"]},
        schema=REJECT_SCHEMA,
    )


def write_dead_letters(rejected: pl.DataFrame, path: Path) -> None:
    """Write one JSON object a line (`record` nested as an object), creating the folder, so people can grep it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    head = pl.struct("file", "row", "reason").struct.json_encode().str.strip_suffix("}")
    lines = rejected.select(pl.concat_str([head, pl.lit(',"record":'), pl.col("record"), pl.lit("}")]))
    with path.open("w", encoding="utf-8") as handle:
        for chunk in lines.iter_slices(100_000):
            text = "\n".join(chunk.to_series())
            handle.write(text + "\n" if text else "")
