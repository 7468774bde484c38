"""A local Kraken spot API (asset pairs and trades over REST, trades and books over WebSocket v2) for tests.

What it reproduces, from Kraken's REST documentation and ccxt 4.5.90's `kraken` parser:

- GET /0/public/Assets and /0/public/AssetPairs: the listing, under Kraken's own names
  (XXBT, ZUSD, pair XXBTZUSD with altname XBTUSD);
- GET /0/public/Trades?pair=&since=&count=: trades oldest first, at most 1000 (`count`),
  each `[price, volume, time, side, type, misc, trade_id]` (time in seconds with at most four
  decimals, as Kraken writes it, so ccxt reads the same millisecond the WebSocket gives), with `last`: the cursor to
  send as the next `since` (nanoseconds since the epoch; trades strictly after it come
  next). A `since` small enough to be seconds is read as seconds, as Kraken does;
- every answer wrapped as `{"error": [], "result": {...}}`;
- WebSocket v2 at /v2 (what ccxt.pro's `kraken` streams public data on):
  `{"method": "subscribe", "params": {"channel": "trade"|"book", "symbol": [...]}, "req_id": n}`
  acknowledged once per symbol (`{"method": "subscribe", "result": {...}, "success": true}`),
  `{"method": "ping"}` answered `{"method": "pong"}`; the trade channel sends each trade as
  `{symbol, side, price, qty, ord_type, trade_id, timestamp}` (`publish`), its `trade_id` the
  REST one; the book channel takes only depths 10, 25, 100, 500 and 1000 (others refused with
  `success: false` and an error), sends a snapshot on subscribing and updates after
  (`update_book`, qty 0 removes a level). Symbols are `BTC/USD` there, not the REST pair names.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from unit.sources.exchange.fake_http import Book, FakeRest, Socket, Trade

CAP = 1000
BOOK_DEPTHS = (10, 25, 100, 500, 1000)
_NAMES = {"BTC": "XXBT", "USD": "ZUSD", "ETH": "XETH", "EUR": "ZEUR"}
"""Kraken's asset names for the unified codes the tests use (ccxt maps them back)."""


def _nanos(trade: Trade) -> int:
    """A trade's time in ns: its millisecond, then its id, so trades of one millisecond keep their order
    (exact while a test stores under a million trades)."""
    return trade.ts * 1_000_000 + trade.id % 1_000_000


class FakeKraken(FakeRest):
    """Kraken's public spot REST market data, served from memory."""

    name = "fake Kraken"

    def __init__(self, markets: Iterable[str] = ("BTC/USD",)) -> None:
        super().__init__()
        self.pairs = {}
        self.ws_names: dict[str, str] = {}  # v2 symbol (BTC/USD) -> REST pair (XXBTZUSD)
        self.books: dict[str, Book] = {}
        for symbol in markets:
            base, quote = (_NAMES[code] for code in symbol.split("/"))
            self.pairs[base + quote] = (base, quote)
            self.trades[base + quote] = []
            self.ws_names[symbol] = base + quote
            self.books[symbol] = Book()

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/0/public/Assets", self._assets)
        app.router.add_get("/0/public/AssetPairs", self._asset_pairs)
        app.router.add_get("/0/public/Trades", self._trades)
        app.router.add_get("/v2", self._websocket)

    @property
    def ws_url(self) -> str:
        """What `ExchangeSettings.ws_url` should be (ccxt pings in v2's words when "v2" is in it)."""
        return f"ws://127.0.0.1:{self.port}/v2"

    def publish(self, symbol: str, ids: Iterable[int]) -> None:
        """Send stored trades (by id) on the trade channel, one update each."""
        self.call(self._publish, symbol, list(ids))

    async def _publish(self, symbol: str, ids: list[int]) -> None:
        for trade in (t for t in self.trades[self.ws_names[symbol]] if t.id in ids):
            row = {
                "symbol": symbol,
                "side": "buy" if trade.taker_buys else "sell",
                "price": float(f"{trade.price:.5f}"),
                "qty": float(f"{trade.qty:.8f}"),
                "ord_type": "market",
                "trade_id": trade.id,
                "timestamp": _iso(trade.ts),
            }
            await self.broadcast(f"trade:{symbol}", {"channel": "trade", "type": "update", "data": [row]})

    def update_book(
        self, symbol: str, bids: list[tuple[float, float]], asks: list[tuple[float, float]]
    ) -> None:
        """Change levels (qty 0 removes one) and send the change as an update."""
        self.call(self._update_book, symbol, bids, asks)

    async def _update_book(
        self, symbol: str, bids: list[tuple[float, float]], asks: list[tuple[float, float]]
    ) -> None:
        self.books[symbol].apply(bids, asks)
        data = {
            "symbol": symbol,
            "bids": [{"price": p, "qty": q} for p, q in bids],
            "asks": [{"price": p, "qty": q} for p, q in asks],
            "checksum": 0,
            "timestamp": _iso(self.clock()),
        }
        await self.broadcast(f"book:{symbol}", {"channel": "book", "type": "update", "data": [data]})

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        return await self.serve_socket(request, self._command)

    async def _command(self, connection: Socket, text: str) -> None:
        """ping, subscribe and unsubscribe, answered as Kraken's v2 API answers them."""
        command = json.loads(text)
        method, req_id = command.get("method"), command.get("req_id")
        if method == "ping":
            await connection.socket.send_json({"method": "pong", "req_id": req_id, **_times()})
            return
        params = command.get("params") or {}
        channel, depth = params.get("channel"), params.get("depth", 10)
        for symbol in params.get("symbol") or []:
            answer: dict[str, Any] = {"method": method, "req_id": req_id, **_times()}
            if symbol not in self.ws_names:
                error = f"Currency pair not supported {symbol}"
                await connection.socket.send_json(
                    {**answer, "error": error, "success": False, "symbol": symbol}
                )
                continue
            if channel == "book" and depth not in BOOK_DEPTHS:
                error = f"EGeneral:Invalid arguments:depth {depth}"
                await connection.socket.send_json(
                    {**answer, "error": error, "success": False, "symbol": symbol}
                )
                continue
            topic = f"{channel}:{symbol}"
            if method == "subscribe":
                connection.topics.add(topic)
            elif method == "unsubscribe":
                connection.topics.discard(topic)
            result = {"channel": channel, "symbol": symbol, "snapshot": channel == "book"}
            await connection.socket.send_json({**answer, "result": result, "success": True})
            if method == "subscribe" and channel == "book":
                await connection.socket.send_json(self._snapshot(symbol, depth))

    def _snapshot(self, symbol: str, depth: int) -> dict[str, Any]:
        bids, asks = self.books[symbol].top(depth)
        data = {
            "symbol": symbol,
            "bids": [{"price": p, "qty": q} for p, q in bids],
            "asks": [{"price": p, "qty": q} for p, q in asks],
            "checksum": 0,
        }
        return {"channel": "book", "type": "snapshot", "data": [data]}

    def add(self, symbol: str, rows: Iterable[tuple[int, float, float, bool]]) -> list[int]:
        """Store trades of a unified symbol (ts ms, price, qty, taker buys); returns their ids."""
        base, quote = (_NAMES[code] for code in symbol.split("/"))
        return self.add_trades(base + quote, list(rows))

    @staticmethod
    def _answer(result: dict[str, Any], error: list[str] | None = None) -> web.Response:
        return web.json_response({"error": error or [], "result": result})

    async def _assets(self, request: web.Request) -> web.Response:
        self.log(request)
        names = {name for pair in self.pairs.values() for name in pair}
        return self._answer(
            {
                name: {
                    "aclass": "currency",
                    "altname": name[1:],
                    "decimals": 10,
                    "display_decimals": 5,
                    "collateral_value": 1,
                    "status": "enabled",
                }
                for name in sorted(names)
            }
        )

    async def _asset_pairs(self, request: web.Request) -> web.Response:
        self.log(request)
        return self._answer({pair: _pair(base, quote) for pair, (base, quote) in sorted(self.pairs.items())})

    async def _trades(self, request: web.Request) -> web.Response:
        params = self.log(request)
        pair = params.get("pair", "")
        stored = self.trades.get(pair)
        if stored is None:
            return self._answer({}, ["EQuery:Unknown asset pair"])
        since = int(params.get("since", 0))
        after = since if since > 10**12 else since * 1_000_000_000 - 1  # ns cursor, or whole seconds
        count = min(int(params.get("count", CAP)), CAP)
        chosen = [t for t in stored if _nanos(t) > after][:count]
        rows = [
            [f"{t.price:.5f}", f"{t.qty:.8f}", t.ts / 1000, "b" if t.taker_buys else "s", "m", "", t.id]
            for t in chosen
        ]
        last = _nanos(chosen[-1]) if chosen else after
        return self._answer({pair: rows, "last": str(last)})


def _pair(base: str, quote: str) -> dict[str, Any]:
    """An asset pair as GET /0/public/AssetPairs documents it."""
    return {
        "altname": base[1:] + quote[1:],
        "wsname": f"{base[1:]}/{quote[1:]}",
        "aclass_base": "currency",
        "base": base,
        "aclass_quote": "currency",
        "quote": quote,
        "lot": "unit",
        "cost_decimals": 5,
        "pair_decimals": 1,
        "lot_decimals": 8,
        "lot_multiplier": 1,
        "leverage_buy": [2, 3, 4, 5],
        "leverage_sell": [2, 3, 4, 5],
        "fees": [[0, 0.26], [50000, 0.24]],
        "fees_maker": [[0, 0.16], [50000, 0.14]],
        "fee_volume_currency": "ZUSD",
        "margin_call": 80,
        "margin_stop": 40,
        "ordermin": "0.0001",
        "costmin": "0.5",
        "tick_size": "0.1",
        "status": "online",
    }


def _iso(ms: int) -> str:
    """A time as Kraken's v2 messages write it (RFC 3339, microseconds)."""
    return f"{datetime.fromtimestamp(ms / 1000, UTC):%Y-%m-%dT%H:%M:%S.%fZ}"


def _times() -> dict[str, str]:
    """The `time_in`/`time_out` stamps of Kraken's v2 acknowledgements."""
    now = _iso(int(datetime.now(UTC).timestamp() * 1000))
    return {"time_in": now, "time_out": now}
