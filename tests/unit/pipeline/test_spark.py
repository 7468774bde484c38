"""`tapewatch detect --engine spark`: Spark in local mode gives the local engine's alerts, counts and dead
letters, line for line."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta

import boto3
import polars as pl
import pyarrow as pa
import pytest
import s3fs
from conftest import START, aws_environment, burst, market, quiet_trades
from pyspark import SparkContext
from typer.testing import CliRunner

from tapewatch import validity
from tapewatch.cli.app import app
from tapewatch.config import Settings
from tapewatch.errors import InputError
from tapewatch.io.lake import Lake
from tapewatch.io.readers import RECORD_KINDS, read_inputs
from tapewatch.pipeline.batch import detect_files
from tapewatch.pipeline.spark import (
    PIECE_ROWS,
    READ_SCHEMA,
    _assembled,
    _FileReader,
    _Source,
    detect_files_on_spark,
    spark_session,
    stop_spark,
)
from tapewatch.sources.simulator.config import SimulationConfig
from tapewatch.sources.simulator.market import simulate_market
from unit.pipeline.venue_files import MODEL_FREE_DETECTORS, alert_lines, write_venue_files

pytestmark = pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning")


@pytest.fixture(scope="module")
def s3(s3_endpoint: str, tmp_path_factory) -> Iterator[str]:
    """moto's S3 server with its credentials in the environment before Spark starts: the executors'
    Python workers inherit the JVM's environment, as on a deployed cluster."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in aws_environment(s3_endpoint, tmp_path_factory.mktemp("aws")).items():
            patch.setenv(name, value)
        yield s3_endpoint


@pytest.fixture(scope="module")
def spark(s3):
    """One small local Spark for the module (two cores, four shuffle partitions); its JVM is stopped at
    the end."""
    session = spark_session("local[2]", shuffle_partitions=4)
    jvm = SparkContext._gateway.proc
    yield session
    stop_spark(session)
    assert jvm.poll() is not None and SparkContext._gateway is None


@pytest.fixture(scope="module")
def market_files(tmp_path_factory):
    return write_venue_files(tmp_path_factory.mktemp("venue"))


@pytest.mark.parametrize("piece_rows", [PIECE_ROWS, 700])
def test_spark_gives_the_local_engines_alerts_counts_and_dead_letters(
    spark, market_files, tmp_path, piece_rows
):
    """With small pieces every symbol of a file is shuffled in several pieces: the groups put them back
    in file order (or the duplicates, the order events' repeats and the alerts would differ)."""
    local = detect_files(
        [market_files], Settings(), detectors=MODEL_FREE_DETECTORS, dead_letter=tmp_path / "l.jsonl"
    )
    on_spark = detect_files_on_spark(
        [market_files],
        Settings(),
        detectors=MODEL_FREE_DETECTORS,
        dead_letter=tmp_path / "s.jsonl",
        spark=spark,
        piece_rows=piece_rows,
    )
    assert len(local.alerts) > 10 and {"pump_onset", "wash_accounts", "spoofing_l3"} <= set(local.by_detector)
    assert alert_lines(on_spark) == alert_lines(local)
    assert on_spark.by_detector == local.by_detector
    assert on_spark.tally.records == local.tally.records
    assert on_spark.tally.duplicates_removed == local.tally.duplicates_removed > 0  # the overlapping symbol
    assert (on_spark.tally.files, on_spark.tally.rows_read, on_spark.tally.rejected) == (
        local.tally.files,
        local.tally.rows_read,
        local.tally.rejected,
    )
    assert on_spark.tally.skipped == local.tally.skipped and len(on_spark.tally.skipped) == 1
    assert on_spark.dead_letter_path == tmp_path / "s.jsonl"
    assert (tmp_path / "s.jsonl").read_text() == (tmp_path / "l.jsonl").read_text() != ""


def test_pieces_in_any_order_are_put_back_as_a_whole_read_orders_them(tmp_path):
    """Without Spark: the executors' functions on files whose rows share timestamps (so only the files'
    own order ranks them), cut into pieces of 7 rows and shuffled, give exactly a whole read's frames:
    the same rows in the same order, the same duplicates removed, the same repeated order events."""
    n = 60
    trades = pl.DataFrame(
        {
            "ts": [START + timedelta(milliseconds=i // 10) for i in range(n)],
            "venue": "testex",
            "symbol": "AAA/BTC",
            "price": [100.0 + (i * 37 % n) for i in range(n)],
            "amount": 1.0,
            "side": "buy",
        }
    )
    trades.write_parquet(tmp_path / "a.parquet")
    again = pl.concat([trades.tail(20), trades.head(5).with_columns(pl.col("price") + 0.5)])
    again.write_parquet(tmp_path / "b.parquet")  # a re-read tail, and new rows tied with old ones
    orders = simulate_market(SimulationConfig(symbols=1, seed=5)).orders.head(300)
    pl.concat([orders, orders.head(4)]).write_parquet(tmp_path / "c.parquet")  # events repeated in a file
    orders.tail(50).write_parquet(tmp_path / "d.parquet")  # and copies in another
    files = sorted(tmp_path.glob("*.parquet"))
    reader = _FileReader(
        [_Source(str(path)) for path in files], "auto", None, piece_rows=7, bounds=validity.time_bounds()
    )
    rows = [row for index in range(len(files)) for row in reader._rows(index)]
    pieces = pl.from_arrow(pa.Table.from_pylist(rows, schema=READ_SCHEMA)).filter(pl.col("piece"))
    assert pieces.height > 60  # many pieces per file
    whole = read_inputs(files, kinds=RECORD_KINDS)
    for seed in (1, 2):
        assembled = _assembled(pieces.sample(fraction=1.0, shuffle=True, seed=seed))
        assert assembled["trades"][0].equals(whole.trades)
        assert assembled["orders"][0].equals(whole.orders)
        assert assembled["trades"][1] + assembled["orders"][1] == whole.duplicates_removed == 20 + 50


def test_a_lake_url_is_read_by_the_executors_and_gives_the_local_engines_alerts(spark, tmp_path):
    """A lake given by URL: the driver lists its day files, executors read them (`read_partition`); the
    local engine reading the same folder's Parquet files finds the same alerts."""
    venue = simulate_market(SimulationConfig(symbols=3, seed=21))
    lake = Lake(tmp_path / "lake")
    lake.write("trades", venue.trades)
    lake.write("trades", market(quiet_trades(), burst(START + timedelta(hours=4))))
    detectors = ["pump_onset", "wash_public", "volume_anomaly", "price_anomaly"]
    local = detect_files([tmp_path / "lake"], Settings(), detectors=detectors)
    on_spark = detect_files_on_spark(
        [(tmp_path / "lake").as_uri()], Settings(), detectors=detectors, spark=spark
    )
    assert "pump_onset" in local.by_detector
    assert alert_lines(on_spark) == alert_lines(local)
    assert on_spark.tally.records == local.tally.records and on_spark.tally.files == local.tally.files > 3
    with pytest.raises(InputError, match="no trades, bars or book updates"):
        detect_files_on_spark([(tmp_path / "empty").as_uri()], Settings(), spark=spark)


def test_a_lake_on_s3_is_read_by_the_executors_and_gives_the_local_engines_alerts(spark, s3, tmp_path):
    """The same lake on moto's S3: executors read its day files through fsspec (no Hadoop jars)."""
    bucket = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3).create_bucket(Bucket=bucket)
    s3fs.S3FileSystem.clear_instance_cache()
    trades = market(quiet_trades(), burst(START + timedelta(hours=4)))
    Lake(tmp_path / "lake").write("trades", trades)
    Lake(f"s3://{bucket}/lake").write("trades", trades)
    local = detect_files([tmp_path / "lake"], Settings(), detectors=["pump_onset"])
    on_spark = detect_files_on_spark(
        [f"s3://{bucket}/lake"], Settings(), detectors=["pump_onset"], spark=spark
    )
    assert local.by_detector["pump_onset"] >= 1
    assert alert_lines(on_spark) == alert_lines(local)
    assert on_spark.tally.records == local.tally.records


def test_a_named_file_that_is_not_market_data_is_the_same_error(spark, market_files):
    with pytest.raises(InputError) as local:
        detect_files([market_files / "README.csv"], Settings(), detectors=["pump_onset"])
    with pytest.raises(InputError) as on_spark:
        detect_files_on_spark(
            [market_files / "README.csv"], Settings(), detectors=["pump_onset"], spark=spark
        )
    assert str(on_spark.value) == str(local.value) and "README.csv" in str(local.value)


def test_the_command_writes_the_local_enginesalert_lines(spark, market_files, tmp_path):
    """`--engine spark` through the CLI (on the module's session, which it reuses and leaves running)."""
    outputs = {}
    for engine in ("local", "spark"):
        outputs[engine] = tmp_path / f"{engine}.jsonl"
        result = CliRunner().invoke(
            app,
            ["detect", str(market_files), "--engine", engine, "-o", str(outputs[engine])]
            + (["--master", "local[2]"] if engine == "spark" else []),
        )
        assert result.exit_code == 0, result.output
        assert "1 rejected" in result.output
        assert ("detected on Spark (local[2])" in result.output) == (engine == "spark")
    assert outputs["spark"].read_text() == outputs["local"].read_text() != ""
    assert spark.range(3).count() == 3  # still running


def test_the_command_checks_its_engine_options(market_files):
    runner = CliRunner()
    wrong = runner.invoke(app, ["detect", str(market_files), "--engine", "dask"])
    assert wrong.exit_code == 2 and "expected local or spark" in wrong.output
    master = runner.invoke(app, ["detect", str(market_files), "--master", "local[2]"])
    assert master.exit_code == 2 and "--master needs --engine spark" in master.output
    both = runner.invoke(app, ["detect", str(market_files), "--engine", "spark", "--partitions", "3"])
    assert both.exit_code == 2 and "--partitions" in both.output
    url = runner.invoke(app, ["detect", "s3://bucket/lake"])
    assert url.exit_code == 2 and "a lake URL needs --engine spark" in url.output


def test_without_the_extra_the_command_names_it(market_files, monkeypatch):
    """pyspark (and the module that wraps it) made to look uninstalled, as tests/unit/test_extras.py does."""
    for module in ("pyspark", "tapewatch.pipeline.spark"):
        monkeypatch.setitem(sys.modules, module, None)
    result = CliRunner().invoke(app, ["detect", str(market_files), "--engine", "spark"])
    assert result.exit_code == 2
    assert "[spark] extra" in result.output and "pip install 'tapewatch[spark]'" in result.output
