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

Almost every pair of accounts that trade both ways is a proposal, yet hardly any ever nets
out, and proposing and checking them all costs far more than everything else. So
`PairIndex` first orders the tape by account pair and, in a few array passes, drops what the
check can never accept: a pair or self-trader whose own window sums never pass the check, a
ring link that never has `min_edge_trades` transfers in one window of its bucket. What is
left is proposed and checked exactly as described above. Accounts are integer ids that sort
as their names do, so every ordering below is the names' ordering.
"""

from __future__ import annotations

import itertools

import numpy as np
import polars as pl

BUCKET = ["sym", "bucket"]
MEMBERS = "members"
LOOSE_NET = 1e-6
"""The screen's netting test is looser than the check's by this much of the gross volume: its
window sums come from prefix sums, whose rounding differs from the check's rolling sums."""


def transfers_by_cell(transfers: pl.DataFrame) -> pl.DataFrame:
    """Transfers per (symbol, grid cell, seller, buyer)."""
    return transfers.group_by("sym", "cell", "seller", "buyer").agg(n=pl.col("new").sum())


def transfers_by_bucket(per_cell: pl.DataFrame) -> pl.DataFrame:
    """Transfers per (symbol, bucket, seller, buyer); each cell counts towards its own bucket and the one before."""
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


def ring_groups(links: pl.DataFrame, max_group: int) -> pl.DataFrame:
    """Groups of 3…max_group accounts in a directed cycle of strong links between non-hubs
    (`PairIndex.ring_links`)."""
    if max_group < 3:
        return _groups([], [], [])
    links = _on_cycles(links)
    syms, buckets, cycles = [], [], []
    for sym, bucket, sellers, buyers in links.group_by(BUCKET).agg("seller", "buyer").iter_rows():
        found = simple_cycles(list(zip(sellers, buyers, strict=True)), max_group, min_length=3)
        syms += [sym] * len(found)
        buckets += [bucket] * len(found)
        cycles += found
    return _groups(syms, buckets, cycles)


def simple_cycles(
    links: list[tuple[int, int]], max_length: int, min_length: int = 2
) -> list[tuple[int, ...]]:
    """Every directed simple cycle of min_length…max_length accounts, each once, starting at its smallest account."""
    following: dict[int, list[int]] = {}
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


def _groups(syms: list[int], buckets: list[int], cycles: list[tuple[int, ...]]) -> pl.DataFrame:
    """Groups as a frame; the member lists built from one flat array, not a Python list per group."""
    lengths = np.fromiter(map(len, cycles), np.int64, len(cycles))
    flat = np.fromiter(itertools.chain.from_iterable(cycles), np.int64, int(lengths.sum()))
    members = (
        pl.DataFrame({"group": np.repeat(np.arange(lengths.size), lengths), MEMBERS: flat})
        .group_by("group", maintain_order=True)
        .agg(MEMBERS)
    )
    return pl.DataFrame(
        {"sym": pl.Series(syms, dtype=pl.Int64), "bucket": pl.Series(buckets, dtype=pl.Int64)}
    ).with_columns(members[MEMBERS].cast(pl.List(pl.Int64)))


class PairIndex:
    """The transfers ordered by (symbol, unordered account pair, time), as arrays.

    Each pair's trades both ways (a self-trader's with itself) are one contiguous segment, so
    the window sums of every pair, and each pair's transfers per grid cell (a *run*), take a
    few vectorised passes over the tape instead of group-bys on millions of keys.
    """

    def __init__(self, transfers: pl.DataFrame, window_us: int) -> None:
        self.window_us = window_us
        tape = transfers.select(
            "sym",
            "cell",
            "new",
            "amount",
            "ts_us",
            low=pl.min_horizontal("seller_id", "buyer_id"),
            high=pl.max_horizontal("seller_id", "buyer_id"),
            up=pl.col("seller_id") <= pl.col("buyer_id"),
            # (symbol, grid cell) numbered in the tape's order: increasing in both.
            block=pl.struct("sym", "cell").rle_id().cast(pl.Int64),
        )
        self.accounts = int(tape["high"].max()) + 1
        first_of_block = tape.filter(pl.col("block").is_first_distinct())
        self.block_sym, self.block_cell = first_of_block["sym"].to_numpy(), first_of_block["cell"].to_numpy()
        self.order = _pair_order(*(tape[name].to_numpy() for name in ("sym", "low", "high")), self.accounts)
        tape = tape[self.order]
        self.sym, self.low, self.high = (tape[name].to_numpy() for name in ("sym", "low", "high"))
        self.ts, self.cell, self.block = (tape[name].to_numpy() for name in ("ts_us", "cell", "block"))
        self.new, self.amount, self.up = (tape[name].to_numpy() for name in ("new", "amount", "up"))
        self.lone = self.low == self.high
        self.segment_start = _changes(self.sym, self.low, self.high)
        self.segment = np.cumsum(self.segment_start) - 1
        self.starts = np.flatnonzero(self.segment_start)
        self.window_start = self._window_starts()
        # Transfers low → high ("up") and high → low in each row's window.
        self.up_w = self.windowed(self.new & self.up)
        self.down_w = self.windowed(self.new & ~self.up)

    def _window_starts(self) -> np.ndarray:
        """Index of the first row in each row's window (ts − W, ts] within its segment."""
        clock = window_clock(self.ts, self.segment_start, self.window_us)
        return np.searchsorted(clock, clock - self.window_us, side="right")

    def windowed(self, values: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Sum of `values` over the window of each row (of the given ones), from prefix sums."""
        rows = np.arange(self.ts.size) if rows is None else rows
        return run_sums(values, self.window_start[rows], rows + 1)

    def segments(self) -> pl.DataFrame:
        """Each segment's symbol and account pair, numbered."""
        starts = self.starts
        return pl.DataFrame(
            {"sym": self.sym[starts], "low": self.low[starts], "high": self.high[starts]}
        ).with_row_index("segment")

    def rows(self, segments: np.ndarray) -> np.ndarray:
        """Row numbers in the transfers (in their order) of the given segments."""
        ends = np.append(self.starts[1:], self.ts.size)
        lengths = ends[segments] - self.starts[segments]
        first = np.repeat(self.starts[segments] - (np.cumsum(lengths) - lengths), lengths)
        return np.sort(self.order[first + np.arange(lengths.sum())])

    def may_qualify(self, min_self: int, min_edge: int, min_trades: int, tolerance: float) -> np.ndarray:
        """Segments whose own window sums pass the check at some row, a self-trader's or a pair's.

        The detector's thresholds, with a looser netting test: nothing the check accepts is dropped.
        """
        transfers = self.up_w + self.down_w
        pair = np.flatnonzero(
            ~self.lone & (self.up_w >= min_edge) & (self.down_w >= min_edge) & (transfers >= min_trades)
        )  # the volumes only at these rows
        sold = self.windowed(np.where(self.up, self.amount, 0.0), pair)  # by the low account
        bought = self.windowed(np.where(self.up, 0.0, self.amount), pair)
        chosen = self.lone & (transfers >= min_self)
        chosen[pair[np.abs(bought - sold) <= (tolerance + LOOSE_NET) * (bought + sold)]] = True
        chosen = self.segment[chosen]  # in order
        return chosen[_changes(chosen)]

    def ring_links(self, min_edge: int, max_counterparties: int) -> pl.DataFrame:
        """Links (sym, bucket, seller, buyer) between two accounts, neither a hub in the bucket's first
        cell, with ≥ min_edge transfers in the bucket and as many in one window ending in it.

        The last condition is not the proposal's but prunes only rings the check rejects: at a
        moment of the bucket's second cell every link needs min_edge transfers in the window,
        and then the link's last trade up to the moment, inside the bucket, has as many in its own.
        """
        run, end = self._runs()
        pair = ~self.lone[run]
        run, end = run[pair], end[pair]
        hub = _Hubs(self.block[run], self.low[run], self.high[run], self.accounts, max_counterparties)
        linking = self._linking(min_edge)[self.segment[run]]
        run, end = run[linking], end[linking]
        segment, cell, block = self.segment[run], self.cell[run], self.block[run]
        sym, low, high = self.sym[run], self.low[run], self.high[run]
        # A segment's runs are consecutive; a cell without trades has none.
        then = np.append((segment[1:] == segment[:-1]) & (cell[1:] == cell[:-1] + 1), False)
        first = ~np.append(False, then[:-1])
        earlier = np.maximum(block - 1, 0)
        cell_before = np.where(
            (self.block_sym[earlier] == sym) & (self.block_cell[earlier] == cell - 1) & (block > 0),
            earlier,
            -1,
        )
        links = []
        for seller, buyer, moved, window in (
            (low, high, self.new & self.up, self.up_w),
            (high, low, self.new & ~self.up, self.down_w),
        ):
            count = run_sums(moved, run, end)
            strong = run_sums(window >= min_edge, run, end) > 0
            # Bucket j = this run's cell (with the next cell's run), or the cell before, if it has no run.
            for keep, bucket, bucket_block, n, windowed in (
                (
                    np.ones(run.size, bool),
                    cell,
                    block,
                    count + np.append(count[1:], 0) * then,
                    strong | (np.append(strong[1:], False) & then),
                ),
                (first, cell - 1, cell_before, count, strong),
            ):
                usable = np.flatnonzero(keep & (n >= min_edge) & windowed)  # the hub look-ups only for these
                at = bucket_block[usable]
                usable = usable[~hub.any(at, seller[usable]) & ~hub.any(at, buyer[usable])]
                links.append(
                    pl.DataFrame(
                        {
                            "sym": sym[usable],
                            "bucket": bucket[usable],
                            "seller": seller[usable],
                            "buyer": buyer[usable],
                        }
                    )
                )
        return pl.concat(links)

    def _runs(self) -> tuple[np.ndarray, np.ndarray]:
        """Each segment's rows in one grid cell (a run), as row ranges [start, end)."""
        run = np.flatnonzero(self.segment_start | (np.diff(self.cell, prepend=self.cell[0]) != 0))
        return run, np.append(run[1:], self.ts.size)

    def _linking(self, min_edge: int) -> np.ndarray:
        """Whether each segment has min_edge transfers one way in some window: only these can be links."""
        linking = np.zeros(self.starts.size, bool)
        linking[self.segment[(self.up_w >= min_edge) | (self.down_w >= min_edge)]] = True
        return linking


class _Hubs:
    """Accounts with more than `max_counterparties` distinct others in a (symbol, cell) block.

    Each run is one distinct pair in one block, so an account's counterparties there are its runs.
    """

    def __init__(
        self, block: np.ndarray, low: np.ndarray, high: np.ndarray, accounts: int, max_counterparties: int
    ) -> None:
        self.accounts = accounts
        keys, counts = np.unique(
            np.concatenate([block * accounts + low, block * accounts + high]), return_counts=True
        )
        self.keys = keys[counts > max_counterparties]

    def any(self, block: np.ndarray, account: np.ndarray) -> np.ndarray:
        """Whether each account is a hub in its block (-1: a cell without trades, where none is)."""
        if not self.keys.size:
            return np.zeros(block.size, bool)
        key = block * self.accounts + account
        at = np.minimum(np.searchsorted(self.keys, key), self.keys.size - 1)
        return (block >= 0) & (self.keys[at] == key)


def window_clock(ts: np.ndarray, segment_start: np.ndarray, window_us: int) -> np.ndarray:
    """One increasing clock for many time-sorted segments: windows of W on it never span two segments.

    It runs each segment's timestamps with gaps over W shortened to W + 1, and W + 1 between
    segments: window membership is unchanged, and the clock cannot overflow however long
    the tape or many the segments.
    """
    gap = np.minimum(np.diff(ts, prepend=ts[:1]), window_us + 1)
    gap[segment_start] = window_us + 1
    return np.cumsum(gap)


def run_sums(values: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Sums of `values` over the row ranges [start, end), from prefix sums."""
    total = np.concatenate([[0], np.cumsum(values)])
    return total[end] - total[start]


def _pair_order(sym: np.ndarray, low: np.ndarray, high: np.ndarray, accounts: int) -> np.ndarray:
    """The stable order by (symbol, low, high): by one integer key where it fits in 63 bits, as one
    argsort takes a fraction of a three-key sort's time."""
    if (int(sym.max(initial=0)) + 1) * accounts * accounts < 2**63:
        return np.argsort((sym * accounts + low) * accounts + high, kind="stable")
    return np.lexsort((high, low, sym))


def _changes(*columns: np.ndarray) -> np.ndarray:
    """Whether each row starts a new run of equal values in all columns."""
    changed = np.zeros(columns[0].size, bool)
    changed[:1] = True
    for column in columns:
        changed[1:] |= column[1:] != column[:-1]
    return changed
