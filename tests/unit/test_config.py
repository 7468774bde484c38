from pathlib import Path

import pytest

from tapewatch.config import load_settings
from tapewatch.errors import InputError


def test_defaults_file_then_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("TAPEWATCH_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert load_settings().pump_onset.min_orders == 20
    config = tmp_path / "custom.toml"
    config.write_text("[pump_onset]\nmin_orders = 9\nwindow_s = 5\n")
    assert load_settings(config).pump_onset.min_orders == 9
    monkeypatch.setenv("TAPEWATCH_PUMP_ONSET__MIN_ORDERS", "7")
    settings = load_settings(config)
    assert (settings.pump_onset.min_orders, settings.pump_onset.window_s) == (7, 5.0)


def test_local_tapewatch_toml_is_found(tmp_path, monkeypatch):
    monkeypatch.delenv("TAPEWATCH_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    Path("tapewatch.toml").write_text("[kamps_kleinberg]\nwindow = 24\n")
    assert load_settings().kamps_kleinberg.window == 24


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[pump_onset]\nmin_orderz = 9\n", "pump_onset.min_orderz"),
        ("[pump_onset]\nmin_orders = -1\n", "pump_onset.min_orders"),
        ("[pump_onset\n", "not valid TOML"),
    ],
)
def test_bad_config_is_one_line_naming_file_and_field(tmp_path, text, message):
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(InputError) as error:
        load_settings(config)
    assert message in str(error.value) and "bad.toml" in str(error.value)
    assert "\n" not in str(error.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_settings(tmp_path / "nope.toml")
