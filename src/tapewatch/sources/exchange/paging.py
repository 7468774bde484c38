"""Walk an exchange's REST history forward, one page at a time, through ccxt's unified methods.

Both the backfill and the live source's gap repair read history this way. Each page
says which time span it has fully covered, so callers can record progress and resume.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import ccxt.async_support

log = logging.getLogger(__name__)


@dataclass
class Page:
    """Records fetched for [start, end) in epoch ms: everything the exchange has in that span."""

    records: list[Any]
    start: int
    end: int


async def trade_pages(
    exchange: ccxt.async_support.Exchange,
    symbol: str,
    start: int,
    end: int,
    *,
    limit: int,
    window: int,
) -> AsyncIterator[Page]:
    """ccxt trades of `symbol` with start ≤ timestamp < end, oldest first, each trade once.

    Requests ask for at most `window` ms (Binance refuses aggTrades spans over an
    hour; `until` is ccxt's unified end-of-range parameter). A full page continues
    from its last trade's millisecond, dropping the trades of that millisecond it
    already gave; a short page means its window is exhausted. A full page inside a
    single millisecond cannot be paged by time; the walk then steps 1 ms on.
    """
    cursor = start
    boundary: set[str] = set()  # ids of the cursor's millisecond already yielded
    while cursor < end:
        window_end = min(end, cursor + window)
        raw = await exchange.fetch_trades(symbol, since=cursor, limit=limit, params={"until": window_end - 1})
        stamped = [t for t in raw if isinstance(t.get("timestamp"), int)]
        fresh = [t for t in raw if t.get("id") is None or str(t["id"]) not in boundary]
        fresh = [
            t for t in fresh if not isinstance(t.get("timestamp"), int) or cursor <= t["timestamp"] < end
        ]
        last = max((t["timestamp"] for t in stamped), default=None)
        if len(raw) >= limit and last is not None:
            following = last if last > cursor else cursor + 1
            if last <= cursor:
                log.warning(
                    "%s: over %d trades in the millisecond %d; the rest of it is skipped",
                    symbol,
                    limit,
                    cursor,
                )
        else:
            following = window_end if last is None else max(window_end, last + 1)
        following = min(following, end)
        boundary = {str(t["id"]) for t in stamped if t["timestamp"] == following and t.get("id") is not None}
        yield Page(fresh, cursor, following)
        cursor = following


async def candle_pages(
    exchange: ccxt.async_support.Exchange,
    symbol: str,
    timeframe: str,
    start: int,
    end: int,
    *,
    limit: int,
    now: int,
) -> AsyncIterator[Page]:
    """Closed ccxt candles `[ts, o, h, l, c, v]` opening in [start, end), oldest first.

    A candle still open at `now` is left out (its numbers will change), and the
    covered span stops where it starts, so the next run fetches it again once closed.
    """
    step = int(exchange.parse_timeframe(timeframe) * 1000)
    closed_until = min(end, now // step * step)
    cursor = start
    while cursor < end:
        raw = await exchange.fetch_ohlcv(
            symbol, timeframe, since=cursor, limit=limit, params={"until": end - 1}
        )
        rows = [row for row in raw if cursor <= row[0] < end and row[0] + step <= now]
        if raw and len(raw) >= limit:
            following = min(end, int(raw[-1][0]) + step)
        else:
            following = end
        covered = min(following, max(cursor, closed_until))
        yield Page(rows, cursor, covered)
        if following <= cursor or covered < following:
            return
        cursor = following
