"""`tapewatch detect` imports what a run uses, when it uses it (issue 13): no heavy library before the
first file is read, and none a default run on trades does not use at all. Start-up is most of a short
command's time, and one stray top-level import (SciPy, a model library) costs more than the detection.

The commands run in fresh interpreters, as a user runs them; nothing here is timed (the figures are in
benchmarks/startup.py). `tapewatch --help` has its own test in tests/unit/cli/test_cli.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import START, burst, market, quiet_trades

from unit.cli.test_cli import write_ccxt_csv

HEAVY = (
    "scipy",
    "sklearn",
    "lightgbm",
    "torch",
    "matplotlib",
    "plotly",
    "sqlalchemy",
    "fastapi",
    "uvicorn",
    "ccxt",
    "nats",
    "apprise",
    "yfinance",
    "pandas",
    "pyarrow",
    "pyspark",
)
"""Libraries a default `detect` on trades never loads (model, plotting, database, service, exchange
clients). NumPy is checked on its own: a run uses it once detection starts (pump_onset, calibration),
so only the start-up must go without it."""
NOT_IN_A_DEFAULT_RUN = (
    "tapewatch.detect.bars.forecast",
    "tapewatch.detect.bars.forecasters",
    "tapewatch.detect.bars.isolation",
    "tapewatch.detect.bars.anomalies",
    "tapewatch.detect.pump.kamps_kleinberg",
    "tapewatch.detect.pump.model_features",
    "tapewatch.detect.pump.model_file",
    "tapewatch.detect.spoofing.spoofing_l2",
    "tapewatch.detect.wash.wash_public",
    "tapewatch.detect.wash.public_stats",
    "tapewatch.training",
    "tapewatch.store",
    "tapewatch.api",
    "tapewatch.report",
    "tapewatch.bus",
    "tapewatch.notify",
    "tapewatch.sources",
)
"""Opt-in detectors, candle rules (the input holds no candles) and the service side of the package."""
DEFAULT_DETECTORS = ("tapewatch.detect.pump.pump_onset", "tapewatch.detect.wash.wash_accounts")

PROBE = """
import json, sys
from tapewatch.cli.app import app
try:
    app(sys.argv[1:], prog_name="tapewatch")
except SystemExit as stop:
    code = stop.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""
"""Runs the real command in-process, then reports its exit code and every module it loaded."""


def run_command(args: list[str], cwd: Path) -> tuple[int, set[str]]:
    """Exit code and loaded modules of `tapewatch ARGS` in a fresh interpreter, with no config file."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("TAPEWATCH_")}
    process = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True, cwd=cwd, env=env
    )
    report = json.loads(process.stdout.strip().splitlines()[-1])
    return report["code"], set(report["modules"])


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Those of `names` among the modules, counting a package's submodules as the package."""
    return sorted(name for name in names if any(m == name or m.startswith(name + ".") for m in modules))


def pumped_csv(folder: Path) -> Path:
    """A small coin with one pump, in the layout of the dev files (ccxt's fetch_trades as CSV)."""
    path = folder / "pump.csv"
    write_ccxt_csv(market(quiet_trades(), burst(START + timedelta(hours=4))), path)
    return path


@pytest.fixture(scope="module")
def before_reading(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The modules loaded by everything `detect` does before opening a file (options, settings, detector
    names): all of it is done when the command stops at a missing file."""
    folder = tmp_path_factory.mktemp("missing")
    code, modules = run_command(["detect", str(folder / "missing.csv")], folder)
    assert code == 2  # the missing file, reported as a user error: the command got that far
    assert {"tapewatch.pipeline.batch", "tapewatch.config", "polars"} <= modules
    return modules


def test_detect_loads_no_heavy_library_or_detector_before_it_reads(before_reading: set[str]) -> None:
    assert loaded(before_reading, HEAVY) == []
    assert loaded(before_reading, NOT_IN_A_DEFAULT_RUN + DEFAULT_DETECTORS) == []


def test_detect_loads_no_numpy_before_it_reads(before_reading: set[str]) -> None:
    """NumPy costs about 0.1 s to import, most of the start-up budget; the detectors load it when built."""
    assert loaded(before_reading, ("numpy",)) == []


def test_a_default_run_on_trades_loads_only_what_it_uses(tmp_path: Path) -> None:
    """A whole default run loads its detectors and NumPy, and never an opt-in detector, a model library,
    SciPy (only wash_accounts' candidate groups need it, and plain trades name no accounts) or the
    service side."""
    output = tmp_path / "alerts.jsonl"
    code, modules = run_command(["detect", str(pumped_csv(tmp_path)), "-o", str(output)], tmp_path)
    assert code in (0, None)
    assert "pump_onset" in output.read_text()  # detection really ran
    assert {"numpy", *DEFAULT_DETECTORS} <= modules
    assert loaded(modules, HEAVY) == []
    assert loaded(modules, NOT_IN_A_DEFAULT_RUN) == []
