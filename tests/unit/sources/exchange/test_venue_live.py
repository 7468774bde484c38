"""The live source on OKX, through ccxt.pro's real `okx` class against the local fake: aggregated
trade messages open no gap, a real gap is refilled from OKX's paged history and checked."""

from __future__ import annotations

import time

from tapewatch.config import ExchangeSettings
from tapewatch.sources.exchange import ExchangeLiveSource
from unit.sources.exchange.crypto_harness import Collector, call, run, until
from unit.sources.exchange.fake_okx import FakeOkx

NOW = int(time.time() * 1000) - 60_000  # a minute ago: well inside OKX's three months of history


def _settings(server: FakeOkx) -> ExchangeSettings:
    return ExchangeSettings(
        exchange="okx",
        rest_url=server.rest_url,
        ws_url=server.ws_url,
        rate_limit_ms=1,
        reconnect_initial_s=0.05,
        reconnect_max_s=0.4,
        live_batch_ms=10,
        history_settle_s=0.0,
        ccxt_options={"fetchMarkets": {"types": ["spot"]}},
    )


def test_okx_counted_messages_open_no_gap_and_a_real_one_is_refilled_and_checked():
    async def scenario(server: FakeOkx) -> tuple[ExchangeLiveSource, Collector]:
        source = ExchangeLiveSource(_settings(server), ["BTC/USDT"])
        async with Collector(source) as live:
            await until(lambda: server.subscribed() == {"BTC-USDT"}, what="subscription")
            await call(server.publish, "BTC/USDT", 1, 1)
            await call(server.publish, "BTC/USDT", 2, 4)  # one taker order filled three makers
            await call(server.publish, "BTC/USDT", 5, 6)
            await until(lambda: live.ids("BTC/USDT") == [1, 4, 6], what="3 messages, held by nothing")
            await call(server.drop_connections)
            await until(lambda: source.stats["reconnects"] >= 1, what="reconnect")
            await until(lambda: server.subscribed() == {"BTC-USDT"}, what="resubscription")
            await call(server.publish, "BTC/USDT", 11, 12)  # 7…10 happened while away
            await until(lambda: 12 in live.ids("BTC/USDT"), what="the held message")
        return source, live

    with FakeOkx(["BTC/USDT"]) as server:
        server.add("BTC/USDT", [(NOW + i * 100, 100.0 + i, 1.0, i % 2 == 0) for i in range(12)])
        source, live = run(scenario(server))
        history = server.asked("/api/v5/market/history-trades")
    assert live.ids("BTC/USDT") == [1, 4, 6, 7, 8, 9, 10, 12]  # the refill's trades, in order
    volumes = live.trades()["amount"].to_list()
    assert volumes == [1.0, 3.0, 2.0, 1.0, 1.0, 1.0, 1.0, 2.0]  # nothing counted twice
    assert source.stats["gaps_backfilled"] == 1 and source.stats["gaps_failed"] == 0
    assert source.stats["gap_trades"] == 4
    assert history and history[0]["type"] == "2"  # the refill read OKX's paged history
