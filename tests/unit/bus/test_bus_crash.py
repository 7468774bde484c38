"""A worker or the sink SIGKILLed mid-stream and restarted: the stored alerts are those of an uninterrupted run,
on SQLite and on PostgreSQL. Which batch the process dies after is drawn from a printed seed."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import polars as pl
import pytest

from tapewatch.bus.publish import publish_frame
from tapewatch.bus.sink import SinkReport
from tapewatch.bus.status import BusStatus, read_status
from tapewatch.bus.subjects import BusNames
from tapewatch.config import Settings, StreamSettings
from tapewatch.notify import destinations, transport
from tapewatch.store.alert_store import open_store
from unit.bus import bus_harness as harness
from unit.crash.kill import BACKENDS, crash_rng, database, delivery_log, fast_notify, stop_all
from unit.engine.test_stream import busy_market
from unit.notify.endpoints import webhook_server
from unit.notify.helpers import add_rule

pytestmark = pytest.mark.nats

WORKER = Path(__file__).with_name("worker_process.py")
SINK = Path(__file__).with_name("sink_process.py")


def start_worker(settings_file: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(WORKER), str(settings_file), *args], stdout=subprocess.PIPE, text=True
    )


def start_sink(settings_file: Path, db: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(SINK), str(settings_file), db, *args], stdout=subprocess.PIPE, text=True
    )


def small_steps(settings: Settings | None = None) -> Settings:
    """Small messages and small steps: several acks land before the first alert, so a kill leaves a
    checkpoint behind it and trades ahead of it."""
    return (settings or harness.private_settings(message_trades=50, fetch_batch=4)).model_copy(
        update={"stream": StreamSettings(batch_ms=1, max_batch_trades=300)}
    )


@dataclass
class Resumed:
    """A process killed mid-stream and another one run to the end: what the bus showed and said."""

    mid: BusStatus
    """The bus just after the kill."""
    final: BusStatus
    report: dict
    """The survivor's report (its last line)."""
    sink: SinkReport


def kill_and_resume(
    tmp_path: Path,
    settings: Settings,
    trades: pl.DataFrame,
    kill_after: str,
    *,
    db: str | None = None,
    victim: Literal["worker", "sink"] = "worker",
    before_stop: Callable[[], Awaitable[None]] | None = None,
) -> Resumed:
    """Publish `trades`; start a `victim` process that SIGKILLs itself after its `kill_after`th batch of
    alerts (a worker: published, trades not acked) or its batch bringing it to `kill_after` alert messages
    (the sink: saved, not acked); then a survivor,
    SIGTERMed once every partition is settled and `before_stop` returned. Alerts are stored into `db`
    (default tmp_path/alerts.db) by a sink in this process when the worker is the victim, else by the sink
    processes (which also notify) beside one worker."""
    settings_file = tmp_path / "settings.json"
    settings_file.write_text(settings.model_dump_json())
    names = BusNames.from_settings(settings.bus)
    db = db or str(tmp_path / "alerts.db")

    async def replace(js, doomed: subprocess.Popen, start_survivor) -> tuple[BusStatus, BusStatus, dict]:
        async def dead():
            return doomed.poll() is not None

        await harness.until(dead, f"the {victim} to kill itself ({kill_after})")
        assert doomed.returncode == -signal.SIGKILL
        mid = await read_status(js, names)
        survivor = start_survivor()
        await harness.settled(js, settings)
        if before_stop is not None:
            await before_stop()
        survivor.send_signal(signal.SIGTERM)
        out, _ = await asyncio.to_thread(survivor.communicate, timeout=60)
        assert survivor.returncode == 0
        return mid, await read_status(js, names), json.loads(out.strip().splitlines()[-1])

    async def scenario() -> Resumed:
        processes: list[subprocess.Popen] = []

        def started(process: subprocess.Popen) -> subprocess.Popen:
            processes.append(process)
            return process

        async with harness.on_bus(settings) as js:
            await publish_frame(settings, harness.NATS_URL, iter([trades]))
            try:  # a failure must not leave a process running
                if victim == "worker":
                    with open_store(db) as store:
                        running = harness.Running(settings, store)  # the sink only
                        doomed = started(start_worker(settings_file, kill_after))
                        mid, final, report = await replace(
                            js, doomed, lambda: started(start_worker(settings_file))
                        )
                        await running.close()
                    assert mid.trades_lag > 0, "killed after the end: nothing left to resume"
                    return Resumed(mid, final, report, running.sink.report)
                worker = started(start_worker(settings_file))
                doomed = started(start_sink(settings_file, db, kill_after))
                mid, final, report = await replace(js, doomed, lambda: started(start_sink(settings_file, db)))
                worker.send_signal(signal.SIGTERM)
                await asyncio.to_thread(worker.communicate, timeout=60)
                assert worker.returncode == 0
                return Resumed(mid, final, report, SinkReport(**report))
            finally:
                stop_all(processes)

    return asyncio.run(scenario())


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkilled_worker_resumes_with_no_alert_lost_or_duplicated(tmp_path, backend):
    trades = busy_market()
    settings = small_steps()
    expected = harness.reference_alerts(trades, settings)
    kill_after = crash_rng(f"bus worker on {backend}").randint(1, 2)
    print(f"the worker dies after alert batch {kill_after}")
    with database(backend, tmp_path) as db:
        resumed = kill_and_resume(tmp_path, settings, trades, str(kill_after), db=db)
        stored = harness.stored_alerts(db)
    assert any(p.ack_floor > 0 and p.lag > 0 for p in resumed.mid.partitions)
    assert resumed.mid.alerts.messages >= 1  # published before it died, never acked
    assert resumed.report["rebuilt_trades"] > 0  # it rebuilt state from the stream, up to the checkpoint
    assert stored == expected
    # Re-emitted alerts were dropped by message id: every alert reached the sink once.
    assert resumed.sink.repeats == 0 and resumed.sink.alerts == len(expected)
    assert resumed.final.alerts.messages == resumed.sink.messages


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigkilled_sink_resumes_with_no_alert_lost_or_duplicated_and_every_alert_notified(tmp_path, backend):
    trades = busy_market()
    settings = small_steps()
    settings = settings.model_copy(
        update={
            "bus": settings.bus.model_copy(update={"ack_wait_s": 2.0}),
            "notify": fast_notify(),
        }
    )
    expected = harness.reference_alerts(trades, settings)
    kill_after = crash_rng(f"bus sink on {backend}").randint(2, len(expected))
    print(f"the sink dies after the batch that brings it to {kill_after} saved alert message(s)")
    with database(backend, tmp_path) as db, webhook_server() as webhook:
        webhook.fail_first_per_key = 1  # each message waits in a back-off once: the queue lags the acks
        url = f"json://127.0.0.1:{webhook.port}/desk"
        masked = destinations.mask(url)
        with open_store(db) as store:
            add_rule(store.engine, "all", url)

        async def all_sent() -> None:
            async def done() -> bool:
                return sorted(delivery_log(db)) == sorted((alert_id, masked, "sent") for alert_id in expected)

            await harness.until(done, "every alert notified")

        resumed = kill_and_resume(
            tmp_path, settings, trades, str(kill_after), db=db, victim="sink", before_stop=all_sent
        )
        stored = harness.stored_alerts(db)
        log = delivery_log(db)
    assert resumed.mid.sink_lag, "killed after the end: nothing left to resume"
    assert stored == expected
    # The batch saved but never acked came again: saved again without a change, and nothing else is missing.
    assert resumed.sink.stored < len(expected) and resumed.final.sink_lag == 0
    # One `sent` row per alert, and a receiver keeping the idempotency key has each alert once.
    assert sorted(log) == sorted((alert_id, masked, "sent") for alert_id in expected)
    keys = {transport.idempotency_key(alert_id, masked) for alert_id in expected}
    assert set(webhook.delivered()) == keys
