"""Numbers shared by the rule detectors: one 0–1 score from threshold excesses, stable rolling means."""

from __future__ import annotations

import math


def excess_score(*excesses: float) -> float:
    """Score from value/threshold ratios (each ≥ 1 when a rule fires).

    At the thresholds the score is 0.5 (medium); twice every threshold gives ~0.88
    (high), four times ~0.98 (critical). Averaging log-excesses means one extreme
    feature cannot carry a weak alert on its own.
    """
    logs = [math.log2(max(value, 1e-12)) if math.isfinite(value) else 8.0 for value in excesses]
    return 0.5 + 0.5 * math.tanh(sum(logs) / len(logs))
