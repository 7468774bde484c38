"""Optional extras: a command whose extra is missing says which one to install, in one line.

A missing extra is simulated by putting None in `sys.modules` for its library (and for the Tapewatch
package that wraps it): `find_spec` then reports it missing and importing it fails, so a command that
skipped its check would fail in some other way, never reach a network or a server, and fail the test.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tapewatch.cli.app import app
from tapewatch.config import Settings
from tapewatch.detect.registry import (
    ML_MODULES,
    OPT_IN,
    build_detectors,
    default_detector_names,
    require_extras,
)
from tapewatch.errors import InputError
from tapewatch.extras import require

runner = CliRunner()
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
LIVE_CRYPTO = ("ccxt", "tapewatch.sources.exchange")
LIVE_STOCKS = ("yfinance", "tapewatch.sources.stocks")
SERVICE = ("fastapi", "tapewatch.api")
NOTIFY = ("apprise", "tapewatch.notify")
BUS = ("nats", "tapewatch.bus")
ML = ("lightgbm", "sklearn", "tapewatch.training")


def hide(monkeypatch: pytest.MonkeyPatch, modules: tuple[str, ...]) -> None:
    """Make these modules look uninstalled for the rest of the test."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


@pytest.fixture(autouse=True)
def own_home(tmp_path, monkeypatch):
    """Nothing a command might write lands in the real home folder."""
    monkeypatch.setenv("TAPEWATCH_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


def test_require_names_the_extra_and_the_command_in_one_line():
    with pytest.raises(InputError) as caught:
        require("live", "json", "tapewatch_no_such_module", command="ingest crypto")
    message = str(caught.value)
    assert message.startswith("ingest crypto needs the [live] extra")
    assert "tapewatch_no_such_module" in message and "pip install 'tapewatch[live]'" in message
    assert "\n" not in message


def test_require_passes_when_every_module_is_installed():
    require("ml", "json", "tapewatch.errors", command="train pump")


@pytest.mark.parametrize(
    ("args", "missing", "extra"),
    [
        (["ingest", "crypto", "--symbols", "BTC/USDT"], LIVE_CRYPTO, "live"),
        (["ingest", "stocks"], LIVE_STOCKS, "live"),
        (["stream", "--exchange", "binance", "--no-store"], LIVE_CRYPTO, "live"),
        (["serve"], SERVICE, "service"),
        (["notify", "run", "--once"], NOTIFY, "service"),
        (["notify", "test", "--destination", "json://localhost"], NOTIFY, "service"),
        (["notify", "rules", "add", "pumps", "--to", "json://localhost"], NOTIFY, "service"),
        (["stream", "--replay", "trades.csv", "--notify"], NOTIFY, "service"),
        (["bus", "publish", "trades.csv"], BUS, "bus"),
        (["bus", "sink"], BUS, "bus"),
        (["bus", "status"], BUS, "bus"),
        (["stream", "--bus", "nats://127.0.0.1:4222"], BUS, "bus"),
        (["train", "pump", "--trades", "trades", "--labels", "labels.csv", "--out", "m.zip"], ML, "ml"),
        (["train", "forecast", "bars.csv", "--out", "f.json"], ML, "ml"),
    ],
    ids=lambda value: " ".join(value[:2]) if isinstance(value, list) else None,
)
def test_a_command_without_its_extra_names_it_in_one_line(monkeypatch, args, missing, extra):
    hide(monkeypatch, missing)
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert f"needs the [{extra}] extra" in result.output
    assert f"pip install 'tapewatch[{extra}]'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_model_detector_without_ml_names_the_extra(monkeypatch, tmp_path):
    trades = tmp_path / "trades.csv"
    trades.write_text(
        "symbol,timestamp,datetime,side,price,amount\nBTC/USDT,1704067200000,2024-01-01T00:00:00Z,buy,1,1\n"
    )
    hide(monkeypatch, ML)
    result = runner.invoke(app, ["detect", str(trades), "--detector", "isolation_forest"])
    assert result.exit_code == 2, result.output
    assert "--detector isolation_forest needs the [ml] extra" in result.output


def test_the_default_detectors_need_no_extra(monkeypatch):
    assert set(ML_MODULES) <= OPT_IN
    hide(monkeypatch, ML)
    for candles in (False, True):
        names = default_detector_names(candles=candles)
        assert [d.name for d in build_detectors(Settings(), candles=candles)] == names
    with pytest.raises(InputError, match=r"--detector forecast_residual needs the \[ml\] extra"):
        build_detectors(Settings(), ["forecast_residual"])


def test_the_lstm_forecaster_does_not_ask_for_ml(monkeypatch):
    """Its forecaster needs PyTorch ([deep]), not LightGBM."""
    hide(monkeypatch, ("lightgbm",))
    settings = Settings(forecast_residual={"forecaster": {"kind": "lstm"}})
    require_extras(["forecast_residual"], settings)
    with pytest.raises(InputError, match=r"\[ml\]"):
        require_extras(["forecast_residual"], Settings())


def test_every_extra_named_exists_and_all_holds_the_four():
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    assert {"live", "service", "ml", "bus", "all", "deep", "test"} <= set(extras)
    assert extras["all"] == ["tapewatch[live,service,ml,bus,spark,s3]"]
