"""Every detector by name, built from the settings: the one list the engines and the CLI consult."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tapewatch.config import Settings
from tapewatch.detect.bar_anomalies import (
    AmplitudeAnomalyDetector,
    PriceAnomalyDetector,
    VolumeAnomalyDetector,
)
from tapewatch.detect.bar_forecast import ForecastResidualDetector
from tapewatch.detect.bar_isolation import IsolationForestDetector
from tapewatch.detect.base import Detector
from tapewatch.detect.kamps_kleinberg import KampsKleinbergDetector
from tapewatch.detect.pump_onset import PumpOnsetDetector
from tapewatch.detect.spoofing_l2 import SpoofingL2Detector
from tapewatch.detect.spoofing_l3 import SpoofingL3Detector
from tapewatch.detect.wash_accounts import WashAccountsDetector
from tapewatch.detect.wash_public import WashPublicDetector
from tapewatch.errors import InputError

DETECTORS: dict[str, Callable[[Settings], Detector]] = {
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
}
OPT_IN = frozenset({IsolationForestDetector.name, ForecastResidualDetector.name})
"""Detectors that run only when named (`--detector`): they fit models on every refit, a few
thousand bars a second against the rule detectors' millions, so a plain run stays fast."""


def build_detectors(settings: Settings, names: Sequence[str] | None = None) -> list[Detector]:
    """The named detectors (when `names` is empty, all but the opt-in ones), configured from `settings`."""
    chosen = list(names) if names else [name for name in DETECTORS if name not in OPT_IN]
    unknown = [name for name in chosen if name not in DETECTORS]
    if unknown:
        raise InputError(f"--detector '{unknown[0]}': unknown; expected one of {', '.join(DETECTORS)}")
    return [DETECTORS[name](settings) for name in chosen]
