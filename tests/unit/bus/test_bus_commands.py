"""`tapewatch bus …` and `tapewatch stream --bus`, through the real CLI: summaries, one-line errors, and
a publish → worker → sink run in separate processes as a user would start them."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from tapewatch.bus.retention import human, needed_retention
from tapewatch.cli.app import app
from tapewatch.config import Settings
from tapewatch.store.alert_store import open_engine
from unit.bus import bus_harness as harness
from unit.engine.test_stream import busy_market
from unit.notify.endpoints import webhook_server
from unit.notify.helpers import add_rule

runner = CliRunner()


def write_config(settings: Settings, path: Path) -> Path:
    path.write_text("[bus]\n" + "".join(f"{k} = {v!r}\n" for k, v in settings.bus.model_dump().items()))
    return path


def bus_inputs(tmp_path: Path) -> tuple[pl.DataFrame, Path, Settings, Path]:
    """A busy market written to Parquet, private bus settings, and a config file holding them."""
    trades = busy_market()
    data = tmp_path / "trades.parquet"
    trades.write_parquet(data)
    settings = harness.private_settings()
    return trades, data, settings, write_config(settings, tmp_path / "tapewatch.toml")


@pytest.mark.nats
def test_publish_and_status_print_one_line_summaries(tmp_path):
    trades, data, settings, config = bus_inputs(tmp_path)

    with harness.topology_for(settings):
        published = runner.invoke(app, ["bus", "publish", str(data), "--config", str(config)])
        status = runner.invoke(app, ["bus", "status", "--config", str(config)])
    assert published.exit_code == 0, published.output
    assert f"published {trades.height:,} trades" in published.output
    assert status.exit_code == 0, status.output
    assert "0 worker(s) own 0/4 partitions" in status.output
    assert "trades lag" in status.output and "no sink yet" in status.output
    assert "checkpoint" in status.output and "none" in status.output  # no worker has saved one
    needed = needed_retention(settings)
    assert f"retention: trades kept 1 d; the detectors need {human(needed.needed)}" in status.output
    assert "no worker running" in status.output and "a takeover rebuilds exactly" in status.output


def test_bus_errors_are_one_line_with_exit_code_2(tmp_path):
    data = tmp_path / "trades.parquet"
    busy_market().head(10).write_parquet(data)
    unreachable = runner.invoke(app, ["bus", "publish", str(data), "--bus", "nats://127.0.0.1:9"])
    assert unreachable.exit_code == 2
    assert "cannot connect" in unreachable.output and "Traceback" not in unreachable.output
    bad_speed = runner.invoke(app, ["bus", "publish", str(data), "--speed", "fast"])
    assert bad_speed.exit_code == 2 and "--speed 'fast'" in bad_speed.output
    missing = runner.invoke(app, ["bus", "publish", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2 and "nope.csv" in missing.output
    both = runner.invoke(app, ["stream", "--bus", harness.NATS_URL, "--replay", str(data)])
    assert both.exit_code == 2 and "--bus is a source of its own" in both.output


def tapewatch(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tapewatch", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def stop(process: subprocess.Popen) -> tuple[str, str]:
    """Ctrl-C, as a user stops a worker or the sink; it must exit cleanly with its summary."""
    process.send_signal(signal.SIGINT)
    out, errors = process.communicate(timeout=60)
    assert process.returncode == 0, errors
    return out, errors


@pytest.mark.nats
def test_stream_bus_workers_and_sink_started_from_the_cli_give_detects_alerts(tmp_path):
    trades, data, settings, config_path = bus_inputs(tmp_path)
    config = str(config_path)
    expected = harness.reference_alerts(trades, settings)
    with webhook_server() as webhook:
        engine = open_engine(tmp_path / "alerts.db")
        add_rule(engine, "everything", f"json://127.0.0.1:{webhook.port}/hook")
        engine.dispose()
        _run_bus_from_the_cli(tmp_path, data, settings, config, expected, trades.height)
    assert len(webhook.requests) == len(expected)  # the sink notified each alert once (--notify)


def _run_bus_from_the_cli(tmp_path, data, settings, config, expected, trade_count) -> None:

    async def scenario() -> tuple[tuple[str, str], tuple[str, str]]:
        async with harness.on_bus(settings) as js:
            sink = tapewatch(
                "bus", "sink", "--config", config, "--db", str(tmp_path / "alerts.db"), "--notify"
            )
            worker = tapewatch(
                "stream", "--bus", harness.NATS_URL, "--config", config, "-o", str(tmp_path / "w.jsonl")
            )
            try:
                publisher = tapewatch("bus", "publish", str(data), "--config", config)
                _, published = await asyncio.to_thread(publisher.communicate, timeout=120)
                assert publisher.returncode == 0 and f"published {trade_count:,} trades" in published
                await harness.settled(js, settings)
                return stop(worker), stop(sink)
            finally:  # a failure above must not leave them running
                for process in (worker, sink):
                    if process.poll() is None:
                        process.kill()

    (_, worker_log), (sink_out, sink_log) = asyncio.run(scenario())
    assert harness.stored_alerts(tmp_path / "alerts.db") == expected
    printed = {json.loads(line)["id"] for line in sink_out.splitlines()}
    assert printed == set(expected)
    worker_lines = (tmp_path / "w.jsonl").read_text().splitlines()
    assert {json.loads(line)["id"] for line in worker_lines} == set(expected)
    assert f"{trade_count:,} trades" in worker_log and f"{len(expected)} alert(s)" in worker_log
    assert f"{len(expected)} alert(s) ({len(expected)} new in the store)" in sink_log
