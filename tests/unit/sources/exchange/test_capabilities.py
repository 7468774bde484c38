"""Venue capabilities: what ccxt says, what the table adds, and how sequences and the ledger use them."""

from __future__ import annotations

import asyncio

import ccxt.async_support
import ccxt.pro
import pytest

from tapewatch.io.storage import open_store
from tapewatch.sources.exchange.capabilities import IdModel, Paging, capabilities_of
from tapewatch.sources.exchange.coverage import Coverage
from tapewatch.sources.exchange.normalise import normalise_trades
from tapewatch.sources.exchange.paging import Page, backward_pages, cursor_pages
from tapewatch.sources.exchange.sequence import Gap, TradeSequence, Verdict, unrepaired
from unit.sources.exchange.crypto_harness import T0


@pytest.mark.parametrize(
    ("venue", "paging", "trade_cap", "ohlcv_cap", "ids"),
    [
        ("binance", Paging.TIME, 1000, 1000, IdModel.CONSECUTIVE),
        ("okx", Paging.ID_BACKWARD, 100, 300, IdModel.COUNTED),
        ("bybit", Paging.RECENT, 60, 1000, IdModel.NONE),
        ("kraken", Paging.CURSOR, 1000, 720, IdModel.NONE),
        ("mexc", Paging.RECENT, None, 1000, IdModel.NONE),  # not in the table: trusts nothing old
    ],
)
def test_capabilities_join_ccxt_features_with_the_venue_table(venue, paging, trade_cap, ohlcv_cap, ids):
    exchange = getattr(ccxt.async_support, venue)()
    capabilities = capabilities_of(exchange)
    assert (capabilities.paging, capabilities.trade_page_cap, capabilities.ids) == (paging, trade_cap, ids)
    assert capabilities.ohlcv_page_cap == ohlcv_cap  # from ccxt's features, not the table
    assert capabilities.rate_limit_ms == exchange.rateLimit
    assert capabilities.known == (venue != "mexc")
    assert capabilities.trade_limit(1000) == (trade_cap or 1000)
    assert capabilities.trade_limit(10) == 10


def test_the_settle_time_is_the_venues_unless_the_settings_say_otherwise():
    exchange = ccxt.async_support.binance()
    assert capabilities_of(exchange).settle_ms == 5_000
    assert capabilities_of(exchange, 0.25).settle_ms == 250


def _okx_ws(trade_id: int, count: int, ts: int) -> dict:
    """A message of OKX's `trades` channel as documented: `tradeId` is the last of `count` trades."""
    return {
        "instId": "BTC-USDT",
        "tradeId": str(trade_id),
        "px": "42219.9",
        "sz": "0.12060306",
        "side": "buy",
        "ts": str(ts),
        "count": str(count),
        "source": "0",
        "seqId": trade_id,
    }


def _okx_rows(messages: list[dict]):
    exchange = ccxt.pro.okx()
    exchange.markets = {}
    market = {"symbol": "BTC/USDT", "id": "BTC-USDT", "spot": True}
    trades = [exchange.parse_trade(message, market) for message in messages]  # ccxt.pro's own parser
    return normalise_trades(trades, source="okx:ws").rows


def test_okx_aggregated_messages_open_no_false_gap_and_a_real_hole_is_found():
    rows = _okx_rows(
        [
            _okx_ws(10, 1, T0),
            _okx_ws(13, 3, T0 + 1),  # trades 11, 12, 13 in one message
            _okx_ws(15, 2, T0 + 2),  # 14, 15
            _okx_ws(21, 2, T0 + 3),  # 20, 21: 16…19 were missed
        ]
    )
    assert [row.count for row in rows] == [1, 3, 2, 2]
    counted = TradeSequence(100, ids=IdModel.COUNTED)
    gaps = [counted.admit(row.trade_id, row.ts * 1000, row.count)[1] for row in rows]
    assert gaps[:3] == [None, None, None]
    assert gaps[3] is not None and (gaps[3].after_id, gaps[3].before_id) == (15, 20)
    # reading the ids as plain consecutive ones would have held the symbol back three times
    plain = TradeSequence(100, ids=IdModel.CONSECUTIVE)
    assert sum(plain.admit(row.trade_id, row.ts * 1000)[1] is not None for row in rows) == 3


def test_venues_without_consecutive_ids_judge_gaps_by_time_only():
    sequence = TradeSequence(100, ids=IdModel.NONE)
    assert sequence.admit("2100000000007764263", 1_000) == (Verdict.NEW, None)
    assert sequence.admit("2100000000007769999", 2_000) == (Verdict.NEW, None)  # a jump is no gap
    sequence.suspect = True  # the connection dropped
    verdict, gap = sequence.admit("2100000000007770100", 5_000)
    assert verdict is Verdict.NEW and gap == Gap(2_000, 5_000)


def test_a_refill_is_accepted_only_when_it_proves_the_gap_closed():
    numbered = Gap(1_000, 9_000, 5, 10)
    assert unrepaired(numbered, [(str(i), 1_000 + i) for i in range(6, 10)]) is None
    left = unrepaired(numbered, [("6", 6_000), ("8", 8_000), ("9", 8_500)])
    assert left == Gap(6_000, 8_000, 6, 8)  # id 7 is missing, between the trades at 6 s and 8 s
    huge = Gap(1_000, 9_000, 0, 10**12)  # ids are not listed one by one: this returns at once
    assert unrepaired(huge, [("1", 2_000), ("2", 3_000), (str(10**12 - 1), 8_000)]) == Gap(
        3_000, 8_000, 2, 10**12 - 1
    )
    timed = Gap(1_000, 9_000)
    assert unrepaired(timed, [(None, 1_000), ("x", 4_000), (None, 9_000)]) is None
    assert unrepaired(timed, [("x", 4_000), (None, 9_500)]) == timed  # the start was not reached


def test_the_ledger_keeps_not_available_apart_from_fetched(tmp_path):
    store = open_store(tmp_path)
    coverage = Coverage(store, "trades", "bybit", "BTC/USDT", "trades")
    coverage.add([(500, 1_000)], unavailable=[(0, 500)])
    again = Coverage(store, "trades", "bybit", "BTC/USDT", "trades")
    assert again.missing(0, 1_000) == [(0, 500)]  # asked again next time: it is not done
    assert again.not_available(0, 1_000) == [(0, 500)]
    assert again.not_available(100, 200) == [(100, 200)]
    again.add([(0, 200)])  # fetched after all (from a venue that now has it)
    assert again.not_available(0, 1_000) == [(200, 500)]
    assert Coverage(store, "trades", "bybit", "BTC/USDT", "trades").missing(0, 1_000) == [(200, 500)]


class _Stuck:
    """A venue that answers every trades request with the same full page, whatever the cursor."""

    def __init__(self, page: list[dict]) -> None:
        self.page, self.asked = page, 0

    async def fetch_trades(self, symbol, since=None, limit=None, params=None):
        self.asked += 1
        assert self.asked < 10, "the walk kept asking for the same page"
        return self.page


def _walk(pages) -> list[Page]:
    async def collect() -> list[Page]:
        return [page async for page in pages]

    return asyncio.run(collect())


def test_a_venue_ignoring_the_cursor_ends_the_walk_as_not_available_not_in_a_loop():
    full = [
        {"id": str(i), "timestamp": T0 + i, "info": [0, 0, T0 + i, 0, 0, 0, i, "42"]} for i in range(1, 5)
    ]
    back = _walk(
        backward_pages(_Stuck(full), "BTC/USDT", T0 - 100, T0 + 100, limit=4, params={}, horizon=None)
    )
    assert (back[-1].start, back[-1].end, back[-1].available) == (T0 - 100, T0 + 2, False)
    forward = _walk(cursor_pages(_Stuck(full), "BTC/USDT", T0, T0 + 100, limit=4, params={}))
    assert (forward[-1].start, forward[-1].end, forward[-1].available) == (T0 + 4, T0 + 100, False)
