"""A worker SIGKILLed mid-stream and restarted: the stored alerts are those of an uninterrupted run."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from tapewatch.bus.publish import publish_frame
from tapewatch.bus.sink import SinkReport
from tapewatch.bus.status import BusStatus, read_status
from tapewatch.bus.subjects import BusNames
from tapewatch.config import Settings, StreamSettings
from tapewatch.store.alert_store import open_store
from unit.bus import bus_harness as harness
from unit.engine.test_stream import busy_market

pytestmark = pytest.mark.nats

WORKER = Path(__file__).with_name("worker_process.py")


def start_worker(settings_file: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(settings_file), *args], stdout=subprocess.PIPE, text=True
    )


def small_steps(settings: Settings | None = None) -> Settings:
    """Small messages and small steps: several acks land before the first alert, so a kill leaves a
    checkpoint behind it and trades ahead of it."""
    return (settings or harness.private_settings(message_trades=50, fetch_batch=4)).model_copy(
        update={"stream": StreamSettings(batch_ms=1, max_batch_trades=300)}
    )


@dataclass
class Resumed:
    """A worker killed mid-stream and another one run to the end: what the bus showed and said."""

    mid: BusStatus
    """The bus just after the kill."""
    final: BusStatus
    report: dict
    """The survivor's report (its last line)."""
    sink: SinkReport


def kill_and_resume(tmp_path: Path, settings: Settings, trades: pl.DataFrame, kill_after: str) -> Resumed:
    """Publish `trades`; start a worker that SIGKILLs itself after its `kill_after`th batch of alerts; then
    a survivor, SIGTERMed once every partition is settled. The sink stores into tmp_path/alerts.db."""
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(settings.model_dump_json())
    names = BusNames.from_settings(settings.bus)

    async def scenario() -> Resumed:
        async with harness.on_bus(settings) as js:
            await publish_frame(settings, harness.NATS_URL, iter([trades]))
            with open_store(tmp_path / "alerts.db") as store:
                running = harness.Running(settings, store)  # the sink only
                processes = []
                try:
                    doomed = start_worker(settings_file, kill_after)
                    processes.append(doomed)

                    async def dead():
                        return doomed.poll() is not None

                    await harness.until(dead, f"the worker to kill itself after alert batch {kill_after}")
                    assert doomed.returncode == -signal.SIGKILL
                    mid = await read_status(js, names)
                    assert mid.trades_lag > 0, "killed after the end: nothing left to resume"
                    survivor = start_worker(settings_file)
                    processes.append(survivor)
                    await harness.settled(js, settings)
                    survivor.send_signal(signal.SIGTERM)
                    out, _ = await asyncio.to_thread(survivor.communicate, timeout=60)
                    assert survivor.returncode == 0
                    final = await read_status(js, names)
                    await running.close()
                finally:  # a failure above must not leave a worker running
                    for process in processes:
                        if process.poll() is None:
                            process.kill()
            return Resumed(mid, final, json.loads(out.strip().splitlines()[-1]), running.sink.report)

    return asyncio.run(scenario())


def test_sigkilled_worker_resumes_with_no_alert_lost_or_duplicated(tmp_path):
    trades = busy_market()
    settings = small_steps()
    expected = harness.reference_alerts(trades, settings)
    resumed = kill_and_resume(tmp_path, settings, trades, "1")
    assert any(p.ack_floor > 0 and p.lag > 0 for p in resumed.mid.partitions)
    assert resumed.mid.alerts.messages >= 1  # published before it died, never acked
    assert resumed.report["rebuilt_trades"] > 0  # it rebuilt state from the stream, up to the checkpoint
    assert harness.stored_alerts(tmp_path / "alerts.db") == expected
    # Re-emitted alerts were dropped by message id: every alert reached the sink once.
    assert resumed.sink.repeats == 0 and resumed.sink.alerts == len(expected)
    assert resumed.final.alerts.messages == resumed.sink.messages
