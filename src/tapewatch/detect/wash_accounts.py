"""Wash trading between known accounts: volume that changes no one's position.

Where a venue names both sides of each trade (`buyer`, `seller`), wash trading shows
directly. Two schemes, after Victor & Weintraud (2021):

- **self-trade**: one account on both sides of a trade, repeatedly;
- **round trip**: a ring of 2…`max_group` colluding accounts passing the same asset round
  (A→B→A, A→B→C→A, …): each link trades repeatedly, the group's trades are a real share of
  the symbol's volume, and yet every member's position from the group's trades nets out —
  bought and sold within `net_tolerance` of its gross volume — over the trailing window.

That last condition is the mark, and it must hold repeatedly: the window before the
moment splits into at least `min_round_trips` short laps (a few transfers per member) that
each leave every member even. A market maker and a busy trader trade with each other both
ways all day and their positions do cross zero now and then, but only after long, uneven
runs of trades; a ring comes back to even after every lap.

Candidate groups come from the directed trade graph (`wash_accounts_graph`); the check at
each of a group's trades reads only the trades in the window `(ts − window, ts]`, so the
decision is causal and a stream's tail decides it exactly as a whole file does. One alert
per ongoing scheme: a group re-arms only after `cooldown_min` without a qualifying trade.
`detected_at` is the trade where the evidence first crossed the thresholds; the follow-up
gathers everything the group traded from the alert's start until `followup_h` later.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from tapewatch.config import WASH_MAX_GROUP, WashAccountsSettings
from tapewatch.detect import wash_accounts_graph as graph
from tapewatch.detect.base import DetectorState
from tapewatch.detect.scoring import excess_score, stable
from tapewatch.records import Alert, alert_id, to_iso

KEY = ["venue", "symbol"]
GROUP_KEY = [*KEY, "group"]


class WashAccountsDetector:
    """Self-trades and netting round trips among 2–5 accounts, from trades with account ids."""

    name = "wash_accounts"
    typology = "wash_trading"
    needs = "trades"

    def __init__(self, settings: WashAccountsSettings | None = None) -> None:
        self.settings = settings or WashAccountsSettings()

    @property
    def window(self) -> timedelta:
        return timedelta(minutes=self.settings.window_min)

    @property
    def _window_us(self) -> int:
        return int(self.window / timedelta(microseconds=1))

    @property
    def lookback(self) -> timedelta:
        """A bucket (two windows: see wash_accounts_graph), or the window and follow-up an open alert
        still gathers, plus a minute."""
        return max(2 * self.window, self.window + self.followup_horizon()) + timedelta(minutes=1)

    def followup_horizon(self) -> timedelta:
        """The group's later trades are gathered for this long after detection."""
        return timedelta(hours=self.settings.followup_h)

    def detect(self, frame: pl.DataFrame, state: DetectorState | None = None) -> list[Alert]:
        """Alerts for every symbol in a trades frame sorted by venue, symbol, ts (see DetectorState)."""
        frame, names = _encoded(frame)
        transfers = self._transfers(frame)
        if transfers.is_empty():
            if state is not None and not frame.is_empty():
                state.advance(KEY, frame.select(*KEY, "ts"), frame.select(*KEY, "ts").clear())
            return []
        groups, among = self._groups(transfers, names)
        candidates = self._candidate_rows(among, groups)
        moments = self._qualifying(candidates, frame, state)
        triggers = self._first_of_runs(moments, state)
        if state is not None:
            # Rows are decided per symbol; cooldowns run per group (last_hit keyed venue, symbol, group).
            state.advance(KEY, frame.select(*KEY, "ts"), moments.select(*KEY, "ts").clear())
            hits = moments.select(*GROUP_KEY, "ts")
            state.advance(GROUP_KEY, hits.clear(), hits)
        if triggers.is_empty():
            return []
        ledger = _Ledger(candidates)
        alerts = [self._alert(row, ledger) for row in triggers.iter_rows(named=True)]
        alerts = self._with_followups(alerts, among, _newest(transfers))
        return sorted(alerts, key=lambda alert: (alert.detected_at, alert.symbol, alert.evidence["group"]))

    def refresh_followups(self, alerts: list[Alert], frame: pl.DataFrame) -> list[Alert]:
        """Recompute each alert's follow-up from `frame` (its symbol's trades up to now)."""
        transfers = self._transfers(_encoded(frame)[0])
        return self._with_followups(alerts, transfers, _newest(transfers))

    # -- preparation ------------------------------------------------------------------------------

    def _transfers(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Trades with both accounts known, with their grid cell and whether each starts a new transfer.

        Prints of one pair at one instant (one order sweeping several levels of the other's
        book) are one transfer, so a single order never counts as repeated trading.
        """
        if "buyer_id" not in frame.columns:
            return pl.DataFrame(schema={"venue": pl.String, "symbol": pl.String})
        known = frame.filter(
            pl.col("buyer_id").is_not_null() & pl.col("seller_id").is_not_null() & (pl.col("amount") > 0)
        )
        return known.select(
            *KEY,
            "ts",
            "trade_id",
            "buyer",
            "seller",
            "amount",
            "row",
            "sym",
            "buyer_id",
            "seller_id",
            ts_us=pl.col("ts").dt.epoch("us"),
            cell=pl.col("ts").dt.epoch("us") // self._window_us,
            new=pl.any_horizontal(
                pl.col(name).ne_missing(pl.col(name).shift(1))
                for name in ("sym", "ts", "buyer_id", "seller_id")
            ),
        )

    def _groups(self, transfers: pl.DataFrame, names: pl.Series) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Candidate groups per bucket (see wash_accounts_graph), numbered, and the transfers among their
        members: all that the check reads of the tape's accounts."""
        s = self.settings
        index = graph.PairIndex(transfers, self._window_us)
        screened = index.may_qualify(s.min_self_trades, s.min_edge_trades, s.min_trades, s.net_tolerance)
        edges = graph.transfers_by_bucket(
            graph.transfers_by_cell(
                transfers[index.rows(screened)].select(
                    "sym", "cell", "new", seller="seller_id", buyer="buyer_id"
                )
            )
        )
        groups = pl.concat(
            [
                graph.self_trade_groups(edges, s.min_self_trades),
                graph.pair_groups(edges, s.min_edge_trades),
                graph.ring_groups(
                    index.ring_links(s.min_edge_trades, s.max_ring_counterparties), s.max_group
                ),
            ]
        ).with_row_index("cand")
        among = transfers[index.rows(_member_segments(groups, index.segments()))]
        named = (
            groups.explode(graph.MEMBERS, empty_as_null=True)
            .with_columns(pl.col(graph.MEMBERS).map_batches(names.gather, return_dtype=pl.String))
            .group_by("cand", maintain_order=True)
            .agg(pl.col("sym", "bucket").first(), graph.MEMBERS)
            .join(among.select("sym", *KEY).unique("sym"), on="sym")
            .select("cand", *KEY, "bucket", graph.MEMBERS)
        )
        return named, among

    def _candidate_rows(self, transfers: pl.DataFrame, groups: pl.DataFrame) -> pl.DataFrame:
        """Each candidate group's transfers among its members within its bucket, with the window sums
        the check needs: transfers per ring link, bought and sold per member, transfers and volume."""
        size = pl.col(graph.MEMBERS).list.len()
        members = groups.with_columns(
            *(
                pl.col(graph.MEMBERS).list.get(i, null_on_oob=True).alias(f"m{i}")
                for i in range(WASH_MAX_GROUP)
            ),
            *(
                pl.when(size > i).then(pl.col(graph.MEMBERS).list.get((i + 1) % size)).alias(f"next{i}")
                for i in range(WASH_MAX_GROUP)
            ),
            size=size,
        )
        links = (
            members.select(
                "cand",
                *KEY,
                "size",
                seller=graph.MEMBERS,
                buyer=graph.MEMBERS,
                cell=pl.concat_list("bucket", pl.col("bucket") + 1),
            )
            .explode("seller", empty_as_null=True)
            .explode("buyer", empty_as_null=True)
            .explode("cell", empty_as_null=True)
            .filter((pl.col("seller") != pl.col("buyer")) | (pl.col("size") == 1))
            .drop("size")
        )
        rows = (
            transfers.join(links, on=[*KEY, "seller", "buyer", "cell"])
            .join(members.drop(*KEY), on="cand")
            .sort("cand", "ts_us", maintain_order=True)
        )
        # One monotone clock for all groups: each group's bucket (two windows long) starts 3 windows
        # after the previous group's, so windows never span groups and no per-group partitioning is needed.
        spacing = 3 * self._window_us
        rows = rows.with_columns(
            clock=pl.col("ts_us")
            - pl.col("bucket") * self._window_us
            + pl.col("cand").cast(pl.Int64) * spacing
        )
        return rows.with_columns(*self._window_sums(), *_member_index("buyer"), *_member_index("seller"))

    def _window_sums(self) -> list[pl.Expr]:
        window = f"{self._window_us}i"

        def summed(expr: pl.Expr, name: str) -> pl.Expr:
            return stable(expr.cast(pl.Float64).rolling_sum_by("clock", window_size=window)).alias(name)

        sums = [summed(pl.col("new"), "transfers_w"), summed(pl.col("amount"), "volume_w")]
        for i in range(WASH_MAX_GROUP):
            member = pl.col(f"m{i}")
            on_link = (pl.col("seller") == member) & (pl.col("buyer") == pl.col(f"next{i}")) & pl.col("new")
            sums += [
                summed(on_link.fill_null(False), f"link{i}_w"),
                summed(pl.when(pl.col("buyer") == member).then("amount").otherwise(0.0), f"bought{i}_w"),
                summed(pl.when(pl.col("seller") == member).then("amount").otherwise(0.0), f"sold{i}_w"),
            ]
        return sums

    # -- decision ---------------------------------------------------------------------------------

    def _qualifying(
        self, candidates: pl.DataFrame, frame: pl.DataFrame, state: DetectorState | None
    ) -> pl.DataFrame:
        """Every undecided trade at which a group meets the thresholds over its window, one row per group and moment.

        The window sums screen all rows at once; the few survivors are checked for laps and
        against the whole tape (volume share, a self-trader's other trading) one by one.
        """
        s = self.settings
        checked = self._screened(candidates)
        if state is not None:
            checked = _undecided(checked, state)
        checked = checked.unique([*KEY, graph.MEMBERS, "ts_us"], keep="first", maintain_order=True)
        round_trips = _Ledger(candidates).round_trips(
            checked, self._window_us, s.net_tolerance, s.max_lap_legs, s.min_round_trips
        )
        alone = pl.col("size") == 1
        checked = checked.with_columns(round_trips=pl.Series(round_trips, dtype=pl.Int64)).filter(
            alone | (pl.col("round_trips") >= s.min_round_trips)
        )
        tape = _Tape(frame, self._window_us)
        checked = checked.with_columns(
            group=pl.col(graph.MEMBERS).list.sort().list.join(","),
            symbol_volume_w=pl.Series(tape.volumes(checked), dtype=pl.Float64),
            own_trades_w=pl.Series(tape.own_trades(checked), dtype=pl.Int64),
        ).with_columns(
            volume_share=pl.col("volume_w") / pl.col("symbol_volume_w"),
            self_share=pl.col("transfers_w") / pl.col("own_trades_w"),
        )
        moments = checked.filter(
            (pl.col("volume_share") >= s.min_volume_share)
            & (~alone | (pl.col("self_share") >= s.min_self_share))
        )
        # Two cycle orders of one group (A→B→C and A→C→B) are the same group: one row per moment,
        # the first order alphabetically, whatever the numbering of candidates in this frame.
        return (
            moments.with_columns(ring=pl.col(graph.MEMBERS).list.join(","))
            .sort(*GROUP_KEY, "ts", "ring")
            .unique([*GROUP_KEY, "ts"], keep="first", maintain_order=True)
        )

    def _screened(self, candidates: pl.DataFrame) -> pl.DataFrame:
        """Rows of a bucket's second cell where every link traded often enough, the group traded enough
        and every member nets out (a self-trader trivially does)."""
        s = self.settings
        present = [pl.col(f"m{i}").is_not_null() for i in range(WASH_MAX_GROUP)]
        weakest_link = pl.min_horizontal(
            pl.when(present[i]).then(pl.col(f"link{i}_w")) for i in range(WASH_MAX_GROUP)
        )
        worst_net = pl.max_horizontal(
            pl.when(present[i]).then(
                (pl.col(f"bought{i}_w") - pl.col(f"sold{i}_w")).abs()
                / (pl.col(f"bought{i}_w") + pl.col(f"sold{i}_w"))
            )
            for i in range(WASH_MAX_GROUP)
        )
        alone = pl.col("size") == 1
        return candidates.with_columns(max_net_ratio=worst_net).filter(
            (pl.col("cell") == pl.col("bucket") + 1)
            & (weakest_link >= pl.when(alone).then(s.min_self_trades).otherwise(s.min_edge_trades))
            & (pl.col("transfers_w") >= pl.when(alone).then(s.min_self_trades).otherwise(s.min_trades))
            & (pl.col("max_net_ratio") <= s.net_tolerance)
        )

    def _first_of_runs(self, moments: pl.DataFrame, state: DetectorState | None) -> pl.DataFrame:
        """The cooldown: a group's qualifying trade alerts only if its previous one is over `cooldown_min` ago."""
        earlier = pl.col("ts").shift(1).over(GROUP_KEY)
        if state is not None and state.last_hit:
            known = pl.DataFrame(
                [(*key, moment) for key, moment in state.last_hit.items()],
                schema={
                    "venue": pl.String,
                    "symbol": pl.String,
                    "group": pl.String,
                    "last_hit": moments["ts"].dtype,
                },
                orient="row",
            )
            moments = moments.join(known, on=GROUP_KEY, how="left")
            earlier = earlier.fill_null(pl.col("last_hit"))
        gap = pl.col("ts") - earlier
        return moments.filter(gap.is_null() | (gap > timedelta(minutes=self.settings.cooldown_min)))

    # -- alerts -----------------------------------------------------------------------------------

    def _alert(self, row: dict[str, Any], ledger: _Ledger) -> Alert:
        """The alert at a trigger: evidence from the group's trades in the window that decided it."""
        s = self.settings
        rows = ledger.rows(row["cand"], row["ts_us"] - self._window_us, row["ts_us"])
        trades = ledger.frame(rows)
        members = sorted(row[graph.MEMBERS])
        positions = _positions(trades, members)
        scheme = "self_trade" if len(members) == 1 else "round_trip"
        volume = float(trades["amount"].sum())
        evidence: dict[str, Any] = {
            "scheme": scheme,
            "group": row["group"],
            "accounts": members,
            "window_min": s.window_min,
            "trades": trades.height,
            "transfers": int(trades["new"].sum()),
            "round_trips": ledger.laps(rows, row["size"], s.net_tolerance, s.max_lap_legs, trades.height)
            if row["size"] > 1
            else trades.height,
            "volume": volume,
            "symbol_volume": row["symbol_volume_w"],
            "volume_share": round(volume / row["symbol_volume_w"], 4),
            "max_net_ratio": round(_max_net_ratio(positions), 6),
            "positions": positions,
            "first_trade": to_iso(trades["ts"][0]),
            "last_trade": to_iso(trades["ts"][-1]),
            **_trade_ids(trades, s.max_trade_ids),
        }
        if scheme == "round_trip":
            evidence["ring"] = row["ring"].split(",")
            evidence["net_tolerance"] = s.net_tolerance
        else:
            evidence["self_share"] = round(row["self_share"], 4)
        floor = s.net_tolerance / 8 if s.net_tolerance > 0 else 1e-6
        score = excess_score(
            max(s.net_tolerance, floor) / max(evidence["max_net_ratio"], floor),
            evidence["volume_share"] / s.min_volume_share if s.min_volume_share > 0 else 2.0,
            evidence["transfers"] / (s.min_self_trades if scheme == "self_trade" else s.min_trades),
        )
        alert = Alert.build(
            detector=self.name,
            typology=self.typology,
            venue=row["venue"],
            symbol=row["symbol"],
            start=trades["ts"][0],
            end=row["ts"],
            detected_at=row["ts"],
            score=score,
            evidence=evidence,
        )
        # Several groups can start at one instant in one symbol: the group is part of the id.
        return alert.model_copy(
            update={"id": alert_id(self.name, row["venue"], f"{row['symbol']}|{row['group']}", alert.start)}
        )

    def _with_followups(
        self, alerts: list[Alert], transfers: pl.DataFrame, newest: dict[tuple[str, str], datetime]
    ) -> list[Alert]:
        """Each alert with the group's whole scheme: its trades from `start` to `detected_at` + horizon."""
        if not alerts:
            return []
        horizon = self.followup_horizon()
        spans = pl.DataFrame(
            [
                (index, alert.venue, alert.symbol, seller, buyer, alert.start, alert.detected_at + horizon)
                for index, alert in enumerate(alerts)
                for seller, buyer in _links(alert.evidence["accounts"])
            ],
            schema={
                "alert": pl.Int64,
                "venue": pl.String,
                "symbol": pl.String,
                "seller": pl.String,
                "buyer": pl.String,
                "from": transfers.schema.get("ts", pl.Datetime("us", "UTC")),
                "until": transfers.schema.get("ts", pl.Datetime("us", "UTC")),
            },
            orient="row",
        )
        scheme = (
            transfers.join(spans, on=[*KEY, "seller", "buyer"])
            .filter(pl.col("ts").is_between("from", "until"))
            .sort("alert", "ts_us", maintain_order=True)
            if transfers.height
            else None
        )
        by_alert = scheme.partition_by("alert", as_dict=True) if scheme is not None else {}
        out = []
        for index, alert in enumerate(alerts):
            trades = by_alert.get((index,))
            out.append(
                alert.model_copy(
                    update={"followup": {**alert.followup, "scheme": self._followup(alert, trades, newest)}}
                )
            )
        return out

    def _followup(
        self, alert: Alert, trades: pl.DataFrame | None, newest: dict[tuple[str, str], datetime]
    ) -> dict[str, Any]:
        """The scheme so far; `complete` once the data reach the horizon, so later trades cannot change it."""
        until = alert.detected_at + self.followup_horizon()
        latest = newest.get((alert.venue, alert.symbol))
        result: dict[str, Any] = {
            "until": to_iso(until),
            "status": "complete" if latest is not None and latest >= until else "open",
        }
        if trades is None or trades.is_empty():
            return result
        positions = _positions(trades, alert.evidence["accounts"])
        result.update(
            trades=trades.height,
            volume=float(trades["amount"].sum()),
            max_net_ratio=round(_max_net_ratio(positions), 6),
            positions=positions,
            last_trade=to_iso(trades["ts"][-1]),
            **_trade_ids(trades, self.settings.max_trade_ids),
        )
        return result


def _member_index(side: str) -> list[pl.Expr]:
    """Which member (0…4) bought or sold each row, for the array arithmetic of `_Ledger`."""
    index = pl.lit(-1, dtype=pl.Int8)
    for i in reversed(range(WASH_MAX_GROUP)):
        index = pl.when(pl.col(side) == pl.col(f"m{i}")).then(pl.lit(i, dtype=pl.Int8)).otherwise(index)
    return [index.alias(f"{side}_index")]


class _Ledger:
    """The candidate groups' trades as arrays, for the per-moment look-backs too sequential to vectorise."""

    def __init__(self, candidates: pl.DataFrame) -> None:
        cand = candidates["cand"].to_numpy()
        # Rows of group c are block[c]:block[c + 1] (rows are sorted by cand, ts).
        self.block = np.searchsorted(cand, np.arange(int(cand[-1]) + 2 if cand.size else 1))
        self.ts = candidates["ts_us"].to_numpy()
        self.amount = candidates["amount"].to_numpy()
        self.buyer = candidates["buyer_index"].to_numpy()
        self.seller = candidates["seller_index"].to_numpy()
        self.new = candidates["new"].to_numpy()
        self.candidates = candidates

    def frame(self, rows: slice) -> pl.DataFrame:
        return self.candidates.slice(rows.start, rows.stop - rows.start)

    def rows(self, cand: int, after_us: int, upto_us: int) -> slice:
        """The group's rows with after < ts ≤ upto."""
        lo, hi = int(self.block[cand]), int(self.block[cand + 1])
        times = self.ts[lo:hi]
        return slice(
            lo + int(np.searchsorted(times, after_us, side="right")),
            lo + int(np.searchsorted(times, upto_us, side="right")),
        )

    def round_trips(
        self, moments: pl.DataFrame, window_us: int, tolerance: float, max_legs: int, enough: int
    ) -> list[int]:
        """Laps each group of two or more completed within the window before each moment (see `laps`),
        counted up to `enough`."""
        counts = []
        for cand, at_us, size in moments.select("cand", "ts_us", "size").iter_rows():
            rows = self.rows(cand, at_us - window_us, at_us)
            counts.append(self.laps(rows, size, tolerance, max_legs, enough) if size > 1 else 0)
        return counts

    def laps(self, rows: slice, size: int, tolerance: float, max_legs: int, enough: int) -> int:
        """Consecutive short stretches, counted back from the moment, in each of which every member traded
        and came back to even (within `tolerance` of its gross) in at most `max_legs` transfers per member;
        counting stops at `enough`.

        A ring passes the asset once round per lap — a handful of transfers that leave everyone even.
        A market maker and a busy trader also come back to even now and then, but only by chance
        after a long run of trades both ways, so their stretches are long and do not count.
        """
        amount, ts = self.amount[rows], self.ts[rows]
        bought, sold = np.zeros((size, ts.size)), np.zeros((size, ts.size))
        bought[self.buyer[rows], np.arange(ts.size)] = amount
        sold[self.seller[rows], np.arange(ts.size)] = amount
        zero = np.zeros((size, 1))
        net = np.hstack([zero, np.cumsum(bought - sold, axis=1)])
        gross = np.hstack([zero, np.cumsum(bought + sold, axis=1)])
        transfers = np.concatenate([[0], np.cumsum(self.new[rows])])
        cuts = np.flatnonzero(np.concatenate([[True], ts[1:] != ts[:-1]]))  # laps begin at a new instant
        laps, end = 0, ts.size
        while True:
            starts = cuts[cuts < end]
            moved_net = net[:, [end]] - net[:, starts]
            moved = gross[:, [end]] - gross[:, starts]
            short = transfers[end] - transfers[starts] <= max_legs * size
            even = short & np.all((np.abs(moved_net) <= tolerance * moved) & (moved > 0), axis=0)
            if not even.any():
                return laps
            laps, end = laps + 1, int(starts[np.flatnonzero(even)[-1]])
            if laps >= enough:
                return laps


def _undecided(checked: pl.DataFrame, state: DetectorState) -> pl.DataFrame:
    if not state.decided_until:
        return checked
    decided = pl.DataFrame(
        [(*key, moment) for key, moment in state.decided_until.items()],
        schema={"venue": pl.String, "symbol": pl.String, "decided_until": checked["ts"].dtype},
        orient="row",
    )
    return (
        checked.join(decided, on=KEY, how="left")
        .filter(pl.col("decided_until").is_null() | (pl.col("ts") > pl.col("decided_until")))
        .drop("decided_until")
    )


class _Tape:
    """The whole tape (accounts known or not) as arrays, for the few window look-ups per moment.

    Sums run over exactly the window's rows in file order, whatever the frame's start, so
    the stream and the batch agree to the bit.
    """

    def __init__(self, frame: pl.DataFrame, window_us: int) -> None:
        self.window_us = window_us
        sym = frame["sym"].to_numpy()
        self.clock = graph.window_clock(
            frame["ts"].dt.epoch("us").to_numpy(), np.diff(sym, prepend=-1) != 0, window_us
        )
        self.amount = frame["amount"].to_numpy()
        self.buyer, self.seller = (frame[name].fill_null(-1).to_numpy() for name in ("buyer_id", "seller_id"))

    def _windows(self, moments: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Each moment's window (ts − W, ts] of its symbol's tape, as row bounds."""
        at = self.clock[moments["row"].to_numpy()]
        return (
            np.searchsorted(self.clock, at - self.window_us, side="right"),
            np.searchsorted(self.clock, at, side="right"),
        )

    def volumes(self, moments: pl.DataFrame) -> list[float]:
        """The symbol's traded volume in each moment's window."""
        return [float(np.sum(self.amount[lo:hi])) for lo, hi in zip(*self._windows(moments), strict=True)]

    def own_trades(self, moments: pl.DataFrame) -> list[int | None]:
        """For one-account groups, how many trades that account took part in during the window.

        A busy trader now and then hits its own resting order by accident; a self-trading
        washer's self-trades are most of what it does.
        """
        out: list[int | None] = []
        lone = moments.select(pl.col(graph.MEMBERS).list.len() == 1).to_series().to_list()
        accounts = moments["buyer_id"].to_list()  # a self-trade's buyer is the group's account
        for lo, hi, alone, account in zip(*self._windows(moments), lone, accounts, strict=True):
            hits = (self.buyer[lo:hi] == account) | (self.seller[lo:hi] == account) if alone else None
            out.append(int(np.count_nonzero(hits)) if alone else None)
        return out


def _encoded(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series]:
    """The frame with its row numbers, its symbols numbered in order and each account as an integer that
    sorts as its name, with the names in that order: the graph work then runs on integers."""
    frame = frame.with_columns(
        row=pl.int_range(pl.len(), dtype=pl.Int64), sym=pl.struct(*KEY).rle_id().cast(pl.Int64)
    )
    if frame.is_empty() or "buyer" not in frame.columns or "seller" not in frame.columns:
        return frame, pl.Series(dtype=pl.String)
    categories = pl.Categories.random()
    codes = frame.select(pl.col("buyer", "seller").cast(pl.Categorical(categories)))
    names = categories.to_series()
    rank = names.rank("ordinal").cast(pl.Int64) - 1
    ids = {f"{side}_id": rank.gather(codes[side].to_physical()) for side in ("buyer", "seller")}
    return frame.with_columns(**ids), names.sort()


def _newest(transfers: pl.DataFrame) -> dict[tuple[str, str], datetime]:
    """Each symbol's latest transfer: where its follow-ups stand."""
    if transfers.is_empty():
        return {}
    latest = transfers.group_by("sym").agg(pl.col(*KEY).first(), pl.col("ts").max())
    return {(venue, symbol): ts for venue, symbol, ts in latest.select(*KEY, "ts").iter_rows()}


def _member_segments(groups: pl.DataFrame, segments: pl.DataFrame) -> np.ndarray:
    """The pair segments (see `wash_accounts_graph.PairIndex`) of every two members of each group, or
    of a lone account with itself."""
    pairs = (
        groups.select("sym", low=graph.MEMBERS, high=graph.MEMBERS, size=pl.col(graph.MEMBERS).list.len())
        .explode("low", empty_as_null=True)
        .explode("high", empty_as_null=True)
        .filter((pl.col("low") < pl.col("high")) | (pl.col("size") == 1))
        .select("sym", "low", "high")
        .unique()
    )
    return segments.join(pairs, on=["sym", "low", "high"], how="semi")["segment"].to_numpy()


def _links(accounts: list[str]) -> list[tuple[str, str]]:
    """The (seller, buyer) pairs whose trades are internal to a group; a lone account's are its self-trades."""
    if len(accounts) == 1:
        return [(accounts[0], accounts[0])]
    return [(a, b) for a in accounts for b in accounts if a != b]


def _positions(trades: pl.DataFrame, members: list[str]) -> dict[str, dict[str, float]]:
    """Each member's bought, sold, net and gross volume over the group's trades."""
    amount = trades["amount"].to_numpy()
    buyer, seller = trades["buyer"].to_numpy(), trades["seller"].to_numpy()
    out = {}
    for member in members:
        bought, sold = float(amount[buyer == member].sum()), float(amount[seller == member].sum())
        out[member] = {"bought": bought, "sold": sold, "net": bought - sold, "gross": bought + sold}
    return out


def _max_net_ratio(positions: dict[str, dict[str, float]]) -> float:
    return max(abs(p["net"]) / p["gross"] if p["gross"] else 1.0 for p in positions.values())


def _trade_ids(trades: pl.DataFrame, cap: int) -> dict[str, Any]:
    ids = trades["trade_id"].drop_nulls()
    return {"trade_ids": ids.head(cap).to_list(), "trade_ids_total": ids.len()}
