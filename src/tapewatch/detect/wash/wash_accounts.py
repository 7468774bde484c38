"""Wash trading between known accounts: volume that changes no one's position.

Where a venue names both sides of each trade (`buyer`, `seller`), wash trading shows
directly. Two schemes, after Victor & Weintraud (2021):

- **self-trade**: one account on both sides of a trade. It transfers nothing, so it is wash
  trading per se; what must be told apart is a busy account whose own orders now and then
  meet by accident. So self-trades are measured on the account's own scale: were its buys
  and sells in the window matched at random against the symbol's trades there, it would
  self-trade about λ = buys × sells / trades times (its self-trades left out of all three).
  At least `min_self_trades` self-trades whose Poisson chance is at most `max_self_chance`
  alert, whatever else the account does — judged over the window and over each burst within
  it (`_Tape.self_trade_chance`): a washer with plenty of honest trading on the side still
  stands far above its λ, a busy algorithm's occasional self-match does not.
- **round trip**: a ring of 2…`max_group` colluding accounts passing the same asset round
  (A→B→A, A→B→C→A, …): each link trades repeatedly and yet every member's position from the
  group's trades nets out — bought and sold within `net_tolerance` of its gross volume —
  over the trailing window.

That last condition is the mark, and it must hold repeatedly: the window before the
moment splits into at least `min_round_trips` short laps (a few transfers per member) that
each leave every member even. A market maker and a busy trader trade with each other both
ways all day and their positions do cross zero now and then, but only after long, uneven
runs of trades; a ring comes back to even after every lap. A pair trading back and forth in
common sizes comes back to even by chance far more often than three or more accounts pass
one quantity round — a trader opening and closing positions against its market maker does
so all day — so a pair needs `min_pair_round_trips` laps, or `min_round_trips` laps that came
round too quickly for chance on the symbol's own clock: were the pair's transfers spread at
random over the symbol's trades in the window (`pace` of them per trade), a lap closing
within s trades of its first would have chance about min(1, s · pace); the laps' chances
multiply, and at most `max_pair_lap_chance` passes. A washing pair passes its quantity back
within a few of the symbol's trades; an honest position is held for hundreds.

The group's share of the symbol's volume and its members' counterparty counts never veto an
alert: a small ring in a busy symbol, or one with a market maker in it, is still a ring. The
share only scales the score (`volume_share_scale`), as does the share of the group's
transfers that its laps hold (a ring's trades together are its laps); the counterparty count
only bounds which rings of 3+ are looked for (at most one hub per ring, see
`accounts_graph`), so the search stays bounded. The score rises with how far the
evidence is past each threshold: the chance of the self-trades, or how tightly and how many
laps a ring came back to even.

Candidate groups come from the directed trade graph (`accounts_graph`); the check at
each of a group's trades reads only the trades in the window `(ts − window, ts]`, so the
decision is causal and a stream's tail decides it exactly as a whole file does. Rows are first
put in one total order (venue, symbol, ts, then trade id, buyer, seller, price, amount), so
the same trades in any row order give the same alerts (a batch of several symbols is cut into
parts decided two at a time, see `_symbol_parts`). One alert per ongoing scheme: a group
re-arms only after `cooldown_min` without a qualifying trade. `detected_at` is the trade where
the evidence first crossed the thresholds; the follow-up gathers everything the group traded
from the alert's start until `followup_h` later. Every setting has an upper (or lower) bound
at which the cost stays bounded: a million trades at the loosest allowed values take seconds.
"""

from __future__ import annotations

import itertools
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import polars as pl

from tapewatch.detect.base import DetectorState
from tapewatch.detect.scoring import excess_score
from tapewatch.detect.wash import accounts_graph as graph
from tapewatch.detect.wash.settings import WASH_MAX_GROUP, WashAccountsSettings
from tapewatch.io.derive import stable
from tapewatch.records import Alert, alert_id, to_iso

KEY = ["venue", "symbol"]
GROUP_KEY = [*KEY, "group"]
_CELLS = 1 << 18
"""Padded window rows per batch of moments (see `_Sets._batches`): bounds the look-backs' memory."""
PART_ROWS = 1 << 20
"""Rows per pass of `detect` (whole symbols; a larger symbol alone): see `_symbol_parts`."""
PART_THREADS = 2
"""Parts of a batch detected at once: most of the work is NumPy and Polars, which run without the GIL."""
TIE_ORDER = ["trade_id", "buyer", "seller", "price", "amount"]
"""After venue, symbol and ts: the order that makes the rows of one instant a total order."""
LAP_SHARE_SCALE = 0.5
"""Score only: the share of a group's transfers in the window that its laps hold, at which that share
neither raises nor lowers the score."""
CHANCE_FLOOR = 1e-12
"""Self-trade chances below this count as this in the score: beyond it the count is as sure as it gets,
and one extreme figure should not carry the score alone."""


class WashAccountsDetector:
    """Self-trades beyond chance and netting round trips among 2–6 accounts, from trades with account ids."""

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
        """A bucket (two windows: see accounts_graph), or the window and follow-up an open alert
        still gathers, plus a minute."""
        return max(2 * self.window, self.window + self.followup_horizon()) + timedelta(minutes=1)

    def followup_horizon(self) -> timedelta:
        """The group's later trades are gathered for this long after detection."""
        return timedelta(hours=self.settings.followup_h)

    def detect(self, frame: pl.DataFrame, state: DetectorState | None = None) -> list[Alert]:
        """Alerts for every symbol in a trades frame sorted by venue, symbol, ts (see DetectorState)."""
        if not _names_accounts(frame):  # a public tape: skip the encoding (a quarter of the read's cost)
            if state is not None and state.raw_lookback is None and not state.decided_until:
                state.raw_lookback = timedelta(0)  # a public tape from the start: no stream tail needed
            return _nothing_found(frame, state)
        if state is not None:
            state.raw_lookback = None  # accounts named: the whole lookback from now on
        parts = _symbol_parts(frame)
        if state is None and len(parts) > 1:  # a batch: parts share nothing, so two run at once
            with ThreadPoolExecutor(PART_THREADS) as pool:
                found = list(pool.map(lambda part: self._detect_part(part, None), parts))
        else:  # a stream's state is advanced part after part
            found = [self._detect_part(part, state) for part in parts]
        alerts = [alert for part in found for alert in part]
        return sorted(alerts, key=lambda alert: (alert.detected_at, alert.symbol, alert.evidence["group"]))

    def _detect_part(self, frame: pl.DataFrame, state: DetectorState | None) -> list[Alert]:
        """`detect` on whole symbols (see `_symbol_parts`), unsorted."""
        frame, names = _encoded(frame)
        transfers = self._transfers(frame)
        if transfers.is_empty():
            return _nothing_found(frame, state)
        groups, among = self._groups(transfers)
        sets = _Sets(groups, among, names, self._window_us)
        tape = _Tape(frame, self._window_us)
        moments = self._qualifying(sets, tape, state)
        triggers = self._first_of_runs(moments, state)
        if state is not None:
            # Rows are decided per symbol; cooldowns run per group (last_hit keyed venue, symbol, group).
            state.advance(KEY, frame.select(*KEY, "ts"), moments.select(*KEY, "ts").clear())
            hits = moments.select(*GROUP_KEY, "ts")
            state.advance(GROUP_KEY, hits.clear(), hits)
        if triggers.is_empty():
            return []
        rows = sets.row[triggers["at"].to_numpy()]
        volumes = tape.volumes(rows)  # the triggers' only: a loop per row
        triggers = triggers.with_columns(
            symbol_volume_w=pl.Series(volumes, dtype=pl.Float64), window_trades=tape.trades_in_window(rows)
        )
        alerts = self._alerts(triggers, sets)
        return self._with_followups(alerts, among, _newest(transfers))

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
        known = frame.filter(_names_both("buyer_id", "seller_id"))
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
        ).rechunk()  # a parallel filter leaves a chunk per thread: every later gather would pay for them

    def _groups(self, transfers: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Candidate groups per bucket (see accounts_graph), each in its cycle order, and the transfers
        among their members: all that the check reads of the tape's accounts."""
        s = self.settings
        index = graph.PairIndex(transfers, self._window_us)
        screened = index.may_qualify(s.min_self_trades, s.min_edge_trades, s.min_trades, s.net_tolerance)
        edges = graph.transfers_by_bucket(
            graph.transfers_by_cell(
                transfers.select("sym", "cell", "new", seller="seller_id", buyer="buyer_id")[
                    index.rows(screened)
                ]
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
        )
        return groups, transfers[index.rows(_member_segments(groups, index.segments()))]

    # -- decision ---------------------------------------------------------------------------------

    def _qualifying(self, sets: _Sets, tape: _Tape, state: DetectorState | None) -> pl.DataFrame:
        """Every undecided instant at which a member set meets the thresholds over its window, one row per
        group and moment, with the first cycle order (alphabetically) whose every link is strong enough.

        Window sums screen all moments at once; a self-trader's survivors are then weighed against its
        own flow on the whole tape (chance of its self-trades), a ring's checked for strong links and
        laps, in batches.
        """
        s = self.settings
        moments = sets.moments(self._screened(sets))
        moments = (state or DetectorState()).undecided(moments, KEY)
        alone = moments["size"].to_numpy() == 1
        at = moments["at"].to_numpy()
        moments = moments.hstack(tape.self_trade_chance(sets.row[at], alone, sets.buyer_id[at]))
        chance = moments["self_chance"].fill_null(1.0).to_numpy()
        at, size = moments["at"].to_numpy(), moments["size"].to_numpy()
        ring = sets.strongest_order(at, s.min_edge_trades, s.min_self_trades)
        need = np.where(size == 2, s.min_pair_round_trips, s.min_round_trips)
        pace = np.ones(at.size)  # only pairs are judged on their pace (1: no lap is quick)
        pair = np.flatnonzero(size == 2)
        pace[pair] = sets.transfers(at[pair]) / tape.trades_in_window(sets.row[at[pair]])
        laps, _, lap_chance = sets.laps(
            at, np.where(size == 1, 0, need), s.net_tolerance, s.max_lap_legs, pace
        )
        # A pair short of `need` laps still passes with as many as a ring needs if they came round quickly.
        quick = (laps >= s.min_round_trips) & (lap_chance <= s.max_pair_lap_chance)
        passed = (ring >= 0) & np.where(size == 1, chance <= s.max_self_chance, (laps >= need) | quick)
        return (
            moments.filter(pl.Series(passed))
            .with_columns(ring=sets.rings.gather(ring[passed]))
            .sort(*GROUP_KEY, "ts")
        )

    def _screened(self, sets: _Sets) -> np.ndarray:
        """Moments (positions in the set rows) where the group traded enough and every member nets out (a
        self-trader trivially does); the links are checked later, per cycle order."""
        s = self.settings
        at = sets.instants()
        alone = sets.size[sets.set_id[at]] == 1
        at = at[sets.transfers(at) >= np.where(alone, s.min_self_trades, s.min_trades)]
        return at[sets.nets_out(at, s.net_tolerance)]

    def _first_of_runs(self, moments: pl.DataFrame, state: DetectorState | None) -> pl.DataFrame:
        """The cooldown: a group's qualifying trade alerts only if its previous one is over `cooldown_min` ago
        (kept per group, a finer key than the rows decided per symbol)."""
        return (state or DetectorState()).cooled_down(
            moments, GROUP_KEY, timedelta(minutes=self.settings.cooldown_min)
        )

    # -- alerts -----------------------------------------------------------------------------------

    def _alerts(self, triggers: pl.DataFrame, sets: _Sets) -> list[Alert]:
        """The alerts at the triggers, from each group's trades in the window that decided it."""
        at = triggers["at"].to_numpy()
        lo, hi = sets.window_start[at], sets.end[at]
        pace = sets.transfers(at) / triggers["window_trades"].to_numpy()
        laps, covered, lap_chance = sets.laps(
            at, hi - lo, self.settings.net_tolerance, self.settings.max_lap_legs, pace
        )
        _, rows = _ranges(lo, hi)
        # Only the triggers' windows, laid end to end; a set's positions are its members sorted by name.
        trades = _Trades.of(sets.trades(rows), sets.buyer[rows], sets.seller[rows])
        ends = np.cumsum(hi - lo)
        return [
            self._alert(row, trades.cut(last - (upto - first), last), int(lap), int(held), float(chance))
            for row, first, upto, last, lap, held, chance in zip(
                triggers.iter_rows(named=True), lo, hi, ends, laps, covered, lap_chance, strict=True
            )
        ]

    def _alert(
        self, row: dict[str, Any], trades: _Trades, laps: int, in_laps: int, lap_chance: float
    ) -> Alert:
        """The alert at a trigger: evidence from the group's trades in the window that decided it."""
        s = self.settings
        members = sorted(row["accounts"])
        positions = _positions(trades, members)
        scheme = "self_trade" if len(members) == 1 else "round_trip"
        volume = trades.volume()
        evidence: dict[str, Any] = {
            "scheme": scheme,
            "group": row["group"],
            "accounts": members,
            "window_min": s.window_min,
            "trades": trades.height,
            "transfers": int(trades.new.sum()),
            "round_trips": laps if len(members) > 1 else trades.height,
            "volume": volume,
            "symbol_volume": row["symbol_volume_w"],
            "volume_share": round(volume / row["symbol_volume_w"], 6),
            "max_net_ratio": round(_max_net_ratio(positions), 6),
            "positions": positions,
            "first_trade": to_iso(trades.ts[0]),
            "last_trade": to_iso(trades.ts[-1]),
            **_trade_ids(trades, s.max_trade_ids),
        }
        if scheme == "round_trip":
            evidence.update(
                ring=row["ring"].split(","),
                net_tolerance=s.net_tolerance,
                transfers_in_laps=in_laps,
                lap_chance=float(f"{lap_chance:.4g}"),
            )
            strength = self._ring_strength(evidence["max_net_ratio"], laps, len(members))
            # A ring's trades together are its laps; a busy pair that happened to come even has a long tail.
            extent = _clipped(in_laps / max(evidence["transfers"], 1) / LAP_SHARE_SCALE)
        else:
            evidence.update(self._self_trade_evidence(row))
            strength = math.log10(max(row["self_chance"], CHANCE_FLOOR)) / math.log10(s.max_self_chance)
            extent = evidence["transfers"] / s.min_self_trades
        score = excess_score(strength, _clipped(evidence["volume_share"] / s.volume_share_scale), extent)
        alert = Alert.build(
            detector=self.name,
            typology=self.typology,
            venue=row["venue"],
            symbol=row["symbol"],
            start=trades.ts[0],
            end=row["ts"],
            detected_at=row["ts"],
            score=score,
            evidence=evidence,
        )
        # Several groups can start at one instant in one symbol: the group is part of the id.
        return alert.model_copy(
            update={"id": alert_id(self.name, row["venue"], f"{row['symbol']}|{row['group']}", alert.start)}
        )

    def _ring_strength(self, max_net_ratio: float, laps: int, size: int) -> float:
        """How far a ring is beyond its thresholds: how tightly it nets out, times how many laps it made."""
        s = self.settings
        floor = s.net_tolerance / 8 if s.net_tolerance > 0 else 1e-6
        netting = max(s.net_tolerance, floor) / max(max_net_ratio, floor)
        required = s.min_pair_round_trips if size == 2 else s.min_round_trips
        return math.sqrt(netting * laps / required)

    @staticmethod
    def _self_trade_evidence(row: dict[str, Any]) -> dict[str, Any]:
        """What makes a self-trader's count stand out: its own flow over the window, the burst that is least
        likely by chance, and that chance."""
        return {
            "self_trades": row["transfers_w"],
            "own_buys": row["own_buys_w"],
            "own_sells": row["own_sells_w"],
            "symbol_trades": row["symbol_trades_w"],
            "chance_self_trades": round(row["chance_self_trades_w"], 6),
            "burst": {
                "from": to_iso(row["span_start"]),
                "self_trades": row["span_self_trades"],
                "symbol_trades": row["span_trades"],
                "chance_self_trades": round(row["span_chance_self_trades"], 6),
            },
            "chance": float(f"{row['self_chance']:.4g}"),
        }

    def _with_followups(
        self, alerts: list[Alert], transfers: pl.DataFrame, newest: dict[tuple[str, str], datetime]
    ) -> list[Alert]:
        """Each alert with the group's whole scheme: its trades from `start` to `detected_at` + horizon."""
        if not alerts:
            return []
        horizon = self.followup_horizon()
        rows = [
            (index, alert.venue, alert.symbol, *link, alert.start, alert.detected_at + horizon)
            for index, alert in enumerate(alerts)
            for link in _links(alert.evidence["accounts"])
        ]
        columns = ("alert", *KEY, "seller", "buyer", "seller_position", "buyer_position", "from", "until")
        spans = pl.DataFrame(
            dict(zip(columns, zip(*rows, strict=True), strict=True)),
            schema={
                "alert": pl.Int64,
                "venue": pl.String,
                "symbol": pl.String,
                "seller": pl.String,
                "buyer": pl.String,
                "seller_position": pl.Int64,
                "buyer_position": pl.Int64,
                "from": transfers.schema.get("ts", pl.Datetime("us", "UTC")),
                "until": transfers.schema.get("ts", pl.Datetime("us", "UTC")),
            },
        )
        scheme = (
            # The members' sells only, first: one string column to match instead of four on every transfer.
            transfers.filter(pl.col("seller").is_in(spans["seller"].unique().implode()))
            .join(spans, on=[*KEY, "seller", "buyer"], maintain_order="left")
            .filter(pl.col("ts").is_between("from", "until"))
            .sort("alert", "ts_us", maintain_order=True)
            if transfers.height
            else None
        )
        bounds = (
            np.searchsorted(scheme["alert"].to_numpy(), np.arange(len(alerts) + 1))
            if scheme is not None
            else None
        )
        trades = (
            _Trades.of(scheme, scheme["buyer_position"], scheme["seller_position"])
            if scheme is not None
            else None
        )
        out = []
        for index, alert in enumerate(alerts):
            out.append(
                alert.model_copy(
                    update={
                        "followup": {
                            **alert.followup,
                            "scheme": self._followup(
                                alert,
                                trades.cut(bounds[index], bounds[index + 1]) if trades else None,
                                newest,
                            ),
                        }
                    }
                )
            )
        return out

    def _followup(
        self, alert: Alert, trades: _Trades | None, newest: dict[tuple[str, str], datetime]
    ) -> dict[str, Any]:
        """The scheme so far; `complete` once the data reach the horizon, so later trades cannot change it."""
        until = alert.detected_at + self.followup_horizon()
        latest = newest.get((alert.venue, alert.symbol))
        result: dict[str, Any] = {
            "until": to_iso(until),
            "status": "complete" if latest is not None and latest >= until else "open",
        }
        if trades is None or not trades.height:
            return result
        positions = _positions(trades, alert.evidence["accounts"])
        result.update(
            trades=trades.height,
            volume=trades.volume(),
            max_net_ratio=round(_max_net_ratio(positions), 6),
            positions=positions,
            last_trade=to_iso(trades.ts[-1]),
            **_trade_ids(trades, self.settings.max_trade_ids),
        )
        return result


class _Sets:
    """The candidate member sets' trades among their members, as arrays: each set's rows together, in tape order.

    Every cycle order of one member set (A→B→C→A and A→C→B→A) has the same trades, positions,
    volume and laps; only which links must be strong differs. So the rows are built once per
    (symbol, member set), over the cells of every bucket the set is proposed for, and the orders
    are read only for their links. A moment is an instant of a bucket's second cell; its window
    (ts − W, ts] lies in the bucket, so its rows here are exactly the group's trades in the window.
    """

    LINKS = WASH_MAX_GROUP * WASH_MAX_GROUP
    """Directed links between member positions; link LINKS stands for "no link" (an order's unused slots)."""

    def __init__(self, groups: pl.DataFrame, among: pl.DataFrame, names: pl.Series, window_us: int) -> None:
        self.window_us = window_us
        # list.eval sorts short lists many times faster than list.sort does.
        orders = groups.with_columns(set=pl.col(graph.MEMBERS).list.eval(pl.element().sort()))
        sets = orders.select("sym", "set").unique(maintain_order=True).with_row_index("set_id")
        self.members = _padded(sets["set"])
        self.size = (self.members >= 0).sum(axis=1)
        self.names = names
        # Keys (set, bucket) as one integer: buckets counted from the first cell before the tape's.
        cells = among["cell"] if among.height else pl.Series([0])
        self.first_bucket = int(cells.min()) - 1
        self.buckets = int(cells.max()) - self.first_bucket + 1
        self._orders(orders.join(sets, on=["sym", "set"]).select("set_id", "bucket", graph.MEMBERS, "until"))
        self.among = among
        self.set_id, self.source = self._rows(among, sets)
        self.ts, self.cell, self.row, self.amount, self.new, self.buyer_id, seller_id = (
            among[name].to_numpy()[self.source]
            for name in ("ts_us", "cell", "row", "amount", "new", "buyer_id", "seller_id")
        )
        own = self.members[self.set_id]
        self.buyer = np.argmax(own == self.buyer_id[:, None], axis=1)
        self.seller = np.argmax(own == seller_id[:, None], axis=1)
        self.clock = graph.window_clock(self.ts, np.diff(self.set_id, prepend=-1) != 0, window_us)
        self.window_start = np.searchsorted(self.clock, self.clock - window_us, side="right")
        self.end = np.searchsorted(self.clock, self.clock, side="right")  # past the instant's last row
        self.transfers_total = np.concatenate([[0], np.cumsum(self.new)])

    def _key(self, set_id: np.ndarray, bucket: np.ndarray) -> np.ndarray:
        return set_id * self.buckets + bucket - self.first_bucket

    def _orders(self, orders: pl.DataFrame) -> None:
        """Each proposed (set, bucket)'s cycle orders, alphabetically by their names, with their links."""
        cycle = _padded(orders[graph.MEMBERS])
        orders = orders.with_columns(ring=_named(cycle, self.names).list.join(",")).sort(
            "set_id", "bucket", "ring"
        )
        self.rings = orders["ring"]
        self.order_key = self._key(orders["set_id"].to_numpy(), orders["bucket"].to_numpy())
        self.until = orders["until"].to_numpy()  # the same for every order of one set and bucket
        cycle = _padded(orders[graph.MEMBERS])
        position = np.argmax(
            self.members[orders["set_id"].to_numpy()][:, None, :] == cycle[:, :, None], axis=2
        )
        size = (cycle >= 0).sum(axis=1, keepdims=True)
        slot = np.arange(WASH_MAX_GROUP)
        following = np.take_along_axis(position, (slot + 1) % size, axis=1)
        self.order_links = np.where(slot < size, position * WASH_MAX_GROUP + following, self.LINKS)

    def _rows(self, among: pl.DataFrame, sets: pl.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """The transfers between two members of each set (a lone account's with itself) in the cells of its
        buckets, by set and tape order: each one's set and position in `among`.

        The join is on one integer key, (low, high) and (symbol, cell) together (two where that would not
        fit in 63 bits), rather than on four columns, and carries only the positions: it is the largest
        the detector makes.
        """
        buckets = pl.DataFrame(
            {
                "set_id": self.order_key // self.buckets,
                "bucket": self.order_key % self.buckets + self.first_bucket,
            }
        )
        cells = pl.concat(
            [buckets.select("set_id", cell="bucket"), buckets.select("set_id", cell=pl.col("bucket") + 1)]
        ).unique()
        member_pairs = (  # per set, not per set and cell: a set has many cells
            sets.select("set_id", "sym", low="set", high="set", size=pl.col("set").list.len())
            .explode("low", empty_as_null=True)
            .explode("high", empty_as_null=True)
            .filter((pl.col("low") < pl.col("high")) | (pl.col("size") == 1))
        )
        pairs = cells.join(member_pairs, on="set_id")
        accounts = int(self.members.max(initial=0)) + 1
        places = self.buckets + 1
        spread = (max(int(among["sym"].max() or 0), int(sets["sym"].max() or 0)) + 1) * places
        one_key = accounts * accounts * spread < 2**63  # then (pair, place) as one integer: a faster join
        on = ["key"] if one_key else ["pair", "place"]

        def keyed(frame: pl.DataFrame, low: pl.Expr, high: pl.Expr) -> pl.DataFrame:
            pair = low * accounts + high
            place = pl.col("sym") * places + pl.col("cell") - self.first_bucket
            if one_key:
                return frame.select(pl.all(), key=pair * spread + place)
            return frame.select(pl.all(), pair=pair, place=place)

        joined = keyed(
            among.select("sym", "cell").with_row_index("source"),
            pl.min_horizontal(among["seller_id"], among["buyer_id"]),
            pl.max_horizontal(among["seller_id"], among["buyer_id"]),
        ).join(
            keyed(pairs.select("set_id", "sym", "cell"), pairs["low"], pairs["high"]).select(
                pl.col("set_id").cast(pl.Int64), *on
            ),
            on=on,
        )
        source = joined["source"].cast(pl.Int64)
        key = (joined["set_id"] * among.height + source).sort().to_numpy()  # distinct: polars' sort is faster
        return key // among.height, key % among.height

    def trades(self, rows: np.ndarray) -> pl.DataFrame:
        """The transfers at these set rows, with every column."""
        return self.among[self.source[rows]]

    def instants(self) -> np.ndarray:
        """The last row of each instant in the second cell of a bucket the set is proposed for, before
        the proposal's `until` (see `accounts_graph`)."""
        last = self.end == np.arange(self.end.size) + 1
        key = self._key(self.set_id, self.cell - 1)
        at = np.minimum(np.searchsorted(self.order_key, key), max(self.order_key.size - 1, 0))
        proposed = (
            (self.order_key[at] == key) & (self.ts < self.until[at]) if self.order_key.size else key < 0
        )
        return np.flatnonzero(last & proposed)

    def transfers(self, at: np.ndarray) -> np.ndarray:
        """Transfers in each moment's window."""
        return self.transfers_total[self.end[at]] - self.transfers_total[self.window_start[at]]

    def nets_out(self, at: np.ndarray, tolerance: float) -> np.ndarray:
        """Whether every member of each moment's set bought and sold within `tolerance` of its gross over the
        window, by rolling window sums rounded as the stream's are.

        Rolling sums are slow, and most moments are far from even: a looser test on prefix sums
        (`_near_even`) leaves only the moments worth them.
        """
        near = self._near_even(at, tolerance + graph.LOOSE_NET)
        even = np.zeros(at.size, bool)
        even[near] = self._worst_net(at[near], *self._window_sums(at[near])) <= tolerance
        return even

    def _near_even(self, at: np.ndarray, tolerance: float) -> np.ndarray:
        """Positions in `at` of the moments at which every member's window sums from prefix sums pass the
        netting test, give or take those sums' rounding: a running sum of k non-negative terms is within
        k·ε of its value. Member by member, each on the moments still left: most fail at the first."""
        first, end = self.window_start[at], self.end[at]
        slack = (
            8 * (end + 1) * np.finfo(np.float64).eps * np.concatenate([[0.0], np.cumsum(self.amount)])[end]
        )
        size = self.size[self.set_id[at]]
        near = np.arange(at.size)
        for member in range(int(self.size.max(initial=1))):
            bought, sold = (
                graph.run_sums(np.where(side == member, self.amount, 0.0), first[near], end[near])
                for side in (self.buyer, self.seller)
            )
            loose = np.abs(bought - sold) - slack[near] <= tolerance * (bought + sold)
            near = near[loose | (size[near] <= member)]
        return near

    def _worst_net(self, at: np.ndarray, bought: np.ndarray, sold: np.ndarray) -> np.ndarray:
        """Each moment's largest |bought − sold| / (bought + sold) over the members (NaN where none traded)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.abs(bought - sold) / (bought + sold)
        return np.fmax.reduce(
            np.where(np.arange(WASH_MAX_GROUP) < self.size[self.set_id[at], None], ratio, np.nan), axis=1
        )

    def _window_sums(self, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bought and sold per member over each moment's window, as rolling sums rounded as the stream's are.

        Taken over the moments' sets only (few: see `nets_out`), one set size at a time with a column
        per member.
        """
        bought, sold = np.zeros((at.size, WASH_MAX_GROUP)), np.zeros((at.size, WASH_MAX_GROUP))
        sizes = self.size[self.set_id[at]]
        for size in np.unique(sizes):
            moments = np.flatnonzero(sizes == size)
            rows = self._rows_of_sets(at[moments])
            sums = self._member_sums(rows, int(size))[np.searchsorted(rows, at[moments])].to_numpy()
            bought[moments, :size], sold[moments, :size] = sums[:, :size], sums[:, size:]
        return bought, sold

    def _rows_of_sets(self, at: np.ndarray) -> np.ndarray:
        """The rows of the moments' sets. A set's rolling sums start afresh at its first row (no window
        reaches the set before), so over these rows alone they are the same as over all."""
        chosen = np.zeros(self.size.size, bool)
        chosen[self.set_id[at]] = True
        return np.flatnonzero(chosen[self.set_id])

    def _member_sums(self, rows: np.ndarray, size: int) -> pl.DataFrame:
        """Rolling window sums of what each of the first `size` members bought, then sold, at the given rows."""
        window = f"{self.window_us}i"
        frame = pl.DataFrame(
            {
                "clock": self.clock[rows],
                "amount": self.amount[rows],
                "buyer": self.buyer[rows],
                "seller": self.seller[rows],
            }
        )

        def summed(side: str, i: int) -> pl.Expr:
            value = pl.when(pl.col(side) == i).then("amount").otherwise(0.0)
            return stable(value.rolling_sum_by("clock", window_size=window)).alias(f"{side}{i}")

        return frame.select(*(summed(side, i) for side in ("buyer", "seller") for i in range(size)))

    def moments(self, at: np.ndarray) -> pl.DataFrame:
        """The moments as rows: where, which group, and the window's transfers and volume."""
        frame = self.trades(at)
        volume = stable(pl.col("amount").rolling_sum_by("clock", window_size=f"{self.window_us}i"))
        rows = self._rows_of_sets(at)
        volumes = pl.DataFrame({"clock": self.clock[rows], "amount": self.amount[rows]}).select(volume)
        volume_w = volumes.to_series()[np.searchsorted(rows, at)]
        sets = self.set_id[at]
        accounts = _named(self.members[sets], self.names) if at.size else pl.Series(dtype=pl.List(pl.String))
        return pl.DataFrame(
            {
                "at": at,
                "size": self.size[sets],
                "venue": frame["venue"],
                "symbol": frame["symbol"],
                "ts": frame["ts"],
                "accounts": pl.Series(accounts, dtype=pl.List(pl.String)),
                "transfers_w": self.transfers(at),
                "volume_w": volume_w,
            }
        ).with_columns(group=pl.col("accounts").list.join(","))

    def strongest_order(self, at: np.ndarray, min_edge: int, min_self: int) -> np.ndarray:
        """For each moment the first cycle order (alphabetically) of its set and bucket whose every link has
        enough transfers in the window, as an index into `rings`; -1 where none has."""
        counts = np.concatenate(
            [self._link_counts(at), np.full((at.size, 1), np.iinfo(np.int64).max)], axis=1
        )
        key = self._key(self.set_id[at], self.cell[at] - 1)
        moment, order = _ranges(
            np.searchsorted(self.order_key, key), np.searchsorted(self.order_key, key, side="right")
        )
        weakest = np.take_along_axis(counts[moment], self.order_links[order], axis=1).min(axis=1)
        strong = weakest >= np.where(self.size[self.set_id[at]] == 1, min_self, min_edge)[moment]
        chosen = np.full(at.size, -1)
        hit, first = np.unique(moment[strong], return_index=True)
        chosen[hit] = order[strong][first]
        return chosen

    def _link_counts(self, at: np.ndarray) -> np.ndarray:
        """Transfers on each directed link between member positions in each moment's window."""
        counts = np.zeros((at.size, self.LINKS), np.int64)
        for batch in self._batches(at, np.zeros(at.size, np.int64)):
            counts[batch] = _Windows(self, at[batch]).link_counts()
        return counts

    def laps(
        self, at: np.ndarray, enough: np.ndarray, tolerance: float, max_legs: int, pace: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Laps completed in each moment's window (see `_Windows.laps`), counted up to `enough`, the
        transfers they hold and the chance they came so quickly (`pace`: the group's transfers per symbol
        trade in the window); 0 laps for a lone account."""
        sizes = self.size[self.set_id[at]]
        laps, covered, chance = np.zeros(at.size, np.int64), np.zeros(at.size, np.int64), np.ones(at.size)
        for batch in self._batches(at, sizes):
            size = int(sizes[batch[0]])
            if size > 1:
                laps[batch], covered[batch], chance[batch] = _Windows(self, at[batch]).laps(
                    size, enough[batch], tolerance, max_legs, pace[batch]
                )
        return laps, covered, chance

    def _batches(self, at: np.ndarray, sizes: np.ndarray) -> list[np.ndarray]:
        """Moments by group size and window length within a factor of two, in chunks of at most `_CELLS`
        padded rows: padding wastes at most half of each matrix."""
        length = self.end[at] - self.window_start[at]
        scale = np.frexp(length)[1]
        key = sizes * 64 + scale
        order = np.argsort(key, kind="stable")
        batches = []
        for chunk in np.split(order, np.flatnonzero(np.diff(key[order])) + 1) if at.size else []:
            step = max(1, _CELLS // 2 ** int(scale[chunk[0]]))
            batches += [chunk[i : i + step] for i in range(0, chunk.size, step)]
        return batches


class _Windows:
    """Moments' windows of set rows as the rows of matrices (padded with nothing), for the look-backs that
    no prefix sum gives — per-link counts and laps — vectorised over moments."""

    def __init__(self, sets: _Sets, at: np.ndarray) -> None:
        first = sets.window_start[at]
        self.length = sets.end[at] - first
        position = np.arange(int(self.length.max()))
        inside = position < self.length[:, None]
        index = np.where(inside, first[:, None] + position, 0)
        self.amount = np.where(inside, sets.amount[index], 0.0)
        self.buyer, self.seller = sets.buyer[index], sets.seller[index]
        self.first = first
        self.rows = sets.row  # tape rows: the symbol's trades between two are their difference
        self.new = inside & sets.new[index]
        ts = sets.ts[index]
        self.cut = inside & np.concatenate([np.ones((at.size, 1), bool), ts[:, 1:] != ts[:, :-1]], axis=1)

    def link_counts(self) -> np.ndarray:
        moment = np.broadcast_to(np.arange(self.length.size)[:, None], self.new.shape)
        key = moment * _Sets.LINKS + self.seller * WASH_MAX_GROUP + self.buyer
        return np.bincount(key[self.new], minlength=self.length.size * _Sets.LINKS).reshape(-1, _Sets.LINKS)

    def laps(
        self, size: int, enough: np.ndarray, tolerance: float, max_legs: int, pace: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Consecutive short stretches, counted back from the moment, in each of which every member traded
        and came back to even (within `tolerance` of its gross) in at most `max_legs` transfers per member;
        counting stops at `enough`. With them, the transfers the laps hold, and the chance that laps came
        round so quickly on the symbol's own clock: were the group's transfers spread at random over the
        symbol's trades, `pace` of them per trade, a lap closing within s trades of its first would take
        chance about min(1, s · pace); the laps' chances multiply.

        A ring passes the asset once round per lap — a handful of transfers that leave everyone even.
        A market maker and a busy trader also come back to even now and then, but only by chance
        after a long run of trades both ways, so their stretches are long and do not count.
        Sums run from the window's first row, as they would for that window alone.
        """
        count, width = self.amount.shape
        member = np.arange(size)[None, :, None]
        bought = np.where(self.buyer[:, None, :] == member, self.amount[:, None, :], 0.0)
        sold = np.where(self.seller[:, None, :] == member, self.amount[:, None, :], 0.0)
        zero = np.zeros((count, size, 1))
        net = np.concatenate([zero, np.cumsum(bought - sold, axis=2)], axis=2)
        gross = np.concatenate([zero, np.cumsum(bought + sold, axis=2)], axis=2)
        transfers = np.concatenate([np.zeros((count, 1), np.int64), np.cumsum(self.new, axis=1)], axis=1)
        moment, start = np.arange(count), np.arange(width)
        laps, end, active = np.zeros(count, np.int64), self.length.copy(), enough > 0
        log_chance = np.zeros(count)
        while active.any():
            moved_net = net[moment, :, end][:, :, None] - net[:, :, :width]
            moved = gross[moment, :, end][:, :, None] - gross[:, :, :width]
            short = transfers[moment, end][:, None] - transfers[:, :width] <= max_legs * size
            even = (
                active[:, None]
                & self.cut
                & (start < end[:, None])
                & short
                & np.all((np.abs(moved_net) <= tolerance * moved) & (moved > 0), axis=1)
            )
            found = even.any(axis=1)
            laps += found
            lap_start = np.where(found, width - 1 - np.argmax(even[:, ::-1], axis=1), end)
            opened = self.rows[self.first + np.where(found, lap_start, 0)]  # in the window where found
            trades = np.maximum(self.rows[self.first + np.maximum(end - 1, 0)] - opened, 1)
            log_chance += np.where(found, np.log(np.minimum(trades * pace, 1.0)), 0.0)
            end = lap_start
            active = found & (laps < enough)
        return laps, transfers[moment, self.length] - transfers[moment, end], np.exp(log_chance)


def _ranges(first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The ranges [first, last) laid end to end: which range each element is from, and the element."""
    lengths = last - first
    owner = np.repeat(np.arange(first.size), lengths)
    return owner, np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths) + first[owner]


def _padded(lists: pl.Series) -> np.ndarray:
    """Lists of account ids as rows of a matrix, -1 past each list's end."""
    return (
        lists.to_frame("ids")
        .select(
            pl.col("ids").list.get(i, null_on_oob=True).fill_null(-1).alias(str(i))
            for i in range(WASH_MAX_GROUP)
        )
        .to_numpy()
        .astype(np.int64)
    )


def _named(ids: np.ndarray, names: pl.Series) -> pl.Series:
    """Rows of account ids (-1 past the end, see `_padded`) as lists of names."""
    owner, slot = np.nonzero(ids >= 0)
    return (
        pl.DataFrame({"i": owner, "name": names.gather(ids[owner, slot])})
        .group_by("i", maintain_order=True)
        .agg("name")["name"]
    )


class _Tape:
    """The whole tape (accounts known or not) as arrays, for the few window look-ups per moment.

    Sums run over exactly the window's rows in file order, whatever the frame's start, so
    the stream and the batch agree to the bit.
    """

    def __init__(self, frame: pl.DataFrame, window_us: int) -> None:
        self.window_us = window_us
        sym = frame["sym"].to_numpy()
        self.times = frame["ts"]
        ts = self.times.dt.epoch("us").to_numpy()
        self.clock = graph.window_clock(ts, np.diff(sym, prepend=-1) != 0, window_us)
        self.amount = frame["amount"].to_numpy()
        self.buyer, self.seller = (frame[name].fill_null(-1).to_numpy() for name in ("buyer_id", "seller_id"))
        self.selfish = self.buyer == self.seller
        # Account ids and one slot past them, for -1 (no account): the last slot is never an account.
        self.slots = int(max(self.buyer.max(initial=-1), self.seller.max(initial=-1))) + 2
        self.instant = np.cumsum((np.diff(ts, prepend=ts[:1] - 1) != 0) | (np.diff(sym, prepend=-1) != 0))

    def trades_in_window(self, rows: np.ndarray) -> np.ndarray:
        """The symbol's trades in the window of the trade at each tape row (that trade included)."""
        lo, hi = self._windows(rows)
        return hi - lo

    def _windows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The window (ts − W, ts] of the trade at each tape row, as row bounds in its symbol's tape."""
        at = self.clock[rows]
        return (
            np.searchsorted(self.clock, at - self.window_us, side="right"),
            np.searchsorted(self.clock, at, side="right"),
        )

    def volumes(self, rows: np.ndarray) -> list[float]:
        """The symbol's traded volume in each row's window (`np.sum`'s own reduction, without its wrapper)."""
        return [float(np.add.reduce(self.amount[lo:hi])) for lo, hi in zip(*self._windows(rows), strict=True)]

    def self_trade_chance(self, rows: np.ndarray, alone: np.ndarray, accounts: np.ndarray) -> pl.DataFrame:
        """For one-account groups (nulls for larger ones): how unlikely the account's self-trades in the
        window are by chance, judged on its own flow.

        Were the account's buys and sells against others matched at random against the symbol's
        trades, it would self-trade λ = buys × sells / trades times in the window (its self-trades
        left out of all three; counts, not sizes: how often it meets itself depends on how often
        it trades). A burst is judged on its own span: from each self-trade in the window (an
        anchor) to the moment, the m self-trades there against λ scaled to the symbol's trades in
        that span (the anchor's own included), P(at least m − 1 more after the anchor); the least
        likely span counts, times the number of anchors tried. So a dozen self-trades in minutes
        stands out even for a busy account, while a busy algorithm's occasional self-match does not.
        A one-account group's moment is one of its self-trades, so every such moment has an anchor.
        """
        lone = np.flatnonzero(alone)
        account = accounts[lone]
        lo, hi = self._windows(rows[lone])
        key = account * self.amount.size
        self_rows = self._appearances(account, "self_rows")
        own_buys, own_sells, own_self = (
            np.searchsorted(where, key + hi) - np.searchsorted(where, key + lo)
            for where in (self._appearances(account, "buys"), self._appearances(account, "sells"), self_rows)
        )
        trades = hi - lo - own_self
        mean = own_buys * own_sells / np.maximum(trades, 1)  # λ over the window
        columns = {
            **self._least_likely_burst(account, lo, hi, mean / np.maximum(trades, 1), self_rows),
            "own_buys_w": own_buys,
            "own_sells_w": own_sells,
            "symbol_trades_w": trades,
            "chance_self_trades_w": mean,
        }
        others = np.flatnonzero(~alone)
        spread = {name: _spread(values, lone, rows.size) for name, values in columns.items()}
        frame = pl.DataFrame(
            {name: pl.Series(values).scatter(others, None) for name, values in spread.items()}
        )
        return frame.with_columns(
            span_start=self.times.gather(spread.pop("span_start_row")).scatter(others, None)
        ).drop("span_start_row")

    def _least_likely_burst(
        self, account: np.ndarray, lo: np.ndarray, hi: np.ndarray, rate: np.ndarray, self_rows: np.ndarray
    ) -> dict[str, np.ndarray]:
        """Per account and window [lo, hi): of the spans from each of its self-trades (an anchor) to the
        window's end, the one whose self-trades are least likely by chance — at `rate` self-trades per
        symbol trade — with that chance times the anchors tried. `self_rows`: the accounts' self-trade
        rows (see `_appearances`)."""
        key = account * self.amount.size
        selfs = self._once_per_instant(self_rows)
        first, last = np.searchsorted(selfs, key + lo), np.searchsorted(selfs, key + hi)
        owner, anchor = _ranges(first, last)
        start = selfs[anchor] - key[owner]  # each anchor's tape row
        own = np.searchsorted(self_rows, key[owner] + hi[owner]) - np.searchsorted(
            self_rows, key[owner] + start
        )
        span_trades = hi[owner] - start - own
        expected = rate[owner] * (span_trades + 1)  # + the anchor's own trade
        count = last[owner] - anchor
        chance = _poisson_at_least(count - 1, expected)
        best = _argmin_per_owner(chance, owner, account.size)
        return {
            "self_chance": np.minimum(chance[best] * (last - first), 1.0),
            "span_self_trades": count[best],
            "span_trades": span_trades[best],
            "span_chance_self_trades": expected[best],
            "span_start_row": start[best],
        }

    def _appearances(self, accounts: np.ndarray, kind: str) -> np.ndarray:
        """The trades of one kind of these accounts, sorted as one key account · rows + row: an account's
        trades in a range of rows are a range of keys. Kinds: its buys and its sells against others, and
        its self-trade rows."""
        wanted = np.zeros(self.slots, bool)
        wanted[accounts] = True  # index -1 (no account) stays unwanted
        side = self.seller if kind == "sells" else self.buyer
        chosen = wanted[side] & (self.selfish if kind.startswith("self") else ~self.selfish)
        row = np.flatnonzero(chosen)
        return np.sort(side[row] * self.amount.size + row)

    def _once_per_instant(self, self_rows: np.ndarray) -> np.ndarray:
        """Self-trade rows (keys as `_appearances` gives them) counted once per instant: one order meeting
        several of its own resting ones is one self-trade."""
        account, row = np.divmod(self_rows, self.amount.size)
        return self_rows[graph.changes(account, self.instant[row])]


def _argmin_per_owner(values: np.ndarray, owner: np.ndarray, owners: int) -> np.ndarray:
    """For each owner (elements grouped by owner, in order), the position of its smallest value (the
    first, on ties); every owner must have at least one element."""
    order = np.lexsort((np.arange(values.size), values, owner))
    return order[np.searchsorted(owner[order], np.arange(owners))]


def _symbol_parts(frame: pl.DataFrame) -> list[pl.DataFrame]:
    """The frame cut, between symbols, into runs of whole symbols of at most `PART_ROWS` rows (or one
    larger symbol).

    Every symbol is decided alone — its groups, windows, cooldowns and follow-ups never read
    another's rows — so the parts give the alerts the whole frame does. But a long tape's
    working arrays would run to hundreds of megabytes, which the allocator maps afresh for
    each temporary: faulting their pages in cost about as much as the work itself. Parts keep
    them small enough to be reused. A symbol split into several runs (an unsorted frame) is
    left whole: one part. In a batch (no stream state to advance in order) `PART_THREADS` parts
    are decided at once: one part's Python (cycles, alerts) runs while another's arrays are sorted.
    """
    starts = _symbol_starts(frame)
    if starts.size < 2 or not frame.select(KEY)[starts].is_unique().all():
        return [frame]
    bounds = [0]
    for start, end in zip(starts[1:], np.append(starts[2:], frame.height), strict=True):
        if end - bounds[-1] > PART_ROWS:
            bounds.append(int(start))
    bounds.append(frame.height)
    return [frame.slice(first, last - first) for first, last in itertools.pairwise(bounds)]


def _symbol_starts(frame: pl.DataFrame) -> np.ndarray:
    """The first row of each run of one (venue, symbol), from each column's run lengths: on strings twice
    as fast as numbering the runs of the two together."""
    starts = [np.zeros(min(frame.height, 1), np.int64)]
    for name in KEY:
        lengths = frame[name].rle().struct.field("len").to_numpy().astype(np.int64)
        starts.append(np.cumsum(lengths)[:-1])
    return np.unique(np.concatenate(starts))


def _symbol_ids(frame: pl.DataFrame) -> pl.Series:
    """Each row's run of one (venue, symbol), numbered from 0 (see `_symbol_starts`)."""
    first = np.zeros(frame.height, np.int64)
    first[_symbol_starts(frame)[1:]] = 1
    return pl.Series("sym", np.cumsum(first))


def _nothing_found(frame: pl.DataFrame, state: DetectorState | None) -> list[Alert]:
    """No transfer to check: every row is decided, nothing qualified."""
    if state is not None and not frame.is_empty():
        state.advance(KEY, frame.select(*KEY, "ts"), frame.select(*KEY, "ts").clear())
    return []


def _names_accounts(frame: pl.DataFrame) -> bool:
    """Whether any trade names both accounts (with an amount): the only rows `_transfers` keeps."""
    if "buyer" not in frame.columns or "seller" not in frame.columns:
        return False
    return bool(frame.select(_names_both("buyer", "seller").any()).item())


def _names_both(buyer: str, seller: str) -> pl.Expr:
    """A trade naming both its accounts, with an amount: what a transfer between accounts is."""
    return pl.col(buyer).is_not_null() & pl.col(seller).is_not_null() & (pl.col("amount") > 0)


def _encoded(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series]:
    """The frame with its row numbers, its symbols numbered in order and each account as an integer that
    sorts as its name, with the names in that order: the graph work then runs on integers."""
    frame = _in_total_order(frame.with_columns(_symbol_ids(frame)))
    frame = frame.with_columns(row=pl.int_range(pl.len(), dtype=pl.Int64))
    if frame.is_empty() or "buyer" not in frame.columns or "seller" not in frame.columns:
        return frame, pl.Series(dtype=pl.String)
    categories = pl.Categories.random()
    codes = frame.select(pl.col("buyer", "seller").cast(pl.Categorical(categories)))
    names = categories.to_series()
    order = names.arg_sort().to_numpy()  # distinct names: one sort gives their order and each one's rank
    rank = np.empty(order.size, np.int64)
    rank[order] = np.arange(order.size)
    ids = {f"{side}_id": pl.Series(rank).gather(codes[side].to_physical()) for side in ("buyer", "seller")}
    return frame.with_columns(**ids), names.gather(order)


def _in_total_order(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame (sorted by venue, symbol, ts) with the rows of each instant in `TIE_ORDER`.

    Which prints of one instant count as one transfer, the order of trade ids in evidence and
    the rounding of sums all follow row order; this order makes them a function of the trades
    alone. Only the rows that share their instant with another are sorted, and only when they
    are out of order: a tape already in this order costs one pass.
    """
    ties = [name for name in TIE_ORDER if name in frame.columns]
    instant = frame.select("sym", ts=pl.col("ts").dt.epoch("us"))
    sym, ts = (instant[name].to_numpy() for name in ("sym", "ts"))
    same = np.flatnonzero((sym[1:] == sym[:-1]) & (ts[1:] == ts[:-1])) + 1  # rows tied with the one before
    if not same.size or _after_previous_by(frame[ties[0]] if ties else None, same):
        return frame
    pairs = frame.select(ties)[np.stack([same - 1, same], axis=1).ravel()]  # each with the one before
    if pairs.select(_not_before_previous(ties).gather_every(2, offset=1).all()).item():
        return frame
    positions = np.union1d(same - 1, same)
    group = frame.select("sym", "ts", *ties)[positions].with_columns(position=pl.Series(positions))
    ordered = group.sort("sym", "ts", *ties, nulls_last=True, maintain_order=True)["position"].to_numpy()
    order = np.arange(frame.height)
    order[positions] = ordered
    return frame[order]


def _after_previous_by(key: pl.Series | None, rows: np.ndarray) -> bool:
    """Whether each of these rows is strictly after the one before it by the first tie key alone: then
    they are in order whatever the other keys say, and the other keys (strings mostly) need no look.
    Most tapes number their trades in order, so this one column usually settles it."""
    if key is None:
        return False
    return bool((key.gather(rows - 1) < key.gather(rows)).fill_null(False).all())


def _clipped(ratio: float) -> float:
    """A score factor that may raise or lower the score, by at most about one threshold step either way."""
    return min(max(ratio, 0.25), 2.0)


def _not_before_previous(keys: list[str]) -> pl.Expr:
    """Whether each row comes at or after the previous one in the order of `keys` (nulls last)."""
    after = pl.lit(True)
    for key in reversed(keys):
        previous, current = pl.col(key).shift(1), pl.col(key)
        later = (previous < current).fill_null(False) | (previous.is_not_null() & current.is_null())
        after = later | (previous.eq_missing(current) & after)
    return after


def _poisson_at_least(count: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """P(X ≥ count) for X Poisson with this mean (1 for no count; else 0 where the mean is 0: no own flow,
    no chance). SciPy loads here, at the first candidate group, not with the detector."""
    from scipy import special

    positive = np.where(mean > 0, special.pdtrc(count - 1, np.where(mean > 0, mean, 1.0)), 0.0)
    return np.where(count <= 0, 1.0, positive)


def _spread(values: np.ndarray, where: np.ndarray, size: int) -> np.ndarray:
    """`values` placed at positions `where` of an array of `size` (zeros elsewhere)."""
    out = np.zeros(size, values.dtype)
    out[where] = values
    return out


def _newest(transfers: pl.DataFrame) -> dict[tuple[str, str], datetime]:
    """Each symbol's latest transfer: where its follow-ups stand."""
    if transfers.is_empty():
        return {}
    ts = transfers["ts_us"].to_numpy()
    starts = np.flatnonzero(graph.changes(transfers["sym"].to_numpy()))
    # A few symbols per frame: a loop over them, not a group-by over every row.
    rows = [first + int(np.argmax(ts[first:end])) for first, end in zip(starts, [*starts[1:], ts.size])]
    newest: dict[tuple[str, str], datetime] = {}
    for venue, symbol, moment in transfers.select(*KEY, "ts")[rows].iter_rows():
        newest[venue, symbol] = max(moment, newest.get((venue, symbol), moment))
    return newest


def _member_segments(groups: pl.DataFrame, segments: pl.DataFrame) -> np.ndarray:
    """The pair segments (see `accounts_graph.PairIndex`) of every two members of each group, or
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


def _links(accounts: list[str]) -> list[tuple[str, str, int, int]]:
    """The (seller, buyer) pairs whose trades are internal to a group, with their positions in `accounts`;
    a lone account's are its self-trades."""
    if len(accounts) == 1:
        return [(accounts[0], accounts[0], 0, 0)]
    return [(a, b, i, j) for i, a in enumerate(accounts) for j, b in enumerate(accounts) if i != j]


def _positions(trades: _Trades, members: list[str]) -> dict[str, dict[str, float]]:
    """Each member's bought, sold, net and gross volume over the group's trades (sides are positions in
    `members`: integers compare many times faster than names)."""
    out = {}
    for position, member in enumerate(members):
        bought = float(trades.amount[trades.buyer == position].sum())
        sold = float(trades.amount[trades.seller == position].sum())
        out[member] = {"bought": bought, "sold": sold, "net": bought - sold, "gross": bought + sold}
    return out


def _max_net_ratio(positions: dict[str, dict[str, float]]) -> float:
    return max(abs(p["net"]) / p["gross"] if p["gross"] else 1.0 for p in positions.values())


def _trade_ids(trades: _Trades, cap: int) -> dict[str, Any]:
    ids = [trade for trade in trades.trade_id if trade is not None]
    return {"trade_ids": ids[:cap], "trade_ids_total": len(ids)}


@dataclass(frozen=True)
class _Trades:
    """Trades as arrays, cut into runs (one per alert) without a frame per run: what evidence and follow-ups read."""

    amount: np.ndarray
    buyer: np.ndarray
    """The buyer's position among the alert's accounts (sorted by name), as `seller`."""
    seller: np.ndarray
    new: np.ndarray
    ts: list[datetime]
    trade_id: list[str | None]
    amounts: pl.Series
    """`amount` as a column: its slices sum as a frame column does, without a new Series per run."""

    @classmethod
    def of(
        cls, frame: pl.DataFrame, buyer: pl.Series | np.ndarray, seller: pl.Series | np.ndarray
    ) -> _Trades:
        """The frame's trades; `buyer` and `seller`: each side's position among the alert's accounts."""
        return cls(
            frame["amount"].to_numpy(),
            np.asarray(buyer),
            np.asarray(seller),
            frame["new"].to_numpy(),
            frame["ts"].to_list(),
            frame["trade_id"].to_list(),
            frame["amount"].rechunk(),
        )

    def cut(self, first: int, last: int) -> _Trades:
        return _Trades(
            self.amount[first:last],
            self.buyer[first:last],
            self.seller[first:last],
            self.new[first:last],
            self.ts[first:last],
            self.trade_id[first:last],
            self.amounts.slice(first, last - first),  # slice(): a fraction of [:]'s cost
        )

    @property
    def height(self) -> int:
        return self.amount.size

    def volume(self) -> float:
        """Summed as a frame column is, so the figure does not depend on how the trades were gathered."""
        return float(self.amounts.sum())
