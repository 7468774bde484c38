"""REST pacing against the fake Binance's weight limit, through ccxt's real `binance` class.

Windows are scaled down (a second or two instead of a minute, tens of weight instead of
6000) so the tests wait seconds, not minutes; the rules are Binance's.
"""

from __future__ import annotations

import asyncio
import math
import time

import aiohttp
import pytest

from tapewatch.sources.exchange.connect import make_exchange
from tapewatch.sources.exchange.ratelimit import HEADROOM, VenueBanned
from unit.sources.exchange.crypto_harness import T0, run, settings_for, steady
from unit.sources.exchange.fake_binance import FakeBinance

SYMBOLS = ["BTC/USDT", "ETH/USDT"]


def _server(weight: int, window_s: float) -> FakeBinance:
    server = FakeBinance(SYMBOLS)
    server.limits.weight = weight
    server.limits.window_s = window_s
    return server


async def _next_window(window_s: float, margin: float = 0.05) -> None:
    """Sleep until just after a window starts, so a test's requests share one window."""
    await asyncio.sleep(window_s - time.time() % window_s + margin)


def test_aggtrades_are_charged_weight_4_and_paced_below_the_limit():
    async def scenario(server: FakeBinance) -> None:
        settings = settings_for(server, rate_limit_weight=40, rate_limit_window_s=1.0)
        exchange = make_exchange(settings)
        throttle, costs = exchange.throttle, []

        async def spy(cost: float | None = None) -> None:
            costs.append(cost)
            await throttle(cost)

        exchange.throttle = spy  # ccxt's own throttle, which fetch2 calls with the endpoint's cost
        try:
            await exchange.load_markets()
            await _next_window(1.0)
            started = time.time()
            pages = await asyncio.gather(
                *(exchange.fetch_trades("BTC/USDT", since=T0, limit=10) for _ in range(20))
            )
            elapsed = time.time() - started
            limiter = exchange.tapewatch_limiter
        finally:
            await exchange.close()
        assert all(len(page) == 10 for page in pages)
        assert set(server.answered()) == {200}  # never a 429
        # 20 × 4 = 80 weight, at most 36 (90% of 40) a window: three windows
        assert server.peak_weight <= 40 * HEADROOM
        assert elapsed > 1.5
        assert limiter.stats["weight"] == 20 + 20 * 4  # exchangeInfo 20, aggTrades 4 each
        # ccxt's own throttle is charged the same: exchangeInfo 20 × 0.2, then aggTrades 4 × 0.2, not 0.4
        assert costs == pytest.approx([4.0] + [0.8] * 20)

    with _server(weight=40, window_s=1.0) as server:
        server.add_trades("BTC/USDT", steady(T0, 10, 1000), broadcast=False)
        run(scenario(server))


def test_weight_other_clients_used_is_read_from_the_header_and_waited_out():
    window = 2.0

    async def scenario(server: FakeBinance) -> None:
        settings = settings_for(server, rate_limit_weight=40, rate_limit_window_s=window)
        exchange = make_exchange(settings)
        try:
            await exchange.load_markets()
            await _next_window(window)
            await asyncio.to_thread(server.spend, 30)  # another process on this IP
            await exchange.fetch_time()  # weight 1; the answer says 31 are used
            await asyncio.gather(*(exchange.fetch_trades("BTC/USDT", since=T0, limit=5) for _ in range(3)))
        finally:
            await exchange.close()
        assert set(server.answered()) == {200}
        # 31 + 4 fits under 36, 31 + 12 would not: one page went at once, two waited for the next window
        asked = math.floor(next(at for at, path, _ in server.answers if path == "/api/v3/time") / window)
        fetched = [math.floor(at / window) for at, path, _ in server.answers if path == "/api/v3/aggTrades"]
        assert [window_index - asked for window_index in fetched] == [0, 1, 1]

    with _server(weight=40, window_s=window) as server:
        server.add_trades("BTC/USDT", steady(T0, 5, 1000), broadcast=False)
        run(scenario(server))


def test_a_429_pauses_every_request_to_the_venue_for_retry_after_then_they_go_through():
    async def scenario(server: FakeBinance) -> None:
        # the client believes the limit is 1000: the venue's 20 is what it runs into
        settings = settings_for(server, rate_limit_weight=1000, rate_limit_window_s=1.0)
        backfill, live = make_exchange(settings), make_exchange(settings)  # two tasks, one venue
        try:
            await backfill.load_markets()
            await live.load_markets()
            server.limits.weight = 20
            await _next_window(1.0)
            pages = await asyncio.gather(
                *(backfill.fetch_trades("BTC/USDT", since=T0, limit=5) for _ in range(4)),
                *(live.fetch_trades("ETH/USDT", since=T0, limit=5) for _ in range(4)),
            )
        finally:
            await backfill.close()
            await live.close()
        assert backfill.tapewatch_limiter is live.tapewatch_limiter
        assert all(len(page) == 5 for page in pages)  # nothing abandoned
        statuses = server.answered("/api/v3/aggTrades")
        assert 418 not in statuses
        # 5 pages fit in the window; only the 3 already on their way got a 429, and were sent again once
        assert statuses.count(429) == 3 and statuses.count(200) == 8
        first_429 = next(at for at, _, status in server.answers if status == 429)
        during_pause = [at for at, _, _ in server.answers if first_429 + 0.3 < at < first_429 + 0.9]
        assert during_pause == []  # Retry-After (1 s) honoured by both symbols' requests

    with _server(weight=1000, window_s=1.0) as server:
        for symbol in SYMBOLS:
            server.add_trades(symbol, steady(T0, 5, 1000), broadcast=False)
        run(scenario(server))


def test_a_418_stops_rest_calls_until_the_ban_ends_and_says_when_in_one_line():
    async def scenario(server: FakeBinance) -> None:
        exchange = make_exchange(settings_for(server))
        try:
            await exchange.load_markets()
            await asyncio.to_thread(server.ban, 300)
            with pytest.raises(VenueBanned) as banned:
                await exchange.fetch_trades("BTC/USDT", since=T0)
            sent = len(server.answers)
            for _ in range(3):
                with pytest.raises(VenueBanned):
                    await exchange.fetch_trades("ETH/USDT", since=T0)
        finally:
            # limiters live as long as the process, and a later fake may get this port
            exchange.tapewatch_limiter.banned_until = 0.0
            await exchange.close()
        message = str(banned.value)
        assert "\n" not in message and "418" in message and "until" in message
        assert banned.value.until == pytest.approx(time.time() + 300, abs=5)
        assert len(server.answers) == sent  # nothing more reached the venue

    with FakeBinance(SYMBOLS) as server:
        run(scenario(server))


def test_the_fake_bans_a_client_that_keeps_sending_after_429s():
    """Without this the 429 test above could pass against a venue that never bans."""

    async def scenario(server: FakeBinance) -> list[tuple[int, str | None]]:
        url = f"{server.rest_url}/api/v3/aggTrades?symbol=BTCUSDT"
        answers = []
        async with aiohttp.ClientSession() as session:
            for _ in range(8):
                async with session.get(url) as response:
                    answers.append((response.status, response.headers.get("Retry-After")))
                await asyncio.sleep(0.06)  # past the in-flight grace: each one counts
        return answers

    with _server(weight=12, window_s=30.0) as server:
        answers = run(scenario(server))
    statuses = [status for status, _ in answers]
    assert statuses[:3] == [200, 200, 200]
    assert statuses[3] == 429 and answers[3][1] is not None
    assert 418 in statuses
    ban = statuses.index(418)
    assert all(status == 418 for status in statuses[ban:])
    assert int(answers[ban][1] or 0) == int(server.limits.ban_s)
