"""Spoofing and layering seen in the public L2 book: big size that appears, leans the book and vanishes untraded.

Without account ids one pulled order says little: market makers post and pull big quotes
all day. What a spoofer leaves in public data is a *cycle* on one side, repeated: large
size added near the touch (the book's imbalance swings toward that side), prints on the
far side of the book while it rests (the buying a fake bid invites, or the spoofer's own
resting sell being lifted), then the size pulled within seconds of those prints without a
trade at its price, and the imbalance falls back. A market maker requoting big on both
sides mirrors the additions on the other side, which rules the cycle out. An alert needs
`min_repeats` pulled additions in qualifying cycles on one side within `repeat_window_min`
(a layered stack of several levels counts each level), is capped at a lower score than L3
and says so in its evidence.

It reads book events (`tapewatch.io.derive.book_events`: L2 updates merged with the prints
of the same symbols); `l2_from_l3` there turns L3 order events into the level totals a
public feed would show, so L3 data (the simulator's) can be evaluated at L2 as well.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from datetime import timedelta
from typing import Any

import numpy as np
import polars as pl

from tapewatch.detect.base import DetectorState, FinalAlerts
from tapewatch.detect.scoring import excess_score
from tapewatch.detect.spoofing.settings import SpoofingL2Settings
from tapewatch.io.derive import KEY, LEVEL, stable
from tapewatch.records import Alert, to_iso

SIDE = [*KEY, "side"]
_US = 1_000_000
_FAR = {"bid": "buy", "ask": "sell"}
"""The taker side of a far-side print for a cycle on each book side (a fake bid invites buyers)."""
_OTHER = {"bid": "ask", "ask": "bid"}


class _Side:
    """One side of an L2 book: live levels in best-first order, each with its total and last update."""

    def __init__(self, bid: bool, memory_us: int) -> None:
        self.sign = -1.0 if bid else 1.0
        self.memory_us = memory_us
        self.keys: list[float] = []
        self.levels: dict[float, tuple[float, int]] = {}

    def update(self, price: float, amount: float, now: int) -> None:
        """Set a level's total (0 removes it)."""
        key = self.sign * price
        if amount > 0:
            if key not in self.levels:
                insort(self.keys, key)
            self.levels[key] = (amount, now)
        elif key in self.levels:
            del self.levels[key]
            self.keys.pop(bisect_left(self.keys, key))

    def ahead(self, price: float, now: int, cap: int) -> int:
        """How many live levels are better than `price` (counted up to `cap`)."""
        count = 0
        for key in self.keys[: bisect_left(self.keys, self.sign * price)]:
            count += self.levels[key][1] >= now - self.memory_us
            if count >= cap:
                break
        return count

    def depth(self, now: int, best: int) -> float:
        """Total of the `best` best live levels; stale levels met on the way are dropped."""
        total, seen, index = 0.0, 0, 0
        while index < len(self.keys) and seen < best:
            amount, updated = self.levels[self.keys[index]]
            if updated < now - self.memory_us:
                del self.levels[self.keys[index]]
                self.keys.pop(index)
                continue
            total += amount
            seen += 1
            index += 1
        return total


def book_view(events: pl.DataFrame, best: int, memory: timedelta) -> pl.DataFrame:
    """`events` (a `book_events` frame) with the book as each row found and left it.

    `ahead`: for a level update, how many live levels on its side were better (up to
    `best`); `imbalance`: after the row, (bid − ask) / (bid + ask) over the `best` best
    levels per side. The book is a running state no column expression can fold, hence one
    pass in Python. Levels not updated within `memory` are dropped, so a stream tail that
    starts `memory` before a row reads the same book there as the batch.
    """
    ts = events["ts"].dt.epoch("us").to_numpy()
    group = events.select(pl.struct(KEY).rank("dense")).to_series().to_numpy()
    is_level = (events["event"] == "level").to_numpy()
    is_bid = (events["side"] == "bid").fill_null(False).to_numpy()
    price, amount = events["price"].to_numpy(), events["amount"].to_numpy()
    ahead = np.full(ts.size, -1, dtype=np.int64)
    imbalance = np.full(ts.size, np.nan)
    memory_us = int(memory / timedelta(microseconds=1))
    current, bids, asks = None, _Side(True, memory_us), _Side(False, memory_us)
    for i in range(ts.size):
        if group[i] != current:
            current, bids, asks = group[i], _Side(True, memory_us), _Side(False, memory_us)
        if is_level[i]:
            side = bids if is_bid[i] else asks
            ahead[i] = side.ahead(price[i], ts[i], best)
            side.update(price[i], amount[i], ts[i])
        bid, ask = bids.depth(ts[i], best), asks.depth(ts[i], best)
        if bid + ask > 0:
            imbalance[i] = (bid - ask) / (bid + ask)
    return events.with_columns(
        ahead=pl.Series(ahead).replace(-1, None), imbalance=pl.Series(imbalance).fill_nan(None)
    )


class SpoofingL2Detector(FinalAlerts):
    """Flags one-sided cycles of large additions pulled untraded right after far-side prints, repeated."""

    name = "spoofing_l2"
    typology = "spoofing"
    needs = "book"

    def __init__(self, settings: SpoofingL2Settings | None = None) -> None:
        self.settings = settings or SpoofingL2Settings()

    @property
    def lookback(self) -> timedelta:
        """The repeat window of cycles, and the book memory and size baseline before its first addition."""
        s = self.settings
        return timedelta(
            minutes=s.repeat_window_min + max(s.level_memory_min, s.baseline_min) + 1,
            seconds=s.max_cycle_s + s.max_life_s,
        )

    def detect(self, frame: pl.DataFrame, state: DetectorState | None = None) -> list[Alert]:
        """Alerts for every symbol in a `book_events` frame sorted by venue, symbol, ts (see DetectorState)."""
        if frame.is_empty():
            return []
        s = self.settings
        book = book_view(frame.with_row_index("row"), s.near_levels, timedelta(minutes=s.level_memory_min))
        far = _far_prints(book)
        additions = _with_cycles(self._additions(book), timedelta(seconds=s.mirror_pad_s))
        tied = self._tied(additions, far)
        cycles = self._leaning(_cycles(tied, book, additions))
        known = state or DetectorState()
        # One alert per repeat window: a hit within the window of the last alert is the same spoofing run.
        run = timedelta(minutes=s.repeat_window_min)
        fired = known.spaced(self._repeated(cycles, book, known), KEY, run)
        if state is not None:
            state.advance(KEY, book.select(*KEY, "ts"), fired.select(*KEY, "ts"))
        alerts = [self._alert(row, cycles, tied, far) for row in fired.iter_rows(named=True)]
        return sorted(alerts, key=lambda alert: (alert.detected_at, alert.symbol))

    def _additions(self, book: pl.DataFrame) -> pl.DataFrame:
        """Large additions near the touch, each with when it was pulled (`stop`) and whether it was.

        "Large" is against the trailing geometric mean of additions near the touch on that
        side. An addition is pulled when one later decrease of its level removes most of it
        within `max_life_s` while prints at its price took at most the rest; smaller
        decreases in between are other traders' orders.
        """
        s = self.settings
        window = f"{int(s.baseline_min * 60 * _US)}i"
        traded_here = pl.when(pl.col("event") == "trade").then(pl.col("amount")).otherwise(0.0)
        book = book.with_columns(traded_here=traded_here.cum_sum().over(*KEY, "price"))
        levels = book.filter(pl.col("event") == "level").sort(*LEVEL, "ts", "row")
        remembered = (pl.col("ts") - pl.col("ts").shift(1).over(LEVEL)) <= timedelta(
            minutes=s.level_memory_min
        )
        previous = (
            pl.when(remembered.fill_null(False)).then(pl.col("amount").shift(1).over(LEVEL)).otherwise(0.0)
        )
        levels = levels.with_columns(change=pl.col("amount") - previous).sort("row")
        near = (pl.col("change") > 0) & (pl.col("ahead") < s.near_levels)
        typical = stable(
            pl.col("change").log().rolling_mean_by(pl.col("ts").dt.epoch("us"), window).over(SIDE).exp()
        )
        sizes = levels.filter(near).select("row", typical=typical)
        levels = levels.join(sizes, on="row", how="left").with_columns(
            pl.col("typical").forward_fill().over(SIDE)
        )
        large = levels.filter(near & (pl.col("change") >= s.min_add_ratio * pl.col("typical")))
        drops = levels.filter(-pl.col("change") >= s.min_removed_share * s.min_add_ratio * pl.col("typical"))
        life = timedelta(seconds=s.max_life_s)
        pulls = (
            large.select(*LEVEL, "row", "ts", "change", "traded_here")
            .join(
                drops.select(
                    *LEVEL, pull_row="row", pull_ts="ts", drop=-pl.col("change"), traded="traded_here"
                ),
                on=LEVEL,
            )
            .filter(
                (pl.col("pull_ts") > pl.col("ts"))
                & (pl.col("pull_ts") <= pl.col("ts") + life)
                & (pl.col("drop") >= s.min_removed_share * pl.col("change"))
            )
            .sort("pull_ts", "pull_row")
            .group_by("row")
            .agg(
                pl.col("pull_row", "pull_ts").first(),
                pulled=(pl.col("traded") - pl.col("traded_here")).first()
                <= (1 - s.min_removed_share) * pl.col("change").first(),
            )
        )
        return (
            large.join(pulls, on="row", how="left")
            .rename({"ts": "placed"})
            .with_columns(
                pl.col("pulled").fill_null(False),
                stop=pl.coalesce("pull_ts", pl.col("placed") + life),
            )
        )

    def _tied(self, additions: pl.DataFrame, far: pl.DataFrame) -> pl.DataFrame:
        """Pulled additions that rested through far-side prints and were pulled right after the last,
        with no large addition on the other side around their placement.

        A pull after prints is what a spoofer does once the trade the bait was for is done;
        size added on both sides at once is a market maker's two-sided requote.
        """
        s = self.settings
        pad = timedelta(seconds=s.mirror_pad_s)
        mirror = additions.select(*KEY, side=pl.col("side").replace_strict(_OTHER), ts=pl.col("placed"))
        tied = additions.filter("pulled").with_columns(
            mirror_from=pl.col("placed") - pad, mirror_to=pl.col("placed") + pad
        )
        tied = _count_at(tied, far, "placed", "far_before")
        tied = _count_at(tied, far, "stop", "far_until", last="last_far")
        tied = _count_at(tied, mirror, "mirror_from", "mirror_before")
        tied = _count_at(tied, mirror, "mirror_to", "mirror_until")
        gap = pl.col("stop") - pl.col("last_far")
        return tied.with_columns(
            far_prints=pl.col("far_until") - pl.col("far_before"),
            pull_after_print_s=gap.dt.total_microseconds() / _US,
        ).filter(
            (pl.col("far_prints") >= s.min_far_prints)
            & (gap <= timedelta(seconds=s.cancel_after_exec_s))
            & (pl.col("mirror_until") == pl.col("mirror_before"))
        )

    def _leaning(self, cycles: pl.DataFrame) -> pl.DataFrame:
        """Cycles whose additions swung the book's imbalance their way and whose pulls swung it back."""
        s = self.settings
        return cycles.with_columns(
            swing=pl.col("imbalance_during") - pl.col("imbalance_before"),
            fall=pl.col("imbalance_during") - pl.col("imbalance_after"),
        ).filter(
            (pl.col("closed") - pl.col("start") <= timedelta(seconds=s.max_cycle_s))
            & (pl.col("swing") >= s.min_swing)
            & (pl.col("fall") >= s.min_swing)
        )

    def _repeated(self, cycles: pl.DataFrame, book: pl.DataFrame, known: DetectorState) -> pl.DataFrame:
        """Qualifying cycles with at least `min_repeats` pulled additions on their side within the
        repeat window up to them, decided now (by the book's newest row, after warm-up, not decided by
        an earlier call)."""
        s = self.settings
        window = f"{int(s.repeat_window_min * 60 * _US)}i"
        span = book.group_by(KEY).agg(ts=pl.col("ts").min(), last_seen=pl.col("ts").max())  # ts: the first
        hits = (
            cycles.sort(*SIDE, "closed", "cycle")
            .with_columns(
                repeats=pl.col("additions").rolling_sum_by(pl.col("closed").dt.epoch("us"), window).over(SIDE)
            )
            .rename({"closed": "ts"})
            .join(span.select(*KEY, "last_seen"), on=KEY)
            .filter((pl.col("repeats") >= s.min_repeats) & (pl.col("ts") <= pl.col("last_seen")))
        )
        hits = known.warmed_up(known.undecided(hits, KEY), KEY, timedelta(minutes=s.warmup_min), span)
        return hits.sort(*KEY, "ts", "side")

    def _alert(
        self, row: dict[str, Any], cycles: pl.DataFrame, additions: pl.DataFrame, far: pl.DataFrame
    ) -> Alert:
        s = self.settings
        window = timedelta(minutes=s.repeat_window_min)
        counted = cycles.filter(
            (pl.col("venue") == row["venue"])
            & (pl.col("symbol") == row["symbol"])
            & (pl.col("side") == row["side"])
            & (pl.col("closed") > row["ts"] - window)
            & (pl.col("closed") <= row["ts"])
        ).sort("closed", "cycle")
        evidence = {
            "side": row["side"],
            "pulled_additions": row["repeats"],
            "cycles": [
                self._cycle_evidence(cycle, additions, far) for cycle in counted.iter_rows(named=True)
            ],
            "confidence": "low",
            "basis": "public L2 book, no account ids",
        }
        score = s.max_score * excess_score(
            row["repeats"] / s.min_repeats,
            row["swing"] / s.min_swing,
            row["fall"] / s.min_swing,
            row["far_prints"] / s.min_far_prints,
            s.cancel_after_exec_s / max(row["pull_after_print_s"], 1e-3),
        )
        typology = "layering" if counted["levels"].max() >= s.min_layers else "spoofing"
        return Alert.build(
            detector=self.name,
            typology=typology,
            venue=row["venue"],
            symbol=row["symbol"],
            start=counted["start"].min(),
            end=row["ts"],
            detected_at=row["ts"],
            score=score,
            evidence=evidence,
        )

    @staticmethod
    def _cycle_evidence(cycle: dict[str, Any], additions: pl.DataFrame, far: pl.DataFrame) -> dict[str, Any]:
        """One cycle as the analyst reads it: the levels added and pulled, the book's lean, the far-side prints."""
        own = additions.filter(pl.col("cycle") == cycle["cycle"]).sort("placed", "row")
        prints = far.filter(
            (pl.col("venue") == cycle["venue"])
            & (pl.col("symbol") == cycle["symbol"])
            & (pl.col("side") == cycle["side"])
            & (pl.col("ts") > cycle["start"])
            & (pl.col("ts") <= cycle["closed"])
        )
        return {
            "additions": [
                {
                    "price": level["price"],
                    "added": level["change"],
                    "vs_typical_addition": round(level["change"] / level["typical"], 2),
                    "added_at": to_iso(level["placed"]),
                    "pulled_at": to_iso(level["stop"]),
                    "life_s": round((level["stop"] - level["placed"]) / timedelta(seconds=1), 3),
                    "far_side_prints_while_resting": level["far_prints"],
                    "pulled_after_last_print_s": round(level["pull_after_print_s"], 3),
                }
                for level in own.iter_rows(named=True)
            ],
            "imbalance_toward_side": {
                "before": cycle["imbalance_before"],
                "during": cycle["imbalance_during"],
                "after": cycle["imbalance_after"],
            },
            "far_side_prints": [
                {"at": to_iso(p["ts"]), "price": p["price"], "amount": p["amount"], "taker": p["taker"]}
                for p in prints.sort("ts", "price", "amount", "taker").iter_rows(named=True)
            ],
        }


def _with_cycles(additions: pl.DataFrame, pad: timedelta) -> pl.DataFrame:
    """Tag every large addition with its cycle: islands of overlapping additions per side.

    Islands are drawn over all large additions, pulled or not, and each addition counts
    until its stop or until the mirror check around its placement (`pad`) is over,
    whichever is later. Then a cycle is complete, and decidable, at the end of its last
    member: drawn over the pulled ones only, a cycle would close early in a stream that
    has not yet seen a member's pull and grow later in the batch. A running count (+1 at
    placement, −1 at the end) per side opens a cycle when it leaves zero; ties at one
    timestamp end before they start, so back-to-back additions are separate cycles.
    """
    additions = additions.with_columns(ends=pl.max_horizontal("stop", pl.col("placed") + pad))
    steps = pl.concat(
        [
            additions.select(*SIDE, "row", ts=pl.col("placed"), step=pl.lit(1, pl.Int32)),
            additions.select(*SIDE, "row", ts=pl.col("ends"), step=pl.lit(-1, pl.Int32)),
        ]
    ).sort(*SIDE, "ts", "step")
    opens = (pl.col("step") == 1) & (pl.col("step").cum_sum().over(SIDE) == 1)
    tagged = steps.with_columns(cycle=opens.cum_sum()).filter(pl.col("step") == 1).select("row", "cycle")
    return additions.join(tagged, on="row")


def _cycles(additions: pl.DataFrame, book: pl.DataFrame, members: pl.DataFrame) -> pl.DataFrame:
    """One row per cycle of tied `additions`, with the imbalance toward its side just before its
    first addition, after its last addition and after its last pull; it closes when the last of
    all its `members` ends (see `_with_cycles`)."""
    ends = members.group_by("cycle").agg(closed=pl.col("ends").max())
    imbalance = book.select("row", "imbalance", before=pl.col("imbalance").shift(1).over(KEY))
    toward = pl.when(pl.col("side") == "bid").then(1.0).otherwise(-1.0)
    return (
        additions.sort("row")
        .group_by("cycle")
        .agg(
            pl.col(*SIDE).first(),
            start=pl.col("placed").min(),
            first_row=pl.col("row").min(),
            last_row=pl.col("row").max(),
            last_pull_row=pl.col("pull_row").sort_by("stop", "pull_row").last(),
            additions=pl.len(),
            levels=pl.col("price").n_unique(),
            far_prints=pl.col("far_prints").max(),
            pull_after_print_s=pl.col("pull_after_print_s").min(),
        )
        .join(ends, on="cycle")
        .join(imbalance.select("row", imbalance_before="before"), left_on="first_row", right_on="row")
        .join(imbalance.select("row", imbalance_during="imbalance"), left_on="last_row", right_on="row")
        .join(
            imbalance.select("row", imbalance_after="imbalance"),
            left_on="last_pull_row",
            right_on="row",
            how="left",
        )
        .with_columns((pl.col("^imbalance_.*$") * toward).round(6))
    )


def _far_prints(book: pl.DataFrame) -> pl.DataFrame:
    """Prints by taker side, labelled with the book side whose cycle they would follow (buys: bid)."""
    return (
        book.filter((pl.col("event") == "trade") & pl.col("side").is_in(list(_FAR.values())))
        .select(*KEY, "ts", "price", "amount", "row", taker="side")
        .with_columns(side=pl.col("taker").replace_strict({taker: side for side, taker in _FAR.items()}))
    )


def _count_at(
    frame: pl.DataFrame, events: pl.DataFrame, at: str, name: str, last: str | None = None
) -> pl.DataFrame:
    """`frame` with `name`: how many `events` (venue, symbol, side, ts) of its side came at or before
    its `at` column, and optionally `last`, the latest of them."""
    running = (
        events.sort(*SIDE, "ts")
        .with_columns(count=pl.int_range(1, pl.len() + 1).over(SIDE))
        .group_by(*SIDE, "ts")
        .agg(pl.col("count").max())
        .select(*SIDE, "count", pl.col("ts").alias(at), **({last: pl.col("ts")} if last else {}))
        .sort(at)
    )
    joined = frame.sort(at).join_asof(running, on=at, by=SIDE, strategy="backward", check_sortedness=False)
    return joined.with_columns(pl.col("count").fill_null(0)).rename({"count": name})
