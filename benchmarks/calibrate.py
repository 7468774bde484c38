"""Fit each detector's calibration table (raw score → measured precision) and show it on held-out data.

    python benchmarks/calibrate.py [PUMP_EVENTS_DIR] [--seeds N] [--write]

An alert's `score` is meant as the probability that it is a real manipulation
(`tapewatch.detect.calibration`). This measures it:

- pumps (`pump_onset`): the real dev events; an alert is real when it is decided within
  [announcement − 2 min, + 5 min] on its symbol (the rule `tapewatch evaluate` uses). The
  table fitted on the earlier half of the events (by announcement time) is applied to the
  later half, and each severity band's predicted and measured precision is printed.
- wash trading and spoofing (`wash_accounts`, `spoofing_l3`, `spoofing_l2`, `wash_public`):
  every registered scenario family at rates 0 (honest only), 0.2, 1 and 5 episodes per
  symbol-day; an alert is real when it matches a labelled episode (`tapewatch.evaluate.episodes`).
  For each family the table fitted on the *other* families is applied to it.

`--write` saves the tables fitted on everything to `src/tapewatch/detect/calibration.json`
(the shipped ones). Precision depends on how common manipulation is: the families mix
honest-only markets with markets at 0.2–5 episodes per symbol-day, the dev files hold one
pump in about four symbol-days.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from _common import DEV_EVENTS
from manipulation_sim import detect_family_market
from rich.table import Table

from tapewatch.cli.summary import wide_console
from tapewatch.config import Settings
from tapewatch.detect.calibration import SEVERITY_ORDER, CalibrationTable, fit_table, write_tables
from tapewatch.evaluate.episodes import grade_episodes
from tapewatch.evaluate.scoring import DEFAULT_AFTER, DEFAULT_BEFORE, load_labels, normalised_symbol
from tapewatch.pipeline.batch import detect_files
from tapewatch.records import TIME, Alert, severity_for
from tapewatch.sources.families import FAMILIES

PUMP_DETECTORS = ("pump_onset",)
EPISODE_DETECTORS = {
    "wash_accounts": ("wash_trading",),
    "spoofing_l3": ("spoofing", "layering"),
    "spoofing_l2": ("spoofing", "layering"),
    "wash_public": ("wash_trading",),
}
RATES = (0.0, 0.2, 1.0, 5.0)
SYMBOLS, HOURS = 8, 24.0


@dataclass
class Graded:
    """Raw scores of one detector's alerts and whether each was real, with where they came from."""

    raw: np.ndarray
    real: np.ndarray
    part: np.ndarray
    """The event half (pumps) or family (episodes) each alert belongs to."""

    def of(self, parts: Sequence[str], keep: bool = True) -> tuple[np.ndarray, np.ndarray]:
        mask = np.isin(self.part, list(parts)) == keep
        return self.raw[mask], self.real[mask]


def raw_score(alert: Alert) -> float:
    return float(alert.evidence.get("raw_score", alert.score))


# -- pumps --------------------------------------------------------------------------------------------


def grade_pumps(directory: Path) -> dict[str, Graded]:
    """Every pump alert on the dev files, real or not, tagged with the half of the events its file is in."""
    labels = load_labels(directory / "events.csv", symbol_col="pair", time_col="announced_at_utc")
    events = labels.select(pl.col("event_time").cast(TIME), key=normalised_symbol()).sort("event_time")
    later = events["event_time"][events.height // 2]
    run = detect_files(sorted(directory.glob("*.csv.gz")), Settings(), detectors=list(PUMP_DETECTORS))
    alerts = pl.DataFrame(
        {
            "i": range(len(run.alerts)),
            "detector": [a.detector for a in run.alerts],
            "symbol": [a.symbol for a in run.alerts],
            "detected_at": [a.detected_at for a in run.alerts],
            "raw": [raw_score(a) for a in run.alerts],
        },
        schema_overrides={"detected_at": TIME},
    ).with_columns(key=normalised_symbol())
    # Each file is one symbol around one event; its alerts belong to the half of the event it surrounds.
    nearest = alerts.sort("key", "detected_at").join_asof(
        events.sort("key", "event_time"),
        left_on="detected_at",
        right_on="event_time",
        by="key",
        strategy="nearest",
        check_sortedness=False,  # sorted within each symbol, which is what the join needs
    )
    window = pl.col("detected_at").is_between(
        pl.col("event_time") - DEFAULT_BEFORE, pl.col("event_time") + DEFAULT_AFTER
    )
    nearest = nearest.with_columns(
        real=window.fill_null(False),
        part=pl.when(pl.col("event_time") >= later).then(pl.lit("later")).otherwise(pl.lit("earlier")),
    ).sort("i")
    return {
        name: Graded(
            raw=group["raw"].to_numpy(), real=group["real"].to_numpy(), part=group["part"].to_numpy()
        )
        for (name,), group in nearest.group_by("detector")
    }


# -- episodes -----------------------------------------------------------------------------------------


def grade_families(seeds: int) -> dict[str, Graded]:
    """Every wash/spoof alert on every family, rate and seed, real or not, tagged with its family."""
    raws: dict[str, list[float]] = {name: [] for name in EPISODE_DETECTORS}
    reals: dict[str, list[bool]] = {name: [] for name in EPISODE_DETECTORS}
    parts: dict[str, list[str]] = {name: [] for name in EPISODE_DETECTORS}
    for family, generate in FAMILIES.items():
        for rate in RATES:
            for seed in range(1, seeds + 1):
                market = generate(seed, symbols=SYMBOLS, hours=HOURS, rate=rate, honest_only=rate == 0)
                alerts = detect_family_market(market, tuple(EPISODE_DETECTORS))
                labels = market.labels.filter(pl.col("typology") != "pump_and_dump")
                for name, typologies in EPISODE_DETECTORS.items():
                    mine = [
                        a.model_copy(update={"score": raw_score(a)}) for a in alerts if a.detector == name
                    ]
                    for graded in grade_episodes(mine, labels, SYMBOLS * HOURS / 24, typologies=typologies):
                        if graded.scheme is not None:
                            continue
                        raws[name] += graded.alert_scores.tolist()
                        reals[name] += graded.alert_true.tolist()
                        parts[name] += [family] * graded.alert_scores.size
    return {
        name: Graded(np.array(raws[name]), np.array(reals[name], dtype=bool), np.array(parts[name]))
        for name in EPISODE_DETECTORS
        if raws[name]
    }


# -- tables ----------------------------------------------------------------------------------------


def band_rows(table: CalibrationTable | None, raw: np.ndarray, real: np.ndarray) -> list[list[str]]:
    """Per severity band of the calibrated score: alerts, real ones, predicted and measured precision."""
    if table is None:
        return [["–", str(raw.size), str(int(real.sum())), "–", _share(real)]]
    probability = np.array([table.probability_at(x) for x in raw])
    bands = np.array([severity_for(p) for p in probability])
    rows = []
    for band in SEVERITY_ORDER:
        mask = bands == band
        if mask.any():
            rows.append(
                [
                    band,
                    str(int(mask.sum())),
                    str(int(real[mask].sum())),
                    f"{probability[mask].mean():.2f}",
                    _share(real[mask]),
                ]
            )
    return rows


def _share(real: np.ndarray) -> str:
    return f"{real.mean():.2f}" if real.size else "–"


def held_out_table(title: str, rows: list[tuple[str, str, list[list[str]]]]) -> Table:
    table = Table(title=title)
    for column in ("detector", "held out", "band", "alerts", "real", "predicted", "measured"):
        table.add_column(column, justify="left" if column in ("detector", "held out", "band") else "right")
    for detector, held, bands in rows:
        for band in bands:
            table.add_row(detector, held, *band)
    return table


def fit_or_none(name: str, raw: np.ndarray, real: np.ndarray, fitted_on: str) -> CalibrationTable | None:
    return fit_table(name, raw, real, fitted_on) if raw.size else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("events", nargs="?", type=Path, default=DEV_EVENTS, help="pump-events directory")
    parser.add_argument("--seeds", type=int, default=1, help="seeds per family and rate")
    parser.add_argument("--write", action="store_true", help="save the tables fitted on everything")
    args = parser.parse_args()
    console = wide_console()
    shipped: list[CalibrationTable] = []
    rows: list[tuple[str, str, list[list[str]]]] = []

    if args.events.is_dir():
        for name, graded in grade_pumps(args.events).items():
            train = fit_or_none(name, *graded.of(["earlier"]), "dev pump events, earlier half")
            rows.append((name, "later half of the events", band_rows(train, *graded.of(["later"]))))
            shipped.append(
                fit_table(
                    name,
                    graded.raw,
                    graded.real,
                    f"{args.events.name} pump events ({graded.raw.size} alerts)",
                )
            )
    else:
        console.print(f"pump events '{args.events}' not found: pump detectors not calibrated")

    for name, graded in grade_families(args.seeds).items():
        for family in FAMILIES:
            train = fit_or_none(name, *graded.of([family], keep=False), f"families other than {family}")
            rows.append((name, family, band_rows(train, *graded.of([family]))))
        shipped.append(
            fit_table(
                name, graded.raw, graded.real, f"scenario families {', '.join(FAMILIES)}, rates {RATES}"
            )
        )

    console.print(held_out_table("Calibrated score bands on held-out data (fitted without them)", rows))
    for table in shipped:
        console.print(
            f"{table.detector}: fitted on {table.fitted_on}: {table.alerts} alerts, {table.true_alerts} real; "
            f"{len(table.raw)} knots"
        )
    if args.write:
        write_tables(shipped)
        console.print("written: src/tapewatch/detect/calibration.json")


if __name__ == "__main__":
    main()
