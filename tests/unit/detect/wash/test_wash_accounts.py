"""Wash trading between known accounts: self-trades and netting rings, found causally and as the stream does.

The honest confounders a venue has are generated here (`venue`): market makers trading both
ways with many counterparties, whales working clips against one favourite market maker, a busy
algorithm that self-matches now and then. Every "nothing fires" test has a twin on the same data
with a scheme injected that must fire.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from tapewatch.config import StreamSettings
from tapewatch.detect.base import DetectorState
from tapewatch.detect.wash import accounts_graph as graph
from tapewatch.detect.wash import wash_accounts
from tapewatch.detect.wash.settings import WashAccountsSettings
from tapewatch.detect.wash.wash_accounts import WashAccountsDetector
from tapewatch.engine.batch import run_batch
from tapewatch.engine.stream import StreamEngine
from tapewatch.records import BAR_SCHEMA, TRADE_SCHEMA, conform, empty_frame
from tapewatch.sources.simulator.market import SimulationConfig, simulate_market

START = datetime(2024, 3, 1, tzinfo=UTC)
SYMBOL = "AAA/BTC"
AT = START + timedelta(hours=3, minutes=7)
WIDEST = {
    "window_min": 240.0,
    "net_tolerance": 0.05,
    "min_edge_trades": 2,
    "min_trades": 2,
    "max_group": 6,
    "max_ring_counterparties": 10,
    "min_round_trips": 2,
    "min_pair_round_trips": 2,
    "max_pair_lap_chance": 0.05,
    "max_lap_legs": 4,
    "min_self_trades": 2,
    "max_self_chance": 0.01,
    "cooldown_min": 10.0,
    "max_trade_ids": 1000,
}
"""Every threshold at the loosest value WashAccountsSettings allows."""


def frame(*parts: list[dict] | pl.DataFrame) -> pl.DataFrame:
    """Trades in TRADE_SCHEMA sorted as the engines pass them, with ids in time order."""
    frames = [
        part if isinstance(part, pl.DataFrame) else pl.DataFrame(part).with_columns(symbol=pl.lit(SYMBOL))
        for part in parts
        if len(part)
    ]
    trades = pl.concat([conform(part.with_columns(venue=pl.lit("testex")), TRADE_SCHEMA) for part in frames])
    trades = trades.sort("venue", "symbol", "ts", maintain_order=True)
    return trades.with_columns(trade_id=pl.int_range(pl.len()).cast(pl.String).str.zfill(9))


def venue(
    hours: float = 6.0, per_minute: float = 30.0, symbols: int = 1, seed: int = 0, retail: int = 400
) -> pl.DataFrame:
    """An honest venue, one symbol after another (the first is SYMBOL).

    Takers are retail accounts (lognormal activity, a quarter of their sizes round numbers), a
    busy algorithm and the market makers hedging; makers are four market makers (most fills),
    the algorithm and retail limit orders; nobody meets itself except the algorithm, about 1.5
    times an hour. Three whales each work clips of one direction against one favourite market
    maker, then turn round in a later campaign.
    """
    rng = np.random.default_rng(seed)
    makers = [f"mm{i}" for i in range(4)]
    names = np.array([f"r{i}" for i in range(retail)] + ["algo", *makers], dtype=object)
    weight = np.array([4.0, 3.0, 2.0, 1.0]) / 10
    parts = []
    for index in range(symbols):
        count = int(rng.poisson(per_minute * hours * 60))
        activity = rng.lognormal(0, 1.0, retail)
        retail_taker = rng.choice(retail, count, p=activity / activity.sum())
        maker_taker = retail + 1 + rng.choice(4, count, p=weight)
        taker = np.choose(rng.choice(3, count, p=[0.8, 0.12, 0.08]), [retail_taker, retail, maker_taker])
        maker_kind = rng.choice(3, count, p=[0.78, 0.1, 0.12])
        maker = np.choose(
            maker_kind, [retail + 1 + rng.choice(4, count, p=weight), retail, rng.integers(0, retail, count)]
        )
        maker = np.where(maker == taker, retail + 1 + (taker + 1) % 4, maker)  # self-trade prevention
        round_size = rng.choice([10.0, 20.0, 50.0, 100.0], count)
        size = np.where(rng.random(count) < 0.25, round_size, np.round(rng.lognormal(3.0, 1.2, count), 2))
        pieces = [
            _prints(
                rng.uniform(0, hours * 3600, count), names[taker], names[maker], rng.random(count) < 0.5, size
            )
        ]
        pieces += [_whale(rng, f"w{w}", makers[w], hours) for w in range(3)]
        slips = int(rng.poisson(1.5 * hours))
        pieces.append(
            _prints(
                rng.uniform(0, hours * 3600, slips),
                ["algo"] * slips,
                ["algo"] * slips,
                rng.random(slips) < 0.5,
                np.round(rng.lognormal(3.0, 1.2, slips), 2),
            )
        )
        symbol = SYMBOL if index == 0 else f"S{index}/BTC"
        parts.append(pl.concat(pieces).with_columns(symbol=pl.lit(symbol)))
    return frame(*parts)


def _whale(rng: np.random.Generator, whale: str, favourite: str, hours: float) -> pl.DataFrame:
    """Campaigns of 8–24 large clips a minute or so apart, each campaign one direction, hours apart."""
    pieces, moment = [], float(rng.uniform(0, 1800))
    while moment < hours * 3600:
        clips = int(rng.integers(8, 25))
        times = moment + np.cumsum(rng.exponential(60, clips))
        sizes = np.round(rng.lognormal(6.5, 0.5, clips), 1)
        pieces.append(
            _prints(times, [whale] * clips, [favourite] * clips, np.full(clips, rng.random() < 0.5), sizes)
        )
        moment = float(times[-1] + rng.exponential(3600))
    return pl.concat(pieces).filter(pl.col("ts") < START + timedelta(hours=hours))


def _prints(seconds: np.ndarray, taker, maker, buys: np.ndarray, amount: np.ndarray) -> pl.DataFrame:
    """Prints at these offsets from START; the taker buys where `buys`."""
    taker, maker = pl.Series(taker, dtype=pl.String), pl.Series(maker, dtype=pl.String)
    buy = pl.Series(buys)
    return pl.DataFrame(
        {
            "ts": pl.Series((seconds * 1e6).astype(np.int64)).cast(pl.Duration("us")) + START,
            "price": 100.0 + np.round(np.sin(seconds / 5000.0), 2),
            "amount": amount.astype(float),
            "side": pl.select(pl.when(buy).then(pl.lit("buy")).otherwise(pl.lit("sell"))).to_series(),
            "buyer": pl.select(pl.when(buy).then(taker).otherwise(maker)).to_series(),
            "seller": pl.select(pl.when(buy).then(maker).otherwise(taker)).to_series(),
        }
    )


def ring(
    members: list[str],
    at: datetime,
    laps: int = 4,
    quantity: float = 2000.0,
    short: dict | None = None,
    leg: timedelta = timedelta(minutes=1),
    pause: timedelta = timedelta(minutes=5),
) -> list[dict]:
    """Laps round a ring: each member sells `quantity` to the next, `leg` apart, laps `pause` apart.

    `short` = {member: fraction}: that member passes on only this fraction of what it got.
    A ring of one account is a run of self-trades.
    """
    rows = []
    moment = at
    for lap in range(laps):
        for index, seller in enumerate(members):
            buyer = members[(index + 1) % len(members)]
            size = quantity * (1 + 0.001 * lap) * (short or {}).get(seller, 1.0)
            rows.append(
                {"ts": moment, "price": 1e-5, "amount": size, "side": "buy", "buyer": buyer, "seller": seller}
            )
            moment += leg
        moment += pause
    return rows


def self_trades(
    account: str, at: datetime, count: int, every: timedelta, quantity: float = 30.0
) -> list[dict]:
    """`count` self-trades of `account`, `every` apart, of ordinary sizes."""
    return [
        {
            "ts": at + every * i,
            "price": 100.0,
            "amount": quantity * (1 + 0.1 * (i % 3)),
            "side": "buy",
            "buyer": account,
            "seller": account,
        }
        for i in range(count)
    ]


def accounts(alerts: list) -> list[list[str]]:
    return [alert.evidence["accounts"] for alert in alerts]


def essentials(alerts: list) -> list[tuple]:
    return sorted((a.id, a.detected_at, a.score, str(a.evidence)) for a in alerts)


# -- self-trades ------------------------------------------------------------------------------------


def test_self_trades_are_found_with_their_evidence():
    trades = frame(venue(seed=1), ring(["x"], AT, laps=4))
    alerts = WashAccountsDetector().detect(trades)
    assert accounts(alerts) == [["x"]]
    alert = alerts[0]
    evidence = alert.evidence
    assert alert.typology == "wash_trading" and alert.detector == "wash_accounts"
    assert evidence["scheme"] == "self_trade"
    assert alert.start == AT and alert.detected_at == AT + timedelta(minutes=6)  # the second self-trade
    assert evidence["trades"] == 2 and evidence["positions"]["x"]["net"] == 0
    own = trades.filter((pl.col("buyer") == "x") & (pl.col("seller") == "x"))["trade_id"].to_list()
    assert evidence["trade_ids"] == own[:2] and evidence["trade_ids_total"] == 2
    assert evidence["self_trades"] == 2 and evidence["own_buys"] == evidence["own_sells"] == 0
    assert evidence["chance_self_trades"] == 0 and evidence["chance"] == 0  # no own flow, no accident
    assert 0 < evidence["volume_share"] <= 1
    assert alert.followup["scheme"]["trades"] == 4  # the whole run, gathered after detection
    assert alert.followup["scheme"]["trade_ids"] == own


def test_a_self_trader_that_mostly_trades_honestly_is_found():
    """A dozen self-trades in minutes from the venue's busiest retail account: a sliver of its trades,
    far beyond what its own flow gives by chance."""
    honest = venue(seed=2)
    sides = pl.concat([honest.select(account="buyer"), honest.select(account="seller")])
    busiest = sides.filter(pl.col("account").str.starts_with("r"))["account"].value_counts(sort=True)[
        "account"
    ][0]
    assert WashAccountsDetector().detect(honest) == []
    at = START + timedelta(hours=2, minutes=31)
    alerts = WashAccountsDetector().detect(frame(honest, self_trades(busiest, at, 12, timedelta(seconds=25))))
    assert accounts(alerts) == [[busiest]]
    evidence = alerts[0].evidence
    assert evidence["self_trades"] / (evidence["own_buys"] + evidence["own_sells"]) < 0.25
    assert evidence["chance"] <= WashAccountsSettings().max_self_chance
    assert evidence["burst"]["chance_self_trades"] < 1


def test_a_busy_algorithm_self_matching_now_and_then_does_not_fire_but_its_burst_does():
    honest = venue(seed=3, hours=12)
    algo = honest.filter((pl.col("buyer") == "algo") | (pl.col("seller") == "algo"))
    slips = algo.filter(pl.col("buyer") == pl.col("seller")).height
    assert algo.height > 3000 and slips >= 10  # thousands of trades, self-matching about 1.5 an hour
    assert WashAccountsDetector().detect(honest) == []
    at = START + timedelta(hours=7, minutes=3)
    alerts = WashAccountsDetector().detect(frame(honest, self_trades("algo", at, 12, timedelta(seconds=20))))
    assert accounts(alerts) == [["algo"]]
    assert at <= alerts[0].detected_at <= at + timedelta(minutes=4)


# -- rings ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "members", [["a", "b"], ["a", "b", "c"], ["a", "b", "c", "d", "e"], ["a", "b", "c", "d", "e", "f"]]
)
def test_rings_of_two_to_six_accounts_are_found(members):
    trades = frame(venue(seed=len(members)), ring(members, AT))
    alerts = WashAccountsDetector().detect(trades)
    assert accounts(alerts) == [sorted(members)]
    evidence = alerts[0].evidence
    assert evidence["scheme"] == "round_trip" and evidence["ring"] == members
    assert evidence["round_trips"] >= 2 and evidence["max_net_ratio"] <= 0.02
    assert set(evidence["positions"]) == set(members)
    assert all(abs(p["net"]) <= 0.02 * p["gross"] for p in evidence["positions"].values())
    assert alerts[0].start == AT
    settings = WashAccountsSettings()
    # A pair's laps here close within a minute in a symbol trading 30 times a minute: quick enough that a
    # pair needs no more laps than a ring (see test_a_pair_needs_its_extra_lap_only_when_its_laps_are_slow).
    laps = max(settings.min_round_trips, -(-settings.min_trades // len(members)))
    assert alerts[0].detected_at == AT + timedelta(minutes=laps * len(members) - 1 + 5 * (laps - 1))


def test_an_honest_venue_raises_nothing_and_the_same_venue_with_rings_does():
    honest = venue(hours=12, seed=11)
    pairs = honest.filter(pl.col("buyer") != pl.col("seller")).group_by("buyer", "seller").len()
    assert pairs.filter(pl.col("len") >= 20).height >= 100  # plenty of repeated two-way trading
    whales = honest.filter(pl.col("buyer").str.starts_with("w") | pl.col("seller").str.starts_with("w"))
    assert whales.group_by("buyer", "seller").len()["len"].max() >= 20  # whales keep to one market maker
    assert WashAccountsDetector().detect(honest) == []
    schemes = [["p", "q"], ["k", "l", "m", "n"]]
    rigged = frame(honest, *(ring(members, AT + timedelta(hours=3 * i)) for i, members in enumerate(schemes)))
    assert sorted(accounts(WashAccountsDetector().detect(rigged))) == sorted(schemes)


def test_a_small_ring_in_a_busy_symbol_fires_with_a_lower_score_than_in_a_quiet_one():
    members = ["a", "b", "c"]
    busy = frame(venue(per_minute=60, seed=5), ring(members, AT, quantity=100.0))
    quiet = frame(venue(per_minute=2, seed=5), ring(members, AT, quantity=100.0))
    (in_busy,) = WashAccountsDetector().detect(busy)
    (in_quiet,) = WashAccountsDetector().detect(quiet)
    assert in_busy.evidence["accounts"] == in_quiet.evidence["accounts"] == members
    assert in_busy.evidence["volume_share"] < 0.005 < in_quiet.evidence["volume_share"]
    assert in_busy.score < in_quiet.score


def test_a_market_maker_in_a_ring_is_a_member():
    """mm1 deals with hundreds of counterparties, and still nets out lap after lap with two colluders."""
    honest = venue(seed=6)
    window = honest.filter(pl.col("ts") < AT).filter(pl.col("ts") >= AT - timedelta(hours=1))
    partners = pl.concat(
        [
            window.filter(pl.col("buyer") == "mm1").select(account="seller"),
            window.filter(pl.col("seller") == "mm1").select(account="buyer"),
        ]
    )
    assert partners["account"].n_unique() > WashAccountsSettings().max_ring_counterparties * 10
    assert WashAccountsDetector().detect(honest) == []
    alerts = WashAccountsDetector().detect(frame(honest, ring(["mm1", "x", "y"], AT, laps=5)))
    assert accounts(alerts) == [["mm1", "x", "y"]]


def test_rings_in_the_first_hour_of_data_are_found():
    """Before a whole window of the symbol is seen nobody's counterparties are known: hubs are judged
    as the hour goes, and the busy venue's first hour raises nothing while its rings are found."""
    opening = venue(hours=1.5, per_minute=60, seed=13)
    assert WashAccountsDetector().detect(opening) == []
    at = START + timedelta(minutes=4)
    rigged = frame(
        opening, ring(["a", "b", "c", "d", "e"], at), ring(["mm0", "x", "y"], at + timedelta(minutes=2))
    )
    found = WashAccountsDetector().detect(rigged)
    assert sorted(accounts(found)) == [["a", "b", "c", "d", "e"], ["mm0", "x", "y"]]
    assert all(alert.detected_at < START + timedelta(hours=1) for alert in found)


def test_a_ring_leaving_one_account_long_does_not_fire():
    members = ["a", "b", "c"]
    assert accounts(WashAccountsDetector().detect(frame(venue(seed=4), ring(members, AT)))) == [members]
    uneven = frame(venue(seed=4), ring(members, AT, short={"b": 0.92}))  # b keeps 8 % of what it gets
    assert WashAccountsDetector().detect(uneven) == []
    loose = WashAccountsDetector(WashAccountsSettings(net_tolerance=0.05))
    assert members in accounts(loose.detect(uneven))  # a net of 4 % of its gross is within 5 %


def test_a_ring_whose_laps_wait_at_the_touch_fires():
    """Members resting at the touch wait minutes for queue priority: a lap of three legs takes 18 minutes,
    and the members trade with others all the while. What makes them a ring is unchanged: every lap
    brings each of them back to even."""
    members = ["a", "b", "c"]
    outside = [
        {"ts": AT + timedelta(minutes=2 + 3 * i), "price": 1e-5, "amount": 500.0 + 37 * i, "side": "sell"}
        | (
            {"buyer": f"r{i}", "seller": members[i % 3]}
            if i % 2
            else {"buyer": members[i % 3], "seller": f"r{i}"}
        )
        for i in range(14)
    ]
    slow = ring(members, AT, laps=2, leg=timedelta(minutes=6), pause=timedelta(minutes=2))
    alerts = WashAccountsDetector().detect(frame(venue(seed=4), slow, outside))
    assert accounts(alerts) == [members]
    assert alerts[0].evidence["round_trips"] == 2 and alerts[0].start == AT


def round_trips_of_a_pair(
    buyer: str, seller: str, at: datetime, laps: int, hold: timedelta, pause: timedelta
) -> list[dict]:
    """A position opened and closed between the same two accounts, lap after lap: `buyer` buys from
    `seller` and sells the same quantity back `hold` later; laps `pause` apart, each another size."""
    rows = []
    for lap in range(laps):
        opened = at + lap * (hold + pause)
        size = 800.0 + 170.0 * lap
        for moment, side_buyer, side_seller in ((opened, buyer, seller), (opened + hold, seller, buyer)):
            rows.append(
                {
                    "ts": moment,
                    "price": 1e-5,
                    "amount": size,
                    "side": "buy",
                    "buyer": side_buyer,
                    "seller": side_seller,
                }
            )
    return rows


def test_a_pair_needs_its_extra_lap_only_when_its_laps_are_slow():
    """A trader opening and closing positions with its market maker all day comes back to even after
    every one, but a quarter of an hour later, hundreds of the symbol's trades on: two such laps an
    hour are no evidence. The same two laps passed back within seconds are: on the symbol's own clock
    they come round far too quickly for chance (`max_pair_lap_chance`)."""
    day = [
        trade
        for hour in range(5)
        for trade in round_trips_of_a_pair(
            "t1",
            "mm0",
            START + timedelta(minutes=10 + 70 * hour),
            2,
            timedelta(minutes=15),
            timedelta(minutes=10),
        )
    ]
    honest = frame(venue(seed=9), day)
    assert WashAccountsDetector().detect(honest) == []
    quick = round_trips_of_a_pair("p", "q", AT, 2, timedelta(seconds=20), timedelta(minutes=3))
    alerts = WashAccountsDetector().detect(frame(honest, quick))
    assert accounts(alerts) == [["p", "q"]]
    assert alerts[0].evidence["round_trips"] == 2
    assert alerts[0].evidence["lap_chance"] <= WashAccountsSettings().max_pair_lap_chance
    slow_twice = WashAccountsDetector(WashAccountsSettings(min_pair_round_trips=2))
    assert ["mm0", "t1"] in accounts(slow_twice.detect(honest))  # two laps, were pace not asked


# -- contracts --------------------------------------------------------------------------------------


def test_the_decision_reads_nothing_after_detected_at():
    trades = frame(venue(seed=5), ring(["a", "b", "c"], AT, laps=6))
    alert = WashAccountsDetector().detect(trades)[0]
    cut = WashAccountsDetector().detect(trades.filter(pl.col("ts") <= alert.detected_at))[0]
    assert cut.id == alert.id and cut.detected_at == alert.detected_at
    assert cut.evidence == alert.evidence
    assert cut.followup["scheme"]["status"] == "open"
    assert alert.followup["scheme"]["trades"] > cut.followup["scheme"]["trades"]


def test_rows_in_any_order_give_identical_alerts():
    """Prints of one instant in another row order: same ids, detected_at, scores and evidence."""
    at = START + timedelta(hours=2)
    sweeps = [  # two pairs printing at the same instants, one of them washing
        {
            "ts": at + timedelta(minutes=m),
            "price": 100.0 + i,
            "amount": amount,
            "side": "buy",
            "buyer": buyer,
            "seller": seller,
        }
        for m in range(0, 40, 2)
        for i, (seller, buyer, amount) in enumerate(
            [("a", "b", 50.0), ("u", "v", 70.0), ("b", "a", 50.0), ("v", "u", 75.0)]
        )
    ]
    trades = frame(venue(seed=8), sweeps, self_trades("x", at, 6, timedelta(minutes=1)))
    fired = WashAccountsDetector().detect(trades)
    assert {"a,b", "x"} <= {alert.evidence["group"] for alert in fired}
    for seed in range(3):
        shuffled = trades.sample(fraction=1.0, shuffle=True, seed=seed).sort(
            "venue", "symbol", "ts", maintain_order=True
        )
        assert not shuffled.equals(trades)
        assert essentials(WashAccountsDetector().detect(shuffled)) == essentials(fired)


def test_the_stream_in_random_chunks_gives_the_batch_alerts():
    market = simulate_market(
        SimulationConfig(seed=3, symbols=3, hours=12, wash_groups_per_symbol_day=6, pumps_per_symbol_day=0)
    )
    trades = market.trades.select(list(TRADE_SCHEMA))
    detector = WashAccountsDetector()
    batch = run_batch([detector], trades, empty_frame(BAR_SCHEMA))
    assert {a.evidence["scheme"] for a in batch} == {"self_trade", "round_trip"}

    engine = StreamEngine([detector], StreamSettings(hold_ms=10**9))
    final = {}
    rng = np.random.default_rng(0)
    offset = 0
    while offset < trades.height:
        size = int(rng.integers(1, 400))
        engine.push(trades.slice(offset, size))  # arriving now: each symbol's newest instant is held back
        final.update({item.alert.id: item.alert for item in engine.step()})
        offset += size
    final.update({item.alert.id: item.alert for item in engine.finish()})
    assert not engine.stats.set_aside and engine.stats.trades_processed == trades.height
    assert sorted(final) == sorted(alert.id for alert in batch)
    for alert in batch:
        assert final[alert.id].model_dump(exclude={"timing"}) == alert.model_dump(exclude={"timing"})


def test_a_tape_cut_into_parts_of_whole_symbols_gives_the_alerts_of_one_pass(monkeypatch):
    market = simulate_market(
        SimulationConfig(seed=3, symbols=3, hours=12, wash_groups_per_symbol_day=6, pumps_per_symbol_day=0)
    )
    trades = market.trades.select(list(TRADE_SCHEMA))
    whole = WashAccountsDetector().detect(trades)
    assert len({alert.symbol for alert in whole}) == 3
    monkeypatch.setattr(wash_accounts, "PART_ROWS", 1)  # one symbol per part
    assert len(wash_accounts._symbol_parts(trades)) == 3
    parts = WashAccountsDetector().detect(trades)
    assert [a.model_dump() for a in parts] == [a.model_dump() for a in whole]
    state_whole, state_parts = DetectorState(), DetectorState()
    half = trades["ts"].min() + timedelta(hours=6)
    monkeypatch.setattr(wash_accounts, "PART_ROWS", 1 << 20)
    first = WashAccountsDetector().detect(trades.filter(pl.col("ts") <= half), state_whole)
    first += WashAccountsDetector().detect(trades, state_whole)
    monkeypatch.setattr(wash_accounts, "PART_ROWS", 1)
    second = WashAccountsDetector().detect(trades.filter(pl.col("ts") <= half), state_parts)
    second += WashAccountsDetector().detect(trades, state_parts)
    assert first and [a.id for a in second] == [a.id for a in first]
    assert state_parts.decided_until == state_whole.decided_until


def test_state_carries_the_cooldown_across_calls():
    trades = frame(venue(seed=6), ring(["a", "b"], AT, laps=12))
    detector = WashAccountsDetector()
    assert len(detector.detect(trades)) == 1
    state = DetectorState()
    middle = AT + timedelta(minutes=40)
    first = detector.detect(trades.filter(pl.col("ts") <= middle), state)
    second = detector.detect(trades, state)
    assert len(first) == 1 and second == []


def test_empty_frames_and_unknown_accounts_give_no_alerts():
    detector = WashAccountsDetector()
    assert detector.detect(conform(pl.DataFrame(), TRADE_SCHEMA)) == []
    named = frame(venue(seed=9), ring(["a", "b", "c"], AT))
    assert accounts(detector.detect(named)) == [["a", "b", "c"]]
    anonymous = named.with_columns(buyer=pl.lit(None, dtype=pl.String), seller=pl.lit(None, dtype=pl.String))
    state = DetectorState()
    assert detector.detect(anonymous) == [] and detector.detect(anonymous, state) == []
    assert state.decided_until[("testex", SYMBOL)] == anonymous["ts"].max()
    assert detector.detect(anonymous.drop("buyer", "seller")) == []


def test_the_widest_settings_finish_on_a_busy_day():
    """Cost stays bounded at the loosest allowed thresholds on a day of busy symbols, 87 trades a minute
    each (time it by hand: benchmarks hold speed figures); the schemes are still found among whatever
    else such settings let through."""
    schemes = [["p", "q"], ["k", "l", "m"], ["mm2", "s", "t", "u"]]
    honest = venue(hours=24, per_minute=87, symbols=2, seed=12)
    rigged = frame(
        honest,
        *(ring(members, AT + timedelta(hours=5 * i)) for i, members in enumerate(schemes)),
        self_trades("x", AT, 10, timedelta(seconds=30)),
    )
    assert rigged.height >= 250_000
    alerts = WashAccountsDetector(WashAccountsSettings(**WIDEST)).detect(rigged)
    found = {tuple(alert.evidence["accounts"]) for alert in alerts if alert.symbol == SYMBOL}
    assert {("p", "q"), ("k", "l", "m"), ("mm2", "s", "t", "u"), ("x",)} <= found


def test_the_widest_settings_are_the_bounds_of_the_settings():
    with pytest.raises(ValueError):
        WashAccountsSettings(max_group=7)
    for name, value in WIDEST.items():
        field = WashAccountsSettings.model_fields[name]
        bounds = {
            kind: getattr(item, kind)
            for item in field.metadata
            for kind in ("ge", "le")
            if hasattr(item, kind)
        }
        assert value in bounds.values(), name


# -- graph ------------------------------------------------------------------------------------------


def test_cycles_pass_through_at_most_one_hub_at_a_time():
    links = [(1, 2), (2, 3), (3, 1), (1, 4), (4, 5), (5, 1), (4, 2), (3, 4)]
    ready = [(seller, buyer, graph.ALWAYS) for seller, buyer in links]
    every = graph.simple_cycles(ready, 6, min_length=3)
    assert [cycle for cycle, _ in every] == [(1, 2, 3), (1, 2, 3, 4, 5), (1, 4, 2, 3), (1, 4, 5), (2, 3, 4)]
    assert all(until == graph.NEVER for _, until in every)
    assert graph.simple_cycles(ready, 6, min_length=3, hub_at={1: graph.ALWAYS}) == every
    two = graph.simple_cycles(ready, 6, min_length=3, hub_at={1: graph.ALWAYS, 4: graph.ALWAYS})
    assert [cycle for cycle, _ in two] == [(1, 2, 3), (2, 3, 4)]
    # Hubs only from some time on (a first cell without trades): a cycle through two of them counts
    # until the second becomes one, if its links are all strong before that.
    timed = [(seller, buyer, 10 if (seller, buyer) == (4, 5) else 0) for seller, buyer in links]
    late = dict(graph.simple_cycles(timed, 6, min_length=3, hub_at={1: 5, 4: 20}))
    assert late[(1, 4, 5)] == 20 and late[(1, 4, 2, 3)] == 20 and late[(1, 2, 3)] == graph.NEVER
    early = dict(graph.simple_cycles(timed, 6, min_length=3, hub_at={1: 5, 4: 8}))
    assert (1, 4, 5) not in early and early[(1, 4, 2, 3)] == 8  # (4, 5) is strong only at 10


def test_pair_index_window_sums_match_a_brute_force_count():
    """Prefix-sum windows per account pair (both ways) agree with counting each window directly."""
    rng = np.random.default_rng(7)
    count, window_us = 400, 50
    transfers = pl.DataFrame(
        {
            "sym": np.sort(rng.integers(0, 2, count)),
            "ts_us": np.sort(rng.integers(0, 400, count)),
            "seller_id": rng.integers(0, 4, count),
            "buyer_id": rng.integers(0, 4, count),
            "amount": rng.uniform(1, 2, count),
            "new": rng.random(count) < 0.8,
        }
    ).with_columns(cell=pl.col("ts_us") // window_us)
    index = graph.PairIndex(transfers, window_us)
    rows = transfers.to_dicts()
    for position, original in enumerate(index.order):
        row = rows[original]
        pair = {row["seller_id"], row["buyer_id"]}
        inside = [  # the pair's rows up to this one (tape order) within (ts − W, ts]
            other
            for other in rows[: original + 1]
            if other["sym"] == row["sym"]
            and {other["seller_id"], other["buyer_id"]} == pair
            and other["ts_us"] > row["ts_us"] - window_us
        ]
        up = sum(o["new"] and o["seller_id"] <= o["buyer_id"] for o in inside)
        down = sum(o["new"] and o["seller_id"] > o["buyer_id"] for o in inside)
        assert (index.up_w[position], index.down_w[position]) == (up, down)


@pytest.mark.parametrize("accounts", [10, 2**40])
def test_the_pair_order_is_the_three_key_stable_order(accounts):
    """One integer key where it fits in 63 bits, a lexsort where it does not: both the (sym, low, high) order."""
    rng = np.random.default_rng(3)
    sym = np.sort(rng.integers(0, 50, 1000))
    low, high = np.sort(rng.integers(0, 10, (2, 1000)), axis=0) * (accounts // 10)
    order = graph._pair_order(sym, low, high, accounts)
    assert np.array_equal(order, np.lexsort((high, low, sym)))
