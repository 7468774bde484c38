"""The trades stream keeps what a takeover needs: at least the longest lookback (+ follow-up) of the
detectors the workers run, raised by whoever needs more and never lowered by anyone."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import timedelta

import pytest

from tapewatch.bus.retention import RETENTION_MARGIN, configured_only, human, needed_retention
from tapewatch.bus.status import read_status
from tapewatch.bus.subjects import BusNames
from tapewatch.bus.topology import ensure_topology
from tapewatch.bus.worker import BusWorker
from tapewatch.config import Settings
from tapewatch.detect.registry import build_detectors
from unit.bus import bus_harness as harness


def test_the_need_is_the_longest_lookback_plus_follow_up_of_the_detectors_fed_by_trades():
    settings = Settings()
    bars = needed_retention(settings, ["price_anomaly"])
    (price,) = build_detectors(settings, ["price_anomaly"])
    assert bars.needed == price.lookback >= timedelta(days=4)  # the candles it reads, in time
    assert "price_anomaly" in bars.reason and bars.target == bars.needed + RETENTION_MARGIN
    (wash,) = build_detectors(settings, ["wash_accounts"])
    both = needed_retention(settings, ["wash_accounts", "pump_onset"])
    assert both.needed == wash.lookback + wash.followup_horizon() > wash.lookback  # its follow-up is open
    assert both.reason.startswith("wash_accounts reads") and "of follow-up" in both.reason
    # spoofing_l3 reads L3 orders, which the bus does not carry: it needs nothing kept there.
    orders = needed_retention(settings, ["spoofing_l3"])
    assert orders.needed == timedelta(0) and orders.target == timedelta(hours=settings.bus.trades_max_age_h)


def test_human_durations():
    assert human(timedelta(days=4, hours=7)) == "4 d 7 h"
    assert human(timedelta(hours=13, minutes=1)) == "13 h 1 min"
    assert human(45) == "45 s" and human(0) == "0 s"


@pytest.mark.nats
def test_workers_raise_the_retention_to_their_need_and_nobody_lowers_it(caplog):
    settings = harness.private_settings()
    names = BusNames.from_settings(settings.bus)
    short = settings.model_copy(update={"bus": settings.bus.model_copy(update={"trades_max_age_h": 1.0})})
    bars = needed_retention(settings, ["price_anomaly"])

    async def ages() -> list[float]:
        async with harness.on_bus(settings) as js:  # created with the configured 24 h

            async def age() -> float:
                return (await js.stream_info(names.trades_stream)).config.max_age

            found = [await age()]
            await ensure_topology(js, names, settings.bus, bars)  # a worker running the bar detectors
            found.append(await age())
            await ensure_topology(js, names, settings.bus, needed_retention(settings))  # the defaults
            found.append(await age())
            await ensure_topology(js, names, short.bus, configured_only(short))  # a process set to 1 h
            found.append(await age())
            status = await read_status(js, names, needed_retention(settings, ["price_anomaly"]))
            assert status.retention_ok and status.trades.max_age_s == found[-1]
            assert f"the detectors need {human(bars.needed)} (price_anomaly" in status.retention_line()
            return found

    with caplog.at_level(logging.INFO, logger="tapewatch.bus"):
        found = asyncio.run(ages())
    raised = bars.target.total_seconds()
    assert found == [24 * 3600, raised, raised, raised]
    lines = [r.getMessage() for r in caplog.records if "keeps trades" in r.getMessage()]
    assert f"keeps trades {human(raised)}; detectors need {human(bars.needed)} (price_anomaly" in lines[0]
    assert "enough to rebuild a partition exactly" in lines[0]
    assert "longer than the 1 d asked here: kept" in lines[1]  # the defaults' need is shorter: not lowered


@pytest.mark.nats
def test_a_running_worker_raises_the_retention_and_status_reads_its_need():
    settings = harness.private_settings()
    names = BusNames.from_settings(settings.bus)
    bars = needed_retention(settings, ["price_anomaly", "pump_onset"])

    async def scenario():
        async with harness.on_bus(settings) as js:
            stop = asyncio.Event()
            worker = BusWorker(settings, harness.NATS_URL, detectors=["price_anomaly", "pump_onset"])
            task = asyncio.create_task(worker.run(stop))
            try:

                async def announced() -> bool:
                    return worker.name in (await read_status(js, names)).workers

                await harness.until(announced, "the worker to announce itself")
                return await read_status(js, names, needed_retention(settings))
            finally:
                stop.set()
                await asyncio.wait_for(task, 30)

    status = asyncio.run(scenario())
    assert status.trades.max_age_s == bars.target.total_seconds() > 24 * 3600
    assert status.needed_s == bars.needed_s and status.retention_ok
    assert status.needed_by.startswith("price_anomaly reads") and "worker " in status.needed_by


@pytest.mark.nats
def test_a_stream_kept_for_ever_is_never_given_a_limit():
    settings = harness.private_settings()
    names = BusNames.from_settings(settings.bus)

    async def age_after_a_worker_starts() -> float:
        async with harness.on_bus(settings) as js:
            config = (await js.stream_info(names.trades_stream)).config
            await js.update_stream(replace(config, max_age=0))  # an operator: keep trades for ever
            await ensure_topology(js, names, settings.bus, needed_retention(settings, ["price_anomaly"]))
            return (await js.stream_info(names.trades_stream)).config.max_age or 0.0

    assert asyncio.run(age_after_a_worker_starts()) == 0.0
