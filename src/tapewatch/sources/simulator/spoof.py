"""Spoofing and layering scenarios: large orders near the touch that are never meant to trade.

The spoofer rests one or two big orders (spoofing) or a stack at successive levels (layering)
on one side, other traders lean the same way and the touch moves, the spoofer trades on the
other side (aggressively, or by having a resting order lifted), then cancels the big orders
seconds later, unfilled or barely touched.
"""

from __future__ import annotations

import numpy as np

from tapewatch.sources.simulator import core
from tapewatch.sources.simulator.config import SimulationConfig
from tapewatch.sources.simulator.core import MS, US
from tapewatch.sources.simulator.wash import GROUP_STRIDE

BUSY_TRADERS = 30
"""Occasional spoofers are drawn from the busiest ordinary traders of the symbol."""
PASSIVE_GROUP = GROUP_STRIDE - 1


def plan_spoofs(
    spec: core.SymbolSpec, config: SimulationConfig, rng: np.random.Generator, avoid: list[tuple[int, int]]
) -> list[int]:
    """Episode times: a Poisson count per symbol-day, kept clear of pumps."""
    times: list[int] = []
    for lo, hi in core.day_windows(spec.duration):
        hi = min(hi, spec.duration - 5 * 60 * US)
        times += [
            int(t) for t in core.poisson_times(rng, config.spoofs_per_symbol_day, lo, hi, avoid, 10 * 60 * US)
        ]
    return times


def inject_spoof(inputs: core.ScenarioInputs, t0: int, episode: int, first_order: int) -> core.Injection:
    """One spoofing or layering episode starting at t0; `first_order` is its first resting order's index."""
    spec, config, accounts, rng = inputs.spec, inputs.config, inputs.accounts, inputs.rng
    side = int(rng.choice([1, -1]))
    layering = rng.random() < config.layering_share
    dedicated = rng.random() < 0.5
    busy = accounts.traders[np.argsort(spec.weight)[-BUSY_TRADERS:]]
    spoofer = int(rng.choice(accounts.spoofers if dedicated else busy))
    partial = rng.random() < 0.25
    orders = _spoof_orders(spec, rng, t0, side, layering, partial, spoofer, episode)
    placed = int(orders["t"].max())

    ramp0 = placed + int(rng.uniform(0.3, 2.0) * US)
    ramp1 = ramp0 + int(rng.uniform(2.0, 8.0) * US)
    execute = ramp1 + int(rng.uniform(0.0, 5.0) * US)
    aggressive = rng.random() < 0.6
    if aggressive:
        exec_takers = _aggressive(spec, rng, execute, side, spoofer, episode)
    else:
        exec_takers = _passive(spec, accounts, rng, execute, side, spoofer, episode)
    last_exec = int(exec_takers["t"].max())
    cancel = (
        last_exec + int(rng.uniform(0.2, 4.0) * US) + np.sort(rng.integers(0, 300 * MS, orders["t"].size))
    )
    orders["t_cancel"] = cancel
    induced = _induced(spec, accounts, rng, ramp0, int(cancel.max()), side, spoofer, episode)

    out = core.Injection()
    out.orders.append(orders)
    out.takers += [exec_takers, induced]
    if partial:
        out.takers.append(_hit(spec, accounts, rng, int(orders["t"][0]), side, spoofer, episode, first_order))
    # pressure moves the touch a few tenths of a percent, but at least one tick (coins priced in
    # a few dozen ticks move a whole tick, a few percent, which is what spoofers there exploit)
    move = rng.uniform(0.0015, 0.006) if layering else rng.uniform(0.001, 0.004)
    move_ticks = max(1.0, move / spec.tick_rel)
    settle = int(cancel.max()) + int(rng.uniform(10, 60) * US)
    knots = np.array([ramp0, ramp1, int(cancel.min()), settle], dtype=np.int64)
    out.curves.append(core.Curve(knots, side * move_ticks * spec.tick_rel * np.array([0.0, 1.0, 1.0, 0.0])))
    out.sample_times.append(np.arange(ramp0, settle, 500 * MS))
    details = {
        "side": "buy" if side > 0 else "sell",
        "levels": int(np.unique(orders["offset"]).size),
        "orders": int(orders["t"].size),
        "execution": "aggressive" if aggressive else "passive",
        "dedicated_account": bool(dedicated),
        "planned_move_ticks": round(float(move_ticks), 2),
        "spoof_notional_btc": round(float(orders["notional"].sum()), 6),
    }
    typology = "layering" if layering else "spoofing"
    out.episodes.append(
        core.Episode(
            episode, typology, int(orders["t"].min()), int(cancel.max()), execute, [spoofer], details
        )
    )
    return out


def _spoof_orders(
    spec: core.SymbolSpec,
    rng: np.random.Generator,
    t0: int,
    side: int,
    layering: bool,
    partial: bool,
    spoofer: int,
    episode: int,
) -> core.Cols:
    """The big resting orders: a stack of 3–6 levels (layering) or one or two at the touch (spoofing)."""
    if layering:
        n = int(rng.integers(3, 7))
        offset = np.arange(n) + (0 if partial or rng.random() < 0.6 else 1)
        scale = np.linspace(1.0, 0.6, n)
    else:
        n = int(rng.integers(1, 3))
        offset = np.full(n, 0 if partial or rng.random() < 0.6 else 1)
        scale = np.ones(n)
    t = t0 + np.concatenate([[0], np.cumsum(rng.integers(50 * MS, 800 * MS, n - 1))])
    notional = spec.median_btc * rng.uniform(8, 40) * scale * rng.lognormal(0.0, 0.2, n)
    return core.make_cols(
        core.ORDER_DEFAULTS,
        n,
        t=t,
        t_cancel=t,
        side=side,
        offset=offset * spec.gap,
        notional=notional,
        account=spoofer,
        episode=episode,
    )


def _others(accounts: core.Accounts, spoofer: int) -> np.ndarray:
    """Traders other than the spoofer (the people reacting to the fake pressure)."""
    return accounts.traders[accounts.traders != spoofer]


def _aggressive(
    spec: core.SymbolSpec, rng: np.random.Generator, t: int, side: int, spoofer: int, episode: int
) -> core.Cols:
    """The spoofer hits the other side once the touch has moved."""
    n = int(rng.integers(1, 4))
    times = t + (np.cumsum(rng.uniform(0.0, 2.0, n)) * US).astype(np.int64)
    return core.injected_takers(
        n,
        times,
        episode,
        side=-side,
        account=spoofer,
        kind=core.SPOOF_EXEC,
        notional=spec.median_btc * rng.uniform(1, 6, n),
        n_fills=1,  # takes the touch the pressure created, without sweeping
    )


def _passive(
    spec: core.SymbolSpec,
    accounts: core.Accounts,
    rng: np.random.Generator,
    t: int,
    side: int,
    spoofer: int,
    episode: int,
) -> core.Cols:
    """The spoofer's resting order on the other side is lifted by traders leaning the spoof's way."""
    n = int(rng.integers(1, 4))
    times = t + (np.cumsum(rng.uniform(0.2, 3.0, n)) * US).astype(np.int64)
    return core.injected_takers(
        n,
        times,
        episode,
        side=side,
        account=rng.choice(_others(accounts, spoofer), n),
        maker_account=spoofer,
        maker_group=episode * GROUP_STRIDE + PASSIVE_GROUP,
        kind=core.SPOOF_INDUCED,
        notional=spec.median_btc * rng.uniform(1, 4, n),
    )


def _induced(
    spec: core.SymbolSpec,
    accounts: core.Accounts,
    rng: np.random.Generator,
    lo: int,
    hi: int,
    side: int,
    spoofer: int,
    episode: int,
) -> core.Cols:
    """Other traders react to the apparent pressure and trade the spoof's way."""
    n = int(rng.integers(2, 9))
    times = np.sort(rng.integers(lo, max(hi, lo + 1), n))
    return core.injected_takers(
        n,
        times,
        episode,
        side=side,
        account=rng.choice(_others(accounts, spoofer), n),
        notional=spec.median_btc * rng.lognormal(0.0, 1.0, n),
        n_fills=1 + rng.poisson(0.3, n),
        kind=core.SPOOF_INDUCED,
    )


def _hit(
    spec: core.SymbolSpec,
    accounts: core.Accounts,
    rng: np.random.Generator,
    placed: int,
    side: int,
    spoofer: int,
    episode: int,
    order_index: int,
) -> core.Cols:
    """Someone trades a sliver against the first spoof order before it is pulled (the 'barely filled' case)."""
    t = placed + int(rng.uniform(0.05, 0.3) * US)
    return core.injected_takers(
        1,
        t + MS,  # lands in the millisecond after the one t falls in
        episode,
        side=-side,
        account=rng.choice(_others(accounts, spoofer)),
        maker_account=spoofer,
        explicit_order=order_index,
        kind=core.SPOOF_HIT,
        notional=spec.median_btc * 0.5,
    )
