"""Candidate account groups for `wash_accounts`: who could be trading in a circle, per symbol and bucket.

The detector decides at a trade whether a group's trades over the trailing window net out;
this module only proposes the groups worth that check, from the directed trade graph
(seller → buyer, counting transfers: prints of one pair at one instant are one transfer).

Proposals must never depend on data after the moment they are checked at, nor on where a
frame starts, or the stream would decide differently from the batch. So they are made per
*bucket* — two grid cells of one window each, `[jW, jW + 2W)`, epoch-aligned — and every
condition used is either monotone in the bucket's trades (an edge with ≥ m transfers in a
window has ≥ m in any bucket holding that window) or read from the bucket's first cell
(complete before any moment the bucket is checked at). A group proposed for bucket j is then
checked at the moments of its second cell, whose windows lie inside the bucket; the check
repeats the proposal's conditions on the window itself, so what qualifies is a function of
the window alone.

- self-trades: accounts with ≥ min_self_trades trades with themselves in the bucket;
- pairs: two accounts with ≥ min_edge_trades transfers each way (the two-account round trip);
- rings of 3…max_group accounts: directed cycles whose every link has ≥ min_edge_trades
  transfers, among accounts that traded with at most `max_ring_counterparties` others in the
  bucket's first cell. A market maker or a busy trader meets dozens of counterparties an
  hour; through such hubs the number of cycles explodes (thousands per symbol-day) while
  hardly any can net out, so hubs are left out of rings of three or more (their
  two-account round trips are still checked). Colluding accounts deal mostly with each other.
"""

from __future__ import annotations

import polars as pl

KEY = ["venue", "symbol"]
BUCKET = [*KEY, "bucket"]
MEMBERS = "members"


def transfers_by_cell(transfers: pl.DataFrame) -> pl.DataFrame:
    """Transfers per (venue, symbol, grid cell, seller, buyer)."""
    return transfers.group_by(*KEY, "cell", "seller", "buyer").agg(n=pl.col("new").sum())


def transfers_by_bucket(per_cell: pl.DataFrame) -> pl.DataFrame:
    """Transfers per (venue, symbol, bucket, seller, buyer); each cell counts towards its own bucket and the one before."""
    return (
        pl.concat(
            [
                per_cell.with_columns(bucket=pl.col("cell")),
                per_cell.with_columns(bucket=pl.col("cell") - 1),
            ]
        )
        .group_by(*BUCKET, "seller", "buyer")
        .agg(pl.col("n").sum())
    )


def self_trade_groups(edges: pl.DataFrame, min_self_trades: int) -> pl.DataFrame:
    """One-account groups: an account trading with itself often enough in the bucket."""
    return edges.filter((pl.col("seller") == pl.col("buyer")) & (pl.col("n") >= min_self_trades)).select(
        *BUCKET, pl.concat_list("seller").alias(MEMBERS)
    )


def pair_groups(edges: pl.DataFrame, min_edge_trades: int) -> pl.DataFrame:
    """Two-account groups: transfers both ways, each way often enough."""
    strong = edges.filter((pl.col("seller") != pl.col("buyer")) & (pl.col("n") >= min_edge_trades))
    back = strong.select(*BUCKET, seller=pl.col("buyer"), buyer=pl.col("seller"))
    return (
        strong.join(back, on=[*BUCKET, "seller", "buyer"], how="semi")
        .filter(pl.col("seller") < pl.col("buyer"))
        .select(*BUCKET, pl.concat_list("seller", "buyer").alias(MEMBERS))
    )


def ring_groups(
    edges: pl.DataFrame,
    transfers: pl.DataFrame,
    min_edge_trades: int,
    max_counterparties: int,
    max_group: int,
) -> pl.DataFrame:
    """Groups of 3…max_group accounts in a directed cycle of strong links, hubs left out (see module doc)."""
    if max_group < 3:
        return _groups([])
    strong = edges.filter((pl.col("seller") != pl.col("buyer")) & (pl.col("n") >= min_edge_trades))
    hubs = _hubs(transfers, max_counterparties)
    for end in ("seller", "buyer"):
        strong = strong.join(hubs.rename({"account": end}), on=[*BUCKET, end], how="anti")
    strong = _on_cycles(strong)
    if strong.is_empty():
        return _groups([])
    rows = []
    for venue, symbol, bucket, sellers, buyers in strong.group_by(BUCKET).agg("seller", "buyer").iter_rows():
        for cycle in simple_cycles(list(zip(sellers, buyers, strict=True)), max_group, min_length=3):
            rows.append((venue, symbol, bucket, list(cycle)))
    return _groups(rows)


def simple_cycles(
    links: list[tuple[str, str]], max_length: int, min_length: int = 2
) -> list[tuple[str, ...]]:
    """Every directed simple cycle of min_length…max_length accounts, each once, starting at its smallest account."""
    following: dict[str, list[str]] = {}
    for seller, buyer in links:
        following.setdefault(seller, []).append(buyer)
    cycles = []
    for start in sorted(following):
        stack = [(start, (start,))]
        while stack:
            node, path = stack.pop()
            for nxt in following.get(node, ()):
                if nxt == start and len(path) >= min_length:
                    cycles.append(path)
                elif nxt > start and nxt not in path and len(path) < max_length:
                    stack.append((nxt, (*path, nxt)))
    return sorted(cycles)


def _hubs(transfers: pl.DataFrame, max_counterparties: int) -> pl.DataFrame:
    """Accounts that traded with more than `max_counterparties` others in the first cell of a bucket
    (cell j for bucket j: complete before any moment the bucket is checked at)."""
    sides = pl.concat(
        [
            transfers.select(*KEY, "cell", account="buyer", other="seller"),
            transfers.select(*KEY, "cell", account="seller", other="buyer"),
        ]
    )
    return (
        sides.filter(pl.col("account") != pl.col("other"))
        .group_by(*KEY, "cell", "account")
        .agg(pl.col("other").n_unique())
        .filter(pl.col("other") > max_counterparties)
        .select(*KEY, bucket="cell", account="account")
    )


def _on_cycles(links: pl.DataFrame) -> pl.DataFrame:
    """Drop links that cannot lie on a cycle: repeatedly remove those leaving an account nobody sells to
    (or entering one that sells to nobody), so Python only walks the few tangles left."""
    while True:
        before = links.height
        sellers = links.select(*BUCKET, pl.col("seller").alias("account")).unique()
        buyers = links.select(*BUCKET, pl.col("buyer").alias("account")).unique()
        links = links.join(buyers.rename({"account": "seller"}), on=[*BUCKET, "seller"], how="semi").join(
            sellers.rename({"account": "buyer"}), on=[*BUCKET, "buyer"], how="semi"
        )
        if links.height == before:
            return links


def _groups(rows: list[tuple[str, str, int, list[str]]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"venue": pl.String, "symbol": pl.String, "bucket": pl.Int64, MEMBERS: pl.List(pl.String)},
        orient="row",
    )
