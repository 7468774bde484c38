"""What a crypto venue can give: probed from ccxt, completed by the facts ccxt has no field for.

ccxt says which unified methods a venue has (`exchange.has`), the most candles one
request returns (`exchange.features['spot']['fetchOHLCV']['limit']`, ccxt ≥ 4.4; ccxt
4.5.90 carries no `fetchTrades` entry in `features` for any venue) and its request
spacing (`exchange.rateLimit`). It does not say whether `fetch_trades` honours `since`
at all, how many trades one page holds, or whether trade ids count up one by one.
Trusting `since` where a venue ignores it is how a day of history gets marked fetched
with nothing in it, so those facts are kept here, one row per venue (`VENUE_FACTS`),
each read in ccxt 4.5.90's code and the venue's API documentation:

- binance: `binance.fetch_trades` with `since` calls GET /api/v3/aggTrades with
  startTime/endTime (Binance refuses spans over an hour), oldest first, `limit` ≤ 1000
  (Binance docs). Aggregate trade ids (`a`) count up by one per symbol, on REST and on
  the `aggTrade` stream alike.
- okx: `okx.fetch_trades` calls GET /api/v5/market/trades (the newest trades, `limit`
  ≤ 500) and never sends `since`; with `params={'method': 'publicGetMarketHistoryTrades'}`
  it calls /api/v5/market/history-trades, which pages backwards: `after` is a trade id
  (`type=1`) or a time in ms (`type=2`), newest first, ≤ 100 a page, the last three months
  only (OKX docs; ccxt's own `paginate` walks the same `tradeId`/`after` cursor). Trade
  ids count up by one per instrument; the trades WebSocket channel sends one message per
  taker order and price, its `tradeId` the last of `count` trades.
- bybit: `bybit.fetch_trades` calls GET /v5/market/recent-trade and never sends `since`:
  the newest trades only, spot `limit` 1…60 (ccxt's comment there, Bybit docs). No
  endpoint gives older public trades. `execId` is a large number not consecutive per symbol.
- kraken: `kraken.fetch_trades` calls GET /0/public/Trades, oldest first, ≤ 1000
  (`count`); `since` is whole seconds at first, then the `last` cursor (ns) of the previous
  answer, which ccxt appends to the raw record of the page's newest trade. The `trade_id`
  it reads (7th element) is not documented as consecutive, so gaps are judged by time.

A venue not in the table gets the cautious row (`UNKNOWN`): `since` not trusted, ids
not trusted, so nothing it cannot prove is marked fetched. `settle_ms`, how long after a
trade its venue's history is taken as complete, is documented by none of them: it is
Tapewatch's figure (the `history_settle_s` setting overrides it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import ccxt.async_support


class Paging(StrEnum):
    """How a venue's trade history can be walked through ccxt's `fetch_trades`."""

    TIME = "by time, oldest first"  # `since` (and `until`) honoured
    ID_BACKWARD = "by trade id, newest first"  # each page asks for trades before the oldest id seen
    CURSOR = "by the venue's cursor, oldest first"  # each page asks for trades after the cursor it was given
    RECENT = "recent trades only"  # `since` ignored: no history for a range
    NONE = "no trades endpoint"


class IdModel(StrEnum):
    """What a venue's trade ids say about missed trades."""

    CONSECUTIVE = "consecutive"  # per symbol, each trade the previous id + 1
    COUNTED = "consecutive, count per message"  # a live message stands for `count` trades ending at its id
    NONE = "none"  # ids only tell repeats apart; gaps are judged by time


@dataclass(frozen=True)
class VenueFacts:
    """The part of a venue's capabilities ccxt has no field for (see the module docstring for sources)."""

    paging: Paging
    page_cap: int | None  # most trades one `fetch_trades` returns; None: unknown
    ids: IdModel
    params: Mapping[str, Any] = field(default_factory=dict)  # ccxt params that select the history endpoint
    history_days: float | None = None  # how far back the history endpoint reaches; None: no stated limit
    settle_ms: int = 5_000


VENUE_FACTS: dict[str, VenueFacts] = {
    "binance": VenueFacts(Paging.TIME, 1000, IdModel.CONSECUTIVE),
    "okx": VenueFacts(
        Paging.ID_BACKWARD,
        100,
        IdModel.COUNTED,
        params={"method": "publicGetMarketHistoryTrades"},
        history_days=90,
    ),
    "bybit": VenueFacts(Paging.RECENT, 60, IdModel.NONE),
    "kraken": VenueFacts(Paging.CURSOR, 1000, IdModel.NONE),
}
UNKNOWN = VenueFacts(Paging.RECENT, None, IdModel.NONE)


@dataclass(frozen=True)
class VenueCapabilities:
    """One venue's capabilities as Tapewatch uses them: paging, caps, id model, pacing."""

    venue: str
    known: bool  # the venue has a row in VENUE_FACTS (False: the cautious defaults)
    fetch_trades: bool
    fetch_ohlcv: bool
    paging: Paging
    trade_page_cap: int | None
    ohlcv_page_cap: int | None
    ids: IdModel
    settle_ms: int
    rate_limit_ms: float
    history_params: Mapping[str, Any]
    history_days: float | None

    def trade_limit(self, wanted: int) -> int:
        """Trades to ask for per page: what the settings want, never more than the venue gives."""
        return min(wanted, self.trade_page_cap or wanted)

    def ohlcv_limit(self, wanted: int) -> int:
        """Candles to ask for per page, capped likewise."""
        return min(wanted, self.ohlcv_page_cap or wanted)


def facts_of(venue: str) -> VenueFacts:
    """The table's row for a ccxt exchange id, or the cautious one."""
    return VENUE_FACTS.get(venue, UNKNOWN)


def capabilities_of(
    exchange: ccxt.async_support.Exchange, settle_s: float | None = None
) -> VenueCapabilities:
    """Probe `exchange` (a ccxt object; no request is made) and add the table's facts.

    `settle_s` (the `history_settle_s` setting) replaces the venue's settle time when given.
    """
    facts = facts_of(exchange.id)
    has = exchange.has or {}
    spot = (exchange.features or {}).get("spot") or {}
    candles = spot.get("fetchOHLCV") or {}
    fetch_trades = bool(has.get("fetchTrades"))
    return VenueCapabilities(
        venue=exchange.id,
        known=exchange.id in VENUE_FACTS,
        fetch_trades=fetch_trades,
        fetch_ohlcv=bool(has.get("fetchOHLCV")),
        paging=facts.paging if fetch_trades else Paging.NONE,
        trade_page_cap=facts.page_cap,
        ohlcv_page_cap=candles.get("limit"),
        ids=facts.ids,
        settle_ms=facts.settle_ms if settle_s is None else int(settle_s * 1000),
        rate_limit_ms=float(exchange.rateLimit),
        history_params=dict(facts.params),
        history_days=facts.history_days,
    )
