"""Aggregate trade records, and the rule that keeps the lake from counting their volume twice.

OKX's live trades channel sends one message per taker order and price: its `tradeId` is
the last of `count` trades and its size their sum, while OKX's REST history gives each of
those trades on its own, under its own consecutive id. Stored as they come, a period
covered both live and by a backfill or gap refill would hold the aggregate row and the
individual trades, and the lake (which drops exact repeats only) would count that
volume twice. So an aggregate row carries the range of ids it stands for
(`"first-last"`, `range_id`), and when the lake merges a day (`drop_covered`):

- an aggregate whose every id is present as an individual trade is dropped: the
  individual trades are the finer record of the same volume;
- otherwise the aggregate stays and individual trades inside its range are dropped,
  since the aggregate already counts them; once a later write brings the whole run,
  the first rule replaces it.

Either way no trade id is counted twice within a venue, symbol and day (a run of one
taker order shares one timestamp, so it never straddles days).
"""

from __future__ import annotations

import polars as pl

_RANGE = r"^\d+-\d+$"
_SINGLE = r"^\d+$"


def range_id(last: int, count: int) -> str:
    """The trade id of a record standing for `count` trades whose ids end at `last`."""
    return f"{last - count + 1}-{last}" if count > 1 else str(last)


def last_number(trade_id: str | None) -> int | None:
    """The highest venue trade id a record stands for (an aggregate's last), or None when not numeric."""
    if trade_id is None:
        return None
    last = trade_id.rpartition("-")[2]
    return (
        int(last) if last.isdigit() and (trade_id == last or trade_id[: -len(last) - 1].isdigit()) else None
    )


def drop_covered(trades: pl.DataFrame) -> pl.DataFrame:
    """One venue, symbol and day of trades with no id counted twice (the rule in the module docstring)."""
    trade_id = pl.col("trade_id")
    is_range = trade_id.str.contains(_RANGE).fill_null(False)
    if trades.is_empty() or not trades.select(is_range.any()).item():
        return trades
    rows = trades.with_row_index("_row")
    bounds = trade_id.str.split_exact("-", 1)
    ranges = rows.filter(is_range).select(
        "_row",
        bounds.struct.field("field_0").cast(pl.Int64).alias("first"),
        bounds.struct.field("field_1").cast(pl.Int64).alias("last"),
    )
    singles = rows.filter(trade_id.str.contains(_SINGLE).fill_null(False)).select(
        "_row", trade_id.cast(pl.Int64).alias("id")
    )
    members = ranges.with_columns(pl.int_ranges("first", pl.col("last") + 1).alias("id")).explode(
        "id", empty_as_null=False
    )
    coverage = members.with_columns(pl.col("id").is_in(singles["id"].implode()).alias("have"))
    full = coverage.group_by("_row").agg(pl.col("have").all().alias("full"))
    replaced = full.filter("full")["_row"]
    kept_ids = coverage.filter(~pl.col("_row").is_in(replaced.implode()))["id"]
    inside = singles.filter(pl.col("id").is_in(kept_ids.implode()))["_row"]
    dropped = pl.concat([replaced, inside])
    return rows.filter(~pl.col("_row").is_in(dropped.implode())).drop("_row")
