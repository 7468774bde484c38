"""Scenario families: market generators written independently of each other, for scoring the
wash-trading and spoofing detectors on data that did not tune them.

A detector tuned on one generator learns that generator's quirks; only agreement across
generators with different order-flow models, tick sizes, market-maker populations and
manipulator behaviour says it learnt the manipulation. `benchmarks/manipulation_sim.py`
chooses any knob on some families and reports on the others (leave one family out).

Every family module exposes

    generate(seed: int, *, symbols: int = 8, hours: float = 24.0, rate: float = 1.0,
             honest_only: bool = False) -> SimulatedMarket

- trades: `TRADE_SCHEMA` (taker `side`, `buyer`/`seller` accounts), sorted by venue, symbol, ts;
- orders: `ORDER_SCHEMA` L3 events (new/cancel/fill/modify); fills are optional, as on venues
  whose L3 feed shows executions only in the trades;
- labels: `LABEL_SCHEMA` (wash_trading with details {"scheme": "self_trade"|"round_trip"},
  spoofing, layering), every label inside the data's span, its accounts present in the data;
- `rate` manipulation episodes per symbol-day; `honest_only` injects none (false-alarm runs);
- the same arguments give the same frames.

`tests/unit/sources/families/test_families.py` checks this contract on every family registered in `FAMILIES`.
"""

from __future__ import annotations

from collections.abc import Callable

from tapewatch.sources.families import agent_venue, flow_sim, hawkes_lob, zi_crypto
from tapewatch.sources.simulator.market import SimulatedMarket

FAMILIES: dict[str, Callable[..., SimulatedMarket]] = {
    "agent_venue": agent_venue.generate,
    "flow_sim": flow_sim.generate,
    "hawkes_lob": hawkes_lob.generate,
    "zi_crypto": zi_crypto.generate,
}
"""Family name → its `generate`."""
