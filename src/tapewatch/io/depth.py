"""Binance diff-depth stream messages (`<symbol>@depth`) as JSON lines: one row per price level, and update-id gaps.

A local book is rebuilt by applying these diffs in order. A message missing
from a capture leaves levels stale while every row still looks right, so the
update ids are checked across all files instead of trusting the rows.
"""

from __future__ import annotations

import json

import polars as pl

from tapewatch.records import TIME, to_iso

_TEXT = pl.String()
_LEVELS = pl.List(pl.List(pl.String()))
_FIELDS: dict[str, pl.DataType] = {
    "e": _TEXT,
    "E": _TEXT,
    "s": _TEXT,
    "U": _TEXT,
    "u": _TEXT,
    "pu": _TEXT,
    "b": _LEVELS,
    "a": _LEVELS,
}
MESSAGE = pl.Struct({**_FIELDS, "data": pl.Struct(_FIELDS)})
"""A bare message or a combined-stream wrapper. Scalars are read as text, so a wrongly typed
value makes a bad row (with its reason) instead of failing the whole file."""

LINE = "line"
"""Raw column: the 1-based line of the file a row came from (a message gives many rows)."""

RENAMED = {"E": "event_time", "s": "pair", "U": "first_id", "u": "last_id", "pu": "prev_id"}
"""Message fields under names that stay distinct when columns are matched case-insensitively."""

RAW_COLUMNS = ("event_time", "pair", "first_id", "last_id", "side", "price", "amount", "text")
"""What a dead letter shows of a level; `text` is the line itself, only where it could not be decoded."""

GAP_SCHEMA: dict[str, pl.DataType] = {
    "venue": pl.String(),
    "symbol": pl.String(),
    "ts": TIME,
    "file": pl.String(),
    "line": pl.Int64(),
    "last_update_id": pl.Int64(),
    "next_update_id": pl.Int64(),
    "missing_updates": pl.Int64(),
}
"""One row per gap: the message after it (ts, file, line), the last id seen and the id it resumes at."""


def is_depth_message(line: str) -> bool:
    """Whether one JSON line is a diff-depth message, bare or inside a combined-stream `data`."""
    try:
        message = json.loads(line)
    except ValueError:
        return False
    if isinstance(message, dict) and isinstance(message.get("data"), dict):
        message = message["data"]
    return isinstance(message, dict) and (
        message.get("e") == "depthUpdate" or {"U", "u", "b", "a"} <= message.keys()
    )


def message_lines(text: str) -> pl.DataFrame:
    """The non-blank lines of a file with their line numbers: the raw rows of a JSON lines file.

    Only `\n` ends a line (JSON text may hold U+2028, which `str.splitlines` would split at).
    """
    lines = pl.Series("text", text.split("\n"), dtype=pl.String).str.strip_chars_end("\r")
    numbered = pl.DataFrame([pl.Series(LINE, range(1, len(lines) + 1), dtype=pl.Int64), lines])
    return numbered.filter(pl.col("text").str.strip_chars() != "")


def _decode(text: pl.Series) -> pl.Series:
    """Every line as a MESSAGE struct; a line that is not a JSON object becomes null.

    The fast path decodes the column at once; only a file with a broken line
    (typically the last one of a capture cut short) pays for validating each.
    A nested value of the wrong shape still raises ComputeError: the file is bad.
    """
    try:
        return text.str.json_decode(MESSAGE)
    except pl.exceptions.ComputeError:
        valid = text.str.json_path_match("$").str.starts_with("{").fill_null(value=False)
        return pl.select(pl.when(valid).then(text)).to_series().str.json_decode(MESSAGE)


def _field(name: str) -> pl.Expr:
    """A message field, taken from the combined-stream `data` when the line is wrapped."""
    message = pl.col("message")
    return pl.coalesce(message.struct.field("data").struct.field(name), message.struct.field(name))


def _tagged(name: str, side: str) -> pl.Expr:
    """The `[price, qty]` pairs of column `b` or `a`, each prefixed with its book side."""
    return pl.col(name).fill_null([]).list.eval(pl.concat_list(pl.lit(side), pl.element()))


def as_id(value: pl.Expr) -> pl.Expr:
    """An update id as an integer (null when missing or not a number)."""
    return value.cast(pl.Int64, strict=False)


def _problem() -> pl.Expr:
    """Why a whole message is unusable, or null: its levels are then not judged one by one."""
    event = _field("e")
    return (
        pl.when(pl.col("message").is_null())
        .then(pl.lit("not a JSON object"))
        .when(event.is_not_null() & (event != "depthUpdate"))
        .then(pl.format("not a diff-depth message (event '{}')", event))
        .when(as_id(_field("U")).is_null() | as_id(_field("u")).is_null())
        .then(pl.lit("missing update ids U/u"))
    )


def decode_messages(lines: pl.DataFrame) -> pl.DataFrame:
    """One row per message line: `line`, the RENAMED fields as text, `levels` and `problem`.

    `levels` holds `[side, price, qty]` triples (bids, then asks); `text` keeps
    the line only where it could not be decoded; `problem` says why the whole
    message is unusable, else null. Raises ComputeError for a file whose
    messages have the wrong shape.
    """
    decoded = lines.with_columns(_decode(lines["text"]).alias("message"))
    fields = decoded.select(
        LINE,
        *(_field(name).alias(renamed) for name, renamed in RENAMED.items()),
        _field("b").alias("b"),
        _field("a").alias("a"),
        pl.when(pl.col("message").is_null()).then(pl.col("text")).alias("text"),
        _problem().alias("problem"),
    )
    levels = pl.concat_list(_tagged("b", "bid"), _tagged("a", "ask")).alias("levels")
    return fields.rechunk().with_columns(levels).drop("b", "a")


def explode_levels(messages: pl.DataFrame) -> pl.DataFrame:
    """One row per price level, in file order, with `side`, `price`, `amount` (text) beside the message's columns.

    A usable message without levels gives no row; an unusable one gives one
    row (with null side, price and amount), so it is counted and set aside.
    """
    levels = messages.explode("levels", empty_as_null=True)
    level = pl.col("levels")
    return levels.filter(level.is_not_null() | pl.col("problem").is_not_null()).select(
        pl.exclude("levels"),
        level.list.get(0, null_on_oob=True).alias("side"),
        level.list.get(1, null_on_oob=True).alias("price"),
        level.list.get(2, null_on_oob=True).alias("amount"),
    )


def sequence_gaps(messages: pl.DataFrame) -> pl.DataFrame:
    """Where a symbol's update ids skip: a message that starts beyond its predecessor's last id + 1.

    `messages` has venue, symbol, ts, file, line and the integer ids first_id
    (`U`), last_id (`u`) and prev_id (`pu`), from any number of files. They
    are ordered by update id, so files may come in any order and a file read
    twice overlaps rather than gaps. Spot messages start at `U` (so `U` should
    be the previous `u` + 1); futures messages name the previous `u` (`pu`).
    """
    ordered = messages.sort("venue", "symbol", "first_id", "last_id", maintain_order=True)
    last_seen = pl.col("last_id").shift(1).over("venue", "symbol")
    resumes_after = pl.coalesce(pl.col("prev_id"), pl.col("first_id") - 1)
    return (
        ordered.with_columns(last_seen.alias("last_update_id"))
        .filter((resumes_after > pl.col("last_update_id")).fill_null(value=False))
        .select(
            "venue",
            "symbol",
            "ts",
            "file",
            "line",
            "last_update_id",
            pl.col("first_id").alias("next_update_id"),
            (resumes_after - pl.col("last_update_id")).alias("missing_updates"),
        )
        .cast(GAP_SCHEMA)
        .sort("ts", "venue", "symbol", nulls_last=True, maintain_order=True)
    )


def describe_gaps(gaps: pl.DataFrame) -> str | None:
    """One line for a run summary (how many gaps, and the first in time), or None when there are none."""
    if gaps.is_empty():
        return None
    first = gaps.row(0, named=True)
    moment = to_iso(first["ts"]) if first["ts"] else "an unparsable time"
    return (
        f"{gaps.height} update-id gap(s) in diff-depth data, so a book rebuilt across them is wrong; "
        f"first: {first['venue']} {first['symbol']} at {moment} "
        f"({first['file']} line {first['line']}): last update {first['last_update_id']}, "
        f"next message starts at {first['next_update_id']}"
    )
