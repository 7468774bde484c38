"""`detect --engine spark` with unreadable files: set aside and counted as the local engine does them,
the rest detected, exit status 2; blank lines and conversion notes carried back to the driver."""

from __future__ import annotations

import gzip
from datetime import timedelta
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from conftest import START, burst, market, quiet_trades
from pyspark import SparkContext
from typer.testing import CliRunner

from tapewatch import validity
from tapewatch.cli.app import app
from tapewatch.config import Settings
from tapewatch.errors import InputError
from tapewatch.pipeline.batch import detect_files
from tapewatch.pipeline.spark import (
    READ_SCHEMA,
    _FileReader,
    _read_tally,
    _sources,
    detect_files_on_spark,
    spark_session,
    stop_spark,
)
from unit.cli.test_cli import ccxt_csv_text

pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A pumped coin, a coin in epoch seconds with blank lines and a bad row, a gzip cut short, a README."""
    root = tmp_path_factory.mktemp("mixed")
    (root / "pump.csv").write_text(ccxt_csv_text(market(quiet_trades(), burst(START + timedelta(hours=4)))))
    seconds = (
        b"symbol,timestamp,side,price,amount\n"
        + b"".join(b"BBB/BTC,%d,buy,1,1\n" % (1709251200 + i) for i in range(50))
        + b"\n\nBBB/BTC,1709251300,buy,-1,1\n"
    )
    (root / "seconds.csv").write_bytes(seconds)
    packed = gzip.compress(ccxt_csv_text(quiet_trades(symbol="CCC/BTC")).encode())
    (root / "cut.csv.gz").write_bytes(packed[: len(packed) // 2])
    (root / "README.csv").write_text("about these files\n")
    return root


def _outcomes(folder: Path) -> tuple[list, pl.DataFrame]:
    """What the executors would send the driver, computed here without a JVM."""
    sources = _sources([folder])
    reader = _FileReader(sources, "auto", None, 1000, Settings().input.time_bounds())
    rows = [row for index in range(len(sources)) for row in reader._rows(index) if not row["piece"]]
    return sources, pl.from_arrow(pa.Table.from_pylist(rows, schema=READ_SCHEMA)).sort("file")


def test_the_driver_counts_set_aside_skipped_blank_and_noted_files_as_the_local_engine(folder, tmp_path):
    sources, outcomes = _outcomes(folder)
    tally, candles = _read_tally(sources, outcomes)
    local = detect_files([folder], Settings(), detectors=["pump_onset"], dead_letter=tmp_path / "local.jsonl")
    assert not candles
    assert tally.failed == local.tally.failed and list(tally.failed) == [str(folder / "cut.csv.gz")]
    assert tally.skipped == local.tally.skipped and list(tally.skipped) == [str(folder / "README.csv")]
    assert (tally.files, tally.rows_read, tally.rejected) == (2, local.tally.rows_read, 1)
    assert tally.blank_lines == local.tally.blank_lines == 2
    assert tally.notes == local.tally.notes and str(folder / "seconds.csv") in tally.notes


def test_a_driver_that_got_no_readable_file_says_so_in_one_line(folder, tmp_path):
    sources, outcomes = _outcomes(folder)
    unreadable = outcomes.filter(pl.col("error").is_not_null())
    with pytest.raises(InputError, match=r"cut\.csv\.gz': cannot read: the data ends early"):
        _read_tally(sources, unreadable)


@pytest.fixture(scope="module")
def spark():
    session = spark_session("local[2]", shuffle_partitions=4)
    yield session
    stop_spark(session)
    assert SparkContext._gateway is None


def test_spark_sets_bad_files_aside_and_detects_the_rest_like_the_local_engine(spark, folder, tmp_path):
    local = detect_files([folder], Settings(), detectors=["pump_onset"], dead_letter=tmp_path / "l.jsonl")
    on_spark = detect_files_on_spark(
        [folder], Settings(), detectors=["pump_onset"], dead_letter=tmp_path / "s.jsonl", spark=spark
    )
    assert [a.symbol for a in on_spark.alerts] == [a.symbol for a in local.alerts] == ["AAA/BTC"]
    assert on_spark.tally.failed == local.tally.failed and on_spark.tally.records == local.tally.records
    assert on_spark.tally.rejected == local.tally.rejected == 1
    assert (tmp_path / "s.jsonl").read_text() == (tmp_path / "l.jsonl").read_text() != ""
    alerts = tmp_path / "alerts.jsonl"
    result = CliRunner().invoke(  # the session this process runs is reused
        app, ["detect", str(folder), "--engine", "spark", "--detector", "pump_onset", "-o", str(alerts)]
    )
    assert result.exit_code == 2, result.output
    assert f"set aside (cannot be read): input '{folder / 'cut.csv.gz'}'" in result.output
    assert "AAA/BTC" in alerts.read_text()


def test_executors_check_rows_against_the_drivers_time_bounds(folder):
    """An executor is a Python process that never loaded the settings: the reader carries the driver's."""
    later = Settings(input={"earliest": "2024-03-02"})  # the day after every trade in pump.csv
    reader = _FileReader(_sources([folder / "pump.csv"]), "auto", None, 1000, later.input.time_bounds())
    before = validity.time_bounds()
    try:
        rows = [row for batch in reader(iter([pa.record_batch({"id": [0]})])) for row in batch.to_pylist()]
    finally:
        validity.use_time_bounds(before)
    (outcome,) = [row for row in rows if not row["piece"]]
    assert outcome["clean"] == 0 and outcome["letters"] == outcome["rows"] > 0
    assert "before 2024-03-02" in pl.read_ipc(outcome["rejected"])["reason"][0]
