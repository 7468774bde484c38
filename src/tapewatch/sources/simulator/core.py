"""Shared pieces of the market simulator: time units, column tables, the account population,
per-symbol parameters, price-excursion curves and the first-passage search on a quote path.

Everything here is plain numpy so that a symbol-day of tens of thousands of events is built
with a few dozen vectorised calls instead of a Python loop per event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import numpy as np

from tapewatch.sources.simulator.config import SimulationConfig

US = 1_000_000
"""Microseconds per second: every internal time is an int64 count of µs since the simulation start."""
MS = 1_000
DAY_S = 86_400.0

Cols = dict[str, np.ndarray]
"""A column table: equal-length numpy arrays by name (cheaper than a DataFrame in the inner steps)."""

# taker event kinds (who sent the aggressive order and why)
BACKGROUND, PUMP_RUSH, PUMP_DUMP, PUMP_ACCUMULATE, SPOOF_INDUCED, SPOOF_EXEC, WASH, SPOOF_HIT = range(8)

TAKER_DEFAULTS: dict[str, tuple[Any, Any]] = {
    # name: (dtype, default)
    "t": (np.int64, 0),
    "side": (np.int8, 1),  # +1 buy, -1 sell (the taker's side)
    "notional": (np.float64, 0.0),  # BTC; converted to base units at the traded price
    "amount": (np.float64, np.nan),  # base units when fixed in advance (wash legs)
    "account": (np.int64, -1),  # -1: draw a background account
    "kind": (np.int8, BACKGROUND),
    "n_fills": (np.int64, 1),
    "maker_account": (np.int64, -1),  # -1: draw the resting side's account
    "maker_group": (np.int64, -1),  # fills sharing a group hit one resting order at one price
    "explicit_order": (np.int64, -1),  # index of an explicitly planned resting order it hits
    "impact": (np.float64, 1.0),  # weight of this order in the book's transient impact
    "inside": (np.bool_, False),  # may trade inside the spread (wash legs)
    "episode": (np.int64, -1),
}

ORDER_DEFAULTS: dict[str, tuple[Any, Any]] = {
    # explicitly planned resting orders (spoof orders); price resolved on the quote path
    "t": (np.int64, 0),
    "t_cancel": (np.int64, 0),
    "side": (np.int8, 1),
    "offset": (np.int64, 0),  # ticks behind the touch at placement
    "notional": (np.float64, 0.0),
    "account": (np.int64, -1),
    "episode": (np.int64, -1),
}


def make_cols(defaults: dict[str, tuple[Any, Any]], n: int, **values: Any) -> Cols:
    """A table of n rows with the given columns and defaults for the rest (so injections stay short)."""
    unknown = set(values) - set(defaults)
    if unknown:
        raise KeyError(f"unknown columns {sorted(unknown)}")
    cols: Cols = {}
    for name, (dtype, default) in defaults.items():
        value = values.get(name, default)
        cols[name] = np.broadcast_to(np.asarray(value, dtype=dtype), (n,)).copy()
    return cols


def injected_takers(n: int, t: np.ndarray | int, episode: int, *, impact: float = 0.0, **values: Any) -> Cols:
    """Taker orders of one scenario episode, stamped on whole milliseconds as the venue prints them.

    `impact` defaults to 0: the episode's own Curve already carries its price move, so its
    orders only sweep the levels they take instead of pushing the price a second time. Pass
    1.0 for orders meant to move the price like ordinary flow (quiet accumulation).
    """
    return make_cols(TAKER_DEFAULTS, n, t=(t // MS) * MS, impact=impact, episode=episode, **values)


def concat_cols(parts: list[Cols], defaults: dict[str, tuple[Any, Any]]) -> Cols:
    """Stack tables row-wise (an empty list gives an empty table)."""
    if not parts:
        return make_cols(defaults, 0)
    return {name: np.concatenate([part[name] for part in parts]) for name in defaults}


def take(cols: Cols, index: np.ndarray) -> Cols:
    """Rows by position or mask, every column alike."""
    return {name: values[index] for name, values in cols.items()}


def group_starts(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows expanded by `counts`: (owner row of each expanded row, position within its owner)."""
    owner = np.repeat(np.arange(len(counts)), counts)
    first = np.cumsum(counts) - counts
    return owner, np.arange(owner.size) - first[owner]


def smoothstep(x: np.ndarray) -> np.ndarray:
    """0 → 1 with zero slope at both ends: price moves that start and settle gradually."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def nice_numbers(values: np.ndarray, rng: np.random.Generator, share: float) -> np.ndarray:
    """Round a share of sizes to the round numbers people type (1, 2, 2.5, 5 … × 10^k)."""
    values = np.asarray(values, dtype=np.float64)
    pick = (rng.random(values.size) < share) & (values > 0)
    if not pick.any():
        return values
    magnitude = 10.0 ** np.floor(np.log10(values[pick]))
    mantissa = values[pick] / magnitude
    steps = np.array([1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 7.5, 8.0, 10.0])
    nearest = steps[np.abs(mantissa[:, None] - steps[None, :]).argmin(axis=1)]
    out = values.copy()
    out[pick] = nearest * magnitude
    return out


def decayed_cumsum(t_us: np.ndarray, x: np.ndarray, tau_s: float) -> np.ndarray:
    """y_k = Σ_{j≤k} x_j·exp(-(t_k − t_j)/τ) for sorted times: transient price impact that heals.

    Computed in blocks of 40 τ so the exponentials never overflow; only the carry
    between blocks is sequential (a few hundred steps a day).
    """
    y = np.zeros(x.size)
    if x.size == 0:
        return y
    t = (t_us - t_us[0]) / US
    block = np.floor(t / (40.0 * tau_s)).astype(np.int64)
    bounds = np.flatnonzero(np.diff(block)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [x.size]])
    carry, last_t = 0.0, t[0]
    for lo, hi in zip(starts, ends):
        ref = t[lo]
        rel = t[lo:hi] - ref
        carry_here = carry * np.exp(-(ref - last_t) / tau_s)
        y[lo:hi] = np.exp(-rel / tau_s) * (carry_here + np.cumsum(x[lo:hi] * np.exp(rel / tau_s)))
        carry, last_t = y[hi - 1], t[hi - 1]
    return y


class FirstBelow:
    """First/last index where a step path drops below a threshold, for many queries at once.

    A sparse table of range minima answers each query by binary lifting in
    log2(n) vectorised steps. The book uses it to keep resting orders honest: an
    order may rest at a price only while the market never trades through it.
    """

    def __init__(self, values: np.ndarray) -> None:
        self.n = values.size
        size = 1 << int(np.ceil(np.log2(self.n + 1)))
        padded = np.full(size, -np.inf)
        padded[: self.n] = values
        self.size = size
        self.table = [padded]
        step = 1
        while step * 2 <= size:
            prev = self.table[-1]
            self.table.append(np.minimum(prev[:-step], prev[step:]))
            step *= 2

    def first(self, start: np.ndarray, threshold: np.ndarray) -> np.ndarray:
        """Smallest k ≥ start with values[k] < threshold (n where there is none)."""
        pos = np.asarray(start, dtype=np.int64).copy()
        threshold = np.asarray(threshold, dtype=np.float64)
        for j in range(len(self.table) - 1, -1, -1):
            step = 1 << j
            level = self.table[j]
            fits = pos + step <= self.size
            idx = np.minimum(pos, level.size - 1)
            ok = fits & (level[idx] >= threshold)
            pos = np.where(ok, pos + step, pos)
        return np.minimum(pos, self.n)


@dataclass
class PathSearch:
    """Forward and backward first-passage queries for resting bids (bid < p) and asks (ask > p)."""

    bid_fwd: FirstBelow
    bid_bwd: FirstBelow
    ask_fwd: FirstBelow
    ask_bwd: FirstBelow
    n: int

    @classmethod
    def build(cls, bid: np.ndarray, ask: np.ndarray) -> PathSearch:
        """Index the quote path once; every order check afterwards is a vector query."""
        bid_f, ask_f = bid.astype(np.float64), -ask.astype(np.float64)
        return cls(
            FirstBelow(bid_f), FirstBelow(bid_f[::-1]), FirstBelow(ask_f), FirstBelow(ask_f[::-1]), bid.size
        )

    def first_cross(self, side: np.ndarray, start: np.ndarray, price: np.ndarray) -> np.ndarray:
        """First state ≥ start in which a resting order (side +1 bid / −1 ask) at price would be traded through."""
        side, start, price = np.broadcast_arrays(side, start, price)
        out = np.empty(side.shape, dtype=np.int64)
        buy = side > 0
        out[buy] = self.bid_fwd.first(start[buy], price[buy])
        out[~buy] = self.ask_fwd.first(start[~buy], -price[~buy].astype(np.float64))
        return out

    def last_cross(self, side: np.ndarray, end: np.ndarray, price: np.ndarray) -> np.ndarray:
        """Last state ≤ end in which an order at price could not have rested (−1 if none)."""
        side, end, price = np.broadcast_arrays(side, end, price)
        out = np.empty(side.shape, dtype=np.int64)
        buy = side > 0
        rev = self.n - 1 - np.asarray(end, dtype=np.int64)
        out[buy] = self.bid_bwd.first(rev[buy], price[buy])
        out[~buy] = self.ask_bwd.first(rev[~buy], -price[~buy].astype(np.float64))
        return self.n - 1 - out


@dataclass
class Curve:
    """A planned log-price excursion (pump, news, spoof pressure) as knots interpolated in time."""

    times: np.ndarray
    values: np.ndarray
    persist: bool = False
    """Keep the last value after the last knot (news re-prices for good); else return to 0."""

    def at(self, t: np.ndarray) -> np.ndarray:
        """The excursion at each time (0 before the first knot)."""
        right = float(self.values[-1]) if self.persist else 0.0
        return np.interp(t, self.times, self.values, left=0.0, right=right)


@dataclass
class Episode:
    """A labelled manipulation (or an unlabelled organic event) before its ids are known."""

    id: int
    typology: str
    start: int
    end: int
    event_time: int
    accounts: list[int]
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Injection:
    """What one scenario adds to a symbol: aggressive orders, price curves, resting orders, episodes."""

    takers: list[Cols] = field(default_factory=list)
    curves: list[Curve] = field(default_factory=list)
    sample_times: list[np.ndarray] = field(default_factory=list)
    orders: list[Cols] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)
    maker_bias: list[tuple[int, int, int, np.ndarray, float]] = field(default_factory=list)
    """(t0, t1, resting side, accounts, probability): e.g. organisers' bids soaking up sells."""
    boosts: list[tuple[int, float, float, float]] = field(default_factory=list)
    """(t, extra rate multiple, decay s, buy bias): organic activity bursts for the flow."""

    def merge(self, other: Injection) -> None:
        """Append another scenario's pieces."""
        for name in ("takers", "curves", "sample_times", "orders", "episodes", "maker_bias", "boosts"):
            getattr(self, name).extend(getattr(other, name))


@dataclass
class Accounts:
    """The account population with its roles; background weights follow a Zipf law."""

    names: np.ndarray
    market_makers: np.ndarray
    organisers: np.ndarray
    washers: np.ndarray
    spoofers: np.ndarray
    traders: np.ndarray
    """Every non-market-maker account (manipulators included: they also trade normally)."""
    weight: np.ndarray
    """Background activity weight of each trader (same order as `traders`)."""
    crowd: np.ndarray
    """Pump-channel members who trade only when a pump is called."""


def build_accounts(config: SimulationConfig, rng: np.random.Generator) -> Accounts:
    """Draw the population: a few market makers, manipulation rings with little normal activity, retail,
    and a crowd of pump-channel members outside the regular population."""
    n = config.accounts
    ids = rng.choice(900_000, size=n + config.pump_crowd, replace=False) + 100_000
    names = np.array([f"acc{v}" for v in ids], dtype=object)
    crowd = np.arange(n, n + config.pump_crowd)
    order = rng.permutation(n)
    n_mm = max(config.market_makers_per_symbol * 2, 6)
    mm, org, wash, spoof = np.split(order[: n_mm + 8 + 20 + 4], np.cumsum([n_mm, 8, 20]))
    traders = np.setdiff1d(np.arange(n), mm)
    rank = rng.permutation(traders.size) + 1.0
    weight = rank**-config.zipf_exponent
    role_scale = np.ones(n)
    role_scale[org] = 0.05
    role_scale[wash] = 0.2
    role_scale[spoof] = 0.02
    weight = weight * role_scale[traders]
    return Accounts(names, mm, org, wash, spoof, traders, weight / weight.sum(), crowd)


@dataclass
class SymbolSpec:
    """One instrument's fixed parameters and the accounts active on it."""

    index: int
    name: str
    p0: float
    tick: float
    lot: float
    spread: int
    gap: int
    trades_per_day: float
    daily_vol: float
    median_btc: float
    duration: int
    market_makers: np.ndarray
    weight: np.ndarray
    """Per-symbol background weights of `Accounts.traders` (the busiest traders differ by coin)."""
    day_offset_s: float
    """Seconds from midnight UTC at the simulation start (for the intraday cycle)."""

    @property
    def tick_rel(self) -> float:
        """Tick size relative to the initial price (large for sub-µBTC coins: 1–3 %)."""
        return self.tick / self.p0

    @property
    def trade_rate(self) -> float:
        """Baseline trade prints per second."""
        return self.trades_per_day / DAY_S


def draw_symbol(
    index: int, config: SimulationConfig, accounts: Accounts, rng: np.random.Generator
) -> SymbolSpec:
    """Draw a small-cap BTC pair: price, tick, lot, spread, activity, volatility, its market makers."""
    width = max(2, len(str(config.symbols)))
    low, high = config.price_range
    p0 = float(np.exp(rng.uniform(np.log(low), np.log(high))))
    tick = 1e-8 if p0 < 1e-5 else 1e-7
    p0 = max(round(p0 / tick), 5) * tick
    lot = 1.0 if p0 < 5e-6 else (0.1 if p0 < 5e-5 else 0.01)
    tick_rel = tick / p0
    spread = int(max(1, round(rng.uniform(0.001, 0.004) / tick_rel)))
    gap = int(max(1, round(spread * rng.uniform(0.3, 0.8))))
    trades = float(
        np.clip(config.trades_per_day * np.exp(rng.normal(0, config.trades_per_day_dispersion)), 100, 50_000)
    )
    mms = rng.choice(accounts.market_makers, size=config.market_makers_per_symbol, replace=False)
    weight = accounts.weight * np.exp(rng.normal(0.0, 1.0, accounts.weight.size))
    start = config.start.astimezone(UTC)
    return SymbolSpec(
        index=index,
        name=f"SIM{index + 1:0{width}d}/BTC",
        p0=p0,
        tick=tick,
        lot=lot,
        spread=spread,
        gap=gap,
        trades_per_day=trades,
        daily_vol=float(config.daily_volatility * np.exp(rng.normal(0, 0.3))),
        median_btc=float(config.median_trade_btc * np.exp(rng.normal(0, 0.3))),
        duration=round(config.hours * 3600 * US),
        market_makers=mms,
        weight=weight / weight.sum(),
        day_offset_s=start.hour * 3600 + start.minute * 60 + start.second,
    )


@dataclass(frozen=True)
class ScenarioInputs:
    """What every scenario injected into one symbol draws on, passed as one value so the
    injectors share a signature and cannot be handed another symbol's spec or stream."""

    spec: SymbolSpec
    config: SimulationConfig
    accounts: Accounts
    rng: np.random.Generator


def pick_traders(spec: SymbolSpec, accounts: Accounts, rng: np.random.Generator, n: int) -> np.ndarray:
    """Background accounts by Zipf weight (a few busy traders, a long tail of occasional ones)."""
    return accounts.traders[rng.choice(spec.weight.size, size=n, p=spec.weight)]


def day_windows(duration: int) -> list[tuple[int, int]]:
    """The simulation cut into 24 h pieces (the last may be shorter): each draws its own event counts."""
    day = int(DAY_S * US)
    return [(lo, min(lo + day, duration)) for lo in range(0, duration, day)]


def poisson_times(
    rng: np.random.Generator, rate_per_day: float, lo: int, hi: int, avoid: list[tuple[int, int]], margin: int
) -> np.ndarray:
    """Event times in [lo, hi) at a daily rate, rejecting those within `margin` of the `avoid` windows."""
    if hi <= lo:
        return np.zeros(0, dtype=np.int64)
    count = rng.poisson(rate_per_day * (hi - lo) / (DAY_S * US))
    times = np.sort(rng.integers(lo, hi, size=count))
    keep = np.ones(times.size, dtype=bool)
    for a, b in avoid:
        keep &= (times < a - margin) | (times > b + margin)
    return times[keep]
