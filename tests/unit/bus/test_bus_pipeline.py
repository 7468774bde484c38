"""publish → workers → sink over the real NATS server gives exactly `tapewatch detect`'s alerts."""

from __future__ import annotations

import asyncio

import polars as pl
import pytest

from tapewatch.bus.publish import publish_frame
from tapewatch.bus.worker import BusWorker
from tapewatch.config import StreamSettings
from tapewatch.store.alert_store import open_store
from unit.bus import bus_harness as harness
from unit.engine.test_stream import busy_market

pytestmark = pytest.mark.nats


async def a_second_worker_shares(running: harness.Running, first: BusWorker) -> BusWorker:
    """Start a worker named "second" and wait until it and `first` own two of the four partitions each."""
    second = running.add_worker(name="second")

    async def shared():
        return len(first.owned) == 2 and len(second.owned) == 2

    await harness.until(shared, "the two workers to own two partitions each")
    return second


def test_publish_one_worker_sink_equals_detect_and_republishing_changes_nothing(tmp_path):
    trades = busy_market()
    settings = harness.private_settings()
    expected = harness.reference_alerts(trades, settings)
    assert {a["detector"] for a in expected.values()} == {"pump_onset"} and len(expected) >= 4

    async def scenario():
        async with harness.on_bus(settings) as js:
            first = await publish_frame(settings, harness.NATS_URL, iter([trades]))
            stored = (await js.stream_info(settings.bus.trades_stream)).state.messages
            again = await publish_frame(settings, harness.NATS_URL, iter([trades]))
            assert first.trades == trades.height and first.messages > 20
            assert again.messages == 0 and again.duplicates == first.messages
            assert (await js.stream_info(settings.bus.trades_stream)).state.messages == stored

            with open_store(tmp_path / "alerts.db") as store:
                running = harness.Running(settings, store)
                worker = running.add_worker()
                status = await harness.settled(js, settings)
                await running.close()
            assert worker.owned == [] and len(status.partitions) == 4  # released on stop
            assert worker.report.stats.trades == trades.height
            assert running.sink.report.repeats == 0 and running.sink.report.alerts == len(expected)
            return worker

    worker = asyncio.run(scenario())
    assert worker.report.taken == 4
    assert harness.stored_alerts(tmp_path / "alerts.db") == expected


def test_two_workers_share_the_partitions_and_give_the_same_alerts(tmp_path):
    trades = busy_market()
    settings = harness.private_settings()
    expected = harness.reference_alerts(trades, settings)

    async def scenario():
        async with harness.on_bus(settings) as js:
            with open_store(tmp_path / "alerts.db") as store:
                running = harness.Running(settings, store)
                first = running.add_worker(name="first")

                async def first_owns_all():
                    return first.owned == [0, 1, 2, 3]

                await harness.until(first_owns_all, "the first worker to take every partition")
                second = await a_second_worker_shares(running, first)
                await publish_frame(settings, harness.NATS_URL, iter([trades]))
                status = await harness.settled(js, settings)
                owners = {p.partition: p.owner for p in status.partitions}
                await running.close()
        assert sorted(owners.values()) == ["first", "first", "second", "second"]
        assert first.report.released == 2 and second.report.taken == 2
        assert first.report.stats.trades + second.report.stats.trades == trades.height

    asyncio.run(scenario())
    assert harness.stored_alerts(tmp_path / "alerts.db") == expected


def test_a_worker_joining_mid_stream_takes_partitions_over_with_their_state(tmp_path):
    trades = busy_market()
    # The market comes in two halves; the second worker joins between them, so the
    # partitions it takes over have history behind the checkpoint and trades ahead of it.
    middle = trades["ts"].min() + (trades["ts"].max() - trades["ts"].min()) / 2
    first_half, second_half = trades.filter(pl.col("ts") < middle), trades.filter(pl.col("ts") >= middle)
    settings = harness.private_settings(message_trades=50, fetch_batch=4).model_copy(
        update={"stream": StreamSettings(batch_ms=1, max_batch_trades=300)}
    )
    expected = harness.reference_alerts(trades, settings)

    async def scenario():
        async with harness.on_bus(settings) as js:
            await publish_frame(settings, harness.NATS_URL, iter([first_half]), end=False)
            with open_store(tmp_path / "alerts.db") as store:
                running = harness.Running(settings, store)
                first = running.add_worker(name="first")

                async def first_half_done():  # every trade read (the newest of each symbol still held)
                    return first.report.stats.trades == first_half.height

                await harness.until(first_half_done, "the first worker to work through the first half")
                second = await a_second_worker_shares(running, first)
                await publish_frame(settings, harness.NATS_URL, iter([second_half]))
                await harness.settled(js, settings)
                await running.close()
        # The first hands over its two highest partitions (2 and 3, where the symbols are);
        # the second rebuilds their engines from the stream up to the checkpoint, then goes on.
        assert first.report.released == 2 and second.report.taken == 2
        assert second.report.stats.rebuilt_trades > 0 and second.report.stats.trades > 0

    asyncio.run(scenario())
    assert harness.stored_alerts(tmp_path / "alerts.db") == expected
