"""Walk an exchange's REST history one page at a time, through ccxt's unified methods, as the venue allows.

Both the backfill and the live source's gap repair read history this way. Each page
says which time span it has fully covered, so callers can record progress and resume,
or that the venue cannot give a span at all (`Page.available` False), so callers record
it as "not available" instead of fetched. A page is taken as the end of a span only
when the venue's paging says so: a page holding the venue's page cap (`capabilities`),
not the number asked for, means more may follow; a venue that ignores `since` is never
trusted for anything older than the oldest trade it returned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import ccxt.async_support

from tapewatch.sources.exchange.capabilities import Paging, VenueCapabilities

log = logging.getLogger(__name__)


@dataclass
class Page:
    """Records fetched for [start, end) in epoch ms: everything the exchange has in that span.

    With `available` False the venue cannot give that span (its records, if any, lie in it
    but are not known to be all).
    """

    records: list[Any]
    start: int
    end: int
    available: bool = True


def history_pages(
    exchange: ccxt.async_support.Exchange,
    capabilities: VenueCapabilities,
    symbol: str,
    start: int,
    end: int,
    *,
    limit: int,
    window: int,
) -> AsyncIterator[Page]:
    """Trades of `symbol` in [start, end), paged the way the venue pages (`capabilities.paging`).

    `limit` is what the settings want per page; the venue's cap lowers it. Pages come
    oldest first where the venue walks forward, newest first where it walks back.
    """
    limit = capabilities.trade_limit(limit)
    params = capabilities.history_params
    if capabilities.paging is Paging.TIME:
        return trade_pages(exchange, symbol, start, end, limit=limit, window=window, params=params)
    if capabilities.paging is Paging.CURSOR:
        return cursor_pages(exchange, symbol, start, end, limit=limit, params=params)
    if capabilities.paging is Paging.ID_BACKWARD:
        horizon = None
        if capabilities.history_days is not None:
            horizon = int(time.time() * 1000 - capabilities.history_days * 86_400_000)
        return backward_pages(exchange, symbol, start, end, limit=limit, params=params, horizon=horizon)
    return recent_pages(exchange, symbol, start, end, limit=limit, params=params)


async def trade_pages(
    exchange: ccxt.async_support.Exchange,
    symbol: str,
    start: int,
    end: int,
    *,
    limit: int,
    window: int,
    params: Mapping[str, Any] | None = None,
) -> AsyncIterator[Page]:
    """ccxt trades of `symbol` with start ≤ timestamp < end, oldest first, each trade once, by `since`.

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
        request = {**(params or {}), "until": window_end - 1}
        raw = await exchange.fetch_trades(symbol, since=cursor, limit=limit, params=request)
        stamped = [t for t in raw if isinstance(t.get("timestamp"), int)]
        fresh = [t for t in raw if t.get("id") is None or str(t["id"]) not in boundary]
        fresh = _within(fresh, cursor, end)
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


async def backward_pages(
    exchange: ccxt.async_support.Exchange,
    symbol: str,
    start: int,
    end: int,
    *,
    limit: int,
    params: Mapping[str, Any],
    horizon: int | None,
) -> AsyncIterator[Page]:
    """Trades of [start, end), newest first, each page asking for trades before the oldest id seen (OKX).

    The first request asks for trades before `end` by time (`type=2`), the others before
    a trade id (`type=1`), so trades sharing a millisecond across pages come exactly once.
    A page short of `limit`, or reaching back past `start`, ends the walk: the venue has
    nothing older. The part of the range before `horizon` (how far back the venue's history
    reaches) is not available and not asked for.
    """
    if horizon is not None and start < horizon:
        yield Page([], start, min(horizon, end), available=False)
        start = horizon
    upper = end
    cursor: dict[str, str] = {"type": "2", "after": str(end)}
    while start < upper:
        raw = await exchange.fetch_trades(symbol, None, limit, {**params, **cursor})
        stamped = [t for t in raw if isinstance(t.get("timestamp"), int)]
        records = _within(raw, start, end)
        oldest = min(stamped, key=_age, default=None)
        if oldest is None or oldest["timestamp"] < start or len(raw) < limit:
            yield Page(records, start, upper)
            return
        covered = oldest["timestamp"] + 1  # older trades of the oldest one's millisecond may follow
        yield Page(records, covered, upper)
        following = {"type": "1", "after": str(oldest.get("id"))}
        if oldest.get("id") is None or following == cursor:
            # no id to page on, or the venue ignored it (the same page again): what is older cannot be asked for
            yield Page([], start, covered, available=False)
            return
        upper, cursor = covered, following


def _within(trades: list[dict[str, Any]], start: int, end: int) -> list[dict[str, Any]]:
    """The trades stamped in [start, end) ms, and those without a stamp (normalising sets them aside)."""
    return [t for t in trades if not isinstance(t.get("timestamp"), int) or start <= t["timestamp"] < end]


def _age(trade: dict[str, Any]) -> tuple[int, int]:
    """Sort key of a trade by time, then by numeric id (0 where not numeric)."""
    trade_id = str(trade.get("id") or "")
    return trade["timestamp"], int(trade_id) if trade_id.isdigit() else 0


async def cursor_pages(
    exchange: ccxt.async_support.Exchange,
    symbol: str,
    start: int,
    end: int,
    *,
    limit: int,
    params: Mapping[str, Any],
) -> AsyncIterator[Page]:
    """Trades of [start, end), oldest first, each page asking for trades after the venue's cursor (Kraken).

    Kraken's `since` is whole seconds at first, then the `last` cursor its previous answer
    returned (ns; trades strictly after it), which ccxt 4.5.90 appends to the raw record of
    the page's newest trade (`kraken.fetch_trades`). `since` goes in `params`, not ccxt's
    argument: ccxt would drop the page's trades before `start` and a full page would look
    short. A page short of `limit`, or reaching `end`, ends the walk.
    """
    cursor = str(start // 1000)
    covered = start
    while covered < end:
        raw = await exchange.fetch_trades(symbol, None, limit, {**params, "since": cursor})
        records = _within(raw, start, end)
        newest = max((t for t in raw if isinstance(t.get("timestamp"), int)), key=_age, default=None)
        following = _cursor(newest)
        if newest is None or len(raw) < limit or newest["timestamp"] >= end:
            yield Page(records, covered, end)
            return
        reached = max(covered, newest["timestamp"])  # later trades of that millisecond come next
        yield Page(records, covered, reached)
        if following is None or following == cursor:
            # no cursor to page on, or the venue did not move it (the same page again): what is newer
            # cannot be asked for
            yield Page([], reached, end, available=False)
            return
        covered, cursor = reached, following


def _cursor(trade: dict[str, Any] | None) -> str | None:
    """The cursor ccxt appended to the raw record of a Kraken page's newest trade."""
    info = trade.get("info") if trade else None
    return str(info[-1]) if isinstance(info, list) and len(info) > 6 else None


async def recent_pages(
    exchange: ccxt.async_support.Exchange,
    symbol: str,
    start: int,
    end: int,
    *,
    limit: int,
    params: Mapping[str, Any],
) -> AsyncIterator[Page]:
    """The venue's newest trades, for a venue that ignores `since` (Bybit, and any venue not known).

    One request; the range from its oldest trade's millisecond on is fetched, what lies
    before is not available (its trades are somewhere in the venue, not here). No trades
    at all: nothing of the range is known.
    """
    raw = await exchange.fetch_trades(symbol, None, limit, dict(params))
    stamps = [t["timestamp"] for t in raw if isinstance(t.get("timestamp"), int)]
    records = _within(raw, start, end)
    reached = min(max(start, min(stamps) + 1), end) if stamps else end
    if reached > start:
        yield Page([], start, reached, available=False)
    yield Page(records, reached, end)


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
