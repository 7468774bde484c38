"""`tapewatch detect` on inputs larger than memory: partitions of symbols give the whole run's alerts."""

from __future__ import annotations

import json
from datetime import timedelta

import polars as pl
import pytest
from conftest import START, burst, market, quiet_trades
from typer.testing import CliRunner

from tapewatch.cli.app import app
from tapewatch.config import Settings
from tapewatch.io.spill import partitions_for, rows_held
from tapewatch.pipeline.batch import detect_files
from tapewatch.sources.simulator.config import SimulationConfig
from tapewatch.sources.simulator.market import simulate_market

EVERY_DETECTOR_WITHOUT_A_MODEL = [
    "pump_onset",
    "kamps_kleinberg",
    "wash_public",
    "wash_accounts",
    "spoofing_l3",
    "amplitude_anomaly",
    "volume_anomaly",
    "price_anomaly",
]


@pytest.fixture(scope="module")
def market_files(tmp_path_factory):
    """A simulated venue in several files: trades split by symbol into two files that overlap (a re-read
    page), order events (some read twice), one file with a bad row, a pump on another venue, and a README a directory read
    must skip."""
    folder = tmp_path_factory.mktemp("venue")
    venue = simulate_market(SimulationConfig(symbols=6, seed=13))
    symbols = venue.trades["symbol"].unique().sort().to_list()
    first = venue.trades.filter(pl.col("symbol").is_in(symbols[:4]))
    second = venue.trades.filter(pl.col("symbol").is_in(symbols[3:]))
    first.write_parquet(folder / "trades-a.parquet")
    second.write_parquet(folder / "trades-b.parquet")
    venue.orders.write_parquet(folder / "orders.parquet")
    # a re-read of 50 order events, one of them twice: its second copy is another event, not a re-read
    pl.concat([venue.orders.head(50), venue.orders.head(1)]).write_parquet(folder / "orders-again.parquet")
    bad = second.head(3).with_columns(pl.col("price").cast(pl.Float64))
    bad = bad.with_columns(
        pl.when(pl.int_range(pl.len()) == 1).then(-1.0).otherwise(pl.col("price")).alias("price")
    )
    bad.write_parquet(folder / "trades-c.parquet")
    at = START + timedelta(hours=4)
    market(quiet_trades(), burst(at)).write_parquet(folder / "pumped.parquet")
    (folder / "README.csv").write_text("this,is\nnot,data\n")
    return folder


def _lines(run) -> list[dict]:
    return [alert.model_dump(mode="json") for alert in run.alerts]


@pytest.mark.parametrize("partitions", [2, 5])
def test_partitions_of_symbols_give_the_whole_runs_alerts_and_counts(market_files, tmp_path, partitions):
    whole = detect_files(
        [market_files],
        Settings(),
        detectors=EVERY_DETECTOR_WITHOUT_A_MODEL,
        dead_letter=tmp_path / "whole.jsonl",
    )
    split = detect_files(
        [market_files],
        Settings(),
        detectors=EVERY_DETECTOR_WITHOUT_A_MODEL,
        dead_letter=tmp_path / "split.jsonl",
        partitions=partitions,
    )
    assert whole.partitions == 1 and whole.read is not None
    assert split.partitions == partitions and split.read is None
    assert len(whole.alerts) > 10 and {"pump_onset", "wash_accounts", "spoofing_l3"} <= set(whole.by_detector)
    assert _lines(split) == _lines(whole)
    assert split.tally.records == whole.tally.records
    assert split.tally.duplicates_removed == whole.tally.duplicates_removed > 0  # the overlapping symbol
    assert (split.tally.rows_read, split.tally.files, split.tally.rejected) == (
        whole.tally.rows_read,
        whole.tally.files,
        whole.tally.rejected,
    )
    assert split.tally.rejected == 1 and list(split.tally.skipped) == list(whole.tally.skipped)
    assert (tmp_path / "split.jsonl").read_text() == (tmp_path / "whole.jsonl").read_text()


def test_the_default_runs_whole_inputs_that_fit_and_splits_those_that_do_not(market_files):
    files = sorted(market_files.glob("*.parquet"))
    assert partitions_for(files, memory_gib=2.0) == 1
    size = sum(path.stat().st_size for path in files)
    tiny = size * 45 / 2**30  # the memory those Parquet files need, in GiB
    assert partitions_for(files, memory_gib=tiny / 2) == 4  # a quarter of the budget per partition
    small = Settings(batch={"memory_gib": tiny / 2})
    run = detect_files(files, small, detectors=["pump_onset"])
    assert run.partitions == 4 and run.read is None


def test_the_command_says_it_ran_in_partitions(market_files, tmp_path):
    alerts = tmp_path / "alerts.jsonl"
    result = CliRunner().invoke(
        app,
        ["detect", str(market_files), "--partitions", "3", "--detector", "spoofing_l3", "-o", str(alerts)],
    )
    assert result.exit_code == 0, result.output
    assert "in 3 partitions by symbol" in result.output
    assert {json.loads(line)["detector"] for line in alerts.read_text().splitlines()} == {"spoofing_l3"}


def test_a_partition_too_large_to_hold_is_detected_a_day_at_a_time_with_the_same_alerts(market_files):
    whole = detect_files([market_files], Settings(), detectors=EVERY_DETECTOR_WITHOUT_A_MODEL)
    tiny = Settings(batch={"memory_gib": 1e-4})  # about 100 rows held at once
    assert rows_held(tiny.batch.memory_gib) < 200
    sliced = detect_files([market_files], tiny, detectors=EVERY_DETECTOR_WITHOUT_A_MODEL, partitions=2)
    assert _lines(sliced) == _lines(whole)
    assert sliced.tally.records == whole.tally.records
    assert sliced.tally.duplicates_removed == whole.tally.duplicates_removed
