"""Every detector's section, by the name its TOML section and environment variables carry.

The registry builds detectors from these alone, so `tapewatch.detect` never reaches up to
`tapewatch.config`; the config's `Settings` composes them with the infrastructure sections.
"""

from __future__ import annotations

from collections.abc import Iterable

from tapewatch.detect.bars.settings import (
    AmplitudeAnomalySettings,
    ForecastResidualSettings,
    IsolationForestSettings,
    PriceAnomalySettings,
    VolumeAnomalySettings,
)
from tapewatch.detect.pump.settings import (
    KampsKleinbergSettings,
    PumpModelSettings,
    PumpOnsetSettings,
    PumpTrainSettings,
)
from tapewatch.detect.spoofing.settings import SpoofingL2Settings, SpoofingL3Settings
from tapewatch.detect.wash.settings import WashAccountsSettings, WashPublicSettings
from tapewatch.sections import Section


class DetectorSettings(Section):
    """The detectors' tunables: one section per detector (the pump model's training included)."""

    pump_onset: PumpOnsetSettings = PumpOnsetSettings()
    kamps_kleinberg: KampsKleinbergSettings = KampsKleinbergSettings()
    wash_public: WashPublicSettings = WashPublicSettings()
    spoofing_l3: SpoofingL3Settings = SpoofingL3Settings()
    spoofing_l2: SpoofingL2Settings = SpoofingL2Settings()
    wash_accounts: WashAccountsSettings = WashAccountsSettings()
    amplitude_anomaly: AmplitudeAnomalySettings = AmplitudeAnomalySettings()
    volume_anomaly: VolumeAnomalySettings = VolumeAnomalySettings()
    price_anomaly: PriceAnomalySettings = PriceAnomalySettings()
    pump_model: PumpModelSettings = PumpModelSettings()
    pump_train: PumpTrainSettings = PumpTrainSettings()
    isolation_forest: IsolationForestSettings = IsolationForestSettings()
    forecast_residual: ForecastResidualSettings = ForecastResidualSettings()

    def pooling(self, names: Iterable[str]) -> dict[str, str]:
        """The named detectors whose settings make a decision read other symbols' rows, with why.

        A run split by symbol (partitions, Spark) gives one whole run's alerts only when every
        detector decides a symbol from its own rows; a section says otherwise with a `pools_symbols`
        reason (only `isolation_forest`'s universe scope does).
        """
        reasons = {name: getattr(getattr(self, name, None), "pools_symbols", None) for name in names}
        return {name: reason for name, reason in reasons.items() if reason}
