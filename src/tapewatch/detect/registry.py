"""Every detector by name, built from the settings: the one list the engines and the CLI consult."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tapewatch.config import Settings
from tapewatch.detect.base import Detector
from tapewatch.detect.kamps_kleinberg import KampsKleinbergDetector
from tapewatch.detect.pump_onset import PumpOnsetDetector
from tapewatch.errors import InputError

DETECTORS: dict[str, Callable[[Settings], Detector]] = {
    PumpOnsetDetector.name: lambda settings: PumpOnsetDetector(settings.pump_onset),
    KampsKleinbergDetector.name: lambda settings: KampsKleinbergDetector(settings.kamps_kleinberg),
}


def build_detectors(settings: Settings, names: Sequence[str] | None = None) -> list[Detector]:
    """The named detectors (all of them when `names` is empty), configured from `settings`."""
    chosen = list(names) if names else list(DETECTORS)
    unknown = [name for name in chosen if name not in DETECTORS]
    if unknown:
        raise InputError(f"--detector '{unknown[0]}': unknown; expected one of {', '.join(DETECTORS)}")
    return [DETECTORS[name](settings) for name in chosen]
