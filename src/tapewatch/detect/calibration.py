"""An alert's score as the probability that it is a real manipulation, and the severity that follows.

Each detector scores its alerts on its own scale (how far past its thresholds the evidence
went), which says little across detectors: a 0.9 from one rule and a 0.9 from another need
not be equally often right. Analysts triage by severity, so the score they see is the
*measured* precision of alerts like it: per detector, an isotonic regression of "was it a
labelled manipulation" on the raw score, fitted on held-out results by
`benchmarks/calibrate.py` and shipped as `calibration.json` beside this module (with what
fitted it). The raw score stays in the evidence (`raw_score`).

Two caps follow from what a detector can see, not from any fit:
- a detector without a table (no labelled data to measure it on, such as the candle
  anomaly rules) keeps its raw score, says `"calibrated": false`, and is at most `medium`;
- a detector that cannot see accounts where the typology is defined by who traded
  (wash trading and spoofing read from the public tape or the public book) is at most
  `medium`: it cannot say who did it, so an analyst cannot act on it alone.

Calibrating is idempotent (it reads `raw_score` when present), so an alert re-emitted
with its follow-up is not calibrated twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tapewatch.records import Alert, Severity, severity_for

TABLES_PATH = Path(__file__).with_name("calibration.json")
PUBLIC_DATA = frozenset({"wash_public", "spoofing_l2"})
"""Detectors of wash trading and spoofing that read no account ids (public tape, public book)."""
SEVERITY_ORDER: tuple[Severity, ...] = ("low", "medium", "high", "critical")
CAPPED: Severity = "medium"


@dataclass(frozen=True)
class CalibrationTable:
    """One detector's fitted map from raw score to measured precision (a non-decreasing step function)."""

    detector: str
    raw: tuple[float, ...]
    """Raw-score breakpoints, increasing; between two, the probability is interpolated linearly."""
    probability: tuple[float, ...]
    alerts: int
    true_alerts: int
    fitted_on: str

    def probability_at(self, raw: float) -> float:
        """The measured precision of alerts scoring `raw` (clipped to the fitted range). NumPy loads here,
        at the first alert, not when the engine is imported."""
        import numpy as np

        return float(np.interp(raw, self.raw, self.probability))

    def to_json(self) -> dict[str, Any]:
        return {
            "raw": list(self.raw),
            "probability": list(self.probability),
            "alerts": self.alerts,
            "true_alerts": self.true_alerts,
            "fitted_on": self.fitted_on,
        }


def fit_table(detector: str, raw: Sequence[float], real: Sequence[bool], fitted_on: str) -> CalibrationTable:
    """Isotonic regression of `real` on `raw`: the precision of alerts at each score, never decreasing
    with the score. A handful of alerts gives a coarse table; the counts travel with it.

    No finite sample proves certainty: probabilities stay within Laplace's rule of succession
    for the number of alerts fitted, 1/(n + 2) … (n + 1)/(n + 2), so 107 alerts that were all
    real give 0.991, not 1."""
    import numpy as np
    from sklearn.isotonic import IsotonicRegression

    scores = np.asarray(raw, dtype=float)
    truth = np.asarray(real, dtype=float)
    if scores.size == 0:
        raise ValueError(f"{detector}: no alerts to calibrate on")
    model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
    model.fit(scores, truth)
    knots_x = np.asarray(model.X_thresholds_, dtype=float)
    bound = 1.0 / (scores.size + 2)
    knots_y = np.clip(np.asarray(model.y_thresholds_, dtype=float), bound, 1.0 - bound)
    return CalibrationTable(
        detector=detector,
        raw=tuple(round(float(x), 6) for x in knots_x),
        probability=tuple(round(float(y), 4) for y in knots_y),
        alerts=int(scores.size),
        true_alerts=int(truth.sum()),
        fitted_on=fitted_on,
    )


def write_tables(tables: Iterable[CalibrationTable], path: Path = TABLES_PATH) -> None:
    """Save the tables (sorted by detector) for `load_tables`."""
    data = {table.detector: table.to_json() for table in sorted(tables, key=lambda t: t.detector)}
    path.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")


@cache
def load_tables(path: Path = TABLES_PATH) -> dict[str, CalibrationTable]:
    """The shipped tables by detector name. The file ships inside the package: without it every score
    would silently stay raw, so its absence is an installation error, said as such."""
    if not path.exists():
        raise FileNotFoundError(f"calibration tables '{path}' missing: reinstall tapewatch")
    data = json.loads(path.read_text())
    return {
        name: CalibrationTable(
            detector=name,
            raw=tuple(entry["raw"]),
            probability=tuple(entry["probability"]),
            alerts=entry["alerts"],
            true_alerts=entry["true_alerts"],
            fitted_on=entry["fitted_on"],
        )
        for name, entry in data.items()
    }


def calibrate(alert: Alert, tables: dict[str, CalibrationTable] | None = None) -> Alert:
    """The alert with its score as a measured probability and the severity that follows (see module)."""
    tables = load_tables() if tables is None else tables
    raw = float(alert.evidence.get("raw_score", alert.score))
    table = tables.get(alert.detector)
    score = table.probability_at(raw) if table is not None else raw
    severity = severity_for(score)
    if table is None or alert.detector in PUBLIC_DATA:
        severity = _at_most(severity, CAPPED)
    evidence = {**alert.evidence, "raw_score": raw, "calibrated": table is not None}
    return alert.model_copy(update={"score": round(score, 4), "severity": severity, "evidence": evidence})


def calibrate_all(alerts: Iterable[Alert]) -> list[Alert]:
    """`calibrate` over a sequence, with the shipped tables."""
    tables = load_tables()
    return [calibrate(alert, tables) for alert in alerts]


def _at_most(severity: Severity, cap: Severity) -> Severity:
    return min(severity, cap, key=SEVERITY_ORDER.index)
