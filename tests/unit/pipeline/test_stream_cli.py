"""`tapewatch stream --replay FILE --speed max` yields exactly what `tapewatch detect FILE` yields."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tapewatch.cli.app import app
from tapewatch.sources.simulator.config import SimulationConfig
from tapewatch.sources.simulator.market import simulate_market
from tapewatch.store.alert_store import open_store
from unit.cli.test_cli import write_ccxt_csv
from unit.engine.test_stream import busy_market

runner = CliRunner()
DEV = Path(__file__).resolve().parents[4] / "shared" / "data" / "pump-events" / "dev"


def last_line_per_id(path: Path) -> dict:
    """Stream output: an alert, then maybe an update with the same id; the last line wins."""
    alerts = {}
    for line in path.read_text().splitlines():
        alert = json.loads(line)
        alert.pop("timing", None)
        alerts[alert["id"]] = alert
    return alerts


def detect_and_stream(tmp_path: Path, inputs: list[str]) -> tuple[dict, dict]:
    batch, streamed = tmp_path / "batch.jsonl", tmp_path / "stream.jsonl"
    result = runner.invoke(app, ["detect", *inputs, "-o", str(batch)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        [
            "stream",
            *(word for path in inputs for word in ("--replay", path)),
            "--speed",
            "max",
            "-o",
            str(streamed),
            "--db",
            str(tmp_path / "alerts.db"),
        ],
    )
    assert result.exit_code == 0, result.output
    return {a["id"]: a for a in map(json.loads, batch.read_text().splitlines())}, last_line_per_id(streamed)


def test_stream_replay_equals_detect_on_generated_data(tmp_path):
    path = tmp_path / "market.csv"
    write_ccxt_csv(busy_market(), path)
    batch, streamed = detect_and_stream(tmp_path, [str(path)])
    assert {a["detector"] for a in batch.values()} == {"pump_onset"} and len(batch) >= 4
    assert streamed == batch
    with open_store(tmp_path / "alerts.db") as store:
        stored = {alert.id: alert for alert in store.list(limit=None)}
    assert set(stored) == set(batch)
    assert all(stored[i].followup == batch[i]["followup"] for i in batch if batch[i]["followup"])


@pytest.mark.skipif(not DEV.is_dir(), reason="the real pump files in ../shared/data are not on this machine")
def test_stream_replay_equals_detect_on_a_real_pump_file(tmp_path):
    path = DEV / "EVX_2021-01-09T2100.csv.gz"
    batch, streamed = detect_and_stream(tmp_path, [str(path)])
    assert any(a["detector"] == "pump_onset" for a in batch.values())
    assert streamed == batch


def test_stream_needs_exactly_one_source(tmp_path):
    result = runner.invoke(app, ["stream", "--no-store"])
    assert result.exit_code == 2 and "--replay" in result.output
    result = runner.invoke(app, ["stream", "--replay", "x.csv", "--exchange", "binance", "--no-store"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["stream", "--bus", "nats://127.0.0.1:1", "--notify"])
    assert result.exit_code == 2 and "bus sink --notify" in result.output  # workers never notify


def test_bad_speed_is_a_one_line_error(tmp_path):
    path = tmp_path / "market.csv"
    write_ccxt_csv(busy_market().head(50), path)
    result = runner.invoke(app, ["stream", "--replay", str(path), "--speed", "fast", "--no-store"])
    assert result.exit_code == 2 and "--speed 'fast'" in result.output


def test_a_replay_larger_than_memory_streams_hour_by_hour_as_detect_decides(tmp_path, monkeypatch):
    path, again = tmp_path / "market.csv", tmp_path / "market-again.csv"
    write_ccxt_csv(busy_market(), path)
    write_ccxt_csv(busy_market().tail(500), again)  # a re-read page: duplicates across files and hours
    monkeypatch.setenv("TAPEWATCH_BATCH__MEMORY_GIB", "0.000001")
    streamed = tmp_path / "stream.jsonl"
    result = runner.invoke(
        app, ["stream", "--replay", str(path), "--replay", str(again), "-o", str(streamed)]
    )
    assert result.exit_code == 0, result.output
    assert "larger than memory" in result.output and "16 hour(s) spilled to disk" in result.output
    monkeypatch.delenv("TAPEWATCH_BATCH__MEMORY_GIB")
    batch, whole = detect_and_stream(tmp_path, [str(path), str(again)])
    assert len(batch) >= 4 and last_line_per_id(streamed) == batch == whole


def test_a_replay_larger_than_memory_of_order_events_asks_for_trades(tmp_path, monkeypatch):
    venue = simulate_market(SimulationConfig(symbols=2, seed=5))
    venue.orders.write_parquet(tmp_path / "orders.parquet")
    monkeypatch.setenv("TAPEWATCH_BATCH__MEMORY_GIB", "0.000001")
    result = runner.invoke(app, ["stream", "--replay", str(tmp_path / "orders.parquet"), "--no-store"])
    assert result.exit_code == 2
    assert "order events" in result.output or "orders" in result.output
    assert "--kind trades" in result.output and "Traceback" not in result.output
    bogus = runner.invoke(app, ["stream", "--replay", str(tmp_path / "orders.parquet"), "--kind", "bogus"])
    assert bogus.exit_code == 2 and "--kind 'bogus': unknown" in bogus.output
