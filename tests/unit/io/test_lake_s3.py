"""The lake on an object store: a real S3-compatible server (moto's, on 127.0.0.1) started by these tests.

Every check runs the same code a local lake runs and compares with it where it can, so
"the same semantics" is asserted, not assumed: layout, merge counts, dedup, reads,
high-water marks. Credentials and the endpoint come from the standard AWS_* variables.
"""

from __future__ import annotations

import importlib.util
import sys
import uuid
from collections.abc import Iterator
from datetime import timedelta

import boto3
import polars as pl
import pytest
import s3fs
from conftest import START, aws_environment, burst, quiet_trades
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from tapewatch.api import create_app
from tapewatch.cli.app import user_errors
from tapewatch.cli.exchange import ingest_crypto
from tapewatch.errors import InputError
from tapewatch.io.derive import trades_to_bars
from tapewatch.io.lake import Lake, list_partitions, open_lake, read_partition
from tapewatch.store.alert_store import open_store
from unit.api.harness import add_users, api_settings
from unit.sources.exchange.crypto_harness import T0, CtrlC, steady
from unit.sources.exchange.fake_binance import FakeBinance
from unit.store.test_store import T0 as ALERT_T0
from unit.store.test_store import make_alert


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[str]:
    """A fresh bucket, with the credentials and endpoint in the environment as a deployment sets them."""
    environment = aws_environment(s3_endpoint, tmp_path) | {"TAPEWATCH_HOME": str(tmp_path / "home")}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    s3fs.S3FileSystem.clear_instance_cache()  # a filesystem made before these variables would keep its own
    name = f"lake-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=name)
    yield name
    s3fs.S3FileSystem.clear_instance_cache()


def keys(bucket: str, prefix: str = "lake/") -> list[str]:
    """Every object under `prefix`, as S3 itself lists them (not through the code under test)."""
    listing = boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"].removeprefix(prefix) for item in listing.get("Contents", []))


def test_writes_read_back_identical_with_the_local_layout_and_no_temporary_keys(bucket, tmp_path):
    remote, local = Lake(f"s3://{bucket}/lake"), Lake(tmp_path / "lake")
    trades = pl.concat([quiet_trades("AAA/BTC", hours=30), quiet_trades("BBB/BTC", hours=5, seed=3)])
    assert remote.write("trades", trades) == local.write("trades", trades) == trades.height
    local_files = sorted(
        p.relative_to(tmp_path / "lake").as_posix() for p in (tmp_path / "lake").rglob("*.*")
    )
    assert keys(bucket) == local_files
    assert "trades/venue=testex/symbol=AAA%2FBTC/date=2024-03-02/data.parquet" in keys(bucket)
    back = remote.read("trades")
    assert back.equals(local.read("trades"))
    assert back.sort("symbol", "ts").equals(trades.sort("symbol", "ts"))
    assert remote.symbols("trades", "testex") == ["AAA/BTC", "BBB/BTC"]
    assert remote.location == f"s3://{bucket}/lake"


def test_overlapping_rewrites_dedup_exactly_as_the_local_lake(bucket, tmp_path):
    remote, local = Lake(f"s3://{bucket}/lake"), Lake(tmp_path / "lake")
    trades = quiet_trades(hours=10)
    for part in (trades.head(300), trades.slice(200), trades):
        assert remote.write("trades", part) == local.write("trades", part)
    assert remote.read("trades").height == trades.height
    assert remote.read("trades").equals(local.read("trades"))


def test_filters_high_water_and_bars_match_the_local_lake(bucket, tmp_path):
    remote, local = Lake(f"s3://{bucket}/lake"), Lake(tmp_path / "lake")
    trades = quiet_trades(hours=40)
    bars = pl.concat([trades_to_bars(trades, "1d"), trades_to_bars(trades.head(500), "1h")]).drop(
        "last_trade_ts"
    )
    for lake in (remote, local):
        lake.write("trades", trades)
        lake.write("bars", bars)
    start, end = START + timedelta(hours=20), START + timedelta(hours=30)
    window = remote.read("trades", symbol="AAA/BTC", start=start, end=end)
    assert window.height > 0 and window["ts"].min() >= start and window["ts"].max() < end
    assert window.equals(local.read("trades", symbol="AAA/BTC", start=start, end=end))
    assert remote.high_water("trades", "testex", "AAA/BTC") == trades["ts"].max()
    for interval in ("1h", "1d", "5m"):
        assert remote.high_water("bars", "testex", "AAA/BTC", interval) == local.high_water(
            "bars", "testex", "AAA/BTC", interval
        )
    assert remote.high_water("trades", "testex", "ZZZ/BTC") is None
    assert remote.read("bars", venue="testex").equals(local.read("bars", venue="testex"))


def test_partitions_are_listed_and_read_by_url_alone(bucket):
    trades = pl.concat([quiet_trades("AAA/BTC", hours=30), quiet_trades("BBB/BTC", hours=5, seed=3)])
    Lake(f"s3://{bucket}/lake").write("trades", trades)
    parts = list_partitions(f"s3://{bucket}/lake", "trades", start=START + timedelta(hours=25))
    assert [(p.symbol, p.day.isoformat()) for p in parts] == [("AAA/BTC", "2024-03-02")]
    assert (
        parts[0].url
        == f"s3://{bucket}/lake/trades/venue=testex/symbol=AAA%2FBTC/date=2024-03-02/data.parquet"
    )
    every = list_partitions(f"s3://{bucket}/lake", "trades")
    assert len(every) == 3
    whole = pl.concat([read_partition(p.url) for p in every]).sort("symbol", "ts")
    assert whole.equals(trades.sort("symbol", "ts"))
    assert read_partition(parts[0].url, columns=["ts"]).columns == ["ts"]


def test_ingest_crypto_backfills_and_streams_live_into_s3(bucket, tmp_path):
    app = typer_app()
    with FakeBinance(["BTC/USDT", "ETH/USDT", "ETH/BTC"]) as server:
        server.add_trades("BTC/USDT", steady(T0, 900, 8000))
        config = tmp_path / "tapewatch.toml"
        config.write_text(
            f'[exchange]\nrest_url = "{server.rest_url}"\nws_url = "{server.ws_url}"\n'
            "rate_limit_ms = 1\nreconnect_initial_s = 0.05\nlive_flush_s = 0.2\n"
        )
        common = [
            "--lake",
            f"s3://{bucket}/lake",
            "--db",
            str(tmp_path / "store.db"),
            "--config",
            str(config),
        ]
        window = ["--since", "2024-01-01", "--until", "2024-01-01T02:00:00Z"]
        result = CliRunner().invoke(app, ["--symbols", "BTC/USDT", *window, "--ohlcv", "1h", *common])
        assert result.exit_code == 0, result.output
        assert "BTC/USDT: 900 new of 900 fetched" in result.output
        assert "trades/venue=binance/symbol=BTC%2FUSDT/date=2024-01-01/data.parquet" in keys(bucket)
        lake = Lake(f"s3://{bucket}/lake")
        assert lake.read("trades", symbol="BTC/USDT").height == 900
        assert lake.read("bars", symbol="BTC/USDT").height == 2
        ledger = "_coverage/trades/venue=binance/symbol=BTC%2FUSDT.json"
        assert ledger in keys(bucket)  # in the bucket: a fresh machine resumes where this one stopped
        assert not (tmp_path / "home" / "remote-lakes" / "s3" / bucket / "lake" / "_coverage").exists()
        again = CliRunner().invoke(app, ["--symbols", "BTC/USDT", *window, *common])
        assert "BTC/USDT: 0 new of 0 fetched (already up to date)" in again.output, again.output

        live = CtrlC(
            server,
            lambda: server.add_trades("ETH/BTC", steady(T0, 3, 5)),
            lambda: lake.read("trades", symbol="ETH/BTC").height == 3,  # the regular flush reached S3
        )
        args = ["--symbols", "ETH/BTC", "--live", "--live-for", "20s", *common]
        result = live.run(lambda: CliRunner().invoke(app, args))
        assert result.exit_code == 0, result.output
        assert "live: 3 trade(s), 3 new in the lake" in result.output
        assert lake.read("trades", symbol="ETH/BTC")["trade_id"].to_list() == ["1", "2", "3"]


def test_the_console_charts_trades_from_an_s3_lake(bucket, tmp_path):
    trades = pl.concat(
        [
            quiet_trades("PUMP/USDT", venue="binance", start=ALERT_T0, hours=4),
            burst(ALERT_T0 + timedelta(hours=2), symbol="PUMP/USDT", venue="binance"),
        ]
    )
    Lake(f"s3://{bucket}/lake").write("trades", trades)
    url = f"sqlite:///{tmp_path / 'api.db'}"
    with open_store(url) as store:
        viewer = add_users(store)["viewer"]
        alert = make_alert(120)  # starts at ALERT_T0 + 2 h: the chart shows 13:30 to 14:35
        store.save([alert])
        with TestClient(create_app(api_settings(), db=url, lake=f"s3://{bucket}/lake")) as client:
            view = client.get(
                f"/api/v1/alerts/{alert.id}/market", headers={"Authorization": f"Bearer {viewer}"}
            )
    assert view.status_code == 200, view.text
    body = view.json()
    in_window = trades.filter(
        (pl.col("ts") >= ALERT_T0 + timedelta(minutes=90))
        & (pl.col("ts") < ALERT_T0 + timedelta(minutes=155))
    )
    assert body["trades_total"] == in_window.height > 0 and body["note"] is None and body["candles"]


def test_memory_urls_work_too_without_a_server(tmp_path):
    lake, local = Lake(f"memory://lake-{uuid.uuid4().hex}"), Lake(tmp_path / "lake")
    trades = quiet_trades(hours=10)
    for part in (trades.head(300), trades.slice(200)):
        assert lake.write("trades", part) == local.write("trades", part)
    assert lake.read("trades").equals(local.read("trades"))


def test_a_missing_bucket_is_one_line_naming_the_url(bucket):
    lake = Lake("s3://no-such-bucket-here/lake")
    for attempt in (lambda: lake.write("trades", quiet_trades(hours=1)), lambda: lake.read("trades")):
        with pytest.raises(InputError) as caught:
            attempt()
        assert str(caught.value) == "lake s3://no-such-bucket-here/lake: The specified bucket does not exist"


def test_bad_urls_and_missing_backends_are_one_line_errors(monkeypatch):
    with pytest.raises(InputError, match=r"^lake nosuch://x/lake: unknown storage scheme 'nosuch://'"):
        open_lake("nosuch://x/lake")
    with pytest.raises(InputError, match=r"^lake gs://b/lake: .*gcsfs") as caught:
        open_lake("gs://b/lake")  # gcsfs is not installed here: fsspec names it
    assert "\n" not in str(caught.value)
    with pytest.raises(InputError, match=r"^lake s3://\*\*\*@b/lake"):
        open_lake("s3://key:secret@b/lake").read("trades")  # a credential in the URL never reaches a message
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "s3fs" else real_find_spec(name, *a)
    )
    with pytest.raises(InputError) as caught:
        open_lake("s3://b/lake")
    assert str(caught.value) == (
        "the lake s3://b/lake needs the [s3] extra, which is not installed (s3fs is missing): "
        "pip install 'tapewatch[s3]'"
    )


def test_local_lakes_need_no_fsspec(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "fsspec", None)  # `import fsspec` now fails
    lake = open_lake(None, f"file://{tmp_path / 'lake'}")
    assert lake.write("trades", quiet_trades(hours=2)) > 0
    assert lake.root == tmp_path / "lake" and lake.read("trades").height > 0


def typer_app():
    import typer

    app = typer.Typer()
    app.command()(user_errors(ingest_crypto))
    return app
