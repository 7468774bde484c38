"""Every detector's section, by the name its TOML section and environment variables carry.

The registry builds detectors from these alone, so `tapewatch.detect` never reaches up to
`tapewatch.config`; the config's `Settings` composes them with the infrastructure sections.
"""

from __future__ import annotations

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
