"""Crypto exchanges through ccxt: markets into the instruments table, REST backfill, live WebSocket trades.

Modules: `connect` (exchange objects from settings), `ratelimit` (one REST pacer per
venue: weights, 429 back-off, 418 bans), `markets` (listing sync, market choice and
trading status), `capabilities` (what each venue can give), `paging` + `coverage` +
`backfill` (history into the lake), `tap` + `sequence` + `refill` + `subscriptions` +
`books` + `live` (the live source), `normalise` (ccxt records → Tapewatch records). The command's face, `tapewatch ingest crypto`, is `tapewatch.cli.exchange`.

Names are loaded on first use, so importing this package does not import ccxt (about a
second) until a name is used.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tapewatch.sources.exchange.backfill import (
        BackfillReport,
        SymbolBackfill,
        backfill_ohlcv,
        backfill_trades,
    )
    from tapewatch.sources.exchange.connect import make_exchange
    from tapewatch.sources.exchange.live import ExchangeLiveSource, SourceBatch
    from tapewatch.sources.exchange.markets import sync_markets

_HOMES = {
    "BackfillReport": "backfill",
    "SymbolBackfill": "backfill",
    "backfill_ohlcv": "backfill",
    "backfill_trades": "backfill",
    "make_exchange": "connect",
    "ExchangeLiveSource": "live",
    "SourceBatch": "live",
    "sync_markets": "markets",
}

__all__ = [
    "BackfillReport",
    "ExchangeLiveSource",
    "SourceBatch",
    "SymbolBackfill",
    "backfill_ohlcv",
    "backfill_trades",
    "make_exchange",
    "sync_markets",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{_HOMES[name]}"), name)
