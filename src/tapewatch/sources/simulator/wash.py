"""Wash-trading scenarios: volume without a change of ownership.

Two schemes, sized and timed differently per group so that no two groups look alike:
self-trades (one or two accounts trading with themselves) and round trips in a ring of 2–5
colluding accounts (A sells to B, B to C, C back to A …), each cycle leaving every account's
position where it was, within a fraction of a percent.
"""

from __future__ import annotations

import numpy as np

from tapewatch.sources.simulator import core
from tapewatch.sources.simulator.config import SimulationConfig
from tapewatch.sources.simulator.core import US

GROUP_STRIDE = 10_000
"""maker_group ids of an episode are episode·GROUP_STRIDE + leg (one resting order per leg)."""
MIN_TRADES = 4
"""A group that the end of the simulation leaves with fewer prints is dropped (no label)."""
LEG_JITTER = 0.004
"""Relative size noise per leg: positions net to zero within about this tolerance."""


def plan_wash(spec: core.SymbolSpec, config: SimulationConfig, rng: np.random.Generator) -> list[int]:
    """Start times of wash groups: a Poisson count per symbol-day, anywhere in the day."""
    times: list[int] = []
    for lo, hi in core.day_windows(spec.duration):
        times += [int(t) for t in core.poisson_times(rng, config.wash_groups_per_symbol_day, lo, hi, [], 0)]
    return times


def inject_wash(inputs: core.ScenarioInputs, t0: int, episode: int) -> core.Injection:
    """One wash group starting at t0 (dropped if it cannot complete a cycle before the end)."""
    spec, accounts, rng = inputs.spec, inputs.accounts, inputs.rng
    size_units = spec.median_btc * float(np.exp(rng.uniform(np.log(2), np.log(30)))) / spec.p0
    n_target = int(np.clip(rng.lognormal(np.log(24), 0.6), 6, 120))
    leg_gap = float(np.exp(rng.uniform(np.log(3), np.log(120))))
    pause = float(np.exp(rng.uniform(np.log(10), np.log(900))))
    round_sizes = rng.random() < 0.4
    if rng.random() < 0.3:
        members = rng.choice(accounts.washers, size=int(rng.integers(1, 3)), replace=False)
        legs = _self_trades(rng, members, n_target, size_units)
        scheme = "self_trade"
    else:
        members = rng.choice(accounts.washers, size=int(rng.integers(2, 6)), replace=False)
        legs = _round_trips(rng, members, n_target, size_units, round_sizes)
        scheme = "round_trip"
    t = t0 + _leg_times(rng, legs["cycle"], leg_gap, pause)
    done = np.bincount(legs["cycle"], weights=(t >= spec.duration).astype(float)) == 0
    keep = done[legs["cycle"]]
    if keep.sum() < MIN_TRADES:  # cut short by the end of the simulation
        return core.Injection()
    n = int(keep.sum())
    buyer, seller, amount, t = legs["buyer"][keep], legs["seller"][keep], legs["amount"][keep], t[keep]
    buyer_takes = rng.random(n) < 0.5
    takers = core.injected_takers(
        n,
        t,
        episode,
        side=np.where(buyer_takes, 1, -1),
        amount=amount,
        account=np.where(buyer_takes, buyer, seller),
        maker_account=np.where(buyer_takes, seller, buyer),
        maker_group=episode * GROUP_STRIDE + np.arange(n),
        kind=core.WASH,
        inside=True,
    )
    out = core.Injection()
    out.takers.append(takers)
    details = {
        "scheme": scheme,
        "cycles": int(np.unique(legs["cycle"][keep]).size),
        "mean_leg_gap_s": round(leg_gap, 1),
        "round_sizes": bool(round_sizes),
    }
    out.episodes.append(
        core.Episode(
            episode,
            "wash_trading",
            int(t.min()),
            int(t.max()),
            int(t.min()),
            sorted(int(a) for a in members),
            details,
        )
    )
    return out


def _self_trades(rng: np.random.Generator, members: np.ndarray, n: int, size_units: float) -> core.Cols:
    """Each print has the same account on both sides."""
    who = rng.choice(members, n)
    amount = size_units * rng.lognormal(0.0, 0.4, n)
    return {"buyer": who, "seller": who, "amount": amount, "cycle": np.arange(n)}


def _round_trips(
    rng: np.random.Generator, members: np.ndarray, n: int, size_units: float, round_sizes: bool
) -> core.Cols:
    """Cycles around the ring; each leg of a cycle moves (almost) the same quantity."""
    k = members.size
    cycles = int(np.ceil(n / k))
    quantity = size_units * rng.lognormal(0.0, 0.3, cycles)
    if round_sizes:
        quantity = core.nice_numbers(quantity, rng, 1.0)
    rotation = rng.integers(0, k, cycles)
    leg = np.tile(np.arange(k), cycles)
    cycle = np.repeat(np.arange(cycles), k)
    seller = members[(leg + rotation[cycle]) % k]
    buyer = members[(leg + 1 + rotation[cycle]) % k]
    amount = quantity[cycle] * (1 + rng.normal(0.0, LEG_JITTER, cycle.size))
    return {"buyer": buyer, "seller": seller, "amount": amount, "cycle": cycle}


def _leg_times(rng: np.random.Generator, cycle: np.ndarray, leg_gap: float, pause: float) -> np.ndarray:
    """Offsets (µs) from the group start: legs seconds to minutes apart, pauses between cycles."""
    gaps = rng.exponential(leg_gap, cycle.size)
    new_cycle = np.concatenate([[False], cycle[1:] != cycle[:-1]])
    gaps = gaps + np.where(new_cycle, rng.exponential(pause, cycle.size), 0.0)
    gaps[0] = 0.0
    return (np.cumsum(gaps) * US).astype(np.int64)
