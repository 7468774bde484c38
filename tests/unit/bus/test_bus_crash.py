"""A worker SIGKILLed mid-stream and restarted: the stored alerts are those of an uninterrupted run."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tapewatch.bus.publish import publish_frame
from tapewatch.bus.status import read_status
from tapewatch.bus.subjects import BusNames
from tapewatch.config import StreamSettings
from tapewatch.store.alert_store import open_store
from unit.bus import bus_harness as harness
from unit.engine.test_stream import busy_market

pytestmark = pytest.mark.nats

WORKER = Path(__file__).with_name("worker_process.py")


def start_worker(settings_file: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(settings_file), *args], stdout=subprocess.PIPE, text=True
    )


def test_sigkilled_worker_resumes_with_no_alert_lost_or_duplicated(tmp_path):
    trades = busy_market()
    # Small messages and small steps: several acks land before the first alert,
    # so the kill leaves a checkpoint behind it and trades ahead of it.
    settings = harness.private_settings(message_trades=50, fetch_batch=4).model_copy(
        update={"stream": StreamSettings(batch_ms=1, max_batch_trades=300)}
    )
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(settings.model_dump_json())
    expected = harness.reference_alerts(trades, settings)
    names = BusNames.from_settings(settings.bus)

    async def scenario():
        async with harness.on_bus(settings) as js:
            await publish_frame(settings, harness.NATS_URL, iter([trades]))
            with open_store(tmp_path / "alerts.db") as store:
                running = harness.Running(settings, store)  # the sink only
                processes = []
                try:
                    doomed = start_worker(settings_file, "1")
                    processes.append(doomed)

                    async def dead():
                        return doomed.poll() is not None

                    await harness.until(dead, "the worker to kill itself after its first alerts")
                    assert doomed.returncode == -signal.SIGKILL
                    mid = await read_status(js, names)
                    assert mid.trades_lag > 0, "killed after the end: nothing left to resume"
                    assert any(p.ack_floor > 0 and p.lag > 0 for p in mid.partitions)
                    assert mid.alerts.messages >= 1  # published before it died, never acked

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
            report = json.loads(out.strip().splitlines()[-1])
            assert report["rebuilt_trades"] > 0  # it rebuilt state from the stream, up to the checkpoint
            return running.sink.report, final

    sink, final = asyncio.run(scenario())
    assert harness.stored_alerts(tmp_path / "alerts.db") == expected
    # Re-emitted alerts were dropped by message id: every alert reached the sink once.
    assert sink.repeats == 0 and sink.alerts == len(expected)
    assert final.alerts.messages == sink.messages
