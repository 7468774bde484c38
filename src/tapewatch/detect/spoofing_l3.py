"""Spoofing and layering from L3 order events: big orders that were never meant to trade.

A spoofer rests one or more large orders at or near the touch on one side, trades on
the other side while the fake pressure lasts (aggressively, or by having a resting
order lifted), then pulls the large orders seconds later, unfilled or barely touched.
Layering is the same with a stack of orders at several price levels at once. When the
book turns against the bait, the spoofer pulls first and trades the other way a moment
later (a "flip"): the same scheme, the execution just lands after the cancel.

The detector follows each account's *large* orders (notional well above the symbol's
typical order and above the size the account usually trades, both trailing), per side.
Overlapping large orders of one account and side form an episode; the episode closes
when the last of them is gone. An episode alerts when all its orders were cancelled
within `max_life_s`, nearly unfilled, at least one sat near the touch (the book rebuilt
from the L3 stream), and the account executed on the other side either while they rested
(pulling them within `cancel_after_exec_s` of that execution) or within
`exec_after_cancel_s` after the last was pulled. It is decided when the pattern is
complete (`detected_at`: the last cancel, or the execution after it), so every fact it
uses is known by then. Market makers' big quotes pass most of these tests by chance now
and then; what they lack is the *pattern*: most of their large quick cancels have no
opposite execution, so an episode must also come from an account whose recent large
quick cancels are mostly tied to executions (`min_tied_share`).

Each order counts towards its episode for at most `max_life_s`, so the decision at a
moment depends only on a bounded stretch of history and the stream decides like the batch.
Only orders large at placement are followed past their placement, which keeps the cost
near one pass over the events.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

import numpy as np
import polars as pl

from tapewatch.config import SpoofingL3Settings
from tapewatch.detect.base import DetectorState, FinalAlerts
from tapewatch.detect.scoring import excess_score, stable
from tapewatch.records import Alert, to_iso

KEY = ["venue", "symbol"]
PARTY = [*KEY, "account", "side"]
ORDER = [*KEY, "order_id"]
OPPOSITE = {"buy": "sell", "sell": "buy"}
_US = 1_000_000


class SpoofingL3Detector(FinalAlerts):
    """Flags spoofing and layering episodes in L3 order events, per account."""

    name = "spoofing_l3"
    typology = "spoofing"
    needs = "orders"

    def __init__(self, settings: SpoofingL3Settings | None = None) -> None:
        self.settings = settings or SpoofingL3Settings()

    @property
    def lookback(self) -> timedelta:
        """An episode's own span and the wait for a late execution, its pattern window, and the baselines
        at its first placement (the account's typical fill is read at its last fill, up to one baseline
        earlier: twice)."""
        s = self.settings
        longest = max(s.baseline_min * 2, s.book_window_min)
        return timedelta(
            seconds=s.max_episode_s + s.max_life_s + s.exec_after_cancel_s,
            minutes=s.pattern_min + longest + 1,
        )

    def detect(self, frame: pl.DataFrame, state: DetectorState | None = None) -> list[Alert]:
        """Alerts for every symbol in an L3 frame sorted by venue, symbol, ts (see DetectorState)."""
        if frame.is_empty():
            return []
        events = frame.with_row_index("row")
        fills = events.filter(pl.col("action") == "fill")
        span = _span(events)
        orders = with_episodes(self._large_orders(events, fills))
        episodes = self._with_pattern(self._tied(self._episodes(orders, span), orders, fills))
        hits = self._qualifying(episodes, state, span)
        if state is not None:
            seen = pl.concat([span.select(*KEY, ts="first_ts"), span.select(*KEY, ts="last_seen")])
            state.advance(KEY, seen, hits.select(*KEY, "ts").clear())
        if hits.is_empty():
            return []
        members = _with_touch(orders.join(hits.select("episode"), on="episode"), events, self.settings)
        hits = self._near_touch(hits, members)
        executions = _executions(fills, hits)
        alerts = [
            self._alert(row, members.filter(pl.col("episode") == row["episode"]), executions)
            for row in hits.iter_rows(named=True)
        ]
        return sorted(alerts, key=lambda alert: (alert.detected_at, alert.symbol))

    def _large_orders(self, events: pl.DataFrame, fills: pl.DataFrame) -> pl.DataFrame:
        """Resting orders big for the symbol, with their lifecycle and the account's typical fill, each
        counted for at most `max_life_s`. Small orders are dropped before anything is joined."""
        s = self.settings
        placed = placements(events, s.baseline_min)
        large = (pl.col("notional") >= s.min_layer_ratio * pl.col("book_typical")) & (
            pl.col("baseline_orders") >= s.min_baseline_orders
        )
        orders = lifecycles(placed.filter(large), events).filter(~pl.col("taker"))
        expiry = pl.col("placed") + timedelta(seconds=s.max_life_s)
        return _account_typical(orders, fills, s.baseline_min).with_columns(
            stop=pl.min_horizontal(pl.col("end").fill_null(expiry), expiry),
            expired=pl.col("end").is_null() | (pl.col("end") > expiry),
        )

    def _episodes(self, orders: pl.DataFrame, span: pl.DataFrame) -> pl.DataFrame:
        """One row per closed, spoof-shaped episode of `orders` (tagged by `with_episodes`).

        Islands with an order that was not pulled in time, or without one order big enough,
        are dropped before the (costlier) aggregation.
        """
        s = self.settings
        pulled = (pl.col("cancelled") & ~pl.col("expired")).all().over("episode")
        big = (pl.col("notional") >= s.min_book_ratio * pl.col("book_typical")).any().over("episode")
        episodes = (
            orders.filter(pulled & big)
            .group_by("episode")
            .agg(
                pl.col(*PARTY).first(),
                start=pl.col("placed").min(),
                first_cancel=pl.col("stop").min(),
                closed=pl.col("stop").max(),
                orders=pl.len(),
                levels=pl.col("price").n_unique(),
                notional=pl.col("notional").sum(),
                fill_ratio=pl.col("filled").sum() / pl.col("amount").sum(),
                longest_s=(pl.col("stop") - pl.col("placed")).max().dt.total_microseconds() / _US,
                book_ratio=(pl.col("notional") / pl.col("book_typical")).max(),
                account_ratio=(pl.col("notional") / pl.col("account_typical")).max(),
            )
            .join(span, on=KEY)
        )
        return episodes.filter(
            (pl.col("closed") <= pl.col("last_seen"))
            & (pl.col("fill_ratio") <= s.max_fill_ratio)
            & (pl.col("closed") - pl.col("start") <= timedelta(seconds=s.max_episode_s))
            & (pl.col("book_ratio") >= s.min_book_ratio)
            & (pl.col("account_ratio").is_null() | (pl.col("account_ratio") >= s.min_account_ratio))
        )

    def _tied(self, episodes: pl.DataFrame, orders: pl.DataFrame, fills: pl.DataFrame) -> pl.DataFrame:
        """Whether the account executed on the other side while the episode rested (and pulled within
        `cancel_after_exec_s` of it) or right after the last cancel, and when that became known (`decided`).

        An untied episode is known to be untied once the wait for a late execution is over.
        """
        s = self.settings
        wait = timedelta(seconds=s.exec_after_cancel_s)
        execs = fills.select(*KEY, "account", "ts", exec_side="side", exec_ts="ts").sort("ts")
        joined = episodes.with_columns(exec_side=pl.col("side").replace_strict(OPPOSITE)).sort("closed")
        joined = _execution_near_close(joined, execs, "backward", None, "last_exec")
        joined = _execution_near_close(joined, execs, "forward", wait, "late_exec").with_columns(
            last_exec=pl.when(pl.col("last_exec") >= pl.col("start")).then(pl.col("last_exec"))
        )
        pulled = (
            orders.join(joined.select("episode", "last_exec"), on="episode")
            .filter(pl.col("stop") >= pl.col("last_exec"))
            .group_by("episode")
            .agg(pulled=pl.col("stop").min())
        )
        gap = pl.col("pulled") - pl.col("last_exec")
        resting = (gap <= timedelta(seconds=s.cancel_after_exec_s)).fill_null(False)
        late = ~pl.col("resting") & pl.col("late_exec").is_not_null() & (s.exec_after_cancel_s > 0)
        return (
            joined.join(pulled, on="episode", how="left")
            .with_columns(resting=resting)
            .with_columns(late=late)
            .with_columns(
                tied=pl.col("resting") | pl.col("late"),
                decided=pl.when(pl.col("resting"))
                .then(pl.col("closed"))
                .when(pl.col("late"))
                .then(pl.col("late_exec"))
                .otherwise(pl.col("closed") + wait),
                exec_gap_s=pl.when(pl.col("resting")).then(gap).dt.total_microseconds() / _US,
                late_gap_s=pl.when(pl.col("late"))
                .then(pl.col("late_exec") - pl.col("closed"))
                .dt.total_microseconds()
                / _US,
            )
        )

    def _with_pattern(self, episodes: pl.DataFrame) -> pl.DataFrame:
        """Per episode: how many of the account's spoof-shaped episodes known by its decision were tied."""
        window = f"{int(self.settings.pattern_min * 60 * _US)}i"
        party = [*KEY, "account"]
        clock = pl.col("decided").dt.epoch("us")
        return episodes.sort(*party, "decided").with_columns(
            recent=_ones("decided").rolling_sum_by(clock, window).over(party),
            recent_tied=pl.col("tied").cast(pl.Int32).rolling_sum_by(clock, window).over(party),
        )

    def _qualifying(
        self, episodes: pl.DataFrame, state: DetectorState | None, span: pl.DataFrame
    ) -> pl.DataFrame:
        """Undecided, warmed-up, tied episodes of accounts whose large quick cancels are mostly tied."""
        s = self.settings
        known = state.frame(KEY, only=span) if state is not None else _no_state()
        return (
            episodes.with_columns(ts=pl.col("decided"))
            .join(known, on=KEY, how="left")
            .filter(
                pl.col("tied")
                & (pl.col("recent_tied") >= s.min_tied_share * pl.col("recent"))
                & (
                    pl.col("ts")
                    >= pl.min_horizontal("first_ts", "history_start") + timedelta(minutes=s.warmup_min)
                )
                & (pl.col("decided_until").is_null() | (pl.col("ts") > pl.col("decided_until")))
            )
        )

    def _near_touch(self, hits: pl.DataFrame, members: pl.DataFrame) -> pl.DataFrame:
        """Episodes whose nearest order sat within `max_touch_levels` of the others' best price."""
        nearest = members.group_by("episode").agg(levels_ahead=pl.col("levels_ahead").min())
        return (
            hits.join(nearest, on="episode")
            .filter(pl.col("levels_ahead") <= self.settings.max_touch_levels)
            .sort(*KEY, "ts", "account", "side")
        )

    def _alert(self, row: dict[str, Any], members: pl.DataFrame, executions: dict[int, list]) -> Alert:
        s = self.settings
        typology = "layering" if row["orders"] >= s.min_layers and row["levels"] > 1 else "spoofing"
        evidence = {
            "account": row["account"],
            "side": row["side"],
            "levels": row["levels"],
            "orders": [_order_evidence(order) for order in members.sort("placed").iter_rows(named=True)],
            "notional": row["notional"],
            "fill_ratio": round(row["fill_ratio"], 4),
            "longest_life_s": round(row["longest_s"], 3),
            "opposite_executions": executions.get(row["episode"], []),
            "cancel_after_execution_s": _rounded(row["exec_gap_s"]),
            "execution_after_cancel_s": _rounded(row["late_gap_s"]),
            "account_pattern": {
                "window_min": s.pattern_min,
                "large_quick_cancels": row["recent"],
                "with_opposite_execution": row["recent_tied"],
            },
            "confidence": "high",
            "basis": "L3 order events with account ids",
        }
        if row["resting"]:
            promptness = s.cancel_after_exec_s / max(row["exec_gap_s"], 1e-3)
        else:
            promptness = max(s.exec_after_cancel_s, 1e-3) / max(row["late_gap_s"], 1e-3)
        score = excess_score(
            row["book_ratio"] / s.min_book_ratio,
            s.max_life_s / max(row["longest_s"], 1e-3),
            promptness,
            (1 - row["fill_ratio"]) / (1 - s.max_fill_ratio) if s.max_fill_ratio < 1 else 1.0,
        )
        return Alert.build(
            detector=self.name,
            typology=typology,
            venue=row["venue"],
            symbol=row["symbol"],
            start=row["start"],
            end=row["ts"],
            detected_at=row["ts"],
            score=score,
            evidence=evidence,
        )


def with_episodes(orders: pl.DataFrame) -> pl.DataFrame:
    """Tag orders (with `placed` and `stop`) with their episode: islands of overlapping orders per
    account and side (PARTY).

    In placement order, an order opens a new island when it starts at or after the latest
    stop of its party's earlier orders, so back-to-back orders are separate islands. An
    island's id is the position of its first order in placement order. The rows come back
    in their input order (only a sort on time, none on the party's strings: that dominated).
    """
    reach = pl.col("stop").cum_max().shift(1).over(PARTY)
    return (
        orders.with_row_index("_input")
        .sort("placed", maintain_order=True)
        .with_row_index("_at")
        .with_columns(_opens=reach.is_null() | (pl.col("placed") >= reach))
        .with_columns(episode=pl.when("_opens").then("_at").forward_fill().over(PARTY))
        .sort("_input")
        .drop("_input", "_at", "_opens")
    )


def placements(events: pl.DataFrame, baseline_min: float) -> pl.DataFrame:
    """One row per order placed in `events`, with its notional and the symbol's baseline at placement.

    `book_typical` is the symbol's trailing geometric-mean order notional: a robust "usual
    size" that one whale order barely moves; `baseline_orders` says how many orders it rests on.
    """
    window = f"{int(baseline_min * 60 * _US)}i"
    clock = pl.col("placed").dt.epoch("us")
    return (
        events.filter(pl.col("action") == "new")
        .select(
            *PARTY,
            "order_id",
            "row",
            "price",
            "amount",
            placed=pl.col("ts"),
            notional=pl.col("price") * pl.col("amount"),
        )
        .with_columns(
            book_typical=stable(pl.col("notional").log().rolling_mean_by(clock, window).over(KEY).exp()),
            baseline_orders=_ones("placed").rolling_sum_by(clock, window).over(KEY),
        )
    )


def lifecycles(orders: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """`orders` (from `placements`) with their end (cancel or complete fill), fills and modifies.

    Later events find their order through a hash of the order id, checked against the full
    key afterwards (a join on three strings over every event was the costliest step). An
    order filled in the very microsecond it arrived (a taker) never rested and is marked `taker`.
    """
    link = pl.col("order_id").hash()
    later = events.filter(pl.col("action") != "new").select(*ORDER, "ts", "action", "amount", link=link)
    matched = later.join(
        orders.select(*ORDER, "placed", "row", link=link), on="link", suffix="_order"
    ).filter(pl.all_horizontal([pl.col(name) == pl.col(f"{name}_order") for name in ORDER]))
    is_fill = pl.col("action") == "fill"
    ends = matched.group_by("row").agg(
        cancel=pl.col("ts").filter(pl.col("action") == "cancel").min(),
        filled=pl.col("amount").filter(is_fill).sum(),
        last_fill=pl.col("ts").filter(is_fill).max(),
        arrival_fill=pl.col("amount").filter(is_fill & (pl.col("ts") == pl.col("placed"))).sum(),
        modifies=(pl.col("action") == "modify").sum(),
    )
    full = pl.col("filled") >= pl.col("amount") * (1 - 1e-9)
    return (
        orders.join(ends, on="row", how="left")
        .with_columns(pl.col("filled", "arrival_fill").fill_null(0.0), pl.col("modifies").fill_null(0))
        .with_columns(
            end=pl.col("cancel").fill_null(pl.when(full).then(pl.col("last_fill"))),
            cancelled=pl.col("cancel").is_not_null(),
            taker=pl.col("arrival_fill") >= pl.col("amount") * (1 - 1e-9),
        )
    )


def _no_state() -> pl.DataFrame:
    """A batch run: nothing decided before, history starts with the frame."""
    return DetectorState().frame(KEY)


def _span(events: pl.DataFrame) -> pl.DataFrame:
    """Each symbol's first event (for the warm-up) and newest (episodes closing later are not decided yet)."""
    return events.group_by(KEY).agg(first_ts=pl.col("ts").min(), last_seen=pl.col("ts").max())


def _execution_near_close(
    episodes: pl.DataFrame,
    execs: pl.DataFrame,
    strategy: Literal["backward", "forward"],
    tolerance: timedelta | None,
    name: str,
) -> pl.DataFrame:
    """The account's nearest opposite execution at or before (backward) or after (forward) each close."""
    return (
        episodes.join_asof(
            execs,
            left_on="closed",
            right_on="ts",
            by=[*KEY, "account", "exec_side"],
            strategy=strategy,
            tolerance=tolerance,
            check_sortedness=False,
        )
        .drop("ts")
        .rename({"exec_ts": name})
    )


def _ones(column: str) -> pl.Expr:
    """A column of ones as long as `column` (for rolling counts; a literal would not broadcast there)."""
    return pl.col(column).is_not_null().cast(pl.Int32)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _account_typical(orders: pl.DataFrame, fills: pl.DataFrame, baseline_min: float) -> pl.DataFrame:
    """The geometric-mean notional the account traded (its fills) over the baseline before each placement."""
    window = f"{int(baseline_min * 60 * _US)}i"
    party = [*KEY, "account"]
    typical = (
        fills.sort(*party, "ts")
        .with_columns(
            account_typical=stable(
                (pl.col("price") * pl.col("amount"))
                .log()
                .rolling_mean_by(pl.col("ts").dt.epoch("us"), window)
                .over(party)
                .exp()
            )
        )
        .select(*party, "ts", "account_typical")
        .unique([*party, "ts"], keep="last", maintain_order=True)
    )
    return (
        orders.sort("placed")
        .join_asof(
            typical.sort("ts"),
            left_on="placed",
            right_on="ts",
            by=party,
            strategy="backward",
            tolerance=timedelta(minutes=baseline_min),
            check_sortedness=False,
        )
        .drop("ts")
    )


def _with_touch(members: pl.DataFrame, events: pl.DataFrame, settings: SpoofingL3Settings) -> pl.DataFrame:
    """Each member's place in the book others had built at its placement: price levels ahead and distance.

    The book is rebuilt from the events of the member's side in the `book_window_min` before
    its placement: every new/modify prices a resting segment until the order's next
    new/modify/cancel or its complete fill. Only that stretch is read, so the stream
    rebuilds the same book and the batch reads a sliver of the tape.
    """
    side_key = [*KEY, "side"]
    window = timedelta(minutes=settings.book_window_min)
    moments = members.select(*side_key, moment=pl.col("placed")).unique().sort("moment")
    recent = (
        events.join(moments.select(KEY).unique(), on=KEY, how="semi")
        .join_asof(
            moments,
            left_on="ts",
            right_on="moment",
            by=side_key,
            strategy="forward",
            tolerance=window,
            check_sortedness=False,
        )
        .filter(pl.col("moment").is_not_null())
    )
    near = _resting_at_placement(members.with_row_index("member"), _segments(recent), window)
    sign = pl.when(pl.col("side") == "buy").then(1.0).otherwise(-1.0)
    better = (pl.col("other_price") - pl.col("price")) * sign > 0
    touch = near.group_by("member").agg(
        levels_ahead=pl.col("other_price").filter(better).n_unique(),
        touch=pl.when(pl.first("side") == "buy")
        .then(pl.col("other_price").max())
        .otherwise(pl.col("other_price").min()),
    )
    distance = ((pl.col("touch") - pl.col("price")) * sign / pl.col("touch")).clip(lower_bound=0.0)
    return (
        members.with_row_index("member")
        .join(touch, on="member", how="left")
        .with_columns(pl.col("levels_ahead").fill_null(0), touch_distance=distance)
        .drop("member")
    )


def _resting_at_placement(members: pl.DataFrame, segments: pl.DataFrame, window: timedelta) -> pl.DataFrame:
    """Pairs of a member and another account's segment on its side, started within `window` before the
    member's placement and still resting then (one searchsorted per side, no Python loop)."""
    side_key = [*KEY, "side"]
    groups = pl.concat([segments.select(side_key), members.select(side_key)]).unique().sort(side_key)
    groups = groups.with_row_index("group")
    offset = pl.col("group").cast(pl.Int64) * (1 << 52)
    seg = segments.join(groups, on=side_key).with_columns(clock=offset + pl.col("start").dt.epoch("us"))
    seg = seg.sort("clock").with_row_index("segment")
    mem = members.join(groups, on=side_key).with_columns(clock=offset + pl.col("placed").dt.epoch("us"))
    clock = seg["clock"].to_numpy()
    window_us = int(window / timedelta(microseconds=1))
    lo = np.searchsorted(clock, mem["clock"].to_numpy() - window_us, side="left")
    hi = np.searchsorted(clock, mem["clock"].to_numpy(), side="left")
    counts = hi - lo
    owner = mem["member"].to_numpy().repeat(counts)
    index = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    pairs = pl.DataFrame(
        {"member": owner, "segment": index}, schema={"member": pl.UInt32, "segment": pl.UInt32}
    )
    return (
        pairs.join(mem.select("member", "account", "placed", "price", "side"), on="member")
        .join(
            seg.select("segment", other_account="account", other_price="price", seg_end="end"), on="segment"
        )
        .filter(
            (pl.col("other_account") != pl.col("account"))
            & (pl.col("seg_end").is_null() | (pl.col("seg_end") > pl.col("placed")))
        )
    )


def _segments(events: pl.DataFrame) -> pl.DataFrame:
    """Resting price segments: each new/modify until the order's next new/modify/cancel or complete fill."""
    priced = events.filter(pl.col("action") != "fill").sort(*ORDER, "ts", "row")
    nxt = pl.col("ts").shift(-1).over(ORDER)
    full = (
        events.filter(pl.col("action").is_in(["new", "fill"]))
        .group_by(ORDER)
        .agg(
            size=pl.col("amount").filter(pl.col("action") == "new").first(),
            filled=pl.col("amount").filter(pl.col("action") == "fill").sum(),
            done=pl.col("ts").filter(pl.col("action") == "fill").max(),
        )
        .filter(pl.col("filled") >= pl.col("size") * (1 - 1e-9))
        .select(*ORDER, "done")
    )
    return (
        priced.with_columns(end=nxt)
        .filter(pl.col("action") != "cancel")
        .join(full, on=ORDER, how="left")
        .select(
            *KEY, "side", "account", "price", start=pl.col("ts"), end=pl.col("end").fill_null(pl.col("done"))
        )
    )


def _executions(fills: pl.DataFrame, hits: pl.DataFrame) -> dict[int, list[dict[str, Any]]]:
    """Per hit episode: the account's opposite-side fills from its first placement to its decision."""
    own = fills.join(
        hits.select(*KEY, "account", "episode", "start", "ts", side=pl.col("exec_side")),
        on=[*KEY, "account", "side"],
        suffix="_hit",
    ).filter(pl.col("ts").is_between(pl.col("start"), pl.col("ts_hit")))
    out: dict[int, list[dict[str, Any]]] = {}
    for fill in own.sort("episode", "ts", "row").iter_rows(named=True):
        out.setdefault(fill["episode"], []).append(
            {
                "order_id": fill["order_id"],
                "price": fill["price"],
                "amount": fill["amount"],
                "ts": to_iso(fill["ts"]),
            }
        )
    return out


def _order_evidence(order: dict[str, Any]) -> dict[str, Any]:
    life = (order["stop"] - order["placed"]) / timedelta(seconds=1)
    typical = order["account_typical"]
    return {
        "order_id": order["order_id"],
        "price": order["price"],
        "amount": order["amount"],
        "notional": order["notional"],
        "vs_book_typical": round(order["notional"] / order["book_typical"], 2),
        "vs_account_typical": round(order["notional"] / typical, 2) if typical else None,
        "levels_ahead": order["levels_ahead"],
        "touch": order["touch"],
        "touch_distance_pct": None
        if order["touch_distance"] is None
        else round(100 * order["touch_distance"], 4),
        "placed": to_iso(order["placed"]),
        "cancelled": to_iso(order["stop"]),
        "life_s": round(life, 3),
        "fill_ratio": round(order["filled"] / order["amount"], 4) if order["amount"] else None,
        "modifies": order["modifies"],
    }
