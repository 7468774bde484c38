"""Which detectors a `detect` run builds: the named ones or the defaults, and a model file's beside them."""

from __future__ import annotations

import pytest

from tapewatch.config import Settings
from tapewatch.detect.registry import default_detector_names
from tapewatch.errors import InputError
from tapewatch.pipeline.batch import choose_detectors


def test_a_model_file_runs_beside_the_defaults_or_the_named_detectors(tmp_path):
    model = tmp_path / "pump.model"
    model.write_bytes(b"checked for existence before the read; loaded when built")
    choice = choose_detectors(Settings(), None, model)
    assert choice.settings.pump_model.model == model
    assert choice.names(candles=False) == [*default_detector_names(candles=False), "pump_model"]
    assert choose_detectors(Settings(), ["pump_onset"], model).names(candles=True) == [
        "pump_onset",
        "pump_model",
    ]
    assert choose_detectors(Settings(), ["pump_model"], model).names(candles=False) == ["pump_model"]
    assert choose_detectors(Settings(), None, None).names(candles=True) == default_detector_names(
        candles=True
    )


def test_a_bad_name_or_a_missing_model_file_is_refused_before_anything_is_read(tmp_path):
    with pytest.raises(InputError, match="pump_onsett"):
        choose_detectors(Settings(), ["pump_onsett"], None)
    with pytest.raises(InputError, match="nope.model"):
        choose_detectors(Settings(), None, tmp_path / "nope.model")


def test_a_detector_pooling_symbols_is_refused_in_partitions_before_anything_is_read(tmp_path):
    """isolation_forest's universe scope fits one forest over a venue's symbols: split by symbol, its
    alerts would differ from one whole run's (measured: 35 alerts whole, 40 in 3 partitions)."""
    from tapewatch.pipeline.batch import detect_files

    pooled = Settings(isolation_forest={"scope": "universe"})
    never_read = tmp_path / "never-read.parquet"
    never_read.write_bytes(b"not parquet: refused before it is read")
    with pytest.raises(InputError, match='scope = "symbol"'):
        detect_files([never_read], pooled, detectors=["isolation_forest"], partitions=3)
    choose_detectors(Settings(), ["isolation_forest"], None).check_split("split")  # per symbol: fine
    assert list(pooled.pooling(["pump_onset", "isolation_forest", "wash_public"])) == ["isolation_forest"]
    assert Settings().pooling(["pump_onset", "isolation_forest", "wash_public"]) == {}
