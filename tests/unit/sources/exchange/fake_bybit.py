"""A local Bybit v5 API (spot markets and recent trades over REST, trades and books over WebSocket) for tests.

What it reproduces, from Bybit's v5 API documentation and ccxt 4.5.90's `bybit` parser:

- GET /v5/market/instruments-info?category=spot: the spot listing (other categories: empty);
- GET /v5/market/recent-trade?category=spot: the newest trades only, newest first,
  spot `limit` 1…60 (more is refused with retCode 10001, as Bybit does). Bybit has no
  public endpoint for older trades, and ccxt's `bybit.fetch_trades` never sends `since`;
- every answer wrapped as `{"retCode": 0, "retMsg": "OK", "result": {...}, "time": ...}`;
- WebSocket /v5/public/spot: `{"op": "subscribe", "req_id": ..., "args": [topics]}`
  acknowledged `{"success": true, "op": "subscribe", ...}`; `{"op": "ping"}` answered
  with spot's `{"op": "pong", "args": [ms]}`; topic `publicTrade.{symbol}` sends each trade
  as `{T, s, S, v, p, L, i, BT}` (`publish`), its `i` the REST `execId`; topic
  `orderbook.{depth}.{symbol}` takes only depths 1, 50, 200 and 1000 (others refused with
  `success: false`), sends a snapshot on subscribing and deltas after (`update_book`,
  amount "0" removes a level), numbered by `u`.

`execId` is a large number, not consecutive per symbol (Bybit's are venue-wide).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from unit.sources.exchange.fake_http import Book, FakeRest, Socket, Trade

SPOT_CAP = 60
BOOK_DEPTHS = (1, 50, 200, 1000)
EXEC_BASE = 2_100_000_000_007_764_263


def _instrument(market_id: str, base: str, quote: str) -> dict[str, Any]:
    """A spot instrument as GET /v5/market/instruments-info documents it."""
    return {
        "symbol": market_id,
        "baseCoin": base,
        "quoteCoin": quote,
        "innovation": "0",
        "status": "Trading",
        "marginTrading": "both",
        "stTag": "0",
        "lotSizeFilter": {
            "basePrecision": "0.000001",
            "quotePrecision": "0.00000001",
            "minOrderQty": "0.000048",
            "maxOrderQty": "71.73956243",
            "minOrderAmt": "1",
            "maxOrderAmt": "2000000",
        },
        "priceFilter": {"tickSize": "0.01"},
        "riskParameters": {"limitParameter": "0.01", "marketParameter": "0.01"},
    }


class FakeBybit(FakeRest):
    """Bybit's public spot REST market data, served from memory."""

    name = "fake Bybit"

    def __init__(self, markets: Iterable[str] = ("BTC/USDT",)) -> None:
        super().__init__()
        self.pairs = {symbol.replace("/", ""): tuple(symbol.split("/")) for symbol in markets}
        self.books: dict[str, Book] = {}
        for market_id in self.pairs:
            self.trades[market_id] = []
            self.books[market_id] = Book()

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v5/market/time", self._time)
        app.router.add_get("/v5/market/instruments-info", self._instruments)
        app.router.add_get("/v5/market/recent-trade", self._recent)
        app.router.add_get("/v5/public/spot", self._websocket)

    @property
    def ws_url(self) -> str:
        """What `ExchangeSettings.ws_url` should be (ccxt reads "spot" in it to parse spot messages)."""
        return f"ws://127.0.0.1:{self.port}/v5/public/spot"

    def publish(self, symbol: str, ids: Iterable[int]) -> None:
        """Send stored trades (by id) on `publicTrade.{symbol}`, one message each, as Bybit's spot stream does."""
        self.call(self._publish, symbol.replace("/", ""), list(ids))

    async def _publish(self, market_id: str, ids: list[int]) -> None:
        for trade in (t for t in self.trades[market_id] if t.id in ids):
            message = {"topic": f"publicTrade.{market_id}", "type": "snapshot", "ts": self.clock()}
            await self.broadcast(message["topic"], {**message, "data": [_ws_trade(market_id, trade)]})

    def update_book(self, symbol: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> None:
        """Change levels (amount "0" removes one) and send the change as a delta on every depth's topic."""
        self.call(self._update_book, symbol.replace("/", ""), bids, asks)

    async def _update_book(
        self, market_id: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]]
    ) -> None:
        book = self.books[market_id]
        book.apply(bids, asks)
        book.update_id += 1
        data = {
            "s": market_id,
            "b": [list(c) for c in bids],
            "a": [list(c) for c in asks],
            "u": book.update_id,
        }
        for depth in BOOK_DEPTHS:
            topic = f"orderbook.{depth}.{market_id}"
            await self.broadcast(topic, {"topic": topic, "type": "delta", "ts": self.clock(), "data": data})

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        return await self.serve_socket(request, self._command)

    async def _command(self, connection: Socket, text: str) -> None:
        """ping, subscribe and unsubscribe, answered as Bybit's spot stream answers them."""
        command = json.loads(text)
        op, req_id = command.get("op"), command.get("req_id", "")
        answer = {"req_id": req_id, "conn_id": "cfcb2ni7ce1t0idsf2k0-5ni", "op": op}
        if op == "ping":
            await connection.socket.send_json({**answer, "op": "pong", "args": [str(self.clock())]})
            return
        topics = command.get("args") or []
        refused = [t for t in topics if not self._known(t)]
        if refused:
            error = f"error:handler not found,topic:{refused[0]}"
            await connection.socket.send_json({**answer, "success": False, "ret_msg": error})
            return
        if op == "subscribe":
            connection.topics.update(topics)
        elif op == "unsubscribe":
            connection.topics.difference_update(topics)
        await connection.socket.send_json({**answer, "success": True, "ret_msg": ""})
        for topic in topics if op == "subscribe" else []:
            if topic.startswith("orderbook."):
                await connection.socket.send_json(self._snapshot(topic))

    def _known(self, topic: str) -> bool:
        """A topic Bybit serves: a listed symbol's trades, or its book at an allowed depth."""
        parts = topic.split(".")
        if parts[0] == "publicTrade" and len(parts) == 2:
            return parts[1] in self.pairs
        return (
            parts[0] == "orderbook"
            and len(parts) == 3
            and parts[1].isdigit()
            and int(parts[1]) in BOOK_DEPTHS
            and parts[2] in self.pairs
        )

    def _snapshot(self, topic: str) -> dict[str, Any]:
        _, depth, market_id = topic.split(".")
        book = self.books[market_id]
        bids, asks = book.top(int(depth))
        data = {"s": market_id, "b": bids, "a": asks, "u": book.update_id}
        return {"topic": topic, "type": "snapshot", "ts": self.clock(), "data": data}

    def add(self, symbol: str, rows: Iterable[tuple[int, float, float, bool]]) -> list[int]:
        """Store trades of a unified symbol (ts ms, price, qty, taker buys); returns their ids."""
        return self.add_trades(symbol.replace("/", ""), list(rows))

    def _answer(self, result: dict[str, Any], code: int = 0, msg: str = "OK") -> web.Response:
        body = {"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": self.clock()}
        return web.json_response(body)

    async def _time(self, request: web.Request) -> web.Response:
        self.log(request)
        seconds = self.clock() // 1000
        return self._answer({"timeSecond": str(seconds), "timeNano": str(self.clock() * 1_000_000)})

    async def _instruments(self, request: web.Request) -> web.Response:
        params = self.log(request)
        category = params.get("category", "")
        listed = category == "spot"
        rows = [_instrument(m, *pair) for m, pair in sorted(self.pairs.items())] if listed else []
        return self._answer({"category": category, "list": rows, "nextPageCursor": ""})

    async def _recent(self, request: web.Request) -> web.Response:
        params = self.log(request)
        stored = self.trades.get(params.get("symbol", ""))
        if stored is None or params.get("category") != "spot":
            return self._answer({}, 10001, "params error: symbol invalid")
        limit = int(params.get("limit", SPOT_CAP))
        if not 1 <= limit <= SPOT_CAP:
            return self._answer({}, 10001, "params error: limit must be between 1 and 60")
        rows = [_row(params["symbol"], t) for t in reversed(stored[-limit:])]
        return self._answer({"category": "spot", "list": rows})


def _row(market_id: str, trade: Trade) -> dict[str, Any]:
    """A trade as /v5/market/recent-trade documents it."""
    return {
        "execId": str(EXEC_BASE + trade.id * 7),
        "symbol": market_id,
        "price": f"{trade.price:.2f}",
        "size": f"{trade.qty:.6f}",
        "side": "Buy" if trade.taker_buys else "Sell",
        "time": str(trade.ts),
        "isBlockTrade": False,
    }


def _ws_trade(market_id: str, trade: Trade) -> dict[str, Any]:
    """A trade as the `publicTrade` topic documents it: the same trade as `_row`, in the stream's field names."""
    row = _row(market_id, trade)
    return {
        "T": trade.ts,
        "s": market_id,
        "S": row["side"],
        "v": row["size"],
        "p": row["price"],
        "L": "PlusTick",
        "i": row["execId"],
        "BT": False,
    }
