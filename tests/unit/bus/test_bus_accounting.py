"""Every row sent towards the bus is accounted for: published, refused by the publisher (dead-lettered),
removed as a duplicate, or set aside by a worker — including messages no partition reads and the first
trades of a symbol that comes late to its partition."""

from __future__ import annotations

import asyncio
import gzip
import json
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from tapewatch.bus.codec import encode_trades
from tapewatch.bus.publish import publish_frame
from tapewatch.bus.strays import FETCH, stray_subjects, sweep_strays
from tapewatch.bus.subjects import BusNames, partition_of
from tapewatch.cli.app import app
from tapewatch.io.readers import read_inputs
from tapewatch.store.alert_store import open_store
from unit.bus import bus_harness as harness
from unit.bus.test_bus_commands import write_config
from unit.cli.test_cli import write_ccxt_csv
from unit.engine.test_stream import busy_market

pytestmark = pytest.mark.nats
runner = CliRunner()


def with_bad_rows_and_copies(trades: pl.DataFrame, path: Path, again: Path) -> tuple[int, int]:
    """The trades as ccxt CSV plus two bad rows, and a second file re-reading three of them (copies);
    returns (bad rows, copies)."""
    write_ccxt_csv(trades, path)
    write_ccxt_csv(trades.head(3), again)
    lines = path.read_text().splitlines()
    _, ms, iso, *_ = lines[1].split(",")
    bad = [
        "AAA/BTC,not-a-time,x,buy,1e-5,1,1",  # unparsable timestamp
        f"AAA/BTC,{ms},{iso},buy,-1,1,1",  # negative price
    ]
    path.write_text("\n".join([*lines, *bad]) + "\n")
    return len(bad), 3


def test_bus_publish_accounts_for_every_row_and_workers_for_every_trade(tmp_path):
    trades = busy_market()
    data, again = tmp_path / "trades.csv", tmp_path / "trades-again.csv"
    bad, copies = with_bad_rows_and_copies(trades, data, again)
    settings = harness.private_settings()
    config = write_config(settings, tmp_path / "tapewatch.toml")
    expected = harness.reference_alerts(read_inputs([data]).trades, settings)  # what detect finds in it
    refused = tmp_path / "publish-rejected.jsonl"

    async def scenario():
        async with harness.on_bus(settings) as js:
            published = await asyncio.to_thread(
                runner.invoke,
                app,
                [
                    "bus",
                    "publish",
                    str(data),
                    str(again),
                    "--config",
                    str(config),
                    "--dead-letter",
                    str(refused),
                ],
            )
            with open_store(tmp_path / "alerts.db") as store:
                running = harness.Running(settings, store)
                worker = running.add_worker(dead_letter=tmp_path / "worker-rejected.jsonl")
                await harness.settled(js, settings)
                await running.close()
            return published, worker.report.stats

    published, stats = asyncio.run(scenario())
    assert published.exit_code == 0, published.output
    rows = trades.height + bad + copies
    assert f"read 2 file(s), {rows:,} rows: {trades.height:,} trades" in published.output
    assert f"{copies} duplicates removed; {bad} rejected → {refused}" in published.output
    assert f"published {trades.height:,} trades" in published.output
    letters = [json.loads(line) for line in refused.read_text().splitlines()]
    assert sorted(letter["reason"] for letter in letters) == [
        "price is not a positive number",
        "unparsable timestamp",
    ]
    # rows in = trades the workers decided + dead-lettered + duplicates removed
    decided = stats.trades - sum(stats.set_aside.values())
    assert rows == decided + len(letters) + copies
    assert not (tmp_path / "worker-rejected.jsonl").exists()  # nothing was left for the worker to refuse
    assert harness.stored_alerts(tmp_path / "alerts.db") == expected


def test_bus_publish_refuses_a_candle_file_in_one_line(tmp_path):
    candles = tmp_path / "btc_usdt_hourly_2021.csv.gz"
    candles.write_bytes(
        gzip.compress(b"date,open,high,low,close,volume\n2021-01-01 00:00,29000,29100,28900,29050,12.5\n")
    )
    result = runner.invoke(app, ["bus", "publish", str(candles), "--bus", "nats://127.0.0.1:9"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"input '{candles}': holds bars" in result.output and "expected trades" in result.output


def test_messages_no_partition_reads_are_counted_dead_lettered_and_reported_once(tmp_path):
    trades = busy_market()
    settings = harness.private_settings()
    names = BusNames.from_settings(settings.bus)
    expected = harness.reference_alerts(trades, settings)
    stray = f"{settings.bus.subject_prefix}.trades.99.testex.AAA%2FBTC"  # 4 partitions: no 99
    bare = f"{settings.bus.subject_prefix}.trades.nowhere"
    dead = tmp_path / "dead.jsonl"

    async def run_worker_until_settled(js, db):
        with open_store(db) as store:
            running = harness.Running(settings, store)
            worker = running.add_worker(dead_letter=dead)

            async def swept():
                return sum(n for r, n in worker.report.stats.set_aside.items() if "does not have" in r) >= 2

            await harness.until(swept, "the stray messages to be set aside")
            await harness.settled(js, settings)
            await running.close()
        return worker.report

    async def scenario():
        async with harness.on_bus(settings) as js:
            await js.publish(stray, encode_trades(trades.head(5)))
            await js.publish(bare, b"whatever")
            await publish_frame(settings, harness.NATS_URL, iter([trades]))
            assert set(await stray_subjects(js, names)) == {stray, bare}
            report = await run_worker_until_settled(js, tmp_path / "alerts.db")
            consumers = [
                await js.consumer_info(settings.bus.trades_stream, info.name)
                for info in await js.consumers_info(settings.bus.trades_stream)
                if "_stray_" in info.name
            ]
            return report, consumers

    report, consumers = asyncio.run(scenario())
    reasons = {entry["reason"] for entry in report.stats.set_aside_messages}
    assert any("partition '99', which this bus does not have (bus.partitions = 4)" in r for r in reasons)
    assert any("partition 'nowhere'" in r for r in reasons)
    assert "set aside 1: message: on partition '99'" in report.summary()
    letters = [json.loads(line) for line in dead.read_text().splitlines()]
    assert sorted(letter["record"]["subject"] for letter in letters) == sorted([stray, bare])
    assert {letter["source"] for letter in letters} == {"bus"}
    # terminated once reported: a later sweep (or another worker) finds nothing left to report
    assert len(consumers) == 2 and all(c.num_pending == 0 and c.num_ack_pending == 0 for c in consumers)
    assert harness.stored_alerts(tmp_path / "alerts.db") == expected  # the rest went on as usual


def test_a_new_symbols_first_trades_are_not_late_against_other_symbols_of_its_partition(tmp_path):
    """Lateness is per symbol, in the bus as in `tapewatch stream`: a symbol that first appears after its
    partition has decided hours of other symbols starts its own clock."""
    trades = busy_market()
    settings = harness.private_settings()
    early, late_comer = "AAA/BTC", "CCC/BTC"
    assert partition_of("testex", early, 4) == partition_of("testex", late_comer, 4)
    first = trades.filter(pl.col("symbol") == early)
    second = trades.filter(pl.col("symbol") == late_comer)
    assert second["ts"].min() < first["ts"].max() - timedelta(hours=10)
    expected = harness.reference_alerts(trades, settings)

    async def scenario():
        async with harness.on_bus(settings) as js:
            with open_store(tmp_path / "alerts.db") as store:
                running = harness.Running(settings, store)
                worker = running.add_worker()
                await publish_frame(settings, harness.NATS_URL, iter([first]), end=False)
                await harness.settled(js, settings)
                others = trades.filter(pl.col("symbol") != early)
                await publish_frame(settings, harness.NATS_URL, iter([others]))
                await harness.settled(js, settings)
                await running.close()
            return worker.report.stats

    stats = asyncio.run(scenario())
    assert stats.trades == trades.height and not stats.set_aside
    assert harness.stored_alerts(tmp_path / "alerts.db") == expected


def test_bus_publish_sets_a_corrupt_file_aside_publishes_the_rest_and_fails_at_the_end(tmp_path):
    folder = tmp_path / "trades"
    folder.mkdir()
    trades = busy_market()
    write_ccxt_csv(trades, folder / "good.csv")
    whole = gzip.compress((folder / "good.csv").read_bytes())
    (folder / "cut.csv.gz").write_bytes(whole[: len(whole) // 2])  # cut in half
    settings = harness.private_settings()
    config = write_config(settings, tmp_path / "tapewatch.toml")
    with harness.topology_for(settings):
        result = runner.invoke(app, ["bus", "publish", str(folder), "--config", str(config)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "set aside (cannot be read): input '" in result.output and "cut.csv.gz" in result.output
    assert f"published {trades.height:,} trades" in result.output
    assert "1 input file(s) could not be read and were set aside" in result.output


def test_strays_are_swept_in_bounded_batches_and_those_of_a_sweep_that_died_come_again():
    """A sweep settles (counts, dead-letters, terminates) each batch of at most FETCH strays before
    fetching the next; strays a sweep fetched but died before terminating are redelivered, which
    `num_pending` does not count, and the next sweep settles them."""
    settings = harness.private_settings()
    names = BusNames.from_settings(settings.bus)
    stray = f"{settings.bus.subject_prefix}.trades.99.testex.AAA%2FBTC"
    flood = 2 * FETCH + 5

    async def scenario():
        async with harness.on_bus(settings) as js:
            for number in range(flood):
                await js.publish(stray, f"stray {number}".encode())
            batches: list[int] = []

            async def crash(found):  # the worker dies before its dead letters are written
                for msg, _reason in found:
                    await msg.nak()  # redelivered at once, as after the ack wait of a killed worker
                raise RuntimeError("killed")

            async def settle(found):
                batches.append(len(found))
                for msg, _reason in found:
                    await msg.term()

            with pytest.raises(RuntimeError, match="killed"):
                await sweep_strays(js, names, 1.0, crash)
            await sweep_strays(js, names, 1.0, settle)
            settled_first = list(batches)
            await sweep_strays(js, names, 1.0, settle)  # every stray terminated: nothing comes again
            return batches, settled_first

    batches, settled_first = asyncio.run(scenario())
    assert sum(settled_first) == flood and max(settled_first) <= FETCH and len(settled_first) >= 3
    assert batches == settled_first


def test_strays_all_fetched_by_a_sweep_that_died_are_settled_by_the_next():
    """The sweep died after fetching every stray: none is pending any more, only awaiting redelivery."""
    settings = harness.private_settings()
    names = BusNames.from_settings(settings.bus)
    stray = f"{settings.bus.subject_prefix}.trades.nowhere"

    async def scenario():
        async with harness.on_bus(settings) as js:
            for number in range(5):
                await js.publish(stray, f"stray {number}".encode())
            settled: list[bytes] = []

            async def crash(found):
                for msg, _reason in found:
                    await msg.nak()
                raise RuntimeError("killed")

            async def settle(found):
                settled.extend(msg.data for msg, _reason in found)
                for msg, _reason in found:
                    await msg.term()

            with pytest.raises(RuntimeError, match="killed"):
                await sweep_strays(js, names, 1.0, crash)
            await sweep_strays(js, names, 1.0, settle)
            return settled

    assert sorted(asyncio.run(scenario())) == [f"stray {number}".encode() for number in range(5)]
