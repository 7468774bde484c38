"""`tapewatch bus publish` of files larger than memory publishes what a whole read publishes."""

from __future__ import annotations

import asyncio

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tapewatch.bus.codec import decode_trades
from tapewatch.bus.publish import publish_files
from unit.bus import bus_harness as harness
from unit.cli.test_cli import write_ccxt_csv
from unit.engine.test_stream import busy_market

pytestmark = pytest.mark.nats


def test_files_larger_than_memory_are_published_hour_by_hour_as_a_whole_read_publishes_them(tmp_path):
    path, again = tmp_path / "market.csv", tmp_path / "market-again.csv"
    write_ccxt_csv(busy_market(), path)
    write_ccxt_csv(busy_market().tail(500), again)  # duplicates across files
    whole, spilled = harness.private_settings(), harness.private_settings()
    spilled = spilled.model_copy(update={"batch": spilled.batch.model_copy(update={"memory_gib": 1e-6})})

    async def stored(settings) -> dict[str, pl.DataFrame]:
        """Each subject's trades in the order they were published (messages are cut per chunk, so the
        cuts differ; what each symbol's subject carries must not)."""
        async with harness.on_bus(settings) as js:
            await asyncio.to_thread(publish_files, settings, harness.NATS_URL, [str(path), str(again)])
            info = await js.stream_info(settings.bus.trades_stream)
            messages = [
                await js.get_msg(settings.bus.trades_stream, seq)
                for seq in range(info.state.first_seq, info.state.last_seq + 1)
            ]
            frames: dict[str, list[pl.DataFrame]] = {}
            for message in messages:
                if message.data:  # the end markers carry none
                    symbol = message.subject.split(".trades.", 1)[1]  # after this test's own prefix
                    frames.setdefault(symbol, []).append(decode_trades(message.data))
            return {subject: pl.concat(parts) for subject, parts in frames.items()}

    expected, published = asyncio.run(stored(whole)), asyncio.run(stored(spilled))
    assert len(expected) == 3 and sorted(published) == sorted(expected)
    for subject, trades in expected.items():
        assert_frame_equal(published[subject], trades)
