"""`tapewatch stream --replay FILE --speed max` yields exactly what `tapewatch detect FILE` yields."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from tapewatch.cli.app import app
from tapewatch.io.derive import l2_from_l3
from tapewatch.sources.simulator.config import SimulationConfig
from tapewatch.sources.simulator.market import simulate_market
from tapewatch.store.alert_store import open_store
from unit.cli.test_cli import write_ccxt_csv
from unit.detect.spoofing.spoof_tapes import spoof_market
from unit.engine.test_stream import busy_market

runner = CliRunner()
DEV = Path(__file__).resolve().parents[4] / "shared" / "data" / "pump-events" / "dev"


def last_line_per_id(path: Path) -> dict:
    """Stream output: an alert, then maybe an update with the same id; the last line wins."""
    alerts = {}
    for line in path.read_text().splitlines():
        alert = json.loads(line)
        alert.pop("timing", None)
        alerts[alert["id"]] = alert
    return alerts


def detect_and_stream(tmp_path: Path, inputs: list[str]) -> tuple[dict, dict]:
    batch, streamed = tmp_path / "batch.jsonl", tmp_path / "stream.jsonl"
    result = runner.invoke(app, ["detect", *inputs, "-o", str(batch)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        [
            "stream",
            *(word for path in inputs for word in ("--replay", path)),
            "--speed",
            "max",
            "-o",
            str(streamed),
            "--db",
            str(tmp_path / "alerts.db"),
        ],
    )
    assert result.exit_code == 0, result.output
    return {a["id"]: a for a in map(json.loads, batch.read_text().splitlines())}, last_line_per_id(streamed)


def test_stream_replay_equals_detect_on_generated_data(tmp_path):
    path = tmp_path / "market.csv"
    write_ccxt_csv(busy_market(), path)
    batch, streamed = detect_and_stream(tmp_path, [str(path)])
    assert {a["detector"] for a in batch.values()} == {"pump_onset"} and len(batch) >= 4
    assert streamed == batch
    with open_store(tmp_path / "alerts.db") as store:
        stored = {alert.id: alert for alert in store.list(limit=None)}
    assert set(stored) == set(batch)
    assert all(stored[i].followup == batch[i]["followup"] for i in batch if batch[i]["followup"])


@pytest.mark.skipif(not DEV.is_dir(), reason="the real pump files in ../shared/data are not on this machine")
def test_stream_replay_equals_detect_on_a_real_pump_file(tmp_path):
    path = DEV / "EVX_2021-01-09T2100.csv.gz"
    batch, streamed = detect_and_stream(tmp_path, [str(path)])
    assert any(a["detector"] == "pump_onset" for a in batch.values())
    assert streamed == batch


def test_stream_needs_exactly_one_source(tmp_path):
    result = runner.invoke(app, ["stream", "--no-store"])
    assert result.exit_code == 2 and "--replay" in result.output
    result = runner.invoke(app, ["stream", "--replay", "x.csv", "--exchange", "binance", "--no-store"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["stream", "--bus", "nats://127.0.0.1:1", "--notify"])
    assert result.exit_code == 2 and "bus sink --notify" in result.output  # workers never notify


def test_bad_speed_is_a_one_line_error(tmp_path):
    path = tmp_path / "market.csv"
    write_ccxt_csv(busy_market().head(50), path)
    result = runner.invoke(app, ["stream", "--replay", str(path), "--speed", "fast", "--no-store"])
    assert result.exit_code == 2 and "--speed 'fast'" in result.output


def test_a_replay_larger_than_memory_streams_hour_by_hour_as_detect_decides(tmp_path, monkeypatch):
    path, again = tmp_path / "market.csv", tmp_path / "market-again.csv"
    write_ccxt_csv(busy_market(), path)
    write_ccxt_csv(busy_market().tail(500), again)  # a re-read page: duplicates across files and hours
    monkeypatch.setenv("TAPEWATCH_BATCH__MEMORY_GIB", "0.000001")
    streamed = tmp_path / "stream.jsonl"
    result = runner.invoke(
        app, ["stream", "--replay", str(path), "--replay", str(again), "-o", str(streamed)]
    )
    assert result.exit_code == 0, result.output
    assert "larger than memory" in result.output and "16 hour(s) spilled to disk" in result.output
    monkeypatch.delenv("TAPEWATCH_BATCH__MEMORY_GIB")
    batch, whole = detect_and_stream(tmp_path, [str(path), str(again)])
    assert len(batch) >= 4 and last_line_per_id(streamed) == batch == whole


def test_a_replay_larger_than_memory_of_order_events_asks_for_trades(tmp_path, monkeypatch):
    venue = simulate_market(SimulationConfig(symbols=2, seed=5))
    venue.orders.write_parquet(tmp_path / "orders.parquet")
    monkeypatch.setenv("TAPEWATCH_BATCH__MEMORY_GIB", "0.000001")
    result = runner.invoke(app, ["stream", "--replay", str(tmp_path / "orders.parquet"), "--no-store"])
    assert result.exit_code == 2
    assert "order events" in result.output or "orders" in result.output
    assert "--kind trades" in result.output and "Traceback" not in result.output
    bogus = runner.invoke(app, ["stream", "--replay", str(tmp_path / "orders.parquet"), "--kind", "bogus"])
    assert bogus.exit_code == 2 and "--kind 'bogus': unknown" in bogus.output


def candles_csv(path: Path) -> Path:
    """An OHLCV candle file (date,open,high,low,close,volume)."""
    path.write_text(
        "date,open,high,low,close,volume\n2024-03-01,1,2,0.5,1.5,100\n2024-03-02,1.5,2,1,1.2,80\n"
    )
    return path


def with_bad_rows_and_copies(tmp_path: Path) -> tuple[Path, Path]:
    """A busy market as ccxt CSV with two bad rows, and a second file re-reading its last 500 trades."""
    path, again = tmp_path / "market.csv", tmp_path / "market-again.csv"
    write_ccxt_csv(busy_market(), path)
    write_ccxt_csv(busy_market().tail(500), again)
    lines = path.read_text().splitlines()
    _, ms, iso, *_ = lines[1].split(",")
    bad = ["AAA/BTC,not-a-time,x,buy,1e-5,1,1", f"AAA/BTC,{ms},{iso},buy,-1,1,1"]
    path.write_text("\n".join([*lines, *bad]) + "\n")
    return path, again


def accounted(output: str) -> tuple[int, int, int, int]:
    """(rows read, trades the engine decided, rows rejected, duplicates removed) from a stream's summary."""
    read = re.search(
        r"read \d+ file\(s\), ([\d,]+) rows: .*; ([\d,]+) duplicates removed; ([\d,]+) rejected", output
    )
    decided = re.search(r"speed[^:]*: ([\d,]+) trades in", output)
    assert read and decided, output
    rows, duplicates, rejected = (int(group.replace(",", "")) for group in read.groups())
    return rows, int(decided.group(1).replace(",", "")), rejected, duplicates


@pytest.mark.parametrize("memory_gib", [None, "0.000001"], ids=["whole", "spilled"])
def test_a_replay_accounts_for_every_row_as_detect_does(tmp_path, monkeypatch, memory_gib):
    path, again = with_bad_rows_and_copies(tmp_path)
    if memory_gib:
        monkeypatch.setenv("TAPEWATCH_BATCH__MEMORY_GIB", memory_gib)
    detected, streamed = tmp_path / "detect.rejected.jsonl", tmp_path / "stream.rejected.jsonl"
    batch = runner.invoke(
        app,
        ["detect", str(path), str(again), "-o", str(tmp_path / "d.jsonl"), "--dead-letter", str(detected)],
    )
    assert batch.exit_code == 0, batch.output
    result = runner.invoke(
        app,
        [
            "stream",
            str(path),
            str(again),
            "--no-store",
            "-o",
            str(tmp_path / "s.jsonl"),
            "--dead-letter",
            str(streamed),
        ],
    )
    assert result.exit_code == 0, result.output
    rows, decided, rejected, duplicates = accounted(result.output)
    assert rows == busy_market().height + 2 + 500 and duplicates == 500 and rejected == 2
    assert rows == decided + rejected + duplicates  # every row read: decided, dead-lettered or a copy
    letters = [json.loads(line) for line in streamed.read_text().splitlines()]
    assert letters == [
        json.loads(line) for line in detected.read_text().splitlines()
    ]  # same rows, reasons, lines
    assert {letter["reason"] for letter in letters} == {
        "unparsable timestamp",
        "price is not a positive number",
    }
    assert "set aside 1: unparsable timestamp" in result.output


def test_a_replay_takes_files_directories_and_globs_as_detect_does(tmp_path):
    folder = tmp_path / "trades"
    folder.mkdir()
    first, second = folder / "a.csv", folder / "b.csv"
    market = busy_market()
    write_ccxt_csv(market.filter(pl.col("symbol") != "CCC/BTC"), first)
    write_ccxt_csv(market.filter(pl.col("symbol") == "CCC/BTC"), second)
    batch, _ = detect_and_stream(tmp_path, [str(first), str(second)])
    for words in (
        ["--replay", str(first), str(second)],  # `--replay trades/*.csv` as the shell expands it
        [str(first), str(second)],
        ["--replay", str(folder)],
        [str(folder / "*.csv")],
    ):
        out = tmp_path / "out.jsonl"
        out.unlink(missing_ok=True)
        result = runner.invoke(app, ["stream", *words, "--no-store", "-o", str(out)])
        assert result.exit_code == 0, (words, result.output)
        assert "read 2 file(s)" in result.output and last_line_per_id(out) == batch


@pytest.mark.parametrize("memory_gib", [None, "0.000001"], ids=["whole", "spilled"])
def test_a_candle_file_is_read_and_said_not_replayed_and_alone_is_a_one_line_error(
    tmp_path, monkeypatch, memory_gib
):
    """Candles are readable, just not what a stream replays: counted as not replayed, never called
    unreadable; named alone, there is nothing to stream, which is an error, not a silent exit 0."""
    if memory_gib:
        monkeypatch.setenv("TAPEWATCH_BATCH__MEMORY_GIB", memory_gib)
    candles = candles_csv(tmp_path / "candles.csv")
    named = runner.invoke(app, ["stream", "--replay", str(candles), "--no-store"])
    assert named.exit_code == 2 and "Traceback" not in named.output
    assert f"--replay: input '{candles}' holds 2 bars and nothing to stream" in named.output
    assert "it replays trades, order events or book updates" in named.output
    write_ccxt_csv(busy_market().head(200), tmp_path / "trades.csv")
    for words in (["--replay", str(candles), str(tmp_path / "trades.csv")], [str(tmp_path)]):
        result = runner.invoke(app, ["stream", *words, "--no-store", "-o", str(tmp_path / "out.jsonl")])
        assert result.exit_code == 0, result.output
        assert "read 2 file(s), 202 rows: 200 trades, 2 bars" in result.output
        assert "not replayed: 2 bars (a stream builds its candles from trades" in result.output
        assert "cannot be read" not in result.output and ": 200 trades in" in result.output
        (tmp_path / "out.jsonl").unlink()


def test_order_events_a_replay_of_trades_does_not_carry_are_counted(tmp_path):
    venue = simulate_market(SimulationConfig(symbols=2, seed=5))
    venue.trades.write_parquet(tmp_path / "trades.parquet")
    venue.orders.write_parquet(tmp_path / "orders.parquet")
    result = runner.invoke(
        app, ["stream", str(tmp_path), "--kind", "trades", "--no-store", "-o", str(tmp_path / "o.jsonl")]
    )
    assert result.exit_code == 0, result.output
    assert f"not replayed: {venue.orders.height:,} order events" in result.output


def test_an_unwritable_dead_letter_path_is_one_line_before_any_read(tmp_path):
    write_ccxt_csv(busy_market().head(50), tmp_path / "trades.csv")
    result = runner.invoke(
        app, ["stream", str(tmp_path / "trades.csv"), "--no-store", "--dead-letter", str(tmp_path)]
    )
    assert result.exit_code == 2 and "--dead-letter" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("warmup", [None, "0"], ids=["warm-up over REST", "live at once"])
def test_an_unreachable_exchange_is_one_line_naming_it(tmp_path, monkeypatch, warmup):
    pytest.importorskip("ccxt")
    monkeypatch.setenv("TAPEWATCH_EXCHANGE__REST_URL", "http://127.0.0.1:9")  # nothing listens there
    words = [
        "stream",
        "--exchange",
        "binance",
        "--symbols",
        "BTC/USDT",
        "--no-store",
        "--lake",
        str(tmp_path),
    ]
    result = runner.invoke(app, [*words, *(["--warmup", warmup] if warmup else [])])
    assert result.exit_code == 2, result.output
    assert "exchange 'binance': cannot load its markets" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_a_corrupt_file_is_set_aside_the_rest_replayed_and_the_run_fails_at_the_end(tmp_path):
    folder = tmp_path / "trades"
    folder.mkdir()
    write_ccxt_csv(busy_market(), folder / "good.csv")
    whole = gzip.compress((folder / "good.csv").read_bytes())
    (folder / "cut.csv.gz").write_bytes(whole[: len(whole) // 2])  # cut in half
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["stream", str(folder), "--no-store", "-o", str(out)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "set aside (cannot be read): input '" in result.output and "cut.csv.gz" in result.output
    assert "1 input file(s) could not be read and were set aside" in result.output
    batch, _ = detect_and_stream(tmp_path, [str(folder / "good.csv")])
    assert last_line_per_id(out) == batch  # the good file was replayed in full


def test_a_trade_repeated_within_its_file_without_an_id_is_replayed_as_detect_keeps_it(tmp_path):
    """Readers take two equal trades of one file without trade ids for two trades (second-resolution
    data prints them); the stream engine must not set the second aside as a copy."""
    path = tmp_path / "market.csv"
    write_ccxt_csv(busy_market(), path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[5], lines[6]]) + "\n")
    result = runner.invoke(app, ["stream", str(path), "--no-store", "-o", str(tmp_path / "s.jsonl")])
    assert result.exit_code == 0, result.output
    rows, decided, rejected, duplicates = accounted(result.output)
    assert rows == decided == busy_market().height + 2 and rejected == duplicates == 0
    assert "set aside" not in result.output


def test_two_equal_prints_with_their_own_trade_ids_are_replayed_as_two_trades_in_a_book_stream(tmp_path):
    """A book stream's prints carry no trade_id, so trades 1 and 2 of one time, price and size become
    equal rows there; they are two trades, as `detect` keeps them, not a copy set aside."""
    market = spoof_market()
    twin = market.trades.head(1).with_columns(trade_id=pl.lit("twin-2"))
    trades = pl.concat([market.trades.head(1).with_columns(trade_id=pl.lit("twin-1")), twin, market.trades])
    trades.write_parquet(tmp_path / "trades.parquet")
    l2_from_l3(market.orders).write_parquet(tmp_path / "book.parquet")
    files = [str(tmp_path / "trades.parquet"), str(tmp_path / "book.parquet")]
    batch = runner.invoke(
        app, ["detect", *files, "--detector", "spoofing_l2", "-o", str(tmp_path / "d.jsonl")]
    )
    assert batch.exit_code == 0, batch.output
    read = re.search(r"([\d,]+) trades, .* ([\d,]+) book updates; ([\d,]+) duplicates", batch.output)
    assert read, batch.output
    detected_trades, book_updates, duplicates = (int(group.replace(",", "")) for group in read.groups())
    assert detected_trades == market.trades.height + 2 and duplicates == 0
    result = runner.invoke(
        app,
        ["stream", *files, "--kind", "book", "--detector", "spoofing_l2", "--no-store"]
        + ["-o", str(tmp_path / "s.jsonl")],
    )
    assert result.exit_code == 0, result.output
    assert "set aside" not in result.output
    decided = re.search(r"speed[^:]*: ([\d,]+) book events in", result.output)
    assert decided and int(decided.group(1).replace(",", "")) == detected_trades + book_updates, result.output
