"""One validity rule per record kind: the same bad trades are refused with the same reasons and the
same dead-letter lines whichever way they arrive (files, `stream --replay`, the engine, the exchange
source, POST /detect)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import polars as pl
from conftest import START, quiet_trades
from typer.testing import CliRunner

from tapewatch.cli.app import app
from tapewatch.config import Settings
from tapewatch.detect.registry import build_detectors
from tapewatch.engine.stream import StreamEngine
from tapewatch.io.readers import read_inputs
from tapewatch.records import TRADE_SCHEMA, conform
from tapewatch.sources.exchange.normalise import normalise_trades

from .harness import Api

SYMBOL = "AAA/BTC"
BAD = [
    ({"price": -1.0}, "price is not a positive number"),
    ({"amount": 0.0}, "amount is not a positive number"),
    ({"price": math.inf}, "price is not a positive number"),
    ({"amount": math.nan}, "amount is not a positive number"),
    ({"side": "long"}, "unknown side 'long' (expected buy/sell)"),
]
"""Changes that spoil a good trade, and the reason every path must give."""
REASONS = [reason for _, reason in BAD]


def good_trades() -> pl.DataFrame:
    return quiet_trades(SYMBOL, hours=1).head(40)


def spoiled(trades: pl.DataFrame) -> pl.DataFrame:
    """The good trades with one bad row after every eighth (so the bad rows sit among good ones)."""
    parts = []
    for index, (change, _) in enumerate(BAD):
        parts.append(trades.slice(index * 8, 8))
        parts.append(trades.slice(index * 8, 1).with_columns(pl.lit(v).alias(k) for k, v in change.items()))
    return pl.concat(parts)


def write_ccxt(frame: pl.DataFrame, path: Path) -> Path:
    frame.select(
        "symbol", timestamp=pl.col("ts").dt.epoch("ms"), side="side", price="price", amount="amount"
    ).write_csv(path)
    return path


def test_every_path_refuses_the_same_rows_with_the_same_reasons(api: Api, tmp_path: Path) -> None:
    rows = spoiled(good_trades())
    read = read_inputs([write_ccxt(rows, tmp_path / "t.csv")])
    assert read.rejected["reason"].to_list() == REASONS
    assert read.trades.height == good_trades().height

    engine = StreamEngine(build_detectors(Settings(), ["pump_onset"]))
    engine.push(conform(rows, TRADE_SCHEMA))
    engine.finish()
    assert [entry["reason"] for entry in engine.set_aside] == REASONS

    ccxt = [
        {"symbol": s, "timestamp": ts, "price": p, "amount": a, "side": side, "id": str(i)}
        for i, (s, ts, p, a, side) in enumerate(
            rows.select("symbol", pl.col("ts").dt.epoch("ms"), "price", "amount", "side").iter_rows()
        )
    ]
    checked = normalise_trades(ccxt, source="x:ws", symbols={SYMBOL})
    assert [letter["reason"] for letter in checked.rejected] == REASONS
    assert len(checked.rows) == good_trades().height

    good = {"ts": START.isoformat(), "symbol": SYMBOL, "price": 1.0, "amount": 2.0, "side": "buy"}
    for change, reason in BAD:  # NaN and Infinity as Python's json writes them (the API reads them)
        body = json.dumps({"trades": [good, good | change]})
        headers = api.headers("viewer") | {"content-type": "application/json"}
        response = api.client.post("/api/v1/detect", content=body, headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == f"body: trades[1]: {reason}"


def test_stream_replay_counts_and_writes_the_dead_letters_detect_writes(tmp_path: Path) -> None:
    path = write_ccxt(spoiled(good_trades()), tmp_path / "t.csv")
    runner = CliRunner()
    detected, replayed = tmp_path / "detect.rejected.jsonl", tmp_path / "stream.rejected.jsonl"
    result = runner.invoke(
        app, ["detect", str(path), "-o", str(tmp_path / "a.jsonl"), "--dead-letter", str(detected)]
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        [
            "stream",
            "--replay",
            str(path),
            "--speed",
            "max",
            "--no-store",
            "-o",
            str(tmp_path / "s.jsonl"),
            "--dead-letter",
            str(replayed),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "set aside 2: price is not a positive number" in result.output
    assert "set aside 1: unknown side 'long' (expected buy/sell)" in result.output
    assert replayed.read_text() == detected.read_text()
    lines = [json.loads(line) for line in replayed.read_text().splitlines()]
    assert [line["reason"] for line in lines] == REASONS
    assert {line["source"] for line in lines} == {str(path)}
    assert [line["row"] for line in lines] == [9, 18, 27, 36, 45]  # 1-based data rows of the file
    assert lines[0]["record"]["price"] == -1.0
