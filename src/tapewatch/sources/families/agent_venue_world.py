"""The agent_venue world of one symbol: its instrument, the event clock, and the outside price.

Agents act on a shared clock (a heap of timed callbacks) and see one thing from outside the
venue: the reference price of the same asset on a larger exchange, which moves in bursts of
updates (several within tens of milliseconds, then quiet). Market makers centre their ladders on
it and arbitrage bots trade this venue's stale quotes against it, so the local price follows it
with the lag of whoever is slowest.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from tapewatch.sources.families.agent_venue_book import Book, Tape

US = 1_000_000
DAY_US = 86_400 * US
NICE = (1.0, 2.0, 5.0)


def nice(value: float, up: bool = False) -> float:
    """The 1-2-5 step nearest below `value` (0.00012 → 0.0001), or above it with `up`, as venues
    choose ticks and lots."""
    exponent = math.floor(math.log10(value))
    steps = [step * 10.0**e for e in (exponent, exponent + 1) for step in NICE]
    if up:
        return min(step for step in steps if step >= value * 0.9999999)
    return max(step for step in steps if step <= value * 1.0000001)


@dataclass(frozen=True)
class Instrument:
    """A listed pair: its name, tick and lot (in quote / base units) and how active it is."""

    name: str
    price: float  # opening price in quote units
    tick: float
    lot: float
    activity: float  # scales every population's arrival rate
    vol_hour: float  # hourly volatility of the reference price
    fills_in_feed: bool


def draw_instrument(rnd: random.Random, taken: set[str], fills_in_feed: bool) -> Instrument:
    """A mid-cap exchange's listing: $0.002–$40, tick 1–20 bp of the price, lots worth cents."""
    while True:
        base = "".join(rnd.choice("ABCDEFGHIJKLMNOPRSTUVWXZ") for _ in range(rnd.randint(3, 5)))
        name = f"{base}/{rnd.choice(('USDT', 'USDT', 'USDT', 'USD'))}"
        if name not in taken:
            taken.add(name)
            break
    price = math.exp(rnd.uniform(math.log(0.002), math.log(40.0)))
    tick = nice(price * rnd.uniform(1.0, 20.0) / 1e4)
    if tick < price * 1e-4:
        tick = nice(price * 1e-4, up=True)
    lot = nice(rnd.uniform(0.005, 0.2) / price)
    return Instrument(
        name=name,
        price=round(price / tick) * tick,
        tick=tick,
        lot=lot,
        activity=math.exp(rnd.uniform(math.log(0.5), math.log(2.0))),
        vol_hour=rnd.uniform(0.003, 0.009),
        fills_in_feed=fills_in_feed,
    )


def seasonality(t_us: int, phase: float) -> float:
    """Activity multiplier over the UTC day (0.4–1.6): quiet Asian night, busy European and US afternoon."""
    hours = (t_us % DAY_US) / 3_600_000_000 + phase
    return (
        1.0
        + 0.35 * math.sin(2 * math.pi * (hours - 9.0) / 24.0)
        + 0.25 * math.sin(4 * math.pi * hours / 24.0)
    )


def poisson(rnd: random.Random, mean: float) -> int:
    """A Poisson draw by counting exponential gaps (small means only)."""
    count, total = 0, rnd.expovariate(1.0)
    while total < mean:
        count += 1
        total += rnd.expovariate(1.0)
    return count


class World:
    """One symbol's clock, book, tape and reference price, shared by every agent on it."""

    def __init__(self, instrument: Instrument, rnd: random.Random, duration: int, stp_off: set[int]) -> None:
        self.instrument, self.rnd, self.duration = instrument, rnd, duration
        self.tape = Tape()
        self.book = Book(self.tape, stp_off, instrument.fills_in_feed)
        self.ref = instrument.price / instrument.tick  # reference price in (fractional) ticks
        self.phase = rnd.uniform(-1.5, 1.5)
        self.now = 0
        self._heap: list[tuple[int, int, Callable[[int], None]]] = []
        self._seq = 0
        self.on_ref: list[Callable[[int], None]] = []
        self.organic: list[tuple[str, int, int, dict[str, object]]] = []
        """Honest look-alikes as they happen: (kind, start µs, end µs, details with account ids)."""

    def at(self, t: int, action: Callable[[int], None]) -> None:
        """Run `action(t)` at time t (µs since the start); later than the end means never."""
        if t < self.duration:
            self._seq += 1
            heapq.heappush(self._heap, (max(t, self.now), self._seq, action))

    def season(self, t: int) -> float:
        return seasonality(t, self.phase)

    def mid(self) -> float:
        """The local mid in ticks (the reference when one side is empty)."""
        bid, ask = self.book.best(1), self.book.best(-1)
        if bid is None or ask is None:
            return self.ref
        return (bid + ask) / 2

    def run(self) -> None:
        """Start the reference price and process every timed action in order until the end."""
        self.at(0, self._ref_burst)
        heap = self._heap
        while heap:
            t, _, action = heapq.heappop(heap)
            self.now = t
            action(t)

    def _ref_burst(self, t: int) -> None:
        """A burst of reference updates (one to several within ~40 ms), then the next burst."""
        rnd = self.rnd
        gap_s = rnd.expovariate(1 / 5.0) / self.season(t)  # the outside market is busier when this one is
        sigma = self.instrument.vol_hour * math.sqrt(gap_s / 3600.0) * self.ref
        steps = 1 + int(rnd.expovariate(1.0)) if rnd.random() < 0.35 else 1
        for k in range(steps):
            self.at(
                t + k * rnd.randint(2_000, 20_000), self._ref_step(rnd.gauss(0.0, sigma / math.sqrt(steps)))
            )
        self.at(t + int(gap_s * US), self._ref_burst)

    def _ref_step(self, move: float) -> Callable[[int], None]:
        def step(t: int) -> None:
            self.ref = max(self.ref + move, 20.0)
            for listener in self.on_ref:
                listener(t)

        return step
