"""An exchange's market list → the instruments table, and the user's choice of markets to ingest.

The whole spot listing is synced every time, whatever the selection: a market
missing from a filtered list is not a delisting. A market that still appears but no
longer trades (Binance's BREAK) counts as delisted too: surveillance cares whether
it can be traded, not whether a row still exists.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

import ccxt.async_support

from tapewatch.config import ExchangeSettings
from tapewatch.errors import InputError
from tapewatch.io.symbols import canonical_symbol_of
from tapewatch.sources.exchange.connect import load_markets, make_exchange
from tapewatch.store.instruments import Instrument, InstrumentStore, SyncResult

ASSET_CLASS = "crypto"


async def sync_markets(
    settings: ExchangeSettings,
    instruments: InstrumentStore,
    *,
    symbols: Iterable[str] | None = None,
    quote: str | None = None,
    all_markets: bool = False,
    exchange: ccxt.async_support.Exchange | None = None,
) -> tuple[SyncResult, list[str]]:
    """Sync the venue's spot listing into `instruments`; return the result and the chosen symbols.

    Chosen: the `symbols` named (each must be a listed spot market), plus, with
    `all_markets` or a `quote`, every trading spot market (quoted in `quote` when given).
    """
    own = exchange is None
    exchange = exchange or make_exchange(settings)
    try:
        markets = await load_markets(exchange, settings.exchange, reload=not own)
    finally:
        if own:
            await exchange.close()
    spot = [market for market in markets.values() if market.get("spot")]
    trading = [market for market in spot if is_trading(market)]
    result = instruments.sync(
        settings.exchange, ASSET_CLASS, [_instrument(settings.exchange, m) for m in trading]
    )
    return result, choose_symbols(
        settings.exchange, spot, symbols=symbols, quote=quote, all_markets=all_markets
    )


def choose_symbols(
    venue: str,
    spot: list[dict[str, Any]],
    *,
    symbols: Iterable[str] | None,
    quote: str | None,
    all_markets: bool,
) -> list[str]:
    """The markets to ingest, in a stable order; an unknown or halted named symbol is a one-line error."""
    by_symbol = {market["symbol"]: market for market in spot}
    chosen: list[str] = []
    for symbol in (canonical_symbol_of(named, venue) for named in symbols or []):  # nuls-btc: NULS/BTC
        market = by_symbol.get(symbol)
        if market is None:
            close = difflib.get_close_matches(symbol.upper(), list(by_symbol), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else " (expected BASE/QUOTE, e.g. BTC/USDT)"
            raise InputError(f"--symbols {symbol}: not a spot market on {venue}{hint}")
        if not is_trading(market):
            raise InputError(f"--symbols {symbol}: not trading on {venue} (status {status_of(market)})")
        chosen.append(symbol)
    if all_markets or quote:
        wanted = quote.upper() if quote else None
        chosen.extend(
            symbol
            for symbol, market in sorted(by_symbol.items())
            if is_trading(market) and (wanted is None or market.get("quote") == wanted)
        )
    return list(dict.fromkeys(chosen))


def _instrument(venue: str, market: dict[str, Any]) -> Instrument:
    return Instrument(
        venue=venue,
        symbol=market["symbol"],
        asset_class=ASSET_CLASS,
        base=market.get("base"),
        quote=market.get("quote"),
        details={"id": market.get("id"), "status": status_of(market), "type": market.get("type")},
    )


def is_trading(market: dict[str, Any] | None) -> bool:
    """Whether a ccxt market can be traded now: listed, and not marked inactive (BREAK, HALT, ...).

    ccxt leaves `active` None where the venue does not say; that counts as trading.
    """
    return market is not None and market.get("active") is not False


def status_of(market: dict[str, Any] | None) -> str | None:
    """The venue's own word for a market's state (Binance: TRADING, BREAK, HALT...), "delisted" when it is
    no longer listed, None where the venue gives none."""
    if market is None:
        return "delisted"
    info = market.get("info") or {}
    return info.get("status") if isinstance(info, dict) else None
