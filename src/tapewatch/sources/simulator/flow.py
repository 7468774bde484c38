"""Background order flow: when ordinary takers arrive, on which side, how big, and the organic
news moves and volume bursts that are not manipulation but look like it to a naive detector.

Arrivals are a Hawkes process (self-exciting clusters, built generation by generation in
vectorised form) whose immigrant rate follows the intraday cycle, a slow random activity
regime and decaying boosts after organic events.
"""

from __future__ import annotations

import numpy as np

from tapewatch.sources.simulator import core
from tapewatch.sources.simulator.config import SimulationConfig
from tapewatch.sources.simulator.core import DAY_S, MS, US

BIN_S = 10
"""Resolution of the arrival intensity (rate is piecewise constant over 10 s bins)."""
REGIME_S = 900
"""Length of one activity-regime block (15 min)."""
FILL_BASE, FILL_EXPONENT, FILL_CAP = 0.22, 0.35, 6.0
"""Extra fills of a taker order: Poisson(FILL_BASE·(notional/median)^FILL_EXPONENT), capped."""
FAST_DELAY_S, SLOW_DELAY_S, FAST_SHARE = 2.0, 45.0, 0.7
"""Hawkes kernel: a mix of a fast (reaction) and a slow (follow-through) exponential delay."""
CLUSTER_SIZE_WEIGHT = 0.5
"""Share of log-size variance common to a cluster (big orders come in runs)."""
ACCOUNT_REPEAT = 0.35
"""Probability that a triggered order comes from the same account (order splitting)."""
MM_TAKER_SHARE = 0.05
MIN_NOTIONAL_BTC = 1e-4
"""Binance's minimum order value on BTC pairs (partial fills can still print smaller)."""
FLURRY_MULTIPLE = 12.0
"""Median rate multiple at the start of a flurry."""


def mean_fills(config: SimulationConfig) -> float:
    """Expected trade prints per background taker order (sweeps and several makers per level)."""
    return 1.0 + FILL_BASE * float(np.exp((FILL_EXPONENT * config.trade_size_sigma) ** 2 / 2))


def draw_fill_counts(
    rng: np.random.Generator, notional: np.ndarray, median: float, base: float = FILL_BASE
) -> np.ndarray:
    """How many resting orders a taker order hits: bigger orders sweep more."""
    lam = np.minimum(base * (notional / median) ** FILL_EXPONENT, FILL_CAP)
    return 1 + rng.poisson(lam)


def activity(
    spec: core.SymbolSpec,
    config: SimulationConfig,
    rng: np.random.Generator,
    boosts: list[tuple[int, float, float, float]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per 10 s bin: start time, taker orders per second, probability of a buy, volatility scale."""
    n_bins = int(np.ceil(spec.duration / (BIN_S * US)))
    start = np.arange(n_bins, dtype=np.int64) * BIN_S * US
    hour = ((spec.day_offset_s + start / US) / 3600.0) % 24.0
    season = 1.0 + config.intraday_amplitude * np.cos(2 * np.pi * (hour - 15.0) / 24.0)
    n_reg = int(np.ceil(n_bins * BIN_S / REGIME_S))
    shocks = rng.normal(0.0, config.regime_volatility * np.sqrt(1 - 0.9**2), n_reg)
    log_regime = np.zeros(n_reg)
    log_regime[0] = rng.normal(0.0, config.regime_volatility)
    for i in range(1, n_reg):  # AR(1); a few hundred steps a day
        log_regime[i] = 0.9 * log_regime[i - 1] + shocks[i]
    regime = np.exp(np.repeat(log_regime, REGIME_S // BIN_S)[:n_bins])
    flurry, flurry_tilt = _boost(start, _flurries(spec, config, rng))
    level = season * regime * (1.0 + flurry)
    level /= level.mean()  # flurries are part of the baseline rate; organic events come on top
    boost, tilt = _boost(start, boosts)
    buy = 0.5 + rng.normal(0.0, 0.02) + (tilt + flurry_tilt) / (1.0 + boost + flurry)
    rate = spec.trade_rate / mean_fills(config) * level * (1.0 + boost)
    return start, rate, np.clip(buy, 0.05, 0.95), np.sqrt(level * (1.0 + boost))


def _boost(start: np.ndarray, boosts: list[tuple[int, float, float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Extra rate multiple per bin from decaying boosts, and its side tilt (boost × buy bias)."""
    boost = np.zeros(start.size)
    tilt = np.zeros(start.size)
    for t0, multiple, decay_s, bias in boosts:
        lo = max(0, int((t0 // US) // BIN_S) - 1)
        hi = min(start.size, lo + int(10 * decay_s / BIN_S) + 2)
        dt = (start[lo:hi] - t0) / US
        b = np.where(dt >= -BIN_S, multiple * np.exp(-np.maximum(dt, 0) / decay_s), 0.0)
        boost[lo:hi] += b
        tilt[lo:hi] += bias * b
    return boost, tilt


def _flurries(
    spec: core.SymbolSpec, config: SimulationConfig, rng: np.random.Generator
) -> list[tuple[int, float, float, float]]:
    """Short flurries of trading (a minute or two at several times the rate): the heavy tail of
    per-minute counts that a Hawkes process alone does not reach."""
    n = rng.poisson(config.flurries_per_day * spec.duration / (DAY_S * US))
    t = rng.integers(0, spec.duration, n)
    multiple = rng.lognormal(np.log(FLURRY_MULTIPLE), 0.8, n)
    decay = rng.uniform(15.0, 120.0, n)
    bias = rng.normal(0.0, 0.15, n)
    return [(int(a), float(b), float(c), float(d)) for a, b, c, d in zip(t, multiple, decay, bias)]


def _hawkes(
    rng: np.random.Generator,
    start: np.ndarray,
    rate: np.ndarray,
    buy: np.ndarray,
    config: SimulationConfig,
    duration: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Arrival times, sides, cluster size factors and parent links (−1 for immigrants)."""
    eta = config.hawkes_branching
    counts = rng.poisson(rate * (1.0 - eta) * BIN_S)
    t = np.repeat(start, counts) + rng.integers(0, BIN_S * US, counts.sum())
    side = np.where(rng.random(t.size) < buy[t // (BIN_S * US)], 1, -1).astype(np.int8)
    size_factor = rng.normal(0.0, 1.0, t.size)
    parent = np.full(t.size, -1, dtype=np.int64)
    times, sides, factors, parents = [t], [side], [size_factor], [parent]
    offset, gen_t, gen_side, gen_factor = 0, t, side, size_factor
    while gen_t.size:
        kids = rng.poisson(eta, gen_t.size)
        src = np.repeat(np.arange(gen_t.size), kids)
        fast = rng.random(src.size) < FAST_SHARE
        delay = rng.exponential(np.where(fast, FAST_DELAY_S, SLOW_DELAY_S)) * US
        kid_t = gen_t[src] + delay.astype(np.int64)
        inside = kid_t < duration
        src, kid_t = src[inside], kid_t[inside]
        own = rng.random(src.size) < buy[kid_t // (BIN_S * US)]
        kid_side = np.where(
            rng.random(src.size) < config.side_persistence, gen_side[src], np.where(own, 1, -1)
        ).astype(np.int8)
        kid_factor = gen_factor[src]
        times.append(kid_t)
        sides.append(kid_side)
        factors.append(kid_factor)
        parents.append(offset + src)
        offset += gen_t.size
        gen_t, gen_side, gen_factor = kid_t, kid_side, kid_factor
    return np.concatenate(times), np.concatenate(sides), np.concatenate(factors), np.concatenate(parents)


def background_takers(
    spec: core.SymbolSpec,
    config: SimulationConfig,
    accounts: core.Accounts,
    rng: np.random.Generator,
    boosts: list[tuple[int, float, float, float]],
) -> tuple[core.Cols, np.ndarray]:
    """Ordinary taker orders for one symbol, and the per-bin volatility scale for the price path."""
    start, rate, buy, vol = activity(spec, config, rng, boosts)
    t, side, factor, parent = _hawkes(rng, start, rate, buy, config, spec.duration)
    c = CLUSTER_SIZE_WEIGHT
    z = np.sqrt(1 - c * c) * rng.normal(0.0, 1.0, t.size) + c * factor
    notional = np.maximum(spec.median_btc * np.exp(config.trade_size_sigma * z), MIN_NOTIONAL_BTC)
    account = core.pick_traders(spec, accounts, rng, t.size)
    mm = rng.random(t.size) < MM_TAKER_SHARE
    account[mm] = rng.choice(spec.market_makers, size=int(mm.sum()))
    # order splitting: children of a cluster often come from the parent's account; parents
    # precede their children in the generated order, so one pass propagates the choice
    repeat = (parent >= 0) & (rng.random(t.size) < ACCOUNT_REPEAT)
    idx = np.flatnonzero(repeat)
    account[idx] = account[parent[idx]]
    takers = core.make_cols(
        core.TAKER_DEFAULTS,
        t.size,
        t=(t // MS) * MS,
        side=side,
        notional=notional,
        account=account,
        n_fills=draw_fill_counts(rng, notional, spec.median_btc),
    )
    return takers, vol


def plan_organic(
    spec: core.SymbolSpec,
    config: SimulationConfig,
    rng: np.random.Generator,
    avoid: list[tuple[int, int]],
    first_id: int,
) -> core.Injection:
    """News re-pricings and volume bursts: organic, unlabelled, and a fair test of false alarms."""
    out = core.Injection()
    margin = 30 * 60 * US
    next_id = first_id
    for lo, hi in core.day_windows(spec.duration):
        for t in core.poisson_times(rng, config.news_per_symbol_day, lo, hi, avoid, margin):
            out.merge(_news(spec, rng, int(t), next_id))
            next_id += 1
        for t in core.poisson_times(rng, config.bursts_per_symbol_day, lo, hi, avoid, margin):
            out.merge(_burst(rng, int(t), next_id))
            next_id += 1
    return out


def _news(spec: core.SymbolSpec, rng: np.random.Generator, t0: int, episode: int) -> core.Injection:
    """Information arrives: the price walks to a new level over seconds to minutes and mostly stays."""
    if rng.random() < 0.3:  # good news rallies: the pump detector's classic false alarm
        move = rng.uniform(0.06, 0.25)
    else:
        move = float(np.clip(rng.laplace(0.0, 0.04), -0.25, 0.25))
        move = float(np.sign(move) * max(abs(move), 0.015)) if move else 0.015
    move_s = float(np.clip(rng.lognormal(np.log(90), 1.0), 10, 900))
    hold_s = rng.uniform(300, 3600)
    revert_s = rng.uniform(1200, 7200)
    reversion = rng.uniform(0.0, 0.5)
    s = np.linspace(0.2, 1.0, 5)
    knots = np.concatenate(
        [[t0], t0 + s * move_s * US, [t0 + (move_s + hold_s) * US, t0 + (move_s + hold_s + revert_s) * US]]
    )
    shape = core.smoothstep(s) * (1 + rng.normal(0, 0.1, s.size))
    shape[-1] = 1.0
    values = move * np.concatenate([[0.0], shape, [1.0, 1.0 - reversion]])
    boost = rng.uniform(3, 20)
    decay = rng.uniform(120, 1200)
    out = core.Injection()
    out.curves.append(core.Curve(knots.astype(np.int64), values, persist=True))
    out.sample_times.append(np.arange(t0, t0 + int(move_s * US), 2 * US))
    out.boosts.append((t0, boost, decay, float(np.sign(move)) * rng.uniform(0.15, 0.3)))
    end = t0 + int(max(move_s, 3 * decay) * US)
    details = {
        "log_return": round(move, 4),
        "move_seconds": round(move_s, 1),
        "reversion": round(reversion, 3),
        "rate_boost": round(boost, 2),
        "boost_decay_seconds": round(decay, 1),
    }
    out.episodes.append(core.Episode(episode, "news", t0, min(end, spec.duration), t0, [], details))
    return out


def _burst(rng: np.random.Generator, t0: int, episode: int) -> core.Injection:
    """A burst of ordinary trading with no lasting price move (a whale working an order, a rumour)."""
    boost = rng.uniform(3, 12)
    decay = rng.uniform(60, 600)
    bias = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.0, 0.2))
    out = core.Injection()
    out.boosts.append((t0, boost, decay, bias))
    details = {
        "rate_boost": round(boost, 2),
        "boost_decay_seconds": round(decay, 1),
        "buy_bias": round(bias, 3),
    }
    out.episodes.append(core.Episode(episode, "volume_burst", t0, t0 + int(3 * decay * US), t0, [], details))
    return out
