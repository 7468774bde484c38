"""Trade batches survive the wire exactly; partitions and names are stable and safe."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import UTC, datetime

import polars as pl
import pytest

from tapewatch.bus.codec import CodecError, decode_trades, encode_trades
from tapewatch.bus.leases import plan
from tapewatch.bus.publish import batches
from tapewatch.bus.subjects import BusNames, partition_of, token
from tapewatch.config import BusSettings
from tapewatch.records import TRADE_SCHEMA, conform


def frame(rows: int) -> pl.DataFrame:
    base = datetime(2025, 1, 1, 12, 0, 0, 123457, tzinfo=UTC)  # µs that ms would lose
    return conform(
        pl.DataFrame(
            {
                "ts": [base.replace(microsecond=(base.microsecond + i) % 10**6) for i in range(rows)],
                "venue": ["binance"] * rows,
                "symbol": ["BTC/USDT"] * rows,
                "price": [42_000.5 + i for i in range(rows)],
                "amount": [None if i % 3 == 0 else 0.25 * i for i in range(rows)],
                "side": [None if i % 2 else "buy" for i in range(rows)],
                "trade_id": [f"t{i}" for i in range(rows)],
                "buyer": [None] * rows,
                "seller": ["acct-9" if i % 5 == 0 else None for i in range(rows)],
            }
        ),
        TRADE_SCHEMA,
    )


@pytest.mark.parametrize("rows", [1, 10, 500])  # uncompressed and LZ4 batches
def test_codec_round_trip_keeps_every_column_null_and_microsecond(rows):
    original = frame(rows)
    decoded = decode_trades(encode_trades(original))
    assert decoded.schema == original.schema
    assert decoded.equals(original, null_equal=True)
    assert decoded["ts"][0].microsecond == 123457


def test_codec_names_what_is_wrong():
    with pytest.raises(CodecError, match="not an Arrow IPC stream"):
        decode_trades(b"definitely not arrow")
    with pytest.raises(CodecError, match="empty payload"):
        decode_trades(b"")
    other = pl.DataFrame({"ts": [1], "price": [2.0]})
    buffer = io.BytesIO()
    other.write_ipc_stream(buffer)
    with pytest.raises(CodecError, match="not the trade columns"):
        decode_trades(buffer.getvalue())


def test_partition_is_stable_across_processes_and_releases():
    # Literal values: a change of hash would move every symbol's history to another partition.
    assert [partition_of("testex", s, 4) for s in ("AAA/BTC", "BBB/BTC", "CCC/BTC")] == [2, 3, 2]
    assert partition_of("binance", "BTC/USDT", 16) == 4
    other_process = subprocess.run(
        [
            sys.executable,
            "-c",
            "from tapewatch.bus.subjects import partition_of as p; print(p('binance', 'BTC/USDT', 16))",
        ],
        env={**os.environ, "PYTHONHASHSEED": "12345"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert other_process.stdout.strip() == "4"
    spread = {partition_of("bench", f"C{i:04d}/BTC", 16) for i in range(200)}
    assert spread == set(range(16))


def test_subjects_escape_dots_and_wildcards():
    names = BusNames.from_settings(BusSettings(partitions=16))
    subject = names.trades_subject("nyse", "BRK.B")
    assert subject == f"tapewatch.trades.{partition_of('nyse', 'BRK.B', 16)}.nyse.BRK%2EB"
    assert names.partition_of_subject(subject) == partition_of("nyse", "BRK.B", 16)
    assert token("a*b>c d") == "a%2Ab%3Ec%20d"
    assert names.is_end_subject(names.end_subject(3)) and not names.is_end_subject(subject)


def test_batches_never_split_a_timestamp_and_keep_order():
    trades = frame(10).with_columns(
        ts=pl.Series([datetime(2025, 1, 1, tzinfo=UTC)] * 4 + list(frame(6)["ts"]))
    )
    names = BusNames.from_settings(BusSettings(partitions=4))
    (messages,) = batches(trades, names, message_trades=3).values()
    decoded = [decode_trades(m.payload) for m in messages]
    assert decoded[0].height == 4  # the four trades of one timestamp stay together past the limit
    assert pl.concat(decoded).equals(trades.sort("ts", maintain_order=True), null_equal=True)
    assert len({m.msg_id for m in messages}) == len(messages)


def test_plan_moves_towards_a_fair_share():
    everything = {p: "a" for p in range(8)}
    assert plan(8, "a", everything, {"a", "b"}) == ([], [4, 5, 6, 7])
    take, release = plan(8, "b", {p: "a" for p in range(4)}, {"a", "b"})
    assert sorted(take) == [4, 5, 6, 7] and release == []
    assert plan(8, "c", everything, {"a", "b", "c"}) == ([], [])  # nothing free yet: wait


def test_a_message_is_marked_only_up_to_the_trades_the_engine_will_decide():
    """A message may be acked once the engine has decided each symbol up to its newest trade; a trade the
    engine refuses (here an infinite price, by the one validity rule) must not be that mark, or the
    message would wait for a decision that never comes."""
    from nats.aio.msg import Msg

    from tapewatch.bus.delivery import read_messages
    from tapewatch.bus.subjects import partition_of

    good, bad = datetime(2026, 1, 1, 12, tzinfo=UTC), datetime(2026, 1, 1, 12, 5, tzinfo=UTC)
    trades = pl.DataFrame(
        {
            "ts": [good, bad],
            "venue": ["x", "x"],
            "symbol": ["AAA/BTC", "AAA/BTC"],
            "price": [1.0, float("inf")],
            "amount": [2.0, 2.0],
            "side": ["buy", "buy"],
            "trade_id": ["1", "2"],
            "buyer": [None, None],
            "seller": [None, None],
        },
        schema=TRADE_SCHEMA,
    )
    partition = partition_of("x", "AAA/BTC", 4)
    (read,) = read_messages([Msg(None, data=encode_trades(trades))], partition, 4)
    assert read.reason is None and read.trades is not None and read.trades.height == 2
    assert read.marks == {("x", "AAA/BTC"): good}
