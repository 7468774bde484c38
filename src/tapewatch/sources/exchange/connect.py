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
    by the exchange within minutes. The caller closes it (`await exchange.close()`).
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
    """Replace the public spot WebSocket URL; stream paths are venue-specific, so the whole URL is taken."""
    if not isinstance(api, dict) or "ws" not in api:
        return
    ws = api["ws"]
    if isinstance(ws, str):
        api["ws"] = url
        return
    keys = [k for k in ("spot", "margin") if k in ws] or [k for k in ("public",) if k in ws]
    for key in keys or [k for k, v in ws.items() if isinstance(v, str)]:
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
