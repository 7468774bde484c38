"""One agent_venue symbol end to end: draw its listing and its populations, inject its episodes, run.

Populations are drawn from venue-wide pools (the same market-making firms, arbitrage bots,
whales and busy algo appear on several symbols; retail and active traders are many), so an
account's name means the same participant on every symbol it trades.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tapewatch.sources.families.agent_venue_abuse import Episode, launch, plan
from tapewatch.sources.families.agent_venue_makers import Arbitrageur, BusyAlgo, MarketMaker
from tapewatch.sources.families.agent_venue_traders import ActiveTrader, Retail, Whales
from tapewatch.sources.families.agent_venue_world import Instrument, World


@dataclass(frozen=True)
class Pools:
    """Venue-wide account ids by population."""

    makers: list[int]
    arbs: list[int]
    whales: list[int]
    busy: int
    active: list[int]
    retail: list[int]


@dataclass
class SymbolRun:
    """What one symbol's run produced, for the frames, labels and organic rows."""

    instrument: Instrument
    world: World
    episodes: list[Episode]
    roles: dict[str, list[int]]


def simulate_symbol(
    instrument: Instrument, pools: Pools, duration: int, kinds: list[str], seed: str, first_episode: int
) -> SymbolRun:
    """Run one symbol for `duration` µs with one episode per entry of `kinds`."""
    rnd = random.Random(f"{seed}/population")
    makers = rnd.sample(pools.makers, rnd.randint(2, 8))
    arbs = rnd.sample(pools.arbs, rnd.randint(1, 2))
    whales = rnd.sample(pools.whales, rnd.randint(2, 3))
    active = rnd.sample(pools.active, rnd.randint(6, 16))
    retail = rnd.sample(pools.retail, rnd.randint(300, 800))
    busy = [pools.busy] if rnd.random() < 0.75 else []
    momentum = active[::2]
    episodes = plan(random.Random(f"{seed}/episodes"), kinds, active, momentum, duration, first_episode)
    stp_off = set(busy) | {ep.accounts[0] for ep in episodes if ep.kind == "self_trade"}
    world = World(instrument, random.Random(f"{seed}/world"), duration, stp_off)
    for account in makers:
        MarketMaker(world, account, random.Random(f"{seed}/maker/{account}"))
    for account in arbs:
        Arbitrageur(world, account, random.Random(f"{seed}/arb/{account}"))
    for account in busy:
        BusyAlgo(world, account, random.Random(f"{seed}/busy"))
    for account in active:
        ActiveTrader(world, account, account in momentum, random.Random(f"{seed}/active/{account}"))
    Retail(world, retail, random.Random(f"{seed}/retail"))
    Whales(world, whales, random.Random(f"{seed}/whales"))
    abuse = random.Random(f"{seed}/abuse")
    for episode in episodes:
        launch(world, episode, abuse)
    world.run()
    return SymbolRun(instrument, world, episodes, {"makers": makers, "arbs": arbs, "busy": busy})
