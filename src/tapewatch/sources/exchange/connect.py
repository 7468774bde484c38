"""Build ccxt exchange objects from settings: URL overrides, rate limiting, keys, per-venue options.

Everything venue-specific that Tapewatch needs from ccxt lives here, so the rest of
the package talks to any exchange through ccxt's unified methods.
"""

from __future__ import annotations

import difflib
from typing import Any
from urllib.parse import urlsplit

import ccxt
import ccxt.async_support
import ccxt.pro

from tapewatch.config import ExchangeSettings
from tapewatch.errors import InputError
from tapewatch.sources.exchange.ratelimit import install_limiter, limiter_for

VENUE_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {
        # Spot only: the futures and margin listings live on other hosts and need keys.
        "defaultType": "spot",
        "fetchMarkets": {"types": ["spot"]},
        "fetchCurrencies": False,
        "fetchMargins": False,
        # REST backfill pages through aggTrades (the only trades endpoint that takes a
        # time range); live trades must carry the same ids, or gaps and duplicates
        # between the two could not be told apart.
        "watchTradesForSymbols": {"name": "aggTrade"},
        "watchTrades": {"name": "aggTrade"},
    },
}
"""ccxt options Tapewatch sets per exchange; `ExchangeSettings.ccxt_options` is merged over them."""

CALL_LIMITS: dict[str, int] = {"binance": 200}
"""Most symbols one ccxt watch call accepts (ccxt refuses more for Binance)."""

_STREAM_HASHES = {"trades": "multipleTrades", "book": "multipleOrderbook"}


def make_exchange(settings: ExchangeSettings, pro: bool = False) -> ccxt.async_support.Exchange:
    """An async ccxt exchange (a `ccxt.pro` one for WebSockets) set up from the settings.

    Rate limiting is always on: a backfill of many symbols would otherwise be banned
    by the exchange within minutes. Besides ccxt's throttle, every REST request goes
    through the venue's shared pacer (`ratelimit`). The caller closes it (`await exchange.close()`).
    """
    config: dict[str, Any] = {
        "enableRateLimit": True,
        "options": _merge(VENUE_OPTIONS.get(settings.exchange, {}), settings.ccxt_options),
    }
    if settings.rate_limit_ms:
        config["rateLimit"] = settings.rate_limit_ms
    if settings.api_key:
        config["apiKey"] = settings.api_key
    if settings.secret:
        config["secret"] = settings.secret
    exchange = exchange_class(settings.exchange, pro)(config)
    if settings.rest_url:
        _rebase_rest(exchange.urls, settings.rest_url)
    if settings.ws_url:
        _rebase_ws(exchange.urls.get("api"), settings.ws_url)
    limiter = limiter_for(
        settings.exchange,
        settings.rest_url,
        limit=settings.rate_limit_weight,
        window_s=settings.rate_limit_window_s,
    )
    install_limiter(exchange, limiter)
    if pro:
        _snapshot_only_new_books(exchange)
    return exchange


async def load_markets(
    exchange: ccxt.async_support.Exchange, venue: str, *, reload: bool = False
) -> dict[str, Any]:
    """The venue's markets; an exchange that cannot be reached (or refuses) is one InputError naming it,
    the first thing every command that talks to an exchange does, so none of them shows a traceback."""
    try:
        return await exchange.load_markets(reload=reload)
    except ccxt.BaseError as exc:
        raise InputError(f"exchange '{venue}': cannot load its markets: {exc}") from None


def exchange_class(name: str, pro: bool = False) -> type[ccxt.async_support.Exchange]:
    """The ccxt class of an exchange id; an id ccxt does not know (or, with `pro`, cannot stream) is an InputError."""
    module = ccxt.pro if pro else ccxt.async_support
    if name not in module.exchanges:
        raise InputError(_unknown_exchange(name, module.exchanges, pro))
    return getattr(module, name)


def watch_call_limit(exchange: ccxt.async_support.Exchange, wanted: int) -> int:
    """Symbols per watch call: what the settings want, capped by what ccxt accepts for the venue."""
    return min(wanted, CALL_LIMITS.get(exchange.id, wanted))


def pin_to_connection(
    exchange: ccxt.async_support.Exchange, kind: str, symbols: list[str], index: int
) -> None:
    """Make ccxt send one watch call's subscription over connection `index`.

    ccxt's Binance class opens a new connection for every watch call (200 symbols at
    most) and wraps around after 50; Binance allows 1,024 streams per connection.
    Pinning several calls to one stream index packs `streams_per_connection` symbols
    into each socket. Other exchanges multiplex on their own, so this is a no-op there.
    """
    if exchange.id != "binance":
        return
    key = f"{_STREAM_HASHES[kind]}::{','.join(symbols)}"
    exchange.options.setdefault("streamBySubscriptionsHash", {})[key] = str(index)


def _snapshot_only_new_books(exchange: ccxt.async_support.Exchange) -> None:
    """Make ccxt's Binance take a book snapshot only for the symbols a (re)subscription adds.

    When one symbol of a watch call desyncs (a depth diff's `U` is not the last `u` + 1),
    ccxt drops that symbol's book and subscription; the next watch call sends the whole
    call's SUBSCRIBE again and, on its confirmation, re-snapshots every symbol of the call
    (up to 200, at weight 5 to 250 each). Only symbols whose subscription this very
    confirmation created (the desynced one, or all after a new connection) need one.
    """
    if exchange.id != "binance" or not hasattr(exchange, "handle_order_book_subscription"):
        return
    handle = exchange.handle_order_book_subscription

    def handle_subscription(client: Any, message: Any, subscription: dict[str, Any]) -> Any:
        symbols = subscription.get("symbols") or [subscription.get("symbol")]
        added = [s for s in symbols if client.subscriptions.get(f"orderbook::{s}") is subscription]
        if added:
            handle(client, message, {**subscription, "symbols": added})

    exchange.handle_order_book_subscription = handle_subscription


def _rebase_rest(urls: dict[str, Any], base: str) -> None:
    """Point every http(s) API URL at `base`, keeping its path (`/api/v3`, `/sapi/v1`, ...)."""
    base = base.rstrip("/")
    api = urls.get("api")
    if isinstance(api, str):
        urls["api"] = _rebased(api, base)
    elif isinstance(api, dict):
        for key, value in api.items():
            if key == "ws":
                continue
            if isinstance(value, str) and value.startswith("http"):
                api[key] = _rebased(value, base)
            elif isinstance(value, dict):
                _rebase_rest({"api": value}, base)


def _rebased(url: str, base: str) -> str:
    parts = urlsplit(url)
    return base + parts.path + (f"?{parts.query}" if parts.query else "")


def _rebase_ws(api: Any, url: str) -> None:
    """Replace the public spot WebSocket URL; stream paths are venue-specific, so the whole URL is taken.

    Venues nest it differently: Binance `ws.spot`, Bybit `ws.public.spot`, Kraken
    `ws.public` (v1) and `ws.publicV2` (what ccxt.pro's kraken streams on), OKX one string.
    """
    if not isinstance(api, dict) or "ws" not in api:
        return
    ws = api["ws"]
    if isinstance(ws, str):
        api["ws"] = url
        return
    keys = [k for k in ("spot", "margin") if k in ws] or [k for k in ("public", "publicV2") if k in ws]
    for key in keys or [k for k, v in ws.items() if isinstance(v, str)]:
        if isinstance(ws[key], dict):
            _rebase_ws({"ws": ws[key]}, url)
        else:
            ws[key] = url


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _unknown_exchange(name: str, known: list[str], pro: bool) -> str:
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    kind = "ccxt.pro exchange (WebSocket)" if pro else "ccxt exchange"
    return f"--exchange '{name}': not a {kind}{hint}"
