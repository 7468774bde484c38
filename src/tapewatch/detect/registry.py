"""Every detector by name, built from the settings: the one list the engines and the CLI consult."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tapewatch.detect.bars.anomalies import (
    AmplitudeAnomalyDetector,
    PriceAnomalyDetector,
    VolumeAnomalyDetector,
)
from tapewatch.detect.bars.forecast import ForecastResidualDetector
from tapewatch.detect.bars.isolation import IsolationForestDetector
from tapewatch.detect.base import Detector
from tapewatch.detect.pump.kamps_kleinberg import KampsKleinbergDetector
from tapewatch.detect.pump.pump_model import PumpModelDetector, model_path
from tapewatch.detect.pump.pump_onset import PumpOnsetDetector
from tapewatch.detect.settings import DetectorSettings
from tapewatch.detect.spoofing.spoofing_l2 import SpoofingL2Detector
from tapewatch.detect.spoofing.spoofing_l3 import SpoofingL3Detector
from tapewatch.detect.wash.wash_accounts import WashAccountsDetector
from tapewatch.detect.wash.wash_public import WashPublicDetector
from tapewatch.errors import InputError
from tapewatch.extras import require

DETECTORS: dict[str, Callable[[DetectorSettings], Detector]] = {
    PumpOnsetDetector.name: lambda settings: PumpOnsetDetector(settings.pump_onset),
    KampsKleinbergDetector.name: lambda settings: KampsKleinbergDetector(settings.kamps_kleinberg),
    WashPublicDetector.name: lambda settings: WashPublicDetector(settings.wash_public),
    SpoofingL3Detector.name: lambda settings: SpoofingL3Detector(settings.spoofing_l3),
    SpoofingL2Detector.name: lambda settings: SpoofingL2Detector(settings.spoofing_l2),
    WashAccountsDetector.name: lambda settings: WashAccountsDetector(settings.wash_accounts),
    AmplitudeAnomalyDetector.name: lambda settings: AmplitudeAnomalyDetector(settings.amplitude_anomaly),
    VolumeAnomalyDetector.name: lambda settings: VolumeAnomalyDetector(settings.volume_anomaly),
    PriceAnomalyDetector.name: lambda settings: PriceAnomalyDetector(settings.price_anomaly),
    IsolationForestDetector.name: lambda settings: IsolationForestDetector(settings.isolation_forest),
    ForecastResidualDetector.name: lambda settings: ForecastResidualDetector(settings.forecast_residual),
    PumpModelDetector.name: lambda settings: PumpModelDetector.from_settings(settings.pump_model),
}
OPT_IN = frozenset(
    {
        PumpModelDetector.name,
        KampsKleinbergDetector.name,
        IsolationForestDetector.name,
        ForecastResidualDetector.name,
        WashPublicDetector.name,
        SpoofingL2Detector.name,
    }
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
CANDLE_INPUT = frozenset(
    {AmplitudeAnomalyDetector.name, VolumeAnomalyDetector.name, PriceAnomalyDetector.name}
)
"""Default only when the input holds candles (OHLCV files, stock bars), where nothing finer exists. On
trades they run when named: trade-level detectors see more, and on hourly candles built from small-coin
trades these anomaly rules raised 0.54 alerts per symbol-day away from every pump (66 in 123
symbol-days of the dev files) — anomalies, not manipulation, at a rate no analyst can read."""


ML_MODULES: dict[str, tuple[str, ...]] = {
    PumpModelDetector.name: ("lightgbm", "sklearn"),
    IsolationForestDetector.name: ("sklearn",),
    ForecastResidualDetector.name: ("lightgbm",),
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
        if PumpModelDetector.name in names:
            model_path(settings.pump_model)


def require_extras(names: Sequence[str], settings: DetectorSettings) -> None:
    """A one-line error naming the [ml] extra for the first named model detector whose libraries are not
    installed (before any file is read, and before the detector would fail on an import)."""
    lstm = settings.forecast_residual.forecaster.kind == "lstm"
    for name in names:
        if not (lstm and name == ForecastResidualDetector.name):
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
