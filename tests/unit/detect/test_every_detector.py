"""Contracts every detector keeps, checked on every registered one (the pump model on one trained here).

An analyst can trust an alert only if it does not depend on how the data reached the detector:
1. the streaming engine, fed micro-batches of any size, raises exactly the batch engine's alerts;
2. truncating the input at an alert's `detected_at` keeps that alert (it read nothing later);
3. the same rows in another order (then sorted as the readers sort) give the same alerts, evidence
   included;
4. at the loosest settings its configuration allows, it still finishes in bounded time.

Each detector runs on a generated market of its input kind in which it fires (a contract
checked on no alerts proves nothing): simulated trades with accounts, candles the engines
build from them, L3 order events with the trades' executions merged in, and L2 book events
built from those. A newly registered detector needs a `CASES` entry; until it has one, its
contracts fail and name it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from pydantic import BaseModel

from tapewatch.config import Settings, StreamSettings
from tapewatch.detect.base import Detector
from tapewatch.detect.pump.model_file import save_pump_model
from tapewatch.detect.pump.settings import PumpTrainSettings
from tapewatch.detect.registry import DETECTORS
from tapewatch.engine.batch import run_batch
from tapewatch.engine.kinds import KINDS
from tapewatch.engine.stream import StreamEngine
from tapewatch.io.derive import book_events, l2_from_l3, order_events
from tapewatch.records import BAR_SCHEMA, TRADE_SCHEMA, Alert, empty_frame
from tapewatch.sources.simulator.market import SimulatedMarket, SimulationConfig, simulate_market
from tapewatch.training.pump_model import LABEL_SCHEMA as PUMP_LABEL_SCHEMA
from tapewatch.training.pump_model import train_pump_model

SORT = ["venue", "symbol", "ts"]
PUMP_MODEL = "pump_model"
LOOSE_BOUND_S = 30.0
"""CPU seconds: a sanity guard against cost blow-ups at the loosest settings, not a speed benchmark
(CPU time, so that other work on a shared machine cannot fail it)."""


@dataclass(frozen=True)
class Case:
    """How a detector meets its contracts: the rows it reads and the settings it fires at.

    `rows` names an input of `market_rows`; `settings` are allowed values of the detector's
    settings section (5-minute candles and shorter fit windows, so 30 hours of data suffice; a
    smaller forest, since every stream step that closes a candle scores it and refits are many).
    """

    rows: str
    settings: dict[str, Any] = field(default_factory=dict)


CANDLES = {"interval": "5m"}
BASELINE = CANDLES | {"window": 60, "min_history": 30}
FITS = CANDLES | {"train_bars": 150, "min_train_bars": 100, "refit_bars": 48}
CASES: dict[str, Case] = {
    "pump_onset": Case("trades"),
    "kamps_kleinberg": Case("trades", CANDLES),
    "wash_public": Case("bot_trades", {"window_h": 6.0}),
    "spoofing_l3": Case("orders"),
    "spoofing_l2": Case("book"),
    "wash_accounts": Case("trades"),
    "amplitude_anomaly": Case("trades", BASELINE),
    "volume_anomaly": Case("trades", BASELINE | {"threshold": 3.5}),
    "price_anomaly": Case("trades", BASELINE),
    "isolation_forest": Case("trades", FITS | {"trees": 10}),
    "forecast_residual": Case("trades", FITS | {"calibration_bars": 60, "min_calibration_bars": 30}),
    PUMP_MODEL: Case("trades"),
}


# -- the generated markets, once per session ------------------------------------------------------


@pytest.fixture(scope="session")
def trade_market() -> SimulatedMarket:
    """Three small-cap symbols over 30 hours: pumps after the simulator's warm-up, wash groups."""
    return simulate_market(
        SimulationConfig(
            seed=11,
            symbols=3,
            hours=30.0,
            trades_per_day=3000.0,
            pumps_per_symbol_day=2.0,
            wash_groups_per_symbol_day=6.0,
            spoofs_per_symbol_day=0.0,
        )
    )


@pytest.fixture(scope="session")
def order_market() -> SimulatedMarket:
    """Two symbols over 90 minutes with frequent spoofing and layering (L3 events are many per trade).

    Short, because the stream engine keeps (and the spoofing detectors reread) a market this small
    whole at every step; dense in episodes, so the L2 detector still fires several times.
    """
    return simulate_market(
        SimulationConfig(
            seed=3,
            symbols=2,
            hours=1.5,
            pumps_per_symbol_day=0.0,
            wash_groups_per_symbol_day=0.0,
            spoofs_per_symbol_day=192.0,
            layering_share=0.5,
        )
    )


def with_bot(trades: pl.DataFrame, every: int = 3, size: float = 5_000.0) -> pl.DataFrame:
    """A volume bot: a second after every `every`-th trade, a print of one fixed size at that
    trade's price (volume that never moves the price, as fabricated volume does)."""
    bot = trades.filter(pl.int_range(pl.len()).over("venue", "symbol") % every == 0).select(
        pl.col("ts") + timedelta(seconds=1),
        "venue",
        "symbol",
        "price",
        amount=pl.lit(size),
        side=pl.lit("buy"),
        trade_id=pl.lit("bot-") + pl.col("trade_id"),
        buyer=pl.lit("bot"),
        seller=pl.lit("bot"),
    )
    return pl.concat([trades.select(bot.columns), bot]).sort(SORT, maintain_order=True)


def without_helpers(frame: pl.DataFrame) -> pl.DataFrame:
    """The simulator's frame without its `_`-prefixed ground-truth columns."""
    return frame.select(pl.exclude("^_.*$"))


@pytest.fixture(scope="session")
def market_rows(trade_market: SimulatedMarket, order_market: SimulatedMarket) -> dict[str, pl.DataFrame]:
    """The input of each kind, sorted by venue, symbol, ts as the readers hand it over."""
    trades = without_helpers(trade_market.trades)
    orders, order_trades = without_helpers(order_market.orders), without_helpers(order_market.trades)
    return {
        "trades": trades,
        "bot_trades": with_bot(trades),
        "orders": order_events(orders, order_trades),
        "book": book_events(l2_from_l3(orders), order_trades),
    }


@pytest.fixture(scope="session")
def pump_model_file(trade_market: SimulatedMarket, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small pump classifier trained on the trade market's own labelled pumps, saved for the registry."""
    pumps = trade_market.labels.filter(pl.col("typology") == "pump_and_dump")
    labels = pumps.select("symbol", announced_at="event_time", onset=pl.lit(None)).cast(
        PUMP_LABEL_SCHEMA  # type: ignore[arg-type]
    )
    model, card = train_pump_model(trade_market.trades, labels, 5.0, PumpTrainSettings(min_data_in_leaf=3))
    return save_pump_model(model, card, tmp_path_factory.mktemp("pump") / "pump.model")


# -- a detector under contract --------------------------------------------------------------------


@dataclass
class Subject:
    """One detector under contract: its settings section, how to build it from one, and its rows."""

    name: str
    section: BaseModel
    make: Callable[[BaseModel], Detector]
    rows: pl.DataFrame

    def build(self, section: BaseModel | None = None) -> Detector:
        """A fresh detector (no fit cache or state from an earlier run), at `section` or the case's."""
        return self.make(section or self.section)

    @cached_property
    def alerts(self) -> list[Alert]:
        """The batch engine's alerts on all its rows."""
        return self.batch()

    @property
    def kind(self) -> str:
        """The record kind of its rows: candle detectors read trades (the engines build the candles)."""
        needs = self.build().needs
        return "trades" if needs == "bars" else needs

    def batch(self, rows: pl.DataFrame | None = None, section: BaseModel | None = None) -> list[Alert]:
        """The batch engine's alerts on `rows` (default: all of them)."""
        return batch_alerts(self.build(section), self.rows if rows is None else rows)

    def stream(self, chunks: list[pl.DataFrame]) -> dict[str, Alert]:
        """The streaming engine's final alerts over `chunks` (a follow-up update replaces the first)."""
        engine = StreamEngine([self.build()], StreamSettings(hold_ms=10**9), kind=KINDS[self.kind])
        final: dict[str, Alert] = {}
        for index, chunk in enumerate(chunks):
            engine.push(chunk, arrived_at=float(index))
            final |= {item.alert.id: item.alert for item in engine.step(now=float(index))}
        final |= {item.alert.id: item.alert for item in engine.finish()}
        assert not engine.stats.set_aside, engine.stats.set_aside
        assert engine.stats.trades_processed == sum(chunk.height for chunk in chunks)
        return final


def batch_alerts(detector: Detector, rows: pl.DataFrame) -> list[Alert]:
    """Run the batch engine with `rows` as the input the detector reads."""
    no_bars = empty_frame(BAR_SCHEMA)
    if detector.needs in ("trades", "bars"):
        return run_batch([detector], rows, no_bars)
    return run_batch([detector], empty_frame(TRADE_SCHEMA), no_bars, **{detector.needs: rows})


def contract_case(name: str) -> Case:
    """The detector's case; a registered detector without one fails here, by name."""
    if name not in CASES:
        pytest.fail(f"detector {name!r} is registered but has no contract case in {__name__}.CASES")
    return CASES[name]


def registered(name: str, files: dict[str, Any]) -> tuple[BaseModel, Callable[[BaseModel], Detector]]:
    """A registry detector's section at its case's values (and `files`, the model a model detector
    loads), and how the registry builds it from one."""
    defaults = Settings()
    section = getattr(defaults, name).model_validate(
        getattr(defaults, name).model_dump() | contract_case(name).settings | files
    )
    return section, lambda chosen: DETECTORS[name](defaults.model_copy(update={name: chosen}))


@pytest.fixture(scope="session")
def subjects() -> dict[str, Subject]:
    """Subjects built once per session, so each batch run on a whole market happens once."""
    return {}


@pytest.fixture(params=list(DETECTORS))
def subject(
    request: pytest.FixtureRequest, subjects: dict[str, Subject], market_rows: dict[str, pl.DataFrame]
) -> Subject:
    """Every registered detector (opt-in ones included; the pump model on one trained in this session)."""
    name = request.param
    if name not in subjects:
        rows = market_rows[contract_case(name).rows]
        files = {"model": request.getfixturevalue("pump_model_file")} if name == PUMP_MODEL else {}
        subjects[name] = Subject(name, *registered(name, files), rows)
    return subjects[name]


@pytest.fixture
def fired(subject: Subject) -> list[Alert]:
    """The batch alerts on the subject's market: there must be some, or no contract means anything."""
    assert subject.alerts, f"{subject.name} raised no alert on its contract market"
    return subject.alerts


# -- 1. batch equals stream -----------------------------------------------------------------------


def comparable(alert: Alert) -> dict[str, Any]:
    """Everything an alert says (id, times, score, evidence, follow-up) except when it was delivered."""
    return alert.model_dump(exclude={"timing"})


def around(
    rows: pl.DataFrame, moment: Any, size: int, before: int = 25, after: int = 10
) -> list[pl.DataFrame]:
    """Everything before a window around `moment` at once, the window in `size`-row batches, then the rest.

    Stepping row by row through a whole market would take minutes; around an alert is where
    batch boundaries can split what a decision reads.
    """
    at = rows["ts"].search_sorted(moment, side="right")
    first, last = max(0, at - before * size), min(rows.height, at + after * size)
    window = rows.slice(first, last - first)
    return [rows.slice(0, first), *window.iter_slices(size), rows.slice(last)]


def by_time(rows: pl.DataFrame, every: str = "1h") -> list[pl.DataFrame]:
    """Rows in batches of `every` of market time."""
    return rows.with_columns(_slice=pl.col("ts").dt.truncate(every)).partition_by(
        "_slice", maintain_order=True, include_key=False
    )


SCHEDULES: dict[str, Callable[[pl.DataFrame, list[Alert]], list[pl.DataFrame]]] = {
    "1 row around the first alert": lambda rows, alerts: around(rows, alerts[0].detected_at, 1),
    "7 rows around the last alert": lambda rows, alerts: around(rows, alerts[-1].detected_at, 7),
    "1000 rows": lambda rows, alerts: list(rows.iter_slices(1000)),
    "an hour of market time": lambda rows, alerts: by_time(rows),
}


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_the_stream_gives_the_batch_alerts(subject: Subject, fired: list[Alert], schedule: str) -> None:
    arriving = subject.rows.sort("ts", maintain_order=True)  # as a live feed delivers: by time across symbols
    chunks = [chunk for chunk in SCHEDULES[schedule](arriving, fired) if chunk.height]
    streamed = subject.stream(chunks)
    assert sorted(streamed) == sorted(alert.id for alert in fired)
    for alert in fired:
        assert comparable(streamed[alert.id]) == comparable(alert), alert.id


# -- 2. causality ---------------------------------------------------------------------------------


def decided(alert: Alert) -> dict[str, Any]:
    """What was decided at `detected_at`: the alert without its follow-up."""
    return alert.model_dump(exclude={"followup", "timing"})


def spread_over(alerts: list[Alert]) -> list[Alert]:
    """The first, a middle and the last alert: a few cuts, spread over the market."""
    return [alerts[index] for index in sorted({0, len(alerts) // 2, len(alerts) - 1})]


def test_truncating_at_detected_at_keeps_the_alert(subject: Subject, fired: list[Alert]) -> None:
    for alert in spread_over(fired):
        again = {a.id: a for a in subject.batch(subject.rows.filter(pl.col("ts") <= alert.detected_at))}
        assert alert.id in again, f"{alert.id} detected at {alert.detected_at} is gone when cut there"
        assert decided(again[alert.id]) == decided(alert)


# -- 3. row order ---------------------------------------------------------------------------------


def test_shuffled_rows_give_the_same_alerts(subject: Subject, fired: list[Alert]) -> None:
    """Ids, `detected_at` and scores, and also the evidence: an analyst must not see other numbers."""
    shuffled = subject.rows.sample(fraction=1.0, shuffle=True, seed=1).sort(SORT, maintain_order=True)
    assert not shuffled.equals(subject.rows)  # rows sharing a timestamp really were reordered
    again = {alert.id: alert for alert in subject.batch(shuffled)}
    assert sorted(again) == sorted(alert.id for alert in fired)
    for alert in fired:
        assert comparable(again[alert.id]) == comparable(alert), alert.id


# -- 4. cost at the loosest settings ----------------------------------------------------------------

LOWER_IS_LOOSER = ("min_", "threshold", "warmup", "cooldown", "big_move_", "benford_max_mad")
"""Name parts of fields that let more through when smaller (`benford_max_mad` bounds what is
normal, so a smaller one calls more wash-like)."""
HIGHER_IS_LOOSER = ("max_", "tolerance", "_after_", "near_levels")
KEPT = ("max_score",)
"""A score ceiling: no gate at all."""


def looser_direction(name: str) -> int | None:
    """-1 when a smaller value lets more through, +1 when a larger one does, None for windows,
    bands, sizes and seeds (no direction is looser)."""
    if name in KEPT:
        return None
    if any(part in name for part in LOWER_IS_LOOSER):
        return -1
    if any(part in name for part in HIGHER_IS_LOOSER):
        return 1
    return None


def extreme(metadata: list[Any], default: float, direction: int) -> float:
    """The furthest value a field's ge/gt/le/lt constraints allow in `direction`: a strict bound
    approached by a millionth of the default (by one for integers), an absent bound taken as 100×
    past the default."""
    limits = {
        kind: getattr(item, kind)
        for item in metadata
        for kind in ("ge", "gt", "le", "lt")
        if getattr(item, kind, None) is not None
    }
    step = 1 if isinstance(default, int) else 1e-6 * max(1.0, abs(default))
    closed, open_, unbounded = ("ge", "gt", default / 100) if direction < 0 else ("le", "lt", default * 100)
    if closed in limits:
        return limits[closed]
    if open_ in limits:
        return limits[open_] - direction * step
    return type(default)(unbounded)


def loosest(section: BaseModel) -> dict[str, Any]:
    """Every gate of a settings section at the loosest value its field constraints allow."""
    values = {}
    for name, info in type(section).model_fields.items():
        default = getattr(section, name)
        direction = looser_direction(name)
        if direction is not None and isinstance(default, int | float) and not isinstance(default, bool):
            values[name] = extreme(info.metadata, default, direction)
    return values


def test_the_loosest_settings_finish_in_bounded_time(subject: Subject, fired: list[Alert]) -> None:
    loose = loosest(subject.section)
    assert loose, f"{subject.name}: no threshold found to loosen"
    section = type(subject.section).model_validate(subject.section.model_dump() | loose)
    started = time.process_time()
    alerts = subject.batch(section=section)
    elapsed = time.process_time() - started
    assert elapsed < LOOSE_BOUND_S, f"{subject.name} took {elapsed:.1f} CPU s at {loose}"
    assert alerts, f"{subject.name} raised nothing at its loosest settings {loose}"
