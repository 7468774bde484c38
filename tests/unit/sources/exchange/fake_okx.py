"""A local OKX v5 API (markets and public trades over REST, the trades channel over WebSocket) for tests.

What it reproduces, from OKX's v5 API documentation and ccxt 4.5.90's `okx` parser:

- GET /api/v5/public/instruments?instType=SPOT: the spot listing (other types: empty);
- GET /api/v5/market/trades: the newest trades only, newest first, `limit` ≤ 500 —
  what ccxt's `okx.fetch_trades` calls by default, never sending `since`;
- GET /api/v5/market/history-trades: history paged backwards, newest first: `after` is
  a trade id (`type=1`, the default) or a time in ms (`type=2`), and the page holds at
  most 100 trades whatever `limit` asks (`history_cap`), without saying so;
- every answer wrapped as `{"code": "0", "msg": "", "data": [...]}`; an unknown
  instrument is code 51001, as OKX answers;
- WebSocket /ws/v5/public: `{"op": "subscribe", "args": [{"channel": "trades", "instId":
  ...}]}` acknowledged with `{"event": "subscribe", "arg": ..., "connId": ...}`, text
  `ping` answered `pong`, and trades sent as OKX's trades channel sends them: one message
  per taker order and price, `tradeId` the last of its `count` trades, `sz` their sum
  (`publish`).

Trade ids count up by one per instrument, as OKX's do; REST gives each trade on its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from unit.sources.exchange.fake_http import FakeRest, Socket, Trade

RECENT_CAP = 500
HISTORY_CAP = 100


def _instrument(inst_id: str) -> dict[str, Any]:
    """A spot instrument as GET /api/v5/public/instruments documents it."""
    base, quote = inst_id.split("-")
    return {
        "alias": "",
        "baseCcy": base,
        "category": "1",
        "ctMult": "",
        "ctType": "",
        "ctVal": "",
        "ctValCcy": "",
        "expTime": "",
        "instFamily": "",
        "instId": inst_id,
        "instType": "SPOT",
        "lever": "10",
        "listTime": "1606468572000",
        "lotSz": "0.00000001",
        "maxLmtSz": "9999999999",
        "maxMktSz": "1000000",
        "minSz": "0.00001",
        "optType": "",
        "quoteCcy": quote,
        "settleCcy": "",
        "state": "live",
        "stk": "",
        "tickSz": "0.1",
        "uly": "",
    }


class FakeOkx(FakeRest):
    """OKX's public REST market data, served from memory."""

    name = "fake OKX"

    def __init__(self, markets: Iterable[str] = ("BTC/USDT",), history_cap: int = HISTORY_CAP) -> None:
        super().__init__()
        self.history_cap = history_cap
        for symbol in markets:
            self.trades[_inst_id(symbol)] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v5/public/time", self._time)
        app.router.add_get("/api/v5/public/instruments", self._instruments)
        app.router.add_get("/api/v5/market/trades", self._recent)
        app.router.add_get("/api/v5/market/history-trades", self._history)
        app.router.add_get("/ws/v5/public", self._websocket)

    @property
    def ws_url(self) -> str:
        """What `ExchangeSettings.ws_url` should be (ccxt adds `/public`)."""
        return f"ws://127.0.0.1:{self.port}/ws/v5"

    def publish(self, symbol: str, first_id: int, last_id: int) -> None:
        """Send stored trades `first_id`…`last_id` as one trades-channel message with `count`."""
        self.call(self._publish, _inst_id(symbol), first_id, last_id)

    async def _publish(self, inst_id: str, first_id: int, last_id: int) -> None:
        trades = [t for t in self.trades[inst_id] if first_id <= t.id <= last_id]
        last = trades[-1]
        row = {
            **_row(inst_id, last),
            "sz": f"{sum(t.qty for t in trades):.8f}",
            "count": str(len(trades)),
            "seqId": last.id,
        }
        await self.broadcast(inst_id, {"arg": {"channel": "trades", "instId": inst_id}, "data": [row]})

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        return await self.serve_socket(request, self._command)

    async def _command(self, connection: Socket, text: str) -> None:
        """Text `ping` is answered `pong`; subscribe/unsubscribe acknowledged as OKX does."""
        if text == "ping":
            await connection.socket.send_str("pong")
            return
        command = json.loads(text)
        for arg in command.get("args", []):
            if command.get("op") == "subscribe":
                connection.topics.add(arg["instId"])
            elif command.get("op") == "unsubscribe":
                connection.topics.discard(arg["instId"])
            await connection.socket.send_json({"event": command.get("op"), "arg": arg, "connId": "a4d3ae55"})

    def add(self, symbol: str, rows: Iterable[tuple[int, float, float, bool]]) -> list[int]:
        """Store trades of a unified symbol (ts ms, price, qty, taker buys); returns their ids."""
        return self.add_trades(_inst_id(symbol), list(rows))

    @staticmethod
    def _answer(data: list[Any], code: str = "0", msg: str = "") -> web.Response:
        return web.json_response({"code": code, "msg": msg, "data": data})

    async def _time(self, request: web.Request) -> web.Response:
        self.log(request)
        return self._answer([{"ts": str(self.clock())}])

    async def _instruments(self, request: web.Request) -> web.Response:
        params = self.log(request)
        if params.get("instType") != "SPOT":
            return self._answer([])
        return self._answer([_instrument(inst_id) for inst_id in sorted(self.trades)])

    def _stored(self, params: dict[str, str]) -> list[Trade] | None:
        return self.trades.get(params.get("instId", ""))

    async def _recent(self, request: web.Request) -> web.Response:
        params = self.log(request)
        stored = self._stored(params)
        if stored is None:
            return self._answer([], "51001", "Instrument ID does not exist")
        limit = min(int(params.get("limit", 100)), RECENT_CAP)
        return self._answer([_row(params["instId"], t) for t in reversed(stored[-limit:])])

    async def _history(self, request: web.Request) -> web.Response:
        params = self.log(request)
        stored = self._stored(params)
        if stored is None:
            return self._answer([], "51001", "Instrument ID does not exist")
        by_time = params.get("type", "1") == "2"
        chosen = stored
        if "after" in params:  # earlier than
            after = int(params["after"])
            chosen = [t for t in chosen if (t.ts if by_time else t.id) < after]
        if "before" in params:  # newer than
            before = int(params["before"])
            chosen = [t for t in chosen if (t.ts if by_time else t.id) > before]
        limit = min(int(params.get("limit", 100)), self.history_cap)
        return self._answer([_row(params["instId"], t) for t in reversed(chosen[-limit:])])


def _inst_id(symbol: str) -> str:
    return symbol.replace("/", "-")


def _row(inst_id: str, trade: Trade) -> dict[str, str]:
    """A trade as /api/v5/market/trades and /history-trades document it."""
    return {
        "instId": inst_id,
        "side": "buy" if trade.taker_buys else "sell",
        "sz": f"{trade.qty:.8f}",
        "px": f"{trade.price:.8f}",
        "source": "0",
        "tradeId": str(trade.id),
        "ts": str(trade.ts),
    }
