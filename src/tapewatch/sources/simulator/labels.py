"""Ground-truth labels: each injected episode described by what actually happened in the tape.

Planned parameters (target gain, scheme, …) are kept, and observed facts are added from the
generated trades and orders (trade ids, order ids, peak gain, net positions), so a label
never claims more than the data shows.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import polars as pl

from tapewatch.records import TIME, to_iso
from tapewatch.sources.simulator.core import PUMP_RUSH, SPOOF_HIT, Episode

LABEL_SCHEMA: dict[str, pl.DataType] = {
    "typology": pl.String(),
    "venue": pl.String(),
    "symbol": pl.String(),
    "start": TIME,
    "end": TIME,
    "event_time": TIME,
    "accounts": pl.String(),
    "details": pl.String(),
}
ORGANIC_SCHEMA: dict[str, pl.DataType] = {
    "kind": pl.String(),
    "venue": pl.String(),
    "symbol": pl.String(),
    "start": TIME,
    "end": TIME,
    "details": pl.String(),
}
BASELINE_WINDOW_S = 3 * 3600


Facts = tuple[datetime, datetime, datetime, dict[str, Any]] | None
"""(start, end, event_time, details) of a label, or None when the episode left no trace."""


def _json(details: dict[str, Any], origin: datetime) -> str:
    """Details as compact JSON; internal µs offsets (keys ending in _us) become ISO times."""

    def convert(value: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for key, item in value.items():
                if key.endswith("_us") and isinstance(item, int):
                    out[key[:-3]] = to_iso(origin + timedelta(microseconds=item))
                else:
                    out[key] = convert(item)
            return out
        return value

    return json.dumps(convert(details), sort_keys=True, separators=(",", ":"))


def _moment(origin: datetime, offset_us: int) -> datetime:
    """An internal µs offset as a UTC moment."""
    return origin + timedelta(microseconds=int(offset_us))


def label_rows(
    episodes: list[Episode],
    trades: pl.DataFrame,
    orders: pl.DataFrame,
    names: list[str],
    venue: str,
    symbol: str,
    origin: datetime,
) -> list[dict[str, Any]]:
    """One label row per episode that left a trace in the data (episodes cut off by the end are dropped)."""
    out = []
    for episode in episodes:
        builder = {"pump_and_dump": _pump, "wash_trading": _wash, "spoofing": _spoof, "layering": _spoof}[
            episode.typology
        ]
        row = builder(episode, trades, orders, names, origin)
        if row is None:
            continue
        start, end, event_time, details = row
        out.append(
            {
                "typology": episode.typology,
                "venue": venue,
                "symbol": symbol,
                "start": start,
                "end": end,
                "event_time": event_time,
                "accounts": ",".join(names[a] for a in episode.accounts),
                "details": _json(details, origin),
            }
        )
    return out


def organic_rows(
    episodes: list[Episode], venue: str, symbol: str, origin: datetime, duration: int
) -> list[dict[str, Any]]:
    """Unlabelled organic events (news, bursts), for analysing false alarms."""
    return [
        {
            "kind": e.typology,
            "venue": venue,
            "symbol": symbol,
            "start": _moment(origin, e.start),
            "end": _moment(origin, min(e.end, duration)),
            "details": _json(e.details, origin),
        }
        for e in episodes
    ]


def _pump(
    episode: Episode, trades: pl.DataFrame, orders: pl.DataFrame, names: list[str], origin: datetime
) -> Facts:
    """Observed pump facts: pre-pump and peak price, the rush's rate and same-ms share, its buyers."""
    start, end, announced = (_moment(origin, v) for v in (episode.start, episode.end, episode.event_time))
    before = trades.filter(pl.col("ts") < start)
    window = trades.filter(pl.col("ts").is_between(start, end))
    if before.is_empty() or window.is_empty():
        return None
    pre = float(before["price"][-1])
    peak = float(window["price"].max())
    rush = window.filter((pl.col("_episode") == episode.id) & (pl.col("_kind") == PUMP_RUSH))
    first = trades.filter(
        pl.col("ts").is_between(announced, announced + timedelta(seconds=120), closed="left")
    ).height
    base_lo = max(origin, start - timedelta(seconds=BASELINE_WINDOW_S))
    base_hi = start - timedelta(minutes=5)
    span = max((base_hi - base_lo).total_seconds(), 1.0)
    base = trades.filter(pl.col("ts").is_between(base_lo, base_hi, closed="left")).height / span * 120
    details = dict(episode.details)
    details.update(
        {
            "pre_price": pre,
            "peak_price": peak,
            "observed_gain": round(peak / pre - 1, 4),
            "trades_in_window": window.height,
            "trades_first_2min": first,
            "baseline_trades_per_2min": round(base, 2),
            "rate_multiplier_first_2min": round(first / base, 1) if base > 0 else None,
            "rate_multiplier_window": round(window.height / (base * (end - start).total_seconds() / 120), 1)
            if base > 0
            else None,
            "rush_same_ms_share": round(float(rush["ts"].is_duplicated().mean()), 3) if rush.height else 0.0,
            "participants": int(rush["buyer"].n_unique()) if rush.height else 0,
        }
    )
    return start, end, announced, details


def _wash(
    episode: Episode, trades: pl.DataFrame, orders: pl.DataFrame, names: list[str], origin: datetime
) -> Facts:
    """The group's trades as they printed, and each member's net position over them."""
    legs = trades.filter(pl.col("_episode") == episode.id)
    if legs.is_empty():
        return None
    members = [names[a] for a in episode.accounts]
    bought = legs.group_by("buyer").agg(pl.col("amount").sum()).rows()
    sold = legs.group_by("seller").agg(pl.col("amount").sum()).rows()
    net = {m: 0.0 for m in members}
    volume = {m: 0.0 for m in members}
    for who, amount in bought:
        net[who] += amount
        volume[who] += amount
    for who, amount in sold:
        net[who] -= amount
        volume[who] += amount
    details = dict(episode.details)
    details.update(
        {
            "n_trades": legs.height,
            "self_trades": int((legs["buyer"] == legs["seller"]).sum()),
            "volume": round(float(legs["amount"].sum()), 8),
            "volume_btc": round(float((legs["price"] * legs["amount"]).sum()), 8),
            "net_position": {m: round(v, 8) for m, v in net.items()},
            "max_net_share": round(max(abs(net[m]) / max(volume[m] / 2, 1e-12) for m in members), 5),
            "trade_ids": legs["trade_id"].to_list(),
        }
    )
    return legs["ts"].min(), legs["ts"].max(), legs["ts"].min(), details


def _spoof(
    episode: Episode, trades: pl.DataFrame, orders: pl.DataFrame, names: list[str], origin: datetime
) -> Facts:
    """The spoof orders' ids and fill share, and the spoofer's trades on the other side."""
    own = orders.filter(pl.col("_episode") == episode.id)
    if own.is_empty():
        return None
    spoofer = names[episode.accounts[0]]
    new = own.filter(pl.col("action") == "new")
    filled = float(own.filter(pl.col("action") == "fill")["amount"].sum())
    legs = trades.filter((pl.col("_episode") == episode.id) & (pl.col("_kind") != SPOOF_HIT))
    legs = legs.filter((pl.col("buyer") == spoofer) | (pl.col("seller") == spoofer))
    spoofer_order = (
        pl.when((pl.col("side") == "buy") == (pl.col("buyer") == spoofer))
        .then("_taker_order")
        .otherwise("_maker_order")
    )
    event_time = legs["ts"].min() if legs.height else _moment(origin, episode.event_time)
    last_cancel = own["ts"].max()
    details = dict(episode.details)
    details.update(
        {
            "order_ids": new["order_id"].to_list(),
            "filled_fraction": round(filled / float(new["amount"].sum()), 4),
            "execution_trade_ids": legs["trade_id"].to_list(),
            "execution_order_ids": sorted(set(legs.select(spoofer_order.cast(pl.String))[:, 0].to_list())),
            # the market moved against the spoof and it was pulled before the other-side trade
            "pulled_before_execution": bool(legs.height and last_cancel < event_time),
        }
    )
    end = max(last_cancel, legs["ts"].max()) if legs.height else last_cancel
    return own["ts"].min(), end, event_time, details
