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
  transfers, through at most one *hub*: an account that traded with more than
  `max_ring_counterparties` others in the bucket's first cell. A market maker or a busy
  trader meets dozens of counterparties an hour; through two or more such hubs the number of
  cycles multiplies (r→MM1→r′→MM2→r for every pair of their regular clients: thousands per
  symbol-day) while hardly any can net out. Through one hub the cycles are bounded by the hub's
  links times the few strong links of the non-hubs, so a market maker colluding in a ring is
  still found, and two-account round trips are checked whatever the counts. This bound is a
  cost device, not a judgement: the check decides on netting laps alone. Where the first cell
  has no trades (the symbol's first hour of data, or after an hour without trades) nothing is
  known of anyone beforehand, so hubs are judged as the second cell goes: an account becomes a
  hub at its first trade with its (max_ring_counterparties + 1)-th counterparty there, and a
  ring is checked only at moments before the second of its members does (`until`) — what a
  stream reading up to each moment would propose. A cycle whose links are not all strong
  (min_edge_trades transfers) before that time could never pass, and is not walked.

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
ALWAYS, NEVER = -(2**62), 2**62
"""Times (µs) before and after every trade: a hub from the bucket's start, an account never a hub."""
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
        *BUCKET, pl.concat_list("seller").alias(MEMBERS), until=pl.lit(NEVER, dtype=pl.Int64)
    )


def pair_groups(edges: pl.DataFrame, min_edge_trades: int) -> pl.DataFrame:
    """Two-account groups: transfers both ways, each way often enough."""
    strong = edges.filter((pl.col("seller") != pl.col("buyer")) & (pl.col("n") >= min_edge_trades))
    back = strong.select(*BUCKET, seller=pl.col("buyer"), buyer=pl.col("seller"))
    return (
        strong.join(back, on=[*BUCKET, "seller", "buyer"], how="semi")
        .filter(pl.col("seller") < pl.col("buyer"))
        .select(
            *BUCKET, pl.concat_list("seller", "buyer").alias(MEMBERS), until=pl.lit(NEVER, dtype=pl.Int64)
        )
    )


def ring_groups(links: pl.DataFrame, max_group: int) -> pl.DataFrame:
    """Groups of 3…max_group accounts in a directed cycle of strong links through at most one hub
    (`PairIndex.ring_links`), each with the time until which it may be checked."""
    if max_group < 3:
        return _groups([], [], [], [])
    links = _on_cycles(_through_one_hub(links))
    hubs = (
        pl.concat(
            [
                links.select(*BUCKET, account="seller", since="seller_hub_at"),
                links.select(*BUCKET, account="buyer", since="buyer_hub_at"),
            ]
        )
        .filter(pl.col("since") < NEVER)
        .unique()
    )
    per_bucket = (
        links.group_by(BUCKET)
        .agg("seller", "buyer", "strong_at")
        .join(hubs.group_by(BUCKET).agg("account", "since"), on=BUCKET, how="left")
    )
    syms, buckets, cycles, untils = [], [], [], []
    for sym, bucket, sellers, buyers, strong, hub, since in per_bucket.iter_rows():
        found = simple_cycles(
            list(zip(sellers, buyers, strong, strict=True)),
            max_group,
            min_length=3,
            hub_at=dict(zip(hub or (), since or (), strict=True)),
        )
        syms += [sym] * len(found)
        buckets += [bucket] * len(found)
        cycles += [cycle for cycle, _ in found]
        untils += [until for _, until in found]
    return _groups(syms, buckets, cycles, untils)


def simple_cycles(
    links: list[tuple[int, int, int]],
    max_length: int,
    min_length: int = 2,
    hub_at: dict[int, int] | None = None,
) -> list[tuple[tuple[int, ...], int]]:
    """Every directed simple cycle of min_length…max_length accounts (links: seller, buyer, the time the
    link becomes strong) that has at most one hub at some time when all its links are strong: each
    once, starting at its smallest account, with the time its second member becomes a hub (`until`;
    NEVER if at most one ever does). `hub_at`: when each hub becomes one (ALWAYS: from the start).

    A walk stops as soon as its links are strong only once two of its accounts are hubs: with hubs
    from the start that is as soon as it meets a second hub, so the walks stay among non-hubs' few
    links.
    """
    hub_at = hub_at or {}
    following: dict[int, list[tuple[int, int]]] = {}
    for seller, buyer, strong in links:
        following.setdefault(seller, []).append((buyer, strong))
    cycles = []
    for start in sorted(following):
        stack = [(start, (start,), ALWAYS, *_two_earliest(NEVER, NEVER, hub_at.get(start, NEVER)))]
        while stack:
            node, path, strong, first, second = stack.pop()
            for nxt, link in following.get(node, ()):
                ready = max(strong, link)
                if nxt == start:
                    if len(path) >= min_length and ready < second:
                        cycles.append((path, second))
                    continue
                if nxt < start or nxt in path or len(path) >= max_length:
                    continue
                earliest = _two_earliest(first, second, hub_at.get(nxt, NEVER))
                if ready < earliest[1]:
                    stack.append((nxt, (*path, nxt), ready, *earliest))
    return sorted(cycles)


def _two_earliest(first: int, second: int, time: int) -> tuple[int, int]:
    """The two earliest of first ≤ second and time."""
    return (time, first) if time < first else (first, min(second, time))


def _through_one_hub(links: pl.DataFrame) -> pl.DataFrame:
    """The links that can lie on a cycle of 3+ with at most one hub from the bucket's start: between
    others, or between such a hub and another account that has a link to (from) a third one to go on
    (to come from). Most of a market maker's links are to clients who deal with nobody else, and go."""
    links = links.with_columns(
        seller_hub=pl.col("seller_hub_at") == ALWAYS, buyer_hub=pl.col("buyer_hub_at") == ALWAYS
    )
    inner = links.filter(~pl.col("seller_hub") & ~pl.col("buyer_hub"))
    onward = inner.select(*BUCKET, buyer="seller").unique()  # a non-hub that sells on to a non-hub
    backward = inner.select(*BUCKET, seller="buyer").unique()  # a non-hub that buys from a non-hub
    return pl.concat(
        [
            inner,
            links.filter(pl.col("seller_hub") & ~pl.col("buyer_hub")).join(
                onward, on=[*BUCKET, "buyer"], how="semi"
            ),
            links.filter(~pl.col("seller_hub") & pl.col("buyer_hub")).join(
                backward, on=[*BUCKET, "seller"], how="semi"
            ),
        ]
    ).drop("seller_hub", "buyer_hub")


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


def _groups(
    syms: list[int], buckets: list[int], cycles: list[tuple[int, ...]], untils: list[int]
) -> pl.DataFrame:
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
    ).with_columns(members[MEMBERS].cast(pl.List(pl.Int64)), until=pl.Series(untils, dtype=pl.Int64))


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
        first_of_block = np.flatnonzero(changes(tape["block"].to_numpy()))  # blocks are runs: ids in order
        self.block_sym, self.block_cell = (tape[name].to_numpy()[first_of_block] for name in ("sym", "cell"))
        self.order = _pair_order(*(tape[name].to_numpy() for name in ("sym", "low", "high")), self.accounts)
        tape = tape[self.order]
        self.sym, self.low, self.high = (tape[name].to_numpy() for name in ("sym", "low", "high"))
        self.ts, self.cell, self.block = (tape[name].to_numpy() for name in ("ts_us", "cell", "block"))
        self.new, self.amount, self.up = (tape[name].to_numpy() for name in ("new", "amount", "up"))
        self.lone = self.low == self.high
        self.segment_start = changes(self.sym, self.low, self.high)
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
        total = prefix_sums(values)
        if rows is None:  # every row: its window's end is the next prefix, a slice rather than a gather
            return total[1:] - total[self.window_start]
        return total[rows + 1] - total[self.window_start[rows]]

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
        chosen = np.zeros(self.ts.size, bool)  # marked, not sorted: back in tape order in one pass
        chosen[self.order[first + np.arange(lengths.sum())]] = True
        return np.flatnonzero(chosen)

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
        return chosen[changes(chosen)]

    def ring_links(self, min_edge: int, max_counterparties: int) -> pl.DataFrame:
        """Links (sym, bucket, seller, buyer) between two accounts with ≥ min_edge transfers in the bucket
        and as many in one window ending in it; with when each account is a hub (ALWAYS: in the bucket's
        first cell; NEVER: not; a time: where that cell has no trades, as the second cell goes) and
        when the link is strong (ALWAYS, or where the first cell has no trades the time of its
        min_edge-th transfer).

        The last condition is not the proposal's but prunes only rings the check rejects: at a
        moment of the bucket's second cell every link needs min_edge transfers in the window,
        and then the link's last trade up to the moment, inside the bucket, has as many in its own.
        """
        run, end = self._runs()
        pair = ~self.lone[run]
        run, end = run[pair], end[pair]
        hub = _Hubs(
            self.block[run], self.low[run], self.high[run], self.ts[run], self.accounts, max_counterparties
        )
        hub.time_from(np.flatnonzero(~self._after_trades()))
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
            moved_total = prefix_sums(moved)  # read again for each bucket's strength below
            count = moved_total[end] - moved_total[run]
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
                before, during = bucket_block[usable], block[usable]
                seller_at = hub.since(before, during, seller[usable])
                buyer_at = hub.since(before, during, buyer[usable])
                apart = (seller_at > ALWAYS) | (buyer_at > ALWAYS)  # two hubs from the start: on no ring
                usable, seller_at, buyer_at = usable[apart], seller_at[apart], buyer_at[apart]
                strong_at = np.full(usable.size, ALWAYS)
                fresh = np.flatnonzero(bucket_block[usable] < 0)  # hubs and strength as the second cell goes
                strong_at[fresh] = self._nth(moved_total, run[usable[fresh]], min_edge)
                links.append(
                    pl.DataFrame(
                        {
                            "sym": sym[usable],
                            "bucket": bucket[usable],
                            "seller": seller[usable],
                            "buyer": buyer[usable],
                            "seller_hub_at": seller_at,
                            "buyer_hub_at": buyer_at,
                            "strong_at": strong_at,
                        }
                    )
                )
        return pl.concat(links)

    def _nth(self, total: np.ndarray, start: np.ndarray, n: int) -> np.ndarray:
        """The time of the n-th flagged row from each start row (which must have one), from the flags'
        `prefix_sums`."""
        if not start.size:
            return np.zeros(0, np.int64)
        return self.ts[np.searchsorted(total, total[start] + n) - 1]

    def _after_trades(self) -> np.ndarray:
        """Whether each (symbol, cell) block follows a cell of the same symbol with trades."""
        earlier = np.maximum(np.arange(self.block_sym.size) - 1, 0)
        return (
            (np.arange(self.block_sym.size) > 0)
            & (self.block_sym[earlier] == self.block_sym)
            & (self.block_cell[earlier] == self.block_cell - 1)
        )

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
    """Accounts with more than `max_counterparties` distinct others in a (symbol, cell) block, and when
    they got there: their first trade with the (max_counterparties + 1)-th.

    Each run is one distinct pair in one block, its first row the pair's first trade there, so an
    account's counterparties in a block are its runs.
    """

    def __init__(
        self,
        block: np.ndarray,
        low: np.ndarray,
        high: np.ndarray,
        first: np.ndarray,
        accounts: int,
        max_counterparties: int,
    ) -> None:
        self.accounts, self.max_counterparties = accounts, max_counterparties
        self.block = np.concatenate([block, block])
        self.key = self.block * accounts + np.concatenate([low, high])
        self.first = np.concatenate([first, first])
        keys = pl.Series(self.key).sort().to_numpy()  # polars sorts integers several times faster
        starts = np.flatnonzero(changes(keys))
        counts = np.diff(np.append(starts, keys.size))
        self.hubs = keys[starts[counts > max_counterparties]]
        self.timed_keys, self.times = np.zeros(0, np.int64), np.zeros(0, np.int64)

    def time_from(self, blocks: np.ndarray) -> None:
        """Learn when accounts become hubs in these blocks (those after a cell without trades): the one
        sort of this runs over their few rows only."""
        rows = np.flatnonzero(np.isin(self.block, blocks))
        order = rows[np.lexsort((self.first[rows], self.key[rows]))]
        keys, times = self.key[order], self.first[order]
        starts = np.flatnonzero(changes(keys))
        rank = np.arange(keys.size) - np.repeat(starts, np.diff(np.append(starts, keys.size)))
        self.timed_keys, self.times = (
            keys[rank == self.max_counterparties],
            times[rank == self.max_counterparties],
        )

    def since(self, before: np.ndarray, during: np.ndarray, account: np.ndarray) -> np.ndarray:
        """When each account is a hub for a bucket: ALWAYS if it is one in the first cell's block
        (`before`), NEVER if not; where that cell has no trades (-1), the time it becomes one in the
        second's (`during`), or NEVER."""
        known = before >= 0
        out = np.where(_among(self.hubs, before * self.accounts + account), ALWAYS, NEVER)
        fresh = np.flatnonzero(~known)
        if fresh.size and self.timed_keys.size:
            wanted = during[fresh] * self.accounts + account[fresh]
            at = np.minimum(np.searchsorted(self.timed_keys, wanted), self.timed_keys.size - 1)
            out[fresh] = np.where(_among(self.timed_keys, wanted), self.times[at], NEVER)
        return out


def _among(sorted_keys: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Whether each key is in `sorted_keys`."""
    if not sorted_keys.size:
        return np.zeros(keys.size, bool)
    at = np.minimum(np.searchsorted(sorted_keys, keys), sorted_keys.size - 1)
    return sorted_keys[at] == keys


def window_clock(ts: np.ndarray, segment_start: np.ndarray, window_us: int) -> np.ndarray:
    """One increasing clock for many time-sorted segments: windows of W on it never span two segments.

    It runs each segment's timestamps with gaps over W shortened to W + 1, and W + 1 between
    segments: window membership is unchanged, and the clock cannot overflow however long
    the tape or many the segments.
    """
    gap = np.minimum(np.diff(ts, prepend=ts[:1]), window_us + 1)
    gap[segment_start] = window_us + 1
    return np.cumsum(gap)


def prefix_sums(values: np.ndarray) -> np.ndarray:
    """Sums of `values` before each row, and of all: a range's sum is a difference of two."""
    total = np.zeros(values.size + 1, np.cumsum(values[:0]).dtype)  # cumsum's type: int for flags
    np.cumsum(values, out=total[1:])  # in place: no second copy of a tape-long array
    return total


def run_sums(values: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Sums of `values` over the row ranges [start, end), from prefix sums."""
    total = prefix_sums(values)
    return total[end] - total[start]


def _pair_order(sym: np.ndarray, low: np.ndarray, high: np.ndarray, accounts: int) -> np.ndarray:
    """The stable order by (symbol, low, high): where the key with the row number appended fits in 63
    bits, by sorting those distinct integers (polars sorts them several times faster than numpy
    argsorts), else by one integer key, else by three."""
    rows = sym.size
    pairs = (int(sym.max(initial=0)) + 1) * accounts * accounts
    key = (sym * accounts + low) * accounts + high if pairs < 2**63 else None
    if key is not None and pairs * max(rows, 1) < 2**63:
        return pl.Series(key * rows + np.arange(rows)).sort().to_numpy() % rows
    if key is not None:
        return np.argsort(key, kind="stable")
    return np.lexsort((high, low, sym))


def changes(*columns: np.ndarray) -> np.ndarray:
    """Whether each row starts a new run of equal values in all columns."""
    changed = np.zeros(columns[0].size, bool)
    changed[:1] = True
    for column in columns:
        changed[1:] |= column[1:] != column[:-1]
    return changed
