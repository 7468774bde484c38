"""End to end through the command line, on small generated files."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import polars as pl
from conftest import START, burst, market, quiet_trades
from typer.testing import CliRunner

from tapewatch.cli.app import app
from tapewatch.sources.simulator.market import ccxt_trade_rows

runner = CliRunner()


def ccxt_csv_text(trades: pl.DataFrame) -> str:
    """The layout of ccxt's fetch_trades saved as CSV, as the real dev files are."""
    return ccxt_trade_rows(trades).write_csv()


def write_ccxt_csv(trades: pl.DataFrame, path) -> None:
    """`ccxt_csv_text` written to `path`."""
    Path(path).write_text(ccxt_csv_text(trades))


def pumped_csv(tmp_path):
    at = START + timedelta(hours=4)
    path = tmp_path / "pump.csv"
    write_ccxt_csv(market(quiet_trades(), burst(at)), path)
    return path, at


def test_detect_writes_alert_json_lines(tmp_path):
    path, at = pumped_csv(tmp_path)
    output = tmp_path / "out" / "alerts.jsonl"
    result = runner.invoke(app, ["detect", str(path), "--venue", "binance", "--output", str(output)])
    assert result.exit_code == 0, result.output
    lines = output.read_text().splitlines()
    onsets = [json.loads(line) for line in lines if json.loads(line)["detector"] == "pump_onset"]
    assert len(onsets) == 1
    alert = onsets[0]
    assert set(alert) >= {
        "id",
        "typology",
        "venue",
        "symbol",
        "start",
        "end",
        "detected_at",
        "score",
        "severity",
        "detector",
        "evidence",
    }
    assert (
        alert["venue"] == "binance" and alert["symbol"] == "AAA/BTC" and alert["typology"] == "pump_and_dump"
    )
    assert alert["detected_at"].endswith("Z") and alert["detected_at"].startswith(
        at.strftime("%Y-%m-%dT%H:%M")
    )
    assert "alert(s)" in result.output  # the summary (stderr is mixed into output by the runner)


def test_bad_rows_go_to_the_dead_letter_file_and_the_run_goes_on(tmp_path):
    path, _ = pumped_csv(tmp_path)
    with path.open("a") as handle:
        handle.write("AAA/BTC,not-a-time,x,buy,0.00001,5,0.00005\n")
        handle.write("AAA/BTC,1709280000000,2024-03-01T08:00:00.000Z,buy,-1,5,0\n")
        handle.write("AAA/BTC,1709280000000,2024-03-01T08:00:00.000Z,hold,0.00001,5,0.00005\n")
    output = tmp_path / "alerts.jsonl"
    result = runner.invoke(app, ["detect", str(path), "-o", str(output)])
    assert result.exit_code == 0, result.output
    dead = tmp_path / "alerts.rejected.jsonl"
    rejected = [json.loads(line) for line in dead.read_text().splitlines()]
    assert len(rejected) == 3
    assert "3 rejected" in result.output
    assert any("side" in row["reason"] for row in rejected)
    assert any("timestamp" in row["reason"] for row in rejected)
    assert output.read_text().count("pump_onset") == 1


def test_missing_file_is_one_line_and_exit_code_2(tmp_path):
    result = runner.invoke(app, ["detect", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert "nope.csv" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_unknown_detector_and_format_are_user_errors(tmp_path):
    path, _ = pumped_csv(tmp_path)
    for args, name in ((["--detector", "nope"], "--detector"), (["--format", "xml"], "xml")):
        result = runner.invoke(app, ["detect", str(path), *args])
        assert result.exit_code == 2 and name in result.output


def test_detect_then_evaluate(tmp_path):
    path, at = pumped_csv(tmp_path)
    alerts = tmp_path / "alerts.jsonl"
    assert runner.invoke(app, ["detect", str(path), "-o", str(alerts)]).exit_code == 0
    labels = tmp_path / "labels.csv"
    labels.write_text(f"pair,announced_at_utc\nAAA/BTC,{at:%Y-%m-%d %H:%M}\n")
    result = runner.invoke(
        app, ["evaluate", "--alerts", str(alerts), "--labels", str(labels), "--data", str(path)]
    )
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if "pump_onset" in line)
    assert "100.0%" in row  # recall 1/1


def test_installed_command_runs_as_a_process(tmp_path):
    path, _ = pumped_csv(tmp_path)
    process = subprocess.run(
        [sys.executable, "-m", "tapewatch", "detect", str(path)], capture_output=True, text=True, check=False
    )
    assert process.returncode == 0, process.stderr
    stdout_alerts = [json.loads(line) for line in process.stdout.splitlines()]
    assert [a["detector"] for a in stdout_alerts].count("pump_onset") == 1
    assert "alert(s)" in process.stderr  # summary on stderr keeps stdout clean JSON


def test_every_verb_has_help():
    for verb in ("detect", "evaluate", "simulate", "demo"):
        result = runner.invoke(app, [verb, "--help"])
        assert result.exit_code == 0 and "Usage" in result.output


def test_simulated_market_directory_round_trips_through_detect_and_evaluate(tmp_path):
    sim = tmp_path / "sim"
    assert (
        runner.invoke(app, ["simulate", "--out", str(sim), "--symbols", "3", "--format", "csv"]).exit_code
        == 0
    )
    alerts = tmp_path / "alerts.jsonl"
    result = runner.invoke(app, ["detect", str(sim), "-o", str(alerts)])
    assert result.exit_code == 0, result.output
    assert "order events" in result.output and "labels.csv" in result.output  # orders read, labels skipped
    found = {json.loads(line)["typology"] for line in alerts.read_text().splitlines()}
    assert {"spoofing", "layering"} & found  # the L3 detectors ran on orders.csv
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--alerts",
            str(alerts),
            "--labels",
            str(sim / "labels.csv"),
            "--typology",
            "pump_and_dump",
            "--data",
            str(sim / "trades.csv"),
        ],
    )
    assert result.exit_code == 0, result.output


def test_the_command_line_starts_without_the_data_libraries():
    """`tapewatch --help` and every command's registration load no Polars, NumPy or detector: a command
    imports what it uses when it runs (start-up is most of a short command's time)."""
    probe = (
        "import sys; import tapewatch.cli.app; "
        "print(sorted(m for m in ('polars', 'numpy', 'scipy', 'tapewatch.detect.registry') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]", loaded.stdout
