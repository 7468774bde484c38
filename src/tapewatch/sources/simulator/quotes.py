"""Orders that never trade: market makers' two-sided quotes (placed at or behind the touch,
cancelled within seconds, sometimes modified) and retail limit orders away from the touch
that are cancelled after minutes or hours. Both are pulled before the market would trade
through them, so the L3 book stays consistent with the tape.
"""

from __future__ import annotations

import numpy as np

from tapewatch.sources.simulator.book import (
    AUTO_RANK,
    CANCEL,
    MODIFY,
    NEW,
    OrderRows,
    concat_rows,
    lifecycle_end,
    rows,
)
from tapewatch.sources.simulator.config import SimulationConfig
from tapewatch.sources.simulator.core import MS, US, Accounts, SymbolSpec, nice_numbers, pick_traders
from tapewatch.sources.simulator.path import Path

QUOTE_OFFSETS, QUOTE_OFFSET_WEIGHTS = np.arange(4), np.array([0.55, 0.25, 0.12, 0.08])
"""Market-maker quotes sit mostly at the touch, some a few levels behind."""
REFERENCE_TRADES_PER_DAY = 2000.0
"""Market makers quote `mm_quote_interval_s` apart at this activity, more often on busier coins."""
MM_QUOTE_LIFE_S = 15.0
"""Mean life of most quotes (85 %; the rest stay for minutes): cancelled and replaced, rarely filled."""
REQUOTE_SHARE = 0.4
"""Share of quotes placed right after the touch moved (quoting engines react to moves)."""
BIG_QUOTE_SHARE = 0.03
"""Quotes 8–25× the usual size: innocent large orders cancelled quickly (spoofing look-alikes)."""


def quote_rows(
    spec: SymbolSpec, config: SimulationConfig, rng: np.random.Generator, path: Path, first_local: int
) -> OrderRows:
    """Market makers' two-sided quotes: placed at or behind the touch, mostly cancelled within seconds.

    40 % of quotes are re-quotes right after the touch moved, as real quoting engines do.
    """
    interval = config.mm_quote_interval_s * np.sqrt(REFERENCE_TRADES_PER_DAY / spec.trades_per_day)
    per = spec.duration / US / interval
    counts = rng.poisson(per, (spec.market_makers.size, 2))
    mm = np.repeat(np.repeat(spec.market_makers, 2), counts.ravel())
    side = np.repeat(np.tile(np.array([1, -1], dtype=np.int8), spec.market_makers.size), counts.ravel())
    n = mm.size
    requote = rng.random(n) < REQUOTE_SHARE
    t = rng.integers(0, spec.duration, n)
    after = path.time[rng.integers(0, path.time.size, n)] + rng.integers(1 * MS, 300 * MS, n)
    t = np.where(requote, after, t)
    offset = rng.choice(QUOTE_OFFSETS, size=n, p=QUOTE_OFFSET_WEIGHTS)
    notional = spec.median_btc * 4 * rng.lognormal(0.0, 0.9, n)
    notional *= np.where(rng.random(n) < BIG_QUOTE_SHARE, rng.uniform(8, 25, n), 1.0)  # occasional big quote
    life = np.where(
        rng.random(n) < 0.85, rng.exponential(MM_QUOTE_LIFE_S, n), rng.lognormal(np.log(180.0), 1.0, n)
    )
    return _resting_rows(
        spec, rng, path, t, side, offset * spec.gap, notional, mm, life, 0.08, first_local, drop_crossed=False
    )


def resting_rows(
    spec: SymbolSpec,
    config: SimulationConfig,
    rng: np.random.Generator,
    accounts: Accounts,
    path: Path,
    anchor_times: np.ndarray,
    n_retail_makers: int,
    first_local: int,
) -> OrderRows:
    """Retail limit orders away from the touch that never trade (cancelled after minutes or hours)."""
    n = rng.poisson(config.retail_resting_ratio * n_retail_makers)
    if n == 0 or anchor_times.size == 0:
        return rows(np.zeros(0), AUTO_RANK, 0, 0, 0, 0, 0, 0, NEW)
    t = anchor_times[rng.integers(0, anchor_times.size, n)] + rng.integers(-120 * US, 120 * US, n)
    side = np.where(rng.random(n) < 0.5, 1, -1).astype(np.int8)
    offset = np.maximum(1, np.ceil(rng.exponential(0.01, n) / spec.tick_rel)).astype(np.int64)
    notional = nice_numbers(spec.median_btc * 2 * rng.lognormal(0.0, 1.4, n), rng, config.round_size_share)
    acct = pick_traders(spec, accounts, rng, n)
    life = rng.lognormal(np.log(1200.0), 1.2, n)
    return _resting_rows(
        spec, rng, path, t, side, offset, notional, acct, life, 0.05, first_local, drop_crossed=True
    )


def _resting_rows(
    spec: SymbolSpec,
    rng: np.random.Generator,
    path: Path,
    t: np.ndarray,
    side: np.ndarray,
    offset_ticks: np.ndarray,
    notional: np.ndarray,
    account: np.ndarray,
    life_s: np.ndarray,
    modify_share: float,
    first_local: int,
    drop_crossed: bool,
) -> OrderRows:
    """Orders that never trade: new, maybe one modify away from the touch, then a cancel (or still open)."""
    ok = (t >= 0) & (t < spec.duration)
    t, side, offset_ticks, notional, account, life_s = (
        x[ok] for x in (t, side, offset_ticks, notional, account, life_s)
    )
    state = path.state_at(t)
    price = np.maximum(path.touch(side, state) - side * offset_ticks, 1)
    lots = np.maximum(np.round(notional / (price * spec.tick) / spec.lot), 1).astype(np.int64)
    cancel, crossed = lifecycle_end(rng, path, side, state + 1, price, t, life_s, 0.5)
    keep = ~crossed if drop_crossed else np.ones(t.size, dtype=bool)
    keep &= cancel > t
    t, side, price, lots, account, cancel = (x[keep] for x in (t, side, price, lots, account, cancel))
    local = first_local + np.arange(t.size)
    closed = cancel < spec.duration
    mod = np.flatnonzero((rng.random(t.size) < modify_share) & closed & (cancel - t > 2))
    mod_t = t[mod] + ((cancel[mod] - t[mod]) * rng.uniform(0.2, 0.8, mod.size)).astype(np.int64)
    deeper = rng.random(mod.size) < 0.5
    mod_price = np.where(deeper, np.maximum(price[mod] - side[mod] * spec.gap, 1), price[mod])
    mod_lots = np.where(
        deeper, lots[mod], np.maximum(np.round(lots[mod] * rng.uniform(0.5, 1.5, mod.size)), 1)
    ).astype(np.int64)
    final_price, final_lots = price.copy(), lots.copy()
    final_price[mod], final_lots[mod] = mod_price, mod_lots
    c = np.flatnonzero(closed)
    return concat_rows(
        [
            rows(t, AUTO_RANK, 0, local, account, side, price, lots, NEW),
            rows(mod_t, AUTO_RANK, 0, local[mod], account[mod], side[mod], mod_price, mod_lots, MODIFY),
            rows(
                cancel[c], AUTO_RANK, 0, local[c], account[c], side[c], final_price[c], final_lots[c], CANCEL
            ),
        ]
    )
