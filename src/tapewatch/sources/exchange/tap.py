"""Hooks on a ccxt.pro exchange's WebSocket clients: see every frame, and every update ccxt hands out.

ccxt parses frames inside its receive loop, where a frame that is not JSON raises
out of a callback and silently ends the loop, and where trades of a symbol nobody
watches are dropped without a word. ccxt also wakes a watcher once per `await`, so
trades of a second symbol that arrive while the first is being handled wait for
that symbol's next trade. The tap fixes all three from outside ccxt:

- every frame is counted; one that cannot be decoded or handled is reported as
  malformed, with the reason, and the loop goes on;
- every `client.resolve(...)` — ccxt's "here is new data" — is reported as it
  happens: trade lists are cut to the trades not reported before, order books are
  reported as changed. No trade waits for a later one.

The hooks are attributes set on each client instance (never on ccxt's classes), so
other exchange objects in the process are untouched.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

import ccxt.async_support
from ccxt.async_support.base.ws.cache import ArrayCache
from ccxt.async_support.base.ws.order_book import OrderBook

_MARK = "_tapewatch_tap"


class TapListener(Protocol):
    """What the tap reports to (the live source)."""

    def on_frame(self, arrived: float) -> None:
        """A text or binary frame arrived."""

    def on_malformed(self, reason: str, raw: Any) -> None:
        """A frame could not be decoded or ccxt failed on it."""

    def on_trades(self, trades: list[dict[str, Any]], arrived: float) -> None:
        """Trades ccxt parsed that were not reported before (any symbol, known or not)."""

    def on_book(self, symbol: str, book: OrderBook, arrived: float) -> None:
        """ccxt's order book for `symbol` changed."""

    def on_reconnect(self, url: str) -> None:
        """A new connection to a URL that had one before."""


def install_tap(exchange: ccxt.async_support.Exchange, listener: TapListener) -> None:
    """Tap every WebSocket client the exchange creates from now on."""
    make_client = exchange.client
    seen_urls: set[str] = set()
    last_trade: dict[str, dict[str, Any]] = {}

    def client(url: str) -> Any:
        ws = make_client(url)
        if not getattr(ws, _MARK, False):
            setattr(ws, _MARK, True)
            if url in seen_urls:
                listener.on_reconnect(url)
            seen_urls.add(url)
            _tap_client(ws, listener, last_trade)
        return ws

    exchange.client = client


def _tap_client(ws: Any, listener: TapListener, last_trade: dict[str, dict[str, Any]]) -> None:
    decode: Callable[[Any], None] = ws.handle_text_or_binary_message
    handle: Callable[[Any, Any], None] = ws.on_message_callback
    resolve: Callable[[Any, Any], Any] = ws.resolve

    def decode_frame(data: Any) -> None:
        listener.on_frame(time.time())
        try:
            decode(data)
        except Exception as exc:  # noqa: BLE001 - a bad frame must never end the receive loop
            listener.on_malformed(f"not JSON: {_reason(exc)}", _text(data))

    def handle_frame(client: Any, message: Any) -> None:
        try:
            handle(client, message)
        except Exception as exc:  # noqa: BLE001 - ccxt failing on one frame must not stop the stream
            listener.on_malformed(f"ccxt could not handle the frame: {_reason(exc)}", message)

    def resolve_update(result: Any, message_hash: Any = None) -> Any:
        arrived = time.time()
        if isinstance(result, ArrayCache):
            fresh = _new_items(result, last_trade)
            if fresh:
                listener.on_trades(fresh, arrived)
        elif isinstance(result, OrderBook) and result.get("symbol"):
            listener.on_book(result["symbol"], result, arrived)
        return resolve(result, message_hash)

    ws.handle_text_or_binary_message = decode_frame
    ws.on_message_callback = handle_frame
    ws.resolve = resolve_update


def _new_items(cache: ArrayCache, last_trade: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The trades appended to a symbol's cache since the last report, found by identity from the end.

    Each resolve is reported at once, so only the few trades of the frame just
    handled are walked; nothing is lost to the cache's size limit.
    """
    if not len(cache):
        return []
    symbol = cache[-1].get("symbol")
    previous = last_trade.get(symbol)
    fresh = []
    for item in reversed(cache):
        if item is previous:
            break
        fresh.append(item)
    fresh.reverse()
    if fresh:
        last_trade[symbol] = fresh[-1]
    return fresh


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


def _text(data: Any) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return str(data)
