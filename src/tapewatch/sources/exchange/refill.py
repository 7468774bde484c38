"""Refill one live gap over REST and check that the refill closed it.

A reconnect (Binance closes every connection at 24 h) or a restart leaves a stretch of
a symbol's trades unseen. The venue's REST history holds them, but not at once: it is
read only after the venue's settle time (`capabilities.settle_ms`), paged the way the
venue pages (`paging.history_pages`), and a reply counts only when it proves the gap
closed (`sequence.unrepaired`: every missing id where ids are consecutive, otherwise
trades at both ends). Anything less is tried again, waiting longer each time, a bounded
number of times; what is still missing is returned with its bounds, never dropped.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import ccxt.async_support

from tapewatch.config import ExchangeSettings
from tapewatch.sources.exchange.capabilities import capabilities_of
from tapewatch.sources.exchange.normalise import TradeRow, normalise_trades
from tapewatch.sources.exchange.paging import history_pages
from tapewatch.sources.exchange.sequence import Gap, unrepaired

ATTEMPTS = 3
"""Times a gap is read from the venue's history before what is left is reported as not repaired."""


@dataclass
class Refill:
    """What a refill recovered of a gap, and what it could not."""

    rows: list[TradeRow]  # the gap's trades found (all attempts' best), in no particular order
    left: Gap | None  # what is still missing, or None: the gap is closed
    reason: str  # why `left` is not None (the last attempt's failure)
    rejected: list[dict] = field(default_factory=list)  # dead letters of malformed REST trades


async def refill(
    exchange: ccxt.async_support.Exchange, settings: ExchangeSettings, symbol: str, gap: Gap
) -> Refill:
    """Read `gap` (epoch µs bounds) of `symbol` from the venue's history, up to `gap_backfill_max_s` of it."""
    capabilities = capabilities_of(exchange, settings.history_settle_s)
    longest = int(settings.gap_backfill_max_s * 1_000_000)
    start = max(gap.after_ts, gap.before_ts - longest) // 1000
    end = gap.before_ts // 1000 + 1  # [start, end) in ms holds both trades seen around the gap
    window = int(settings.backfill_window_s * 1000)
    result = Refill([], gap, "not attempted")
    delay = settings.reconnect_initial_s
    await asyncio.sleep(capabilities.settle_ms / 1000)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            fetched: list[TradeRow] = []
            rejected: list[dict] = []
            pages = history_pages(
                exchange, capabilities, symbol, start, end, limit=settings.backfill_page, window=window
            )
            async for page in pages:
                checked = normalise_trades(page.records, source=f"{settings.exchange}:rest", symbols={symbol})
                fetched.extend(checked.rows)
                rejected.extend(checked.rejected)
            result.rows = [row for row in fetched if gap.wants(row.trade_id, row.ts)]
            result.left = unrepaired(gap, [(row.trade_id, row.ts) for row in fetched])
            result.rejected = rejected
            result.reason = f"the venue's history ({capabilities.paging}) did not cover it"
        except ccxt.BaseError as exc:  # a 429 was already retried by the pacer; a ban fails at once
            result.reason = f"{type(exc).__name__}: {exc}"[:300]
        if result.left is None or attempt == ATTEMPTS:
            break
        await asyncio.sleep(delay)
        delay = min(delay * 2, settings.reconnect_max_s)
    return result
