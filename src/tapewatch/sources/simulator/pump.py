"""Pump-and-dump scenarios: quiet accumulation, an announcement at a round time, a rush of
buyers from many accounts sweeping the book within seconds, then the organisers' dump.

Shaped on the real Telegram pumps in the dev data: peaks of +10…+150 % reached 3–60 s after
the announcement, hundreds of prints in the first minute (several in one millisecond), and
the price back near its start within minutes.
"""

from __future__ import annotations

import numpy as np

from tapewatch.sources.simulator import core
from tapewatch.sources.simulator.config import SimulationConfig
from tapewatch.sources.simulator.core import DAY_S, MS, US

CROWD_SHARE = 0.7
"""Share of pump buyers who are channel members rather than regular traders of the coin."""
AFTER_PEAK_FILLS = 0.6
"""Extra fills per order after the peak (the book is thinner, orders smaller)."""
SAME_MS_SHARE = 0.25
"""Share of rush orders landing in the same millisecond as the previous one (bots, one signal)."""
DUMP_TAIL_S = 1800
"""Room kept after an announcement before the simulation ends (for the dump to play out)."""


def plan_pumps(spec: core.SymbolSpec, config: SimulationConfig, rng: np.random.Generator) -> list[int]:
    """Announcement times: a Poisson count per symbol-day, never in the warm-up, never overlapping."""
    earliest = int(config.pump_warmup_hours * 3600 * US)
    latest = spec.duration - DUMP_TAIL_S * US
    gap = int(config.pump_min_gap_hours * 3600 * US)
    chosen: list[int] = []
    for lo, hi in core.day_windows(spec.duration):
        count = rng.poisson(config.pumps_per_symbol_day * (hi - lo) / (DAY_S * US))
        a, b = max(lo, earliest), min(hi, latest)
        for _ in range(count):
            for _attempt in range(20):
                if b <= a:
                    break
                t = _round_time(rng, int(rng.integers(a, b)), a, b)
                if all(abs(t - other) >= gap for other in chosen):
                    chosen.append(t)
                    break
    return sorted(chosen)


def _round_time(rng: np.random.Generator, t: int, lo: int, hi: int) -> int:
    """Pump groups announce on the hour or half hour, otherwise on a whole minute."""
    unit = (3600 if rng.random() < 0.5 else 1800) if rng.random() < 0.7 else 60
    snapped = round(t / (unit * US)) * unit * US
    return snapped if lo <= snapped < hi else (t // (60 * US)) * 60 * US


def _group_same_ms(rng: np.random.Generator, t: np.ndarray) -> np.ndarray:
    """Sorted times where a share of orders join the previous one's millisecond."""
    t = np.sort(t)
    join = rng.random(t.size) < SAME_MS_SHARE
    join[0] = False
    head = np.maximum.accumulate(np.where(join, 0, np.arange(t.size)))
    return t[head]


def inject_pump(inputs: core.ScenarioInputs, t0: int, episode: int) -> core.Injection:
    """One pump-and-dump announced at t0, with its price curve, orders and ground-truth episode."""
    spec, config, accounts, rng = inputs.spec, inputs.config, inputs.accounts, inputs.rng
    low, high = config.pump_gain_range
    gain = float(np.clip(np.exp(rng.normal(np.log(0.35), 0.6)), low, high))
    peak_s = float(np.clip(rng.lognormal(np.log(20.0), 0.7), 3.0, 60.0))
    dump_s = rng.uniform(120, 720)
    residual = float(np.clip(rng.normal(-0.02, 0.05), -0.12, 0.10))
    m_low, m_high = config.pump_rate_multiplier
    multiplier = float(np.exp(rng.uniform(np.log(m_low), np.log(m_high))))
    delay_s = rng.uniform(0.3, 3.0)
    organisers = rng.choice(accounts.organisers, size=int(rng.integers(1, 4)), replace=False)
    t_peak = t0 + int((delay_s + peak_s) * US)
    t_end = t_peak + int(dump_s * US)

    out = core.Injection()
    insiders = _insiders(spec, accounts, rng, t0, episode) if rng.random() < 0.5 else None
    window_s = delay_s + peak_s + dump_s
    rush = _rush(spec, accounts, rng, t0, delay_s, t_peak, window_s, multiplier, organisers, episode)
    dump = _dump(spec, rng, t_peak, peak_s, dump_s, organisers, episode)
    out.takers += [rush, dump] + ([insiders] if insiders is not None else [])
    start = int(min(t0, rush["t"].min(), insiders["t"].min() if insiders is not None else t0))
    out.curves.append(_curve(rng, start, t0, delay_s, peak_s, t_peak, dump_s, gain, residual))
    out.sample_times.append(np.arange(start - 2 * US, t_end, 250 * MS))

    accumulation = None
    if rng.random() < 0.6:
        accumulation = _accumulate(spec, rng, t0, organisers, episode, out)
    details = {
        "announced_at_us": t0,
        "planned_gain": round(gain, 4),
        "time_to_peak_s": round(delay_s + peak_s, 2),
        "dump_seconds": round(dump_s, 1),
        "residual_log_return": round(residual, 4),
        "rate_multiplier_target": round(multiplier, 1),
        "participants": int(np.unique(rush["account"]).size),
        "insiders": 0 if insiders is None else int(insiders["t"].size),
        "accumulation": accumulation,
    }
    end = int(max(t_end, dump["t"].max()))
    out.episodes.append(
        core.Episode(episode, "pump_and_dump", start, end, t0, [int(a) for a in organisers], details)
    )
    return out


def _rush(
    spec: core.SymbolSpec,
    accounts: core.Accounts,
    rng: np.random.Generator,
    t0: int,
    delay_s: float,
    t_peak: int,
    window_s: float,
    multiplier: float,
    organisers: np.ndarray,
    episode: int,
) -> core.Cols:
    """Participants' market buys: a gamma-shaped burst, buys before the peak, profit-taking after."""
    extra = rng.uniform(0.5, 2.0)
    wanted = multiplier * spec.trade_rate * window_s  # prints from the announcement to the dump's end
    offsets = delay_s + _rush_delays(rng, int(4 * wanted) + 20)
    rising = t0 + offsets * US <= t_peak
    expected = np.where(offsets < window_s, np.where(rising, 1.0 + extra, 1.0 + AFTER_PEAK_FILLS), 0.0)
    offsets = offsets[: max(1, int(np.searchsorted(np.cumsum(expected), wanted)) + 1)]
    t = _group_same_ms(rng, t0 + (offsets * US).astype(np.int64))
    t = np.concatenate([t, [t_peak]])  # somebody always buys the top
    after = np.maximum(t - t_peak, 0) / US
    p_buy = np.where(t <= t_peak, 0.93, 0.35 + 0.55 * np.exp(-after / 60.0))
    side = np.where(rng.random(t.size) < p_buy, 1, -1)
    side[-1] = 1
    n = t.size
    n_fills = np.where(t <= t_peak, 1 + rng.poisson(extra, n), 1 + rng.poisson(AFTER_PEAK_FILLS, n))
    n_fills[-1] = 3 + rng.poisson(2.0)
    ladder = (side > 0) & (rng.random(n) < 0.3)  # organisers' sell ladder fills the rush
    maker = np.where(ladder, rng.choice(organisers, n), -1)
    return core.injected_takers(
        n,
        t,
        episode,
        side=side,
        notional=spec.median_btc * 8 * rng.lognormal(0.0, 1.0, n),
        account=_participants(accounts, rng, n),
        kind=core.PUMP_RUSH,
        n_fills=n_fills,
        maker_account=maker,
    )


def _participants(accounts: core.Accounts, rng: np.random.Generator, n: int) -> np.ndarray:
    """Mostly channel members who appear only in pumps, some regular traders joining in."""
    regular = rng.choice(accounts.traders, n)
    if accounts.crowd.size == 0:
        return regular
    return np.where(rng.random(n) < CROWD_SHARE, rng.choice(accounts.crowd, n), regular)


def _rush_delays(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds after the first buyer: most members react within seconds of the signal, the rest
    trickle in over the next minutes (as in the real pumps: hundreds of prints in the first
    30 s, a long tail after)."""
    fast_scale, slow_scale = rng.uniform(3.0, 10.0), rng.uniform(40.0, 150.0)
    fast = rng.random(n) < rng.uniform(0.6, 0.85)
    return np.where(fast, rng.gamma(1.2, fast_scale, n), rng.gamma(1.5, slow_scale, n))


def _insiders(
    spec: core.SymbolSpec, accounts: core.Accounts, rng: np.random.Generator, t0: int, episode: int
) -> core.Cols:
    """A few friends of the channel buy seconds before the announcement."""
    n = int(rng.integers(1, 5))
    t = t0 - (rng.uniform(1.0, 15.0, n) * US).astype(np.int64)
    return core.injected_takers(
        n,
        t,
        episode,
        side=1,
        notional=spec.median_btc * 20 * rng.lognormal(0.0, 0.5, n),
        account=rng.choice(accounts.traders, n),
        kind=core.PUMP_RUSH,
        n_fills=1 + rng.poisson(1.5, n),
    )


def _dump(
    spec: core.SymbolSpec,
    rng: np.random.Generator,
    t_peak: int,
    peak_s: float,
    dump_s: float,
    organisers: np.ndarray,
    episode: int,
) -> core.Cols:
    """Organisers sell into the buyers from just before the peak until the price is back down."""
    n = int(rng.integers(4, 21))
    span = dump_s + 0.5 * peak_s
    t = t_peak - int(0.5 * peak_s * US) + (rng.beta(1.3, 2.5, n) * span * US).astype(np.int64)
    return core.injected_takers(
        n,
        np.sort(t),
        episode,
        side=-1,
        notional=spec.median_btc * 30 * rng.lognormal(0.0, 0.7, n),
        account=rng.choice(organisers, n),
        kind=core.PUMP_DUMP,
        n_fills=1 + rng.poisson(3.0, n),
    )


def _curve(
    rng: np.random.Generator,
    start: int,
    t0: int,
    delay_s: float,
    peak_s: float,
    t_peak: int,
    dump_s: float,
    gain: float,
    residual: float,
) -> core.Curve:
    """The pump's log-price excursion: a jagged climb to the peak, a fast fall, a possible dead-cat bounce."""
    top = np.log1p(gain)
    s = np.array([0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.0])
    rise = top * s**0.6 * (1 + rng.normal(0, 0.06, s.size))
    rise[-1] = top
    u = np.array([0.03, 0.07, 0.12, 0.2, 0.3, 0.45, 0.65, 0.85, 1.0])
    fall = residual + (top - residual) * np.exp(-4 * u) * (1 + rng.normal(0, 0.12, u.size))
    if rng.random() < 0.4:
        fall[2] = min(top, fall[2] * 1.25)
    fall[-1] = residual
    pre = np.log1p(rng.uniform(0.01, 0.04)) if start < t0 else 0.0
    times = np.concatenate([[start, t0], t0 + (delay_s + s * peak_s) * US, t_peak + u * dump_s * US])
    values = np.concatenate([[0.0, pre], np.maximum(rise, pre), np.minimum(fall, top)])
    times, keep = np.unique(times.astype(np.int64), return_index=True)
    return core.Curve(times, values[keep], persist=True)


def _accumulate(
    spec: core.SymbolSpec,
    rng: np.random.Generator,
    t0: int,
    organisers: np.ndarray,
    episode: int,
    out: core.Injection,
) -> dict[str, int] | None:
    """Organisers buy quietly for hours before: small market buys and resting bids that soak up sells."""
    hours = rng.uniform(1.0, 8.0)
    lo = max(0, t0 - int(hours * 3600 * US))
    hi = t0 - int(rng.uniform(5, 30) * 60 * US)
    if hi - lo < 30 * 60 * US:
        return None
    n = int(rng.integers(4, 21))
    t = np.sort(rng.integers(lo, hi, n))
    out.takers.append(
        core.injected_takers(
            n,
            t,
            episode,
            impact=1.0,  # no curve of its own: the quiet buying nudges the price like ordinary flow
            side=1,
            notional=spec.median_btc * 4 * rng.lognormal(0.0, 0.6, n),
            account=rng.choice(organisers, n),
            kind=core.PUMP_ACCUMULATE,
        )
    )
    out.maker_bias.append((lo, hi, 1, organisers, 0.25))
    return {"start_us": int(lo), "end_us": int(hi), "market_buys": n}
