"""Engine checkpoints on the bus: a worker taking a partition restores the last one and replays only the
messages after it, and the stored alerts stay exactly `tapewatch detect`'s."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import polars as pl
import pytest
from conftest import START

from tapewatch.bus.publish import publish_frame
from tapewatch.bus.sink import AlertSink
from tapewatch.bus.status import BusStatus, read_status
from tapewatch.bus.subjects import BusNames
from tapewatch.bus.worker import BusWorker
from tapewatch.config import Settings
from tapewatch.store.alert_store import open_store
from unit.bus import bus_harness as harness
from unit.bus.test_bus_crash import kill_and_resume, small_steps
from unit.engine.test_stream import busy_market

pytestmark = pytest.mark.nats


def saving_every(seconds: float, settings: Settings) -> Settings:
    return settings.model_copy(update={"bus": settings.bus.model_copy(update={"checkpoint_s": seconds})})


async def last_messages(js, names: BusNames, trades: pl.DataFrame) -> dict[int, int]:
    """Each partition's last trade message on the bus (its stream sequence)."""
    last: dict[int, int] = {}
    for venue, symbol in trades.select("venue", "symbol").unique().iter_rows():
        msg = await js.get_last_msg(names.trades_stream, names.trades_subject(venue, symbol))
        partition = names.partition_of_subject(msg.subject)
        last[partition] = max(last.get(partition, 0), msg.seq)
    return last


async def work_until_processed(
    js, settings: Settings, trades: pl.DataFrame, also: Callable[[BusWorker], bool] = lambda _: True
) -> BusWorker:
    """Run one worker in this loop until every trade on the bus is acked, (when it saves any) every
    partition's checkpoint covers its last message, and `also` holds; then stop it."""
    names = BusNames.from_settings(settings.bus)
    last = await last_messages(js, names, trades)
    worker, stop = BusWorker(settings, harness.NATS_URL), asyncio.Event()
    task = asyncio.create_task(worker.run(stop))

    async def done() -> bool:
        status = await read_status(js, names)
        covered = {p.partition: p.checkpoint_seq or 0 for p in status.partitions}
        saved = settings.bus.checkpoint_s == 0 or all(covered[p] >= seq for p, seq in last.items())
        return status.trades_lag == 0 and saved and also(worker)

    try:
        await harness.until(done, "the worker to process every trade (and checkpoint it)")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    return worker


def test_takeover_restores_the_checkpoint_and_replays_only_the_messages_after_it(tmp_path):
    trades = busy_market()
    settings = saving_every(0.01, harness.private_settings())
    expected = harness.reference_alerts(trades, settings)
    names = BusNames.from_settings(settings.bus)
    # Cuts inside what the state carries: the first pump's follow-up is open at 3h10; at 12h55 the
    # 12h50 pump's is, and the baselines of the last pumps began in the middle part.
    cuts = [START + timedelta(hours=3, minutes=10), START + timedelta(hours=12, minutes=55)]
    first = trades.filter(pl.col("ts") < cuts[0])
    middle = trades.filter(pl.col("ts").is_between(cuts[0], cuts[1], closed="left"))
    last = trades.filter(pl.col("ts") >= cuts[1])

    async def scenario() -> tuple[BusStatus, BusStatus, list[BusWorker], AlertSink]:
        async with harness.on_bus(settings) as js:
            with open_store(tmp_path / "alerts.db") as store:
                stop = asyncio.Event()
                sink = AlertSink(settings, harness.NATS_URL, store)
                sink_task = asyncio.create_task(sink.run(stop))
                await publish_frame(settings, harness.NATS_URL, iter([first]), end=False)
                saver = await work_until_processed(js, settings, first)
                after_first = await read_status(js, names)
                # A worker that saves none: the partitions' floors move past the checkpoints.
                await publish_frame(settings, harness.NATS_URL, iter([middle]), end=False)
                no_saves = await work_until_processed(js, saving_every(0, settings), middle)
                after_middle = await read_status(js, names)
                await publish_frame(settings, harness.NATS_URL, iter([last]))
                taker = await work_until_processed(js, settings, trades)
                await harness.settled(js, settings)
                stop.set()
                await asyncio.wait_for(sink_task, 30)
            return after_first, after_middle, [saver, no_saves, taker], sink

    after_first, after_middle, (saver, no_saves, taker), sink = asyncio.run(scenario())
    saved = {p.partition: p.checkpoint_seq for p in after_first.partitions if p.checkpoint_seq is not None}
    assert saved and saver.report.stats.checkpoints_saved >= len(saved)
    assert all(
        p.checkpoint_age_s is not None and p.checkpoint_age_s < 60
        for p in after_first.partitions
        if p.partition in saved
    )
    assert (
        "none" in [p.checkpoint for p in after_first.partitions if p.partition not in saved]
        or len(saved) == 4
    )
    # The second worker found checkpoints covering the floors: restored, nothing replayed.
    assert no_saves.report.stats.checkpoints_restored == len(saved)
    assert no_saves.report.stats.rebuilt_trades == 0 and no_saves.report.stats.checkpoints_saved == 0
    assert {p.partition: p.checkpoint_seq for p in after_middle.partitions if p.checkpoint_seq} == saved
    # The third restored the same (older) checkpoints and replayed the middle part only.
    assert taker.report.stats.checkpoints_restored == len(saved)
    assert 0 < taker.report.stats.rebuilt_trades <= middle.height
    assert not taker.report.stats.set_aside  # nothing pushed twice
    assert harness.stored_alerts(tmp_path / "alerts.db") == expected
    assert sink.report.repeats == 0


def test_a_takeover_with_nothing_new_since_the_last_one_rebuilds_and_processes_nothing_again():
    trades = busy_market()
    settings = saving_every(0, harness.private_settings())

    def rebuilt_everything(worker: BusWorker) -> bool:
        return worker.report.stats.rebuilt_trades >= trades.height

    async def scenario() -> list[BusWorker]:
        async with harness.on_bus(settings) as js:
            await publish_frame(settings, harness.NATS_URL, iter([trades]))
            # The second takes the partitions and stops before anything new comes: its consumers have
            # acked nothing, yet the floor they started from holds.
            first = await work_until_processed(js, settings, trades)
            return [first] + [
                await work_until_processed(js, settings, trades, rebuilt_everything) for _ in range(2)
            ]

    first, second, third = asyncio.run(scenario())
    assert first.report.stats.trades == trades.height
    for later in (second, third):
        assert later.report.stats.trades == 0 and later.report.stats.alerts == 0
        assert later.report.stats.rebuilt_trades == trades.height


def test_sigkilled_worker_with_checkpoints_resumes_from_one_exactly(tmp_path):
    trades = busy_market()
    settings = saving_every(0.01, small_steps())
    expected = harness.reference_alerts(trades, settings)
    resumed = kill_and_resume(tmp_path, settings, trades, "2")
    assert any(p.checkpoint_seq for p in resumed.mid.partitions)
    assert resumed.report["checkpoints_restored"] >= 1
    assert resumed.report["rebuilt_trades"] < trades.height
    assert harness.stored_alerts(tmp_path / "alerts.db") == expected
    assert resumed.sink.repeats == 0 and resumed.sink.alerts == len(expected)
