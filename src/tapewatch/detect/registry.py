"""Every detector by name, built from the settings: the one list the engines and the CLI consult.

Each detector's module is imported when the detector is built, not with the registry: a run loads the
code of the detectors it runs (the opt-in model detectors and their model code only when named). The
names are written out here for that reason; tests/unit/engine/test_engine.py checks each key against the
built detector's `name` (pump_model's in tests/unit/detect/pump/test_pump_model.py: it needs a model).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from tapewatch.errors import InputError
from tapewatch.extras import require

if TYPE_CHECKING:
    from tapewatch.detect.base import Detector
    from tapewatch.detect.settings import DetectorSettings


def _pump_onset(settings: DetectorSettings) -> Detector:
    from tapewatch.detect.pump.pump_onset import PumpOnsetDetector

    return PumpOnsetDetector(settings.pump_onset)


def _kamps_kleinberg(settings: DetectorSettings) -> Detector:
    from tapewatch.detect.pump.kamps_kleinberg import KampsKleinbergDetector

    return KampsKleinbergDetector(settings.kamps_kleinberg)


def _wash_public(settings: DetectorSettings) -> Detector:
    from tapewatch.detect.wash.wash_public import WashPublicDetector

    return WashPublicDetector(settings.wash_public)


def _spoofing_l3(settings: DetectorSettings) -> Detector:
    from tapewatch.detect.spoofing.spoofing_l3 import SpoofingL3Detector

    return SpoofingL3Detector(settings.spoofing_l3)


def _spoofing_l2(settings: DetectorSettings) -> Detector:
    from tapewatch.detect.spoofing.spoofing_l2 import SpoofingL2Detector

    return SpoofingL2Detector(settings.spoofing_l2)


def _wash_accounts(settings: DetectorSettings) -> Detector:
    from tapewatch.detect.wash.wash_accounts import WashAccountsDetector

    return WashAccountsDetector(settings.wash_accounts)


def _amplitude_anomaly(settings: DetectorSettings) -> Detector:
    from tapewatch.detect.bars.anomalies import AmplitudeAnomalyDetector

    return AmplitudeAnomalyDetector(settings.amplitude_anomaly)


def _volume_anomaly(settings: DetectorSettings) -> Detector:
    from tapewatch.detect.bars.anomalies import VolumeAnomalyDetector

    return VolumeAnomalyDetector(settings.volume_anomaly)


def _price_anomaly(settings: DetectorSettings) -> Detector:
    from tapewatch.detect.bars.anomalies import PriceAnomalyDetector

    return PriceAnomalyDetector(settings.price_anomaly)


def _isolation_forest(settings: DetectorSettings) -> Detector:
    from tapewatch.detect.bars.isolation import IsolationForestDetector

    return IsolationForestDetector(settings.isolation_forest)


def _forecast_residual(settings: DetectorSettings) -> Detector:
    from tapewatch.detect.bars.forecast import ForecastResidualDetector

    return ForecastResidualDetector(settings.forecast_residual)


def _pump_model(settings: DetectorSettings) -> Detector:
    from tapewatch.detect.pump.pump_model import PumpModelDetector

    return PumpModelDetector.from_settings(settings.pump_model)


DETECTORS: dict[str, Callable[[DetectorSettings], Detector]] = {
    "pump_onset": _pump_onset,
    "kamps_kleinberg": _kamps_kleinberg,
    "wash_public": _wash_public,
    "spoofing_l3": _spoofing_l3,
    "spoofing_l2": _spoofing_l2,
    "wash_accounts": _wash_accounts,
    "amplitude_anomaly": _amplitude_anomaly,
    "volume_anomaly": _volume_anomaly,
    "price_anomaly": _price_anomaly,
    "isolation_forest": _isolation_forest,
    "forecast_residual": _forecast_residual,
    "pump_model": _pump_model,
}
"""Name → how to build the detector from the settings (importing its module then)."""
OPT_IN = frozenset(
    {"pump_model", "kamps_kleinberg", "isolation_forest", "forecast_residual", "wash_public", "spoofing_l2"}
)
"""Detectors that run only when named (`--detector`). `pump_model` needs the user's trained model file
(`[pump_model] model`), so it can never be a default. The other model detectors fit models on every refit, a
few thousand bars a second against the rule detectors' millions; Kamps & Kleinberg's candle rule is kept
for comparison: on the dev files 23 % of its alerts fall within minutes of a pump, and it raised 0.11
alerts per symbol-day more than 30 minutes from every pump (14 alerts). The public-data wash and
spoofing rules see no accounts, and on the independent scenario families (benchmarks/manipulation_sim.py)
they were mostly wrong: on the stock-like family's honest-only markets `wash_public` raised 0.63 and
`spoofing_l2` 0.38 false alarms per symbol-day (target 0.1), and `spoofing_l2`'s alerts there were never
right. They are for a reader who has nothing finer and knows that."""
CANDLE_INPUT = frozenset({"amplitude_anomaly", "volume_anomaly", "price_anomaly"})
"""Default only when the input holds candles (OHLCV files, stock bars), where nothing finer exists. On
trades they run when named: trade-level detectors see more, and on hourly candles built from small-coin
trades these anomaly rules raised 0.54 alerts per symbol-day away from every pump (66 in 123
symbol-days of the dev files) — anomalies, not manipulation, at a rate no analyst can read."""


ML_MODULES: dict[str, tuple[str, ...]] = {
    "pump_model": ("lightgbm", "sklearn"),
    "isolation_forest": ("sklearn",),
    "forecast_residual": ("lightgbm",),
}
"""The opt-in model detectors and the [ml] extra's libraries each imports (by import name). The defaults
need none of them: they run on the base install. `forecast_residual` with the LSTM forecaster needs
PyTorch ([deep]) instead, which the forecaster checks for."""


def default_detector_names(*, candles: bool = False) -> list[str]:
    """The detectors a run uses when none is named; `candles` says whether the input holds candles."""
    return [name for name in DETECTORS if name not in OPT_IN and (candles or name not in CANDLE_INPUT)]


def check_detector_names(names: Sequence[str], settings: DetectorSettings | None = None) -> None:
    """A one-line error for the first name that is not a detector, or (given the settings) for a model
    detector whose extra is not installed or whose model file is not set or absent: checked before a long
    read, not after it."""
    unknown = [name for name in names if name not in DETECTORS]
    if unknown:
        raise InputError(f"--detector '{unknown[0]}': unknown; expected one of {', '.join(DETECTORS)}")
    if settings is not None:
        require_extras(names, settings)
        if "pump_model" in names:
            from tapewatch.detect.pump.pump_model import model_path

            model_path(settings.pump_model)


def require_extras(names: Sequence[str], settings: DetectorSettings) -> None:
    """A one-line error naming the [ml] extra for the first named model detector whose libraries are not
    installed (before any file is read, and before the detector would fail on an import)."""
    lstm = settings.forecast_residual.forecaster.kind == "lstm"
    for name in names:
        if not (lstm and name == "forecast_residual"):
            require("ml", *ML_MODULES.get(name, ()), command=f"--detector {name}")


def build_detectors(
    settings: DetectorSettings, names: Sequence[str] | None = None, *, candles: bool = False
) -> list[Detector]:
    """The named detectors (when `names` is empty, the defaults for the input: see
    `default_detector_names`), configured from `settings`."""
    chosen = list(names) if names else default_detector_names(candles=candles)
    check_detector_names(chosen)
    require_extras(chosen, settings)
    return [DETECTORS[name](settings) for name in chosen]
