"""Spoofing and layering from L3 order events: big orders that were never meant to trade.

A spoofer rests one or more large orders near the touch on one side, trades on the other side
while the fake pressure lasts (aggressively, or by having a resting order lifted), then pulls
the large orders seconds later, unfilled or barely touched. Layering is the same with a stack
of orders at several price levels at once. When the book turns against the bait, the spoofer
pulls first and trades the other way a moment later (a "flip"): the same scheme, the execution
just lands after the cancel.

Each test says what the scheme is, measured on the symbol's and the account's own scale:
- large: notional well above the symbol's typical order (trailing geometric mean); overlapping
  large orders of one account and side form an episode, closed when the last of them is gone
  (how it compares with what the account typically trades is evidence, not a gate);
- bait: all pulled within `max_life_s`, nearly unfilled. A cancel in the instant the account
  places another large order on the same side is a requote (the pressure moved, it was not
  withdrawn), and a cancel in the instant the account's own opposite execution printed at or
  through the order's price is the venue's self-trade prevention: neither is a pull. An order
  filled in full or cancelled in the instant it arrived (a market or immediate-or-cancel order)
  never rested and showed nobody any pressure;
- pressure: the episode's own amount is not dwarfed by what others display at better prices
  (in the book rebuilt from the L3 stream; a count of levels means nothing in a book of many
  small orders): beyond `max_depth_ahead` times its amount the chance below is multiplied by the
  cube of the excess, so an order behind a wall needs a much clearer pattern, and none is vetoed;
- tied: the account executes on the other side while the orders rest (and pulls them within
  `cancel_after_exec_s` of it) or within `exec_after_cancel_s` after the last pull;
- on purpose: how likely chance alone puts the account's opposite executions (the tie) as close
  to its pulls as they were (the share of its own recent time that lies that close to one of its
  executions, on either side), over its recent large quick cancels (`max_chance`). A market maker
  trades both sides all day and re-prices after every fill, so its pulls sit next to executions
  by chance; a spoofer's bait side does not trade, and it ties its pulls on purpose. Untied large
  cancels weaken the evidence; no share, count or cancel ratio vetoes it. Every account pulling
  large orders on the symbol is judged so, and among a hundred of them one ties a pull by chance
  every hour: the chance is multiplied by the number of accounts judged over the pattern window
  that could have reached `max_chance` (Bonferroni with Tarone's count, so accounts that cannot
  look tied, such as market makers trading all day, do not dilute the others).

Executions are read wherever the data has them: the order stream's `fill`s and the trades'
buyer and seller accounts (`order_events` merges those in as `trade` rows), maker or taker;
an account's fills and trade rows of one side at one instant are one execution. Where the
order stream sends no fills, a resting order leaves the rebuilt book once the trades naming its
account at its price add up to it, or once a trade prints through its price.

An episode is decided when the pattern is complete (`detected_at`: the last cancel, or the
execution after it), so every fact it uses is known by then. Each order counts for at most
`max_life_s`, so a decision reads a bounded stretch of history and the stream decides like the
batch. Rows tied in time are ordered by what they say, never by their position, so the same
events in any row order give the same alerts. Only orders large at placement are followed
past their placement, which keeps the cost near one pass over the events.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any, Literal, NamedTuple

import numpy as np
import polars as pl

from tapewatch.detect.base import DetectorState, FinalAlerts
from tapewatch.detect.scoring import excess_score
from tapewatch.detect.spoofing.settings import SpoofingL3Settings
from tapewatch.io.derive import EXECUTION, stable
from tapewatch.records import Alert, to_iso

KEY = ["venue", "symbol"]
PARTY = [*KEY, "account", "side"]
ORDER = [*KEY, "order_id"]
OPPOSITE = {"buy": "sell", "sell": "buy"}
ACTION_RANK = {"new": 0, "modify": 1, "fill": 2, EXECUTION: 3, "cancel": 4}
"""One order's events within one instant, in the order they can happen (ties in time get a total order)."""
_US = 1_000_000
_PRICE_TOLERANCE = 1e-9


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
        at its first placement (the account's typical execution is read at its last one, up to one
        baseline earlier: twice)."""
        s = self.settings
        longest = max(s.baseline_min * 2, s.book_window_min)
        return timedelta(
            seconds=s.max_episode_s + s.max_life_s + s.exec_after_cancel_s,
            minutes=s.pattern_min + longest + 1,
        )

    def detect(self, frame: pl.DataFrame, state: DetectorState | None = None) -> list[Alert]:
        """Alerts for every symbol in an L3 frame (`order_events`: order events and trade rows; see
        DetectorState)."""
        if frame.is_empty():
            return []
        s = self.settings
        events = _in_time_order(frame).with_row_index("row")
        book = events.filter(pl.col("action") != EXECUTION)
        executions = executions_of(events)
        known = state or DetectorState()
        span = _span(events, known)
        orders = with_episodes(self._large_orders(book, executions))
        episodes = self._tied(self._episodes(orders, span), orders, executions)
        episodes = self._with_pattern(self._with_surprise(episodes, executions))
        hits = self._qualifying(episodes, span, known)
        if state is not None:
            seen = pl.concat([span.select(*KEY, ts="first_ts"), span.select(*KEY, ts="last_seen")])
            state.advance(KEY, seen, hits.select(*KEY, "ts").clear())
        if hits.is_empty():
            return []
        members = orders.join(hits.select("episode"), on="episode")
        members = _with_touch(_account_typical(members, executions, s.baseline_min), book, executions, s)
        hits = self._near_touch(hits, members)
        evidence = _executions(executions, hits)
        alerts = [
            self._alert(row, members.filter(pl.col("episode") == row["episode"]), evidence)
            for row in hits.iter_rows(named=True)
        ]
        return sorted(alerts, key=lambda alert: (alert.detected_at, alert.symbol, alert.id))

    def _large_orders(self, book: pl.DataFrame, executions: pl.DataFrame) -> pl.DataFrame:
        """Resting orders big for the symbol, with their lifecycle, each counted for at most `max_life_s`.
        Small orders are dropped before anything is joined."""
        s = self.settings
        placed = placements(book, s.baseline_min)
        large = (pl.col("notional") >= s.min_layer_ratio * pl.col("book_typical")) & (
            pl.col("baseline_orders") >= s.min_baseline_orders
        )
        orders = lifecycles(placed.filter(large), book).filter(~pl.col("taker"))
        orders = _pulled(orders, executions)
        expiry = pl.col("placed") + timedelta(seconds=s.max_life_s)
        orders = orders.with_columns(
            stop=pl.min_horizontal(pl.col("end").fill_null(expiry), expiry),
            expired=pl.col("end").is_null() | (pl.col("end") > expiry),
        )
        return _with_traded(orders, executions)

    def _episodes(self, orders: pl.DataFrame, span: pl.DataFrame) -> pl.DataFrame:
        """One row per closed, spoof-shaped episode of `orders` (tagged by `with_episodes`).

        Islands with an order that was not pulled in time, or without one order big enough,
        are dropped before the (costlier) aggregation.
        """
        s = self.settings
        pulled = (pl.col("cancelled") & ~pl.col("expired")).all()
        big = (pl.col("notional") >= s.min_book_ratio * pl.col("book_typical")).any()
        shaped = orders.group_by("episode").agg(shaped=pulled & big).filter("shaped")["episode"]
        episodes = (
            orders.filter(pl.col("episode").is_in(shaped.implode()))
            .group_by("episode")
            .agg(
                pl.col(*PARTY).first(),
                start=pl.col("placed").min(),
                first_cancel=pl.col("stop").min(),
                closed=pl.col("stop").max(),
                orders=pl.len(),
                levels=pl.col("price").n_unique(),
                amount=stable(pl.col("amount").sum()),
                notional=stable(pl.col("notional").sum()),
                fill_ratio=stable(pl.col("filled").sum() / pl.col("amount").sum()),
                longest_s=(pl.col("stop") - pl.col("placed")).max().dt.total_microseconds() / _US,
                book_ratio=(pl.col("notional") / pl.col("book_typical")).max(),
            )
            .join(span, on=KEY)
        )
        return episodes.filter(
            (pl.col("closed") <= pl.col("last_seen"))
            & (pl.col("fill_ratio") <= s.max_fill_ratio)
            & (pl.col("closed") - pl.col("start") <= timedelta(seconds=s.max_episode_s))
            & (pl.col("book_ratio") >= s.min_book_ratio)
        )

    def _tied(self, episodes: pl.DataFrame, orders: pl.DataFrame, executions: pl.DataFrame) -> pl.DataFrame:
        """Whether the account executed on the other side while the episode rested (and pulled within
        `cancel_after_exec_s` of it) or right after the last cancel, and when that became known (`decided`).

        An untied episode is known to be untied once the wait for a late execution is over.
        """
        s = self.settings
        wait = timedelta(seconds=s.exec_after_cancel_s)
        execs = (  # only the episodes' accounts: the as-of joins below match on the account anyway
            executions.filter(pl.col("account").is_in(episodes["account"].unique().implode()))
            .select(*KEY, "account", "ts", exec_side="side", exec_ts="ts")
            .sort("ts")
        )
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

    def _with_surprise(self, episodes: pl.DataFrame, executions: pl.DataFrame) -> pl.DataFrame:
        """How unlikely chance put the account's opposite execution (the tie) as close to the pull as it was.

        If the account's pulls had nothing to do with its executions, a pull would land within g
        of one of them as often as a random moment does: the share of its history (the
        `baseline_min` before the episode, or the history so far) lying within g of one of its
        executions on either side (see `_execution_clock`), one more assumed (an account never seen
        trading is not certain never to), or the share over the last `recent_min` when that is
        larger (busy right now).
        Measured as covered time, not as a rate, so an account trading in bursts is judged on how
        much of its time it really spends trading. `surprise` is minus the log of that chance
        (zero when untied); `floor_surprise` is what any episode would have scored tied at the
        `timing_floor_s` (the most it could show).
        """
        s = self.settings
        gap = pl.coalesce("exec_gap_s", "late_gap_s").clip(lower_bound=s.timing_floor_s)
        party = ["episode", *KEY, "account", "start", "history"]
        tied = episodes.filter("tied").select(*party, reach=2 * gap)
        longest = max(s.baseline_min, s.recent_min)
        clock = _execution_clock(executions, episodes.select(*party), longest)
        count, share, seconds = self._chance_near_executions(tied, clock)
        surprise = tied.select(
            "episode",
            executions_per_hour=stable(pl.Series(count * 3600 / seconds)),
            surprise=stable(-pl.Series(np.minimum(1.0, share)).log()),
        )
        every = episodes.select(*party, reach=pl.lit(2 * s.timing_floor_s))
        _, floor_share, _ = self._chance_near_executions(every, clock)
        return (
            episodes.join(surprise, on="episode", how="left")
            .with_columns(pl.col("surprise").fill_null(0.0))
            .with_columns(floor_surprise=stable(-pl.Series(np.minimum(1.0, floor_share)).log()))
        )

    def _chance_near_executions(
        self, episodes: pl.DataFrame, clock: _ExecutionClock
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per episode (with its `reach`): the account's executions over the baseline, the
        share of its time within `reach` of one (see `_with_surprise`), and the seconds looked at."""
        s = self.settings
        reach = episodes["reach"].to_numpy()
        count, covered, seconds = _time_near_executions(episodes, clock, s.baseline_min)
        _, covered_now, seconds_now = _time_near_executions(episodes, clock, s.recent_min)
        return count, np.maximum((covered + reach) / seconds, covered_now / seconds_now), seconds

    def _with_pattern(self, episodes: pl.DataFrame) -> pl.DataFrame:
        """Per episode: the account's spoof-shaped episodes known by its decision, how many were tied,
        their summed surprise, and the least chance its pattern could have shown (`attainable`: every
        one of them tied at the timing floor)."""
        window = f"{int(self.settings.pattern_min * 60 * _US)}i"
        party = [*KEY, "account"]
        clock = pl.col("decided").dt.epoch("us")
        episodes = episodes.sort(*party, "decided").with_columns(
            recent=_ones("decided").rolling_sum_by(clock, window).over(party),
            recent_tied=pl.col("tied").cast(pl.Int32).rolling_sum_by(clock, window).over(party),
            recent_surprise=stable(pl.col("surprise").rolling_sum_by(clock, window).over(party)),
            recent_floor=stable(pl.col("floor_surprise").rolling_sum_by(clock, window).over(party)),
        )
        recent = episodes["recent"].to_numpy()
        attainable = pattern_chance(recent, recent, episodes["recent_floor"].to_numpy())
        return episodes.with_columns(attainable=pl.Series(attainable, dtype=pl.Float64)).drop("recent_floor")

    def _qualifying(self, episodes: pl.DataFrame, span: pl.DataFrame, known: DetectorState) -> pl.DataFrame:
        """Undecided, warmed-up, tied episodes whose account's pattern chance alone hardly gives to any
        of the accounts judged on the symbol over the pattern window (`accounts_judged`): every account
        with a spoof-shaped episode there had the same chance to look tied, so the chance that one of
        them does is up to that many times one account's (Bonferroni). A symbol with hundreds of traders
        pulling large orders shows a one-in-a-hundred coincidence every hour; a spoofer's pattern is
        rarer than that."""
        s = self.settings
        tied = known.undecided(episodes.with_columns(ts=pl.col("decided")).filter("tied"), KEY)
        first = span.select(*KEY, ts="first_ts")
        candidates = known.warmed_up(tied, KEY, timedelta(minutes=s.warmup_min), first)
        candidates = _with_accounts_judged(candidates, episodes, s.pattern_min, s.max_chance)
        chance = pattern_chance(
            candidates["recent"].to_numpy(),
            candidates["recent_tied"].to_numpy(),
            candidates["recent_surprise"].to_numpy(),
        )
        judged = candidates["accounts_judged"].to_numpy()
        return candidates.with_columns(
            chance=pl.Series(np.minimum(1.0, chance * judged), dtype=pl.Float64)
        ).filter(pl.col("chance") <= s.max_chance)

    def _near_touch(self, hits: pl.DataFrame, members: pl.DataFrame) -> pl.DataFrame:
        """Episodes whose chance, weakened by what others display ahead of their nearest order, still
        passes `max_chance`: beyond `max_depth_ahead` times the episode's own amount the chance is
        multiplied by the cube of the excess (an order behind a wall presses on little, but a
        clearly tied pattern is not vetoed by the book alone). The factor is never below 1, so only
        the hits need the book."""
        s = self.settings
        nearest = members.group_by("episode").agg(
            levels_ahead=pl.col("levels_ahead").min(), depth_ahead=pl.col("depth_ahead").min()
        )
        ratio = pl.col("ahead_ratio") / s.max_depth_ahead if s.max_depth_ahead > 0 else pl.lit(math.inf)
        behind = pl.when(pl.col("ahead_ratio") > s.max_depth_ahead).then(ratio**3).otherwise(1.0)
        return (
            hits.join(nearest, on="episode")
            .with_columns(ahead_ratio=stable(pl.col("depth_ahead") / pl.col("amount")))
            .with_columns(chance=pl.min_horizontal(1.0, pl.col("chance") * behind))
            .filter(pl.col("chance") <= s.max_chance)
            .sort(*KEY, "ts", "account", "side", "start")
        )

    def _alert(self, row: dict[str, Any], members: pl.DataFrame, executions: dict[int, list]) -> Alert:
        s = self.settings
        typology = "layering" if row["orders"] >= s.min_layers and row["levels"] > 1 else "spoofing"
        evidence = {
            "account": row["account"],
            "side": row["side"],
            "levels": row["levels"],
            "orders": [
                _order_evidence(order) for order in members.sort("placed", "order_id").iter_rows(named=True)
            ],
            "notional": row["notional"],
            "fill_ratio": round(row["fill_ratio"], 4),
            "longest_life_s": round(row["longest_s"], 3),
            "depth_ahead_ratio": round(row["ahead_ratio"], 4),
            "opposite_executions": executions.get(row["episode"], []),
            "cancel_after_execution_s": _rounded(row["exec_gap_s"]),
            "execution_after_cancel_s": _rounded(row["late_gap_s"]),
            "account_pattern": {
                "window_min": s.pattern_min,
                "large_quick_cancels": row["recent"],
                "with_opposite_execution": row["recent_tied"],
                "accounts_judged": row["accounts_judged"],
                "executions_per_hour": round(row["executions_per_hour"], 2),
                "chance": float(f"{row['chance']:.3g}"),
            },
            "confidence": "high",
            "basis": "L3 order events and trades with account ids",
        }
        # The score is the pattern's chance alone (0.5 at `max_chance`, higher the less likely; depth
        # ahead enters only through it, see `_near_touch`): size, lifetime and fill ratio only decide
        # what is an episode; how far past those gates an order went says nothing of intent, while the
        # chance is the evidence of it.
        score = excess_score(1 + math.log10(s.max_chance / max(row["chance"], 1e-300)))
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
            part=f"{row['account']}|{row['side']}",  # two accounts may start an episode in one instant
        )


def executions_of(events: pl.DataFrame) -> pl.DataFrame:
    """Every execution of an account: its fills, and the trade rows naming it where it has no fill
    on that side at that instant (both describe the same execution)."""
    fills = events.filter(pl.col("action") == "fill")
    named = events.filter(pl.col("action") == EXECUTION).join(
        fills.select(*PARTY, "ts"), on=[*PARTY, "ts"], how="anti"
    )
    return pl.concat([fills, named])


def pattern_chance(cancels: np.ndarray, tied: np.ndarray, surprise: np.ndarray) -> np.ndarray:
    """How likely chance alone gives `tied` of an account's `cancels` large quick cancels with at
    least `surprise` (summed minus-log chances) between them.

    Under chance each tied cancel's chance is uniform, so the sum of k minus-logs is Gamma(k, 1):
    P = exp(-T)·Σ_{j<k} T^j/j! (Fisher's method). Any k of the n cancels could have been the tied
    ones, hence the union bound C(n, k)·P: untied cancels weaken the evidence without vetoing it.
    """
    if tied.size == 0:
        return np.zeros(0)
    n, k = cancels.astype(np.int64), tied.astype(np.int64)
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, n.max() + 1)))])
    log_choices = log_fact[n] - log_fact[k] - log_fact[n - k]
    total = np.maximum(surprise, 1e-300)
    j = np.arange(k.max())
    terms = np.where(j < k[:, None], j * np.log(total)[:, None] - log_fact[j], -np.inf)
    peak = terms.max(axis=1)
    log_tail = -total + peak + np.log(np.exp(terms - peak[:, None]).sum(axis=1))
    return np.minimum(1.0, np.exp(log_choices + log_tail))


def with_episodes(orders: pl.DataFrame) -> pl.DataFrame:
    """Tag orders (with `placed` and `stop`) with their episode: islands of overlapping orders per
    account and side (PARTY).

    In placement order, an order opens a new island when it starts at or after the latest
    stop of its party's earlier orders, so back-to-back orders are separate islands. An
    island's id is the position of its first order in placement order (ties in time by stop,
    so the islands do not depend on the rows' order). The rows come back in their input order
    (only a sort on time, none on the party's strings: that dominated).
    """
    reach = pl.col("stop").cum_max().shift(1)
    opens = reach.is_null() | (pl.col("placed") >= reach)
    return (  # one window over the party's strings, not two
        orders.with_row_index("_input")
        .sort("placed", "stop")
        .with_row_index("_at")
        .with_columns(episode=pl.when(opens).then("_at").forward_fill().over(PARTY))
        .sort("_input")
        .drop("_input", "_at")
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
    order filled in full or cancelled in the very microsecond it arrived (a taker: a market or
    immediate-or-cancel order, its unfilled rest cancelled at once) never rested, showed nobody any
    pressure, and is marked `taker`.
    """
    link = pl.col("order_id").hash()
    later = events.filter(pl.col("action") != "new").select(*ORDER, "ts", "action", "amount", link=link)
    matched = later.join(
        orders.select(*ORDER, "placed", "row", link=link), on="link", suffix="_order"
    ).filter(pl.all_horizontal([pl.col(name) == pl.col(f"{name}_order") for name in ORDER]))
    is_fill = pl.col("action") == "fill"
    ends = (  # plain aggregations of masked columns: a filter inside an aggregation runs group by group
        matched.select(
            "row",
            cancel=pl.when(pl.col("action") == "cancel").then("ts"),
            filled=pl.when(is_fill).then("amount"),
            last_fill=pl.when(is_fill).then("ts"),
            arrival_fill=pl.when(is_fill & (pl.col("ts") == pl.col("placed"))).then("amount"),
            modifies=pl.col("action") == "modify",
        )
        .group_by("row")
        .agg(
            pl.col("cancel").min(),
            pl.col("filled", "arrival_fill").sum(),
            pl.col("last_fill").max(),
            pl.col("modifies").sum(),
        )
    )
    full = pl.col("filled") >= pl.col("amount") * (1 - 1e-9)
    return (
        orders.join(ends, on="row", how="left")
        .with_columns(pl.col("filled", "arrival_fill").fill_null(0.0), pl.col("modifies").fill_null(0))
        .with_columns(
            end=pl.col("cancel").fill_null(pl.when(full).then(pl.col("last_fill"))),
            cancelled=pl.col("cancel").is_not_null(),
            taker=(pl.col("arrival_fill") >= pl.col("amount") * (1 - 1e-9))
            | (pl.col("cancel") == pl.col("placed")).fill_null(False),
        )
    )


def _pulled(orders: pl.DataFrame, executions: pl.DataFrame) -> pl.DataFrame:
    """`cancelled` only for orders whose cancel took their pressure off the book. Two cancels do not:
    - a replace: in the same instant the account placed another large order on the same side (a
      requote moves the pressure, it does not withdraw it; the new order is judged on its own);
    - self-trade prevention: the cancel shares the instant of the account's own opposite execution,
      printed at or through the order's price (its sweep reached its own order, and the venue took that
      order off instead of matching it)."""
    at_cancel = orders.filter(pl.col("cancelled")).select("row", *PARTY, "price", ts="cancel")
    placed = orders.select(*PARTY, "row", ts="placed")
    replaced = (
        _at_shared_instants(at_cancel, placed)
        .join(placed, on=[*PARTY, "ts"])
        .filter(pl.col("row") != pl.col("row_right"))
    )
    sign = pl.when(pl.col("side") == "buy").then(1.0).otherwise(-1.0)
    through = (pl.col("exec_price") - pl.col("price")) * pl.col("sign") <= _PRICE_TOLERANCE * pl.col("price")
    executed = executions.select(*PARTY, "ts", exec_price="price")
    swept = (
        _at_shared_instants(at_cancel, executed)
        .with_columns(sign=sign, side=pl.col("side").replace_strict(OPPOSITE))
        .join(_at_shared_instants(executed, at_cancel), on=[*PARTY, "ts"])
        .filter(through)
    )
    kept = pl.concat([replaced.select("row"), swept.select("row")])["row"].implode()
    return orders.with_columns(cancelled=pl.col("cancelled") & ~pl.col("row").is_in(kept))


def _at_shared_instants(rows: pl.DataFrame, others: pl.DataFrame) -> pl.DataFrame:
    """The `rows` at an instant (`ts`) some of `others` share: a cheap cut on the time alone before a
    join on the accounts' strings and the time."""
    return rows.filter(pl.col("ts").is_in(others["ts"].implode()))


def _with_accounts_judged(
    candidates: pl.DataFrame, episodes: pl.DataFrame, pattern_min: float, max_chance: float
) -> pl.DataFrame:
    """Per candidate: how many accounts its chance is judged among (`accounts_judged`), those with a
    spoof-shaped episode on its symbol decided within the `pattern_min` up to its decision that could
    have looked as tied as they need to (Tarone's count: the least k such that at most k accounts could
    reach `max_chance / k`; an account that cannot reach it, such as one trading both sides all day,
    cannot raise a false alarm and does not dilute the others).

    Each candidate reads only its window of the symbol's episodes (one searchsorted, no join of
    every candidate with every episode of its symbol: that dominated the detector)."""
    window = timedelta(minutes=pattern_min)
    decided = _episodes_in_window(candidates, episodes, window)
    best = (
        decided.group_by("candidate", "account")
        .agg(pl.col("attainable").min())
        .sort("candidate", "attainable")
    )
    rank = pl.int_range(1, pl.len() + 1).over("candidate")
    # With the chances ascending, at most k of them reach max_chance / k when k is all of them or
    # the (k + 1)-th does not reach it.
    fits = (pl.col("k") == pl.len().over("candidate")) | (
        pl.col("attainable").shift(-1).over("candidate") > max_chance / pl.col("k")
    )
    counts = (
        best.with_columns(k=rank).filter(fits).group_by("candidate").agg(accounts_judged=pl.col("k").min())
    )
    return (
        candidates.with_row_index("candidate")
        .join(counts, on="candidate", how="left")
        .with_columns(pl.col("accounts_judged").fill_null(1))
        .drop("candidate")
    )


def _episodes_in_window(candidates: pl.DataFrame, episodes: pl.DataFrame, window: timedelta) -> pl.DataFrame:
    """Pairs of a candidate (by row number) and an episode on its symbol decided in the `window` up to
    the candidate's `ts`, with the episode's account and `attainable`."""
    groups = pl.concat([episodes.select(KEY), candidates.select(KEY)]).unique().with_row_index("group")
    base, span = _time_range(episodes["decided"], candidates["ts"], candidates["ts"] - window)
    decided = (
        episodes.select(*KEY, "account", "decided", "attainable")
        .join(groups, on=KEY)
        .with_columns(clock=_clock("decided", base, span))
        .sort("clock")
    )
    asked = candidates.join(groups, on=KEY, how="left", maintain_order="left").select(
        _clock("ts", base, span)
    )
    clock = decided["clock"].to_numpy()
    window_us = int(window / timedelta(microseconds=1))
    at = asked.to_series().to_numpy()
    lo = np.searchsorted(clock, at - window_us, side="right")
    hi = np.searchsorted(clock, at, side="right")
    counts = hi - lo
    owner = np.repeat(np.arange(candidates.height), counts)
    index = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    return decided.select("account", "attainable")[index].with_columns(
        candidate=pl.Series(owner, dtype=pl.UInt32)
    )


def _in_time_order(frame: pl.DataFrame) -> pl.DataFrame:
    """The rows in time order within each symbol, as the engines hand them over (sorted here only
    when they are not: the book is rebuilt with as-of joins that need it)."""
    late = frame.select((pl.col("ts").diff().over(KEY) < timedelta(0)).any()).item()
    return frame.sort("ts") if late else frame


def _span(events: pl.DataFrame, known: DetectorState) -> pl.DataFrame:
    """Each symbol's first and newest row (episodes closing later are not decided yet) and where its
    history began (the stream's state knows rows older than the frame)."""
    span = events.group_by(KEY).agg(first_ts=pl.col("ts").min(), last_seen=pl.col("ts").max())
    starts = known.history_starts(span.select(*KEY, ts="first_ts"), KEY)
    return span.join(starts.rename({"history_start": "history"}), on=KEY)


class _ExecutionClock(NamedTuple):
    """Every account's executions (either side) as one sorted int64 clock (see `_clock`), built once for all
    the chance tests of a frame: joining the executions with their groups was the costly part."""

    groups: pl.DataFrame
    """(venue, symbol, account) -> group, covering every episode's account."""
    base: int
    span: int
    clock: np.ndarray


def _execution_clock(executions: pl.DataFrame, episodes: pl.DataFrame, minutes: float) -> _ExecutionClock:
    """The clock of the accounts' execution instants, on either side, wide enough for every episode's
    `start` and the `minutes` before it (or its `history`).

    Either side, because an account that trades both ways (a market maker, an active trader)
    re-prices its quotes after every fill, whichever side it was on: a pull right after an
    opposite fill is what it does all day, and its fills on the spoof's side say so as much as
    those on the other. A spoofer's bait side does not trade: its chance is as the opposite side
    alone gives it. Instants, not fills: one order sweeping several levels is one execution."""
    party = [*KEY, "account"]
    stamps = executions.select(*KEY, "account", "ts").unique()
    groups = pl.concat([stamps.select(party), episodes.select(party)]).unique().with_row_index("group")
    earliest = episodes["start"] - timedelta(minutes=minutes)
    base, span = _time_range(stamps["ts"], earliest, episodes["start"], episodes["history"])
    clock = stamps.join(groups, on=party).select(_clock("ts", base, span))
    return _ExecutionClock(groups, base, span, np.sort(clock.to_series().to_numpy()))


def _time_near_executions(
    tied: pl.DataFrame, executions: _ExecutionClock, minutes: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per tied episode, over the `minutes` before its start (or its symbol's history so far): the
    account's execution instants (either side: see `_execution_clock`), the seconds
    lying within `reach` after one of them (each adds its `reach`, less where it overlaps the one
    before), and the seconds looked at. One searchsorted over every account's executions, no join
    of episodes with whole histories."""
    tied = tied.with_columns(since=pl.max_horizontal(pl.col("start") - timedelta(minutes=minutes), "history"))
    party = [*KEY, "account"]
    base, span, clock = executions.base, executions.span, executions.clock
    bounds = tied.join(executions.groups, on=party, how="left", maintain_order="left").select(
        lo=_clock("since", base, span), hi=_clock("start", base, span)
    )
    lo = np.searchsorted(clock, bounds["lo"].to_numpy(), side="left")
    hi = np.searchsorted(clock, bounds["hi"].to_numpy(), side="left")
    counts = hi - lo
    owner = np.repeat(np.arange(tied.height), counts)
    index = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    reach = tied["reach"].to_numpy()[owner]
    step = np.diff(clock, prepend=clock[:1])[index] / _US
    step = np.where(index == lo[owner], reach, step)
    covered = np.bincount(owner, weights=np.minimum(step, reach), minlength=tied.height)
    seconds = (tied["start"] - tied["since"]).dt.total_microseconds().to_numpy() / _US
    return counts, covered, np.maximum(seconds, 1.0)


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


def _with_traded(orders: pl.DataFrame, executions: pl.DataFrame) -> pl.DataFrame:
    """`filled` also counts trades naming the order's account on its side at its price while it rested:
    where the order stream sends no fills, the trades are all that say a resting order traded."""
    named = executions.filter(pl.col("action") == EXECUTION).select(
        *PARTY, "price", traded_at="ts", traded="amount"
    )
    traded = (
        orders.select("row", *PARTY, "price", "placed", "stop")
        .join(named, on=[*PARTY, "price"])
        .filter(pl.col("traded_at").is_between("placed", "stop"))
        .group_by("row")
        .agg(stable(pl.col("traded").sum()))
    )
    return (
        orders.join(traded, on="row", how="left")
        .with_columns(filled=pl.max_horizontal("filled", pl.col("traded").fill_null(0.0)))
        .drop("traded")
    )


def _account_typical(orders: pl.DataFrame, executions: pl.DataFrame, baseline_min: float) -> pl.DataFrame:
    """The geometric-mean notional the account executed over the baseline before each placement
    (only the orders' accounts are read: sorting every account's executions was the costly part)."""
    window = f"{int(baseline_min * 60 * _US)}i"
    party = [*KEY, "account"]
    typical = (
        executions.filter(pl.col("account").is_in(orders["account"].unique().implode()))
        .sort(*party, "ts")
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


def _with_touch(
    members: pl.DataFrame, book: pl.DataFrame, prints: pl.DataFrame, settings: SpoofingL3Settings
) -> pl.DataFrame:
    """Each member's place in the book others had built at its placement: price levels and amount
    ahead of it, and its distance from the touch.

    The book is rebuilt from the events of the member's side in the `book_window_min` before
    its placement: every new/modify prices a resting segment until the order's next
    new/modify/cancel or its complete fill (in fills, or in the trades naming its account at its
    price), or until an execution printed through its price.
    Only that stretch is read, so the stream rebuilds the same book and the batch reads a sliver
    of the tape.
    """
    side_key = [*KEY, "side"]
    window = timedelta(minutes=settings.book_window_min)
    moments = members.select(*side_key, moment=pl.col("placed")).unique().sort("moment")
    recent = (
        _shortly_before(book, moments["moment"], window)
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
    numbered = members.with_row_index("member")
    near = _resting_at_placement(numbered, _traded_away(_segments(recent), prints), window)
    recent_prints = _shortly_before(prints, moments["moment"], window).join(
        moments.select(KEY).unique(), on=KEY, how="semi"
    )
    near = near.filter(~_traded_through(near, recent_prints))
    sign = pl.when(pl.col("side") == "buy").then(1.0).otherwise(-1.0)
    better = (pl.col("other_price") - pl.col("price")) * sign > 0
    touch = near.group_by("member").agg(
        levels_ahead=pl.col("other_price").filter(better).n_unique(),
        depth_ahead=stable(pl.col("other_amount").filter(better).sum()),
        touch=pl.when(pl.first("side") == "buy")
        .then(pl.col("other_price").max())
        .otherwise(pl.col("other_price").min()),
    )
    distance = ((pl.col("touch") - pl.col("price")) * sign / pl.col("touch")).clip(lower_bound=0.0)
    return (
        numbered.join(touch, on="member", how="left")
        .with_columns(pl.col("levels_ahead").fill_null(0), pl.col("depth_ahead").fill_null(0.0))
        .with_columns(touch_distance=distance)
        .drop("member")
    )


def _shortly_before(events: pl.DataFrame, moments: pl.Series, window: timedelta) -> pl.DataFrame:
    """The events within `window` before one of the (sorted) `moments` of any symbol: one searchsorted
    over their times cuts the tape to the slivers the book is rebuilt from before anything is joined
    on the symbol's strings."""
    at = moments.dt.epoch("us").to_numpy()
    if at.size == 0:
        return events.clear()
    ts = events["ts"].dt.epoch("us").to_numpy()
    following = at[np.minimum(np.searchsorted(at, ts, side="left"), at.size - 1)]
    reach = window // timedelta(microseconds=1)
    return events.filter(pl.Series((following >= ts) & (following - ts <= reach)))


def _resting_at_placement(members: pl.DataFrame, segments: pl.DataFrame, window: timedelta) -> pl.DataFrame:
    """Pairs of a member and another account's segment on its side, started within `window` before the
    member's placement and still resting then (one searchsorted per side, no Python loop)."""
    side_key = [*KEY, "side"]
    groups = pl.concat([segments.select(side_key), members.select(side_key)]).unique().sort(side_key)
    groups = groups.with_row_index("group")
    base, span = _time_range(segments["start"], members["placed"], members["placed"] - window)
    seg = segments.join(groups, on=side_key).with_columns(clock=_clock("start", base, span))
    seg = seg.sort("clock").with_row_index("segment")
    mem = members.join(groups, on=side_key).with_columns(clock=_clock("placed", base, span))
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
        pairs.join(mem.select("member", *side_key, "account", "placed", "price"), on="member")
        .join(
            seg.select(
                "segment",
                other_account="account",
                other_price="price",
                other_amount="amount",
                other_start="start",
                seg_end="end",
            ),
            on="segment",
        )
        .filter(
            (pl.col("other_account") != pl.col("account"))
            & (pl.col("seg_end").is_null() | (pl.col("seg_end") > pl.col("placed")))
        )
    )


def _segments(events: pl.DataFrame) -> pl.DataFrame:
    """Resting price segments: each new/modify until the order's next new/modify/cancel or complete fill.

    One order's events within one instant are taken in the order they can happen (`ACTION_RANK`).
    """
    rank = pl.col("action").replace_strict(ACTION_RANK, default=len(ACTION_RANK))
    priced = events.filter(pl.col("action") != "fill").sort(*ORDER, "ts", rank, "price", "amount")
    nxt = pl.col("ts").shift(-1).over(ORDER)
    full = (
        events.filter(pl.col("action").is_in(["new", "fill"]))
        .group_by(ORDER)
        .agg(
            size=pl.col("amount").filter(pl.col("action") == "new").min(),
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
            *KEY,
            "side",
            "account",
            "price",
            "amount",
            start=pl.col("ts"),
            end=pl.col("end").fill_null(pl.col("done")),
        )
    )


def _traded_away(segments: pl.DataFrame, executions: pl.DataFrame) -> pl.DataFrame:
    """Segments ended at the trade that completes them, counting the trades naming the order's account
    on its side at its price from its start: where the order stream sends no fills, the trades are all
    that say an order left the book. (Several orders of one account at one price each count all of
    its trades there: they leave early rather than linger.)"""
    group = [*KEY, "account", "side", "price"]
    totals = (
        executions.filter(pl.col("action") == EXECUTION)
        .group_by(*group, "ts")
        .agg(pl.col("amount").sum())
        .sort("ts")
        .with_columns(total=pl.col("amount").cum_sum().over(group))
        .drop("amount")
    )
    before = (
        segments.with_columns(_before=pl.col("start") - timedelta(microseconds=1))
        .sort("_before")
        .join_asof(totals, left_on="_before", right_on="ts", by=group, check_sortedness=False)
        .with_columns(_target=pl.col("total").fill_null(0.0) + pl.col("amount") * (1 - 1e-9))
        .drop("_before", "ts", "total")
    )
    done = before.sort("_target").join_asof(
        totals.sort("total"),
        left_on="_target",
        right_on="total",
        by=group,
        strategy="forward",
        check_sortedness=False,
    )
    return done.with_columns(end=pl.min_horizontal("end", "ts")).drop("_target", "ts", "total")


def _traded_through(pairs: pl.DataFrame, prints: pl.DataFrame) -> pl.Series:
    """Whether an execution printed through a resting segment's price between its start and the
    member's placement: no bid rests above a print (no ask below one), so it was taken or pulled
    by then, even when the order stream never said so."""
    side_key = [*KEY, "side"]
    signed = pl.concat(
        [
            prints.select(*KEY, "ts", side=pl.lit(side), value=pl.col("price") * sign)
            for side, sign in (("buy", 1.0), ("sell", -1.0))
        ]
    )
    groups = pl.concat([signed.select(side_key), pairs.select(side_key)]).unique().sort(side_key)
    groups = groups.with_row_index("group")
    base, span = _time_range(signed["ts"], pairs["other_start"], pairs["placed"])
    ordered = signed.join(groups, on=side_key).with_columns(clock=_clock("ts", base, span))
    ordered = ordered.sort("clock", "value")
    asked = pairs.join(groups, on=side_key, how="left", maintain_order="left").select(
        first=_clock("other_start", base, span),
        last=_clock("placed", base, span),
        value=pl.when(pl.col("side") == "buy").then(pl.col("other_price")).otherwise(-pl.col("other_price")),
    )
    clock = ordered["clock"].to_numpy()
    lo = np.searchsorted(clock, asked["first"].to_numpy(), side="right")
    hi = np.searchsorted(clock, asked["last"].to_numpy(), side="right")
    lowest = _range_min(ordered["value"].to_numpy(), lo, hi)
    value = asked["value"].to_numpy()
    return pl.Series(lowest < value - _PRICE_TOLERANCE * np.abs(value))


def _time_range(*moments: pl.Series) -> tuple[int, int]:
    """The earliest of `moments` (µs) and how many µs they span: the width of one group's clock."""
    stamps = pl.concat([series.dt.epoch("us").rename("us") for series in moments]).drop_nulls()
    if stamps.is_empty():
        return 0, 1
    return int(stamps.min()), int(stamps.max()) - int(stamps.min()) + 1


def _clock(column: str, base: int, span: int) -> pl.Expr:
    """Time in µs since `base`, offset by the row's `group` times `span`: one int64 that sorts rows
    by group, then by time (a searchsorted over it finds a group's stretch of time at once)."""
    return pl.col("group").cast(pl.Int64) * span + (pl.col(column).dt.epoch("us") - base)


def _range_min(values: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """min(values[lo:hi]) for each pair of bounds (+inf when empty), from a sparse table of minima."""
    out = np.full(lo.size, np.inf)
    size = hi - lo
    if values.size == 0 or not (size > 0).any():
        return out
    levels = [values]
    while (2 << (len(levels) - 1)) <= size.max():
        half = 1 << (len(levels) - 1)
        levels.append(np.minimum(levels[-1][:-half], levels[-1][half:]))
    order = np.floor(np.log2(np.maximum(size, 1))).astype(np.int64)
    for level in np.unique(order[size > 0]):
        pick = (size > 0) & (order == level)
        width = 1 << int(level)
        out[pick] = np.minimum(levels[level][lo[pick]], levels[level][hi[pick] - width])
    return out


def _executions(executions: pl.DataFrame, hits: pl.DataFrame) -> dict[int, list[dict[str, Any]]]:
    """Per hit episode: the account's opposite-side executions from its first placement to its decision."""
    own = executions.join(
        hits.select(*KEY, "account", "episode", "start", "ts", side=pl.col("exec_side")),
        on=[*KEY, "account", "side"],
        suffix="_hit",
    ).filter(pl.col("ts").is_between(pl.col("start"), pl.col("ts_hit")))
    out: dict[int, list[dict[str, Any]]] = {}
    for execution in own.sort("episode", "ts", "action", "order_id", "price", "amount").iter_rows(named=True):
        out.setdefault(execution["episode"], []).append(
            {
                "source": execution["action"],
                "id": execution["order_id"],
                "price": execution["price"],
                "amount": execution["amount"],
                "ts": to_iso(execution["ts"]),
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
        "depth_ahead": order["depth_ahead"],
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
