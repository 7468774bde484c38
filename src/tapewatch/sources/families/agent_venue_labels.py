"""agent_venue's ground truth: each episode described by what it left in the tape, and the honest
look-alikes named per symbol.

A label never claims more than the data shows: a wash episode whose legs were all taken by
outsiders, or a spoof that never executed on the other side, gets no label. Spans cover every
order event and trade the episode produced.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from tapewatch.sources.families.agent_venue_abuse import Episode
from tapewatch.sources.families.agent_venue_book import BUY, CANCEL, NEW, ORDER_COLUMNS, TRADE_COLUMNS, Tape

SIDE = {BUY: "buy", -BUY: "sell"}


class SymbolTape:
    """One symbol's tape as numpy columns, with its identifiers and conversions."""

    def __init__(self, tape: Tape, origin: datetime, index: int) -> None:
        self.t = _columns(tape.trades, TRADE_COLUMNS)
        self.o = _columns(tape.orders, ORDER_COLUMNS)
        self.origin, self.index = origin, index

    def moment(self, offset_us: int) -> datetime:
        return self.origin + timedelta(microseconds=int(offset_us))

    def trade_ids(self, rows: np.ndarray) -> np.ndarray:
        """Venue trade ids of trade rows (numbered per symbol, symbols in separate ranges)."""
        return ((self.index + 1) * 100_000_000 + rows).astype(str)

    def order_ids(self, oids: np.ndarray) -> np.ndarray:
        return ((self.index + 1) * 1_000_000_000 + oids).astype(str)


def _columns(rows: list[tuple[int, ...]], names: tuple[str, ...]) -> dict[str, np.ndarray]:
    table = np.asarray(rows, dtype=np.int64).reshape(-1, len(names))
    return {name: table[:, j] for j, name in enumerate(names)}


def episode_label(ep: Episode, tape: SymbolTape, names: list[str], lot: float) -> dict[str, Any] | None:
    """The label of one episode, or None when it left nothing a label could point at."""
    t, o = tape.t, tape.o
    own_orders = o["episode"] == ep.id
    if ep.kind in ("self_trade", "round_trip"):
        legs = (t["maker_ep"] == ep.id) & (t["taker_ep"] == ep.id)
        if not legs.any():
            return None
        details = _wash_details(ep, t, legs, names, lot)
        details["trade_ids"] = tape.trade_ids(np.flatnonzero(legs)).tolist()
        typology, touched, event = "wash_trading", legs, int(t["ts"][legs].min())
    else:
        decoy = own_orders & np.isin(o["oid"], list(ep.decoys))
        executed = (t["taker_ep"] == ep.id) | np.isin(t["maker_oid"], list(ep.executions))
        if not decoy.any() or not executed.any():
            return None
        details = _spoof_details(ep, tape, decoy, executed)
        typology, touched, event = ep.kind, executed, int(t["ts"][executed].min())
    stamps = np.concatenate([t["ts"][touched | (t["taker_ep"] == ep.id)], o["ts"][own_orders]])
    details["planned_share_of_daily_volume"] = round(ep.share, 5)
    return {
        "typology": typology,
        "start": tape.moment(stamps.min()),
        "end": tape.moment(stamps.max()),
        "event_time": tape.moment(event),
        "accounts": ",".join(names[a] for a in ep.accounts),
        "details": json.dumps(details, sort_keys=True, separators=(",", ":")),
    }


def _wash_details(
    ep: Episode, t: dict[str, np.ndarray], legs: np.ndarray, names: list[str], lot: float
) -> dict[str, Any]:
    qty, buyer, seller = t["qty"][legs], t["buyer"][legs], t["seller"][legs]
    net = {names[a]: 0.0 for a in ep.accounts}
    for b, s, q in zip(buyer.tolist(), seller.tolist(), qty.tolist(), strict=True):
        if b != s:
            net[names[b]] += q * lot
            net[names[s]] -= q * lot
    outsiders = (t["taker_ep"] == ep.id) & (t["maker_ep"] != ep.id)
    return {
        "scheme": ep.kind,
        **ep.details,
        "n_trades": int(legs.sum()),
        "self_trades": int((buyer == seller).sum()),
        "volume": round(float(qty.sum()) * lot, 10),
        "share_of_symbol_volume": round(float(qty.sum()) / max(int(t["qty"].sum()), 1), 5),
        "net_position": {k: round(v, 10) for k, v in net.items()},
        "trades_with_outsiders": int(outsiders.sum()),
    }


def _spoof_details(ep: Episode, tape: SymbolTape, decoy: np.ndarray, executed: np.ndarray) -> dict[str, Any]:
    t, o = tape.t, tape.o
    new = decoy & (o["action"] == NEW)
    placed = int(o["qty"][new].sum())
    cancelled = int(o["qty"][decoy & (o["action"] == CANCEL)].sum())
    decoy_ids = o["oid"][new]
    side = int(ep.details["execution_side"])
    return {
        "execution": ep.details["execution"],
        "execution_side": SIDE[side],
        "order_side": SIDE[-side],
        "cycles": ep.details["cycles"],
        "order_ids": tape.order_ids(decoy_ids).tolist(),
        "levels": int(np.unique(o["price"][new]).size),
        "filled_fraction": round(1 - cancelled / placed, 4) if placed else 0.0,
        "order_to_execution_size": round(placed / max(int(t["qty"][executed].sum()), 1), 2),
        "execution_trade_ids": tape.trade_ids(np.flatnonzero(executed)).tolist(),
        # a maker-style spoofer whose resting order nobody hit crosses the spread in the end
        "executions_as_maker": int((executed & np.isin(t["maker_oid"], list(ep.executions))).sum()),
    }


def summary_rows(
    tape: SymbolTape, roles: dict[str, list[int]], names: list[str]
) -> list[tuple[str, dict[str, Any]]]:
    """Whole-run honest look-alikes, measured: makers' cancel ratios, the busy algo's self-matches,
    arbitrage bots' repeat counterparties."""
    t, o = tape.t, tape.o
    rows: list[tuple[str, dict[str, Any]]] = []
    for mm in roles["makers"]:
        mine = o["account"] == mm
        placed = int((mine & (o["action"] == NEW)).sum())
        cancels = mine & (o["action"] == CANCEL)
        life = _lifetimes(o, cancels)
        rows.append(
            (
                "market_maker_ladder",
                {
                    "account": names[mm],
                    "orders": placed,
                    "cancel_ratio": round(int(cancels.sum()) / max(placed, 1), 4),
                    "cancelled_within_50ms": int((life < 50_000).sum()),
                    "ladder_pulls": _ladder_pulls(o, cancels),
                    "trades": int(((t["buyer"] == mm) | (t["seller"] == mm)).sum()),
                },
            )
        )
    for algo in roles["busy"]:
        mine = (t["buyer"] == algo) | (t["seller"] == algo)
        selfs = int(((t["buyer"] == algo) & (t["seller"] == algo)).sum())
        rows.append(
            (
                "busy_algo_self_match",
                {
                    "account": names[algo],
                    "trades": int(mine.sum()),
                    "self_matches": selfs,
                    "self_match_share": round(selfs / max(int(mine.sum()), 1), 5),
                },
            )
        )
    for arb in roles["arbs"]:
        mine = (t["buyer"] == arb) | (t["seller"] == arb)
        if not mine.any():
            continue
        other = np.where(t["buyer"][mine] == arb, t["seller"][mine], t["buyer"][mine])
        values, counts = np.unique(other, return_counts=True)
        top = int(values[counts.argmax()])
        rows.append(
            (
                "arbitrage_repeat_counterparty",
                {
                    "account": names[arb],
                    "counterparty": names[top],
                    "trades": int(mine.sum()),
                    "with_counterparty": int(counts.max()),
                },
            )
        )
    return rows


def _ladder_pulls(o: dict[str, np.ndarray], cancels: np.ndarray) -> int:
    """How often three or more orders of one side were pulled in the same µs (a layering look-alike)."""
    _, counts = np.unique(o["ts"][cancels] * 2 + (o["side"][cancels] > 0), return_counts=True)
    return int((counts >= 3).sum())


def _lifetimes(o: dict[str, np.ndarray], cancels: np.ndarray) -> np.ndarray:
    """µs from each cancelled order's `new` to its cancel."""
    new = o["action"] == NEW
    placed_at = dict(zip(o["oid"][new].tolist(), o["ts"][new].tolist(), strict=True))
    return np.asarray(
        [
            ts - placed_at[oid]
            for oid, ts in zip(o["oid"][cancels].tolist(), o["ts"][cancels].tolist(), strict=True)
        ]
    )


def organic_details(details: dict[str, Any], names: list[str]) -> str:
    """An organic event's details as JSON, account ids as names and sides as words."""
    out = dict(details)
    if "account" in out and isinstance(out["account"], int):
        out["account"] = names[out["account"]]
    if "side" in out:
        out["side"] = SIDE[int(out["side"])]
    return json.dumps(out, sort_keys=True, separators=(",", ":"), default=str)
