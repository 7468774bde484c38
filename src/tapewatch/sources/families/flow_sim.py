"""Family `flow_sim`: the project's own simulator (`tapewatch.sources.simulator.market`) in the family contract.

It is the generator the detectors were developed on, so among the families it is the
one most likely to flatter them; it stays in the evaluation so that a held-out family
is always compared with it. Pumps are off (this family scores wash trading, spoofing and
layering); organic news moves and volume bursts stay on as honest confounders.
"""

from __future__ import annotations

from tapewatch.sources.simulator.config import SimulationConfig
from tapewatch.sources.simulator.market import SimulatedMarket, simulate_market


def generate(
    seed: int, *, symbols: int = 8, hours: float = 24.0, rate: float = 1.0, honest_only: bool = False
) -> SimulatedMarket:
    """`symbols` × `hours` of market with `rate` wash groups and `rate` spoof/layering episodes per
    symbol-day (none with `honest_only`), the same for the same arguments."""
    injected = 0.0 if honest_only else rate
    return simulate_market(
        SimulationConfig(
            seed=seed,
            symbols=symbols,
            hours=hours,
            pumps_per_symbol_day=0.0,
            wash_groups_per_symbol_day=injected,
            spoofs_per_symbol_day=injected,
        )
    )
