"""Labels from what the tape shows: each episode's span, accounts and facts read off the
generated trades and order events (a label never claims more than the data holds)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from tapewatch.sources.families.hawkes_lob_agents import Episode
from tapewatch.sources.families.hawkes_lob_book import FILL, NEW

if TYPE_CHECKING:
    from tapewatch.sources.families.hawkes_lob import SymbolRun

HOUR_US = 3600 * 1_000_000


def order_key(k: int, oid: int | np.ndarray) -> Any:
    """The public order id of engine order `oid` on symbol k (unique across the venue)."""
    return oid + (k + 1) * 10**9


def trade_key(k: int, n: int | np.ndarray) -> Any:
    """The public trade id of symbol k's n-th trade (0-based)."""
    return n + 1 + (k + 1) * 10**9


class _Tape:
    """One symbol's trades and events as named columns (engine units: µs, lots, indices)."""

    def __init__(self, run: SymbolRun) -> None:
        (self.t, _, self.lots, self.side, self.buyer, self.seller, self.maker_tag, self.taker_tag,
         self.maker_oid, self.taker_oid) = run.trades.T  # fmt: skip
        self.e_t, self.e_oid, _, _, _, self.e_lots, self.e_action, self.e_tag = run.events.T


def label_rows(
    run: SymbolRun, k: int, venue: str, origin: datetime, names: list[str]
) -> list[dict[str, Any]]:
    """One LABEL_SCHEMA row per episode that left a trace in the data."""
    tape = _Tape(run)
    rows = []
    for episode in run.episodes:
        facts = (
            _wash(tape, episode, run, k)
            if episode.typology == "wash_trading"
            else _spoof(tape, episode, run, k)
        )
        if facts is None:
            continue
        start, end, moment, details = facts
        rows.append(
            {
                "typology": episode.typology,
                "venue": venue,
                "symbol": run.symbol.name,
                "start": _at(origin, start),
                "end": _at(origin, end),
                "event_time": _at(origin, moment),
                "accounts": ",".join(names[a] for a in episode.accounts),
                "details": json.dumps(_named(details, names), sort_keys=True, separators=(",", ":")),
            }
        )
    return rows


def organic_rows(run: SymbolRun, venue: str, origin: datetime, names: list[str]) -> list[dict[str, Any]]:
    """The honest look-alikes (market makers, busy algorithms, whales, pairs, icebergs)."""
    return [
        {
            "kind": entry["kind"],
            "venue": venue,
            "symbol": run.symbol.name,
            "start": _at(origin, entry["start"]),
            "end": _at(origin, entry["end"]),
            "details": json.dumps({"accounts": [names[a] for a in entry["accounts"]]}),
        }
        for entry in run.log
    ]


def _wash(tape: _Tape, episode: Episode, run: SymbolRun, k: int) -> tuple[int, int, int, dict] | None:
    """The scheme's trades (both orders the episode's) and each member's net over them."""
    legs = np.flatnonzero((tape.maker_tag == episode.id) & (tape.taker_tag == episode.id))
    if legs.size == 0:
        return None
    own = tape.e_tag == episode.id
    lot = run.symbol.lot
    net = {a: 0 for a in episode.accounts}
    traded = {a: 0 for a in episode.accounts}
    for i in legs.tolist():
        net[int(tape.buyer[i])] += int(tape.lots[i])
        net[int(tape.seller[i])] -= int(tape.lots[i])
        traded[int(tape.buyer[i])] += int(tape.lots[i])
        traded[int(tape.seller[i])] += int(tape.lots[i])
    first = int(tape.t[legs[0]])
    around = np.abs(tape.t - first) <= HOUR_US // 2
    volume = int(tape.lots[legs].sum())
    details = {
        "scheme": episode.scheme,
        "n_trades": int(legs.size),
        "self_trades": int((tape.buyer[legs] == tape.seller[legs]).sum()),
        "volume": round(volume * lot, 8),
        "hour_volume_share": round(volume / max(int(tape.lots[around].sum()), 1), 5),
        "net_position": {a: round(v * lot, 8) for a, v in net.items()},
        "max_net_share": round(max(abs(net[a]) / max(traded[a] / 2, 1) for a in net), 5),
        "trade_ids": [str(trade_key(k, int(i))) for i in legs],
    }
    return int(tape.e_t[own].min()), int(tape.e_t[own].max()), first, details


def _spoof(tape: _Tape, episode: Episode, run: SymbolRun, k: int) -> tuple[int, int, int, dict] | None:
    """The spoof orders (distance, size, fill) and the spoofer's executions on the other side."""
    placed = episode.facts.get("spoof_order", [])
    if not placed:
        return None
    spoof_ids = np.array([oid for oid, _ in placed])
    exec_ids = np.array(episode.facts.get("execution_order", []), dtype=np.int64)
    own = tape.e_tag == episode.id
    is_spoof = np.isin(tape.e_oid, spoof_ids)
    posted = tape.e_lots[is_spoof & (tape.e_action == NEW)].sum()
    filled = tape.e_lots[is_spoof & (tape.e_action == FILL)].sum()
    as_maker = np.isin(tape.maker_oid, exec_ids)
    executions = np.flatnonzero(as_maker | np.isin(tape.taker_oid, exec_ids))
    start, end = int(tape.e_t[own].min()), int(tape.e_t[own].max())
    moment = int(tape.t[executions[0]]) if executions.size else start
    details = {
        "order_ids": [str(order_key(k, int(oid))) for oid in spoof_ids],
        "ticks_behind_touch": [d for _, d in placed],
        "size_multiple": round(float(posted) / len(spoof_ids) / _typical(tape, start), 2),
        "filled_fraction": round(float(filled) / max(float(posted), 1.0), 4),
        "execution_trade_ids": [str(trade_key(k, int(i))) for i in executions],
        "execution_roles": sorted({"maker" if as_maker[i] else "taker" for i in executions}),
    }
    return start, end, moment, details


def _typical(tape: _Tape, before: int) -> float:
    """Median size of the 2,000 orders entered last before `before`."""
    sizes = tape.e_lots[(tape.e_action == NEW) & (tape.e_t < before)][-2000:]
    return float(np.median(sizes)) if sizes.size else 1.0


def _named(details: dict, names: list[str]) -> dict:
    """Account indices in `net_position` as the venue's account ids."""
    if "net_position" in details:
        details = {**details, "net_position": {names[a]: v for a, v in details["net_position"].items()}}
    return details


def _at(origin: datetime, us: int) -> datetime:
    return origin + timedelta(microseconds=int(us))
