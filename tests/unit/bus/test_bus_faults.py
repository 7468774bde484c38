"""Faults: malformed messages, a dropped connection, a locked database — none loses or stops anything."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3

import polars as pl
import pytest
from sqlalchemy import create_engine

from tapewatch.bus.alert_stream import AlertPublisher
from tapewatch.bus.codec import encode_trades
from tapewatch.bus.publish import publish_frame
from tapewatch.bus.sink import AlertSink
from tapewatch.bus.status import read_status
from tapewatch.bus.subjects import BusNames
from tapewatch.bus.worker import run_worker
from tapewatch.config import StreamSettings
from tapewatch.detect.registry import build_detectors
from tapewatch.engine.batch import run_batch
from tapewatch.engine.stream import Emitted
from tapewatch.errors import InputError
from tapewatch.records import BAR_SCHEMA, empty_frame
from tapewatch.store.alert_store import AlertStore, open_store
from tapewatch.store.models import metadata
from unit.bus import bus_harness as harness
from unit.engine.test_stream import busy_market

pytestmark = pytest.mark.nats


def test_malformed_messages_are_set_aside_and_the_worker_goes_on(tmp_path):
    trades = busy_market()
    settings = harness.private_settings()
    names = BusNames.from_settings(settings.bus)
    expected = harness.reference_alerts(trades, settings)
    aaa = names.trades_subject("testex", "AAA/BTC")  # partition 2
    bbb_trades = trades.filter(pl.col("symbol") == "BBB/BTC").head(5)  # partition 3's symbol

    async def scenario():
        async with harness.on_bus(settings) as js:
            await js.publish(aaa, b"\x00garbage that is not Arrow")
            await js.publish(aaa, encode_trades(bbb_trades))  # on the wrong partition's subject
            await publish_frame(settings, harness.NATS_URL, iter([trades]))
            with open_store(tmp_path / "alerts.db") as store:
                running = harness.Running(settings, store)
                worker = running.add_worker(dead_letter=tmp_path / "dead.jsonl")
                status = await harness.settled(js, settings)  # zero lag: the bad ones were terminated
                await running.close()
            return worker.report.stats, status

    stats, status = asyncio.run(scenario())
    reasons = sorted(entry["reason"] for entry in stats.set_aside_messages)
    assert len(reasons) == 2 and reasons[0].startswith("not an Arrow IPC stream")
    assert "another partition" in reasons[1]
    assert {entry["subject"] for entry in stats.set_aside_messages} == {aaa}
    assert sum(stats.set_aside.values()) == 2 and status.trades_lag == 0
    assert harness.stored_alerts(tmp_path / "alerts.db") == expected
    letters = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert sorted((entry["source"], entry["reason"]) for entry in letters) == [
        ("bus", reason) for reason in reasons
    ]
    assert {entry["record"]["subject"] for entry in letters} == {aaa}  # the one dead-letter format


def test_a_worker_whose_detectors_read_no_trades_is_refused_before_it_connects():
    with pytest.raises(InputError, match="none of the chosen detectors \\(spoofing_l2\\) reads trades"):
        run_worker(harness.private_settings(), "nats://127.0.0.1:1", detectors=["spoofing_l2"])


def test_a_dropped_connection_is_survived_without_losing_an_alert(tmp_path, caplog):
    trades = busy_market()
    settings = harness.private_settings(
        message_trades=50, fetch_batch=4, ack_wait_s=2.0, request_timeout_s=1.0
    ).model_copy(update={"stream": StreamSettings(batch_ms=1, max_batch_trades=300)})
    expected = harness.reference_alerts(trades, settings)
    caplog.set_level(logging.WARNING, logger="tapewatch.bus")

    async def scenario():
        proxy = harness.Proxy()
        url = await proxy.start()
        async with harness.on_bus(settings) as js:
            await publish_frame(settings, harness.NATS_URL, iter([trades]))
            with open_store(tmp_path / "alerts.db") as store:
                running = harness.Running(settings, store)
                worker = running.add_worker(url)
                for cut in range(1, 3):

                    async def connected(cut=cut):
                        return proxy.connections == cut

                    await harness.until(connected, f"connection {cut}")
                    before = worker.report.stats.trades

                    async def progressed(before=before):
                        return worker.report.stats.trades > before

                    await harness.until(progressed, f"progress on connection {cut}")
                    proxy.cut()
                await harness.settled(js, settings)
                await running.close()
        await proxy.close()
        return proxy.connections

    connections = asyncio.run(scenario())
    assert connections >= 3  # it reconnected after each cut
    assert any("connection lost" in record.getMessage() for record in caplog.records)
    assert harness.stored_alerts(tmp_path / "alerts.db") == expected


def test_sink_retries_a_locked_database_and_acks_only_once_stored(tmp_path):
    settings = harness.private_settings()
    names = BusNames.from_settings(settings.bus)
    alerts = run_batch(build_detectors(settings), busy_market(), empty_frame(BAR_SCHEMA))
    db = tmp_path / "alerts.db"
    engine = create_engine(f"sqlite:///{db}", connect_args={"timeout": 0.05})
    metadata.create_all(engine)

    async def scenario():
        async with harness.on_bus(settings) as js:
            await AlertPublisher(js, names, settings.bus).publish([Emitted(a) for a in alerts])
            lock = sqlite3.connect(db, isolation_level=None)
            lock.execute("BEGIN EXCLUSIVE")  # a database that refuses writes: a real OperationalError
            stop = asyncio.Event()
            sink = AlertSink(settings, harness.NATS_URL, AlertStore(engine))
            task = asyncio.create_task(sink.run(stop))

            async def retried():
                return sink.report.db_retries >= 2

            await harness.until(retried, "the sink to retry the locked database")
            assert (await read_status(js, names)).sink_lag == len(alerts)  # nothing acked yet
            lock.execute("ROLLBACK")
            lock.close()
            await harness.settled(js, settings)
            stop.set()
            await task
            return sink.report

    report = asyncio.run(scenario())
    engine.dispose()
    assert report.stored == len(alerts) and report.alerts == len(alerts)
    assert set(harness.stored_alerts(db)) == {a.id for a in alerts}
