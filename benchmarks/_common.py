"""Shared bits of the benchmarks: where the real data lives, how to time a call, the issue-11 targets,
the pump rule's threshold grid that pump_events.py and pump_model.py choose from forward in time, and
when each pump's buying burst starts."""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

import numpy as np
import polars as pl
from pydantic import ValidationError

from tapewatch.config import Settings
from tapewatch.detect.pump.pump_onset import PumpOnsetDetector
from tapewatch.detect.pump.settings import PumpOnsetSettings
from tapewatch.evaluate.scoring import (
    DEFAULT_AFTER,
    DEFAULT_BEFORE,
    DetectorScore,
    HeldOutPart,
    alerts_to_frame,
    best_choice,
    load_labels,
    normalised_symbol,
    scaled_count,
)
from tapewatch.pipeline.batch import detect_files

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]
DEV_EVENTS = REPO.parent / "shared" / "data" / "pump-events" / "dev"


def data_dir(argv: list[str], default: Path = DEV_EVENTS) -> Path:
    """The directory named on the command line, or the shared dev data; exits with a clear line if absent."""
    path = Path(argv[1]) if len(argv) > 1 else default
    if not path.is_dir():
        sys.exit(f"data directory '{path}' not found: pass the pump-events directory as the first argument")
    return path


def best_of(repeats: int, func: Callable[[], T]) -> tuple[float, T]:
    """Fastest wall time of `repeats` calls (the least disturbed by the machine) and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - started)
    return best, result  # type: ignore[return-value]


# ---------------------------------------------------------------- targets (issue 11), held-out parts only

PUMP_RECALL = (30, 31)
"""Pumps caught of pumps, scaled to the events a part tests (`scaled_count`)."""
PUMP_FALSE_ALARMS_PER_SYMBOL_DAY = 0.02
"""Over all default detectors' pump_and_dump alerts, counted outside ±30 min of every pump."""
PUMP_DELAY_MEDIAN_S = 5.0
PUMP_DELAY_P90_S = 15.0
"""Delays after the announcement minute (the labelled event time)."""


@dataclass(frozen=True)
class Check:
    """One figure against its target, with the line that says so."""

    name: str
    met: bool
    line: str


def check(name: str, value: float | None, target: float, *, at_least: bool = False, unit: str = "") -> Check:
    """`name value (target ≤ x): MET` or MISSED; an unmeasured value (None) misses."""
    met = value is not None and (value >= target if at_least else value <= target)
    shown = "n/a" if value is None else f"{value:.3g}{unit}"
    sign = "≥" if at_least else "≤"
    return Check(name, met, f"{name} {shown} (target {sign} {target:g}{unit}): {'MET' if met else 'MISSED'}")


def pump_checks(score: DetectorScore) -> list[Check]:
    """The four pump targets against one held-out score."""
    needed = scaled_count(*PUMP_RECALL, score.events)
    met = score.caught >= needed
    recall = Check(
        "recall",
        met,
        f"recall {score.caught}/{score.events} (target ≥ {needed}/{score.events}, 30/31 scaled): "
        + ("MET" if met else "MISSED"),
    )
    return [
        recall,
        check("FA/symbol-day", score.false_alarms_per_symbol_day, PUMP_FALSE_ALARMS_PER_SYMBOL_DAY),
        check("median delay", score.delay_median_s, PUMP_DELAY_MEDIAN_S, unit=" s"),
        check("p90 delay", score.delay_p90_s, PUMP_DELAY_P90_S, unit=" s"),
    ]


def seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


# ---------------------------------------------------------------- the pump rule's thresholds, chosen forward

ONSET_GRID: dict[str, tuple[float, ...]] = {
    "window_s": (2.0, 3.0, 5.0),
    "min_orders": (10, 15, 20, 30, 40),
    "min_rate_ratio": (25.0, 50.0, 100.0, 200.0, 400.0),
    "min_price_rise": (0.02, 0.03, 0.05, 0.08),
}
"""Thresholds of PumpOnsetSettings searched when choosing on earlier events (every combination, about
×2 each way around the December 2026 defaults). A name the settings no longer have is skipped and said."""
ONSET_STEPS: dict[str, tuple[str, float]] = {
    "window_s": ("×", 1.5),
    "baseline_h": ("×", 1.5),
    "min_orders": ("×", 1.5),
    "min_rate_ratio": ("×", 1.5),
    "min_price_rise": ("×", 1.5),
    "range_quantile": ("+", 0.05),
}
"""One step of each threshold for the plateau table: × and ÷ a factor, or + and − an amount (a quantile)."""


@dataclass
class PumpData:
    """The dev pumps read once: trades, labelled events (sorted by time), and the pump_and_dump alerts
    of every default detector but the rule being tuned (they do not change with its thresholds)."""

    trades: pl.DataFrame
    labels: pl.DataFrame
    others: pl.DataFrame
    files: int
    duplicates_removed: int


def read_pump_data(directory: Path) -> PumpData:
    """Trades of every `*.csv.gz` in `directory`, events.csv, and the other default detectors'
    pump_and_dump alerts from one run of all default detectors over all the files, as `tapewatch detect`
    runs them (`detect_files` with default Settings)."""
    run = detect_files(sorted(directory.glob("*.csv.gz")), Settings())
    labels = load_labels(directory / "events.csv", symbol_col="pair", time_col="announced_at_utc")
    alerts = alerts_to_frame(run.alerts)
    return PumpData(
        trades=run.read.trades,
        labels=labels.sort("event_time"),
        others=alerts.filter(
            (pl.col("typology") == PumpOnsetDetector.typology)
            & (pl.col("detector") != PumpOnsetDetector.name)
        ),
        files=len(run.read.files),
        duplicates_removed=run.read.duplicates_removed,
    )


def onset_alerts(trades: pl.DataFrame, settings: PumpOnsetSettings) -> pl.DataFrame:
    """The rule's alerts over all the files in one call (the current detector code, whatever it is)."""
    return alerts_to_frame(PumpOnsetDetector(settings).detect(trades))


def onset_grid(defaults: PumpOnsetSettings) -> tuple[list[PumpOnsetSettings], list[str]]:
    """Every combination of ONSET_GRID on top of `defaults`, and the grid names the settings lack."""
    fields = type(defaults).model_fields
    present = {name: values for name, values in ONSET_GRID.items() if name in fields}
    combos = itertools.product(*present.values())
    grid = [_with(defaults, dict(zip(present, combo, strict=True))) for combo in combos]
    return [settings for settings in grid if settings is not None], sorted(set(ONSET_GRID) - set(present))


def onset_neighbours(defaults: PumpOnsetSettings) -> list[tuple[str, PumpOnsetSettings | None]]:
    """The shipped defaults with each ONSET_STEPS threshold moved one step down and up (None where the
    moved value is not allowed); thresholds the settings lack are left out."""
    fields = type(defaults).model_fields
    moved = []
    for name, (how, size) in ONSET_STEPS.items():
        if name not in fields:
            continue
        value = getattr(defaults, name)
        steps = (value / size, value * size) if how == "×" else (value - size, value + size)
        for raw in steps:
            step = round(raw) if isinstance(value, int) else round(raw, 4)
            moved.append((f"{name} {value:g} → {step:g}", _with(defaults, {name: step})))
    return moved


def choose_onset(
    candidates: list[tuple[PumpOnsetSettings, pl.DataFrame]], part: HeldOutPart
) -> tuple[PumpOnsetSettings, pl.DataFrame]:
    """The candidate (settings and their alerts) that `best_choice` picks on `part`, a choosing part,
    by the rule's own alerts."""
    name = PumpOnsetDetector.name
    scored = [(candidate, part.scores(candidate[1], detectors=[name])[name]) for candidate in candidates]
    return best_choice(scored)[0]


def changed(settings: PumpOnsetSettings, defaults: PumpOnsetSettings) -> str:
    """The thresholds where `settings` differ from `defaults`, or 'the shipped defaults'."""
    diff = [
        f"{name}={getattr(settings, name)}"
        for name in type(settings).model_fields
        if getattr(settings, name) != getattr(defaults, name)
    ]
    return ", ".join(diff) or "the shipped defaults"


BURST_WINDOW_S = 1.0
BURST_MIN_ORDERS = 8
BURST_RATE_RATIO = 100.0
BURST_BASELINE_H = 3.0
"""The burst start of a pump, a measurement on the tape alone (no detector setting or alert): the first
taker order, from the announcement − 2 min on, that opens a BURST_WINDOW_S window [t, t + 1 s) holding
≥ BURST_MIN_ORDERS distinct taker orders and ≥ BURST_RATE_RATIO × the symbol's order rate over the
BURST_BASELINE_H hours before the announcement − 2 min. It looks forward from t (it dates the crowd,
it decides nothing), so the delay after the announcement splits into the pump's own start and the
detector's lag after it."""


def burst_starts(trades: pl.DataFrame, events: pl.DataFrame) -> pl.DataFrame:
    """Per event (symbol, event_time): `burst_s`, the burst start in seconds after the announcement
    minute (null when no window qualifies within the catch window), and `burst_need`, the orders the
    window needed."""
    rows = []
    for symbol, announced in events.select("symbol", "event_time").iter_rows():
        rows.append({"symbol": symbol, "event_time": announced, **_burst_start(trades, symbol, announced)})
    schema = {"symbol": pl.String, "event_time": events.schema["event_time"]}
    return pl.DataFrame(rows, schema=schema | {"burst_s": pl.Float64, "burst_need": pl.Float64})


def _burst_start(trades: pl.DataFrame, symbol: str, announced: datetime) -> dict[str, float | None]:
    """`burst_starts` for one event, from the symbol's taker orders (distinct ts and side)."""
    opens = announced - DEFAULT_BEFORE
    orders = (
        trades.filter(
            (normalised_symbol() == _normalised(symbol))
            & pl.col("ts").is_between(opens - timedelta(hours=BURST_BASELINE_H), announced + DEFAULT_AFTER)
        )
        .unique(["ts", "side"])
        .get_column("ts")
        .sort()
    )
    baseline_per_s = orders.filter(orders < opens).len() / (BURST_BASELINE_H * 3600)
    need = max(BURST_MIN_ORDERS, BURST_RATE_RATIO * baseline_per_s * BURST_WINDOW_S)
    micros = orders.dt.epoch("us").to_numpy()
    first = int(np.searchsorted(micros, _micros(opens)))
    ends = np.searchsorted(micros, micros[first:] + int(BURST_WINDOW_S * 1e6), side="left")
    qualifying = np.flatnonzero(ends - np.arange(first, len(micros)) >= need)
    start = (micros[first + qualifying[0]] - _micros(announced)) / 1e6 if qualifying.size else None
    return {"burst_s": start, "burst_need": need}


def _normalised(symbol: str) -> str:
    return pl.select(pl.lit(symbol).alias("symbol")).select(normalised_symbol()).item()


def _micros(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _with(defaults: PumpOnsetSettings, update: dict[str, float]) -> PumpOnsetSettings | None:
    """`defaults` with `update` applied and validated; None when a value is out of the field's range."""
    try:
        return type(defaults).model_validate(defaults.model_dump() | update)
    except ValidationError:
        return None
