"""A local Binance spot API (REST and WebSocket streams) for tests and demos, on 127.0.0.1.

It speaks the documented protocol closely enough for ccxt's real `binance` class to
load markets, page through `aggTrades` and `klines`, take `depth` snapshots and
subscribe to combined streams (`{"method": "SUBSCRIBE", ...}` answered with
`{"result": null, "id": N}`, then `{"stream": ..., "data": ...}` frames). Response
shapes come from the JSON files in `fixtures/`, copied by hand from Binance's API
documentation, so the server and the docs can be compared side by side.

Every REST answer carries `X-MBX-USED-WEIGHT-1M`, the weight used in the current
window by every client (Binance's per-IP count; `spend` adds other clients' weight).
Past `limits.weight` a request gets 429 with `Retry-After` (the rest of the window);
requests sent before that time has passed are counted, and after `limits.tolerated`
of them the IP is banned: 418 with `Retry-After` for `limits.ban_s`, whatever is sent.

The server plumbing (its own event loop in a background thread, so both async tests and
synchronous CLI tests can use it; the request log; the clock) is `fake_http.FakeRest`,
shared with the other venues' fakes. Test controls
(`list_market`, `add_trades`, `drop_connections`, `shut_down`, `desync_book`,
`send_raw`, ...) are plain methods that run on the server's loop and return when done.

By hand: `python tests/unit/sources/exchange/fake_binance.py --port 8765` serves a few markets
with a random walk of trades; point Tapewatch at it with
`TAPEWATCH_EXCHANGE__REST_URL=http://127.0.0.1:8765` and
`TAPEWATCH_EXCHANGE__WS_URL=ws://127.0.0.1:8765/stream`.
"""

from __future__ import annotations

import argparse
import bisect
import copy
import json
import math
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

try:
    from unit.sources.exchange.fake_http import Book, FakeRest, Trade
except ImportError:  # run by hand as a script: its own folder is on the path
    from fake_http import Book, FakeRest, Trade  # type: ignore[no-redef]

FIXTURES = Path(__file__).with_name("fixtures")
HOUR_MS = 3_600_000
INTERVALS_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": HOUR_MS, "1d": 24 * HOUR_MS}


def fixture(name: str) -> Any:
    """A documented response shape; a fresh copy each time, so callers may fill it in."""
    return copy.deepcopy(json.loads((FIXTURES / name).read_text()))


def _fill(template: dict[str, Any], **values: Any) -> dict[str, Any]:
    """The template with some fields replaced; an unknown field is a bug in the server, not data."""
    unknown = set(values) - set(template)
    if unknown:
        raise KeyError(f"fields not in the documented shape: {sorted(unknown)}")
    return {**template, **values}


def _market_id(symbol: str) -> str:
    return symbol.replace("/", "")


@dataclass
class Connection:
    """What the server saw of one WebSocket connection."""

    path: str
    opened_at: float
    streams: list[str] = field(default_factory=list)
    subscribe_messages: int = 0
    socket: web.WebSocketResponse | None = field(default=None, repr=False)

    @property
    def combined(self) -> bool:
        """`/stream` endpoints wrap each event as {"stream": ..., "data": ...}; `/ws` sends it bare."""
        return self.path.startswith("/stream")


@dataclass
class Limits:
    """Binance's REST weight limit as the fake applies it (real: 6000 a minute, bans from 2 minutes)."""

    weight: int = 6000
    window_s: float = 60.0
    ban_s: float = 120.0
    tolerated: int = 2  # requests sent during a 429's Retry-After before the ban
    grace_s: float = 0.05  # requests arriving this soon after a 429 were sent before it: not counted


WEIGHTS = {"/api/v3/exchangeInfo": 20, "/api/v3/aggTrades": 4, "/api/v3/klines": 2}
"""Binance's published request weights (aggTrades 4 since 2025-03-10); depth is weighed by its limit."""
DEPTH_WEIGHTS = ((100, 5), (500, 25), (1000, 50), (5000, 250))


def request_weight(path: str, params: dict[str, str]) -> int:
    """What Binance charges for one request."""
    if path == "/api/v3/depth":
        limit = int(params.get("limit", 100))
        return next((weight for most, weight in DEPTH_WEIGHTS if limit <= most), DEPTH_WEIGHTS[-1][1])
    return WEIGHTS.get(path, 1)


class FakeBinance(FakeRest):
    """Binance's spot REST API and WebSocket streams, served from memory."""

    name = "fake Binance"

    def __init__(self, markets: Iterable[str] = ("BTC/USDT", "ETH/USDT", "ETH/BTC")) -> None:
        super().__init__()
        self.statuses: dict[str, tuple[str, str, str]] = {}  # id -> (base, quote, status)
        self.books: dict[str, Book] = {}
        self.connections: list[Connection] = []
        self.flaky_connects = 0
        self.outages: dict[str, int] = {}  # path -> requests still answered before it fails with 503
        self.limits = Limits()
        self.answers: list[tuple[float, str, int]] = []  # (time, path, HTTP status) of every REST request
        self.peak_weight = 0  # most weight used in one window
        self._window = -1
        self._used = 0
        self._retry_until = 0.0
        self._limited_at = 0.0
        self._violations = 0
        self._banned_until = 0.0
        for symbol in markets:
            self._list(symbol, "TRADING")

    def middlewares(self) -> list[Any]:
        """Binance's weight limit in front of the REST endpoints."""
        return [self._weigh]

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/api/v3/ping", self._ping)
        app.router.add_get("/api/v3/time", self._time)
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        app.router.add_get("/api/v3/aggTrades", self._agg_trades)
        app.router.add_get("/api/v3/klines", self._klines)
        app.router.add_get("/api/v3/depth", self._depth)
        for path in ("/stream", "/stream/{index}", "/ws", "/ws/{index}"):
            app.router.add_get(path, self._websocket)

    @property
    def ws_url(self) -> str:
        """What `ExchangeSettings.ws_url` should be: the combined-stream endpoint."""
        return f"ws://127.0.0.1:{self.port}/stream"

    # ---- test controls ---------------------------------------------------------------------

    def list_market(self, symbol: str, status: str = "TRADING") -> None:
        """Add a market (or change its status: TRADING, BREAK, HALT)."""
        self._list(symbol, status)

    def delist(self, symbol: str) -> None:
        """Remove a market from exchangeInfo altogether."""
        self.statuses.pop(_market_id(symbol), None)

    def _list(self, symbol: str, status: str) -> None:
        base, quote = symbol.split("/")
        market_id = base + quote
        self.statuses[market_id] = (base, quote, status)
        self.trades.setdefault(market_id, [])
        self.books.setdefault(market_id, Book(update_id=1000))  # Binance's depth update ids

    def add_trades(
        self, symbol: str, rows: Iterable[tuple[int, float, float, bool]], *, broadcast: bool = True
    ) -> list[int]:
        """Record trades (ts ms, price, qty, buyer is maker); stream them unless `broadcast` is False.

        `broadcast=False` stands for trades whose frames a client missed (it was
        disconnected): they exist only in the REST history.
        """
        return self.call(self._add_trades, _market_id(symbol), list(rows), broadcast)

    async def _add_trades(
        self, market_id: str, rows: list[tuple[int, float, float, bool]], broadcast: bool
    ) -> list[int]:
        stored = self.trades[market_id]
        ids = []
        for ts, price, qty, buyer_maker in rows:
            trade = Trade(stored[-1].id + 1 if stored else 1, ts, price, qty, taker_buys=not buyer_maker)
            stored.append(trade)
            ids.append(trade.id)
            if broadcast:
                for name, event in self._events(market_id, trade).items():
                    await self._publish(f"{market_id.lower()}@{name}", event)
        return ids

    def update_book(self, symbol: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
        """Change levels (quantity "0" removes one) and stream one depthUpdate; returns its final update id."""
        return self.call(self._update_book, _market_id(symbol), bids, asks)

    async def _update_book(
        self, market_id: str, bids: list[tuple[str, str]], asks: list[tuple[str, str]]
    ) -> int:
        book = self.books[market_id]
        first = book.update_id + 1
        book.update_id += max(1, len(bids) + len(asks))
        book.apply(bids, asks)
        event = _fill(
            fixture("depth_update_event.json"),
            E=self.clock(),
            s=market_id,
            U=first,
            u=book.update_id,
            b=[list(level) for level in bids],
            a=[list(level) for level in asks],
        )
        await self._publish(f"{market_id.lower()}@depth@100ms", event)
        await self._publish(f"{market_id.lower()}@depth", event)
        return book.update_id

    def spend(self, weight: int) -> None:
        """Weight used in the current window by another client on the same IP."""
        self._roll(time.time())
        self._used += weight

    def ban(self, seconds: float) -> None:
        """Ban the IP now, as after too many requests during a 429's Retry-After."""
        self._banned_until = time.time() + seconds

    requests_to = FakeRest.asked

    def answered(self, path: str | None = None) -> list[int]:
        """HTTP statuses of the REST answers so far (of one path, if given)."""
        return [status for _, answered, status in self.answers if path is None or answered == path]

    def desync_book(self, symbol: str, skipped: int = 5) -> None:
        """Let `skipped` depth update ids pass unsent, so the next depthUpdate's `U` does not follow."""
        self.call(self._desync_book, _market_id(symbol), skipped)

    async def _desync_book(self, market_id: str, skipped: int) -> None:
        self.books[market_id].update_id += skipped

    def shut_down(self) -> None:
        """What Binance does at a connection's 24 hours: a `serverShutdown` event, then the close."""
        self.call(self._shut_down)

    async def _shut_down(self) -> None:
        event = _fill(fixture("server_shutdown_event.json"), E=self.clock())
        for connection in self.open_connections():
            assert connection.socket is not None
            await connection.socket.send_str(json.dumps(event))
        await self._drop()

    def fail_after(self, path: str, answered: int) -> None:
        """Answer `answered` more requests to `path`, then 503 until `recover(path)`."""
        self.outages[path] = answered

    def recover(self, path: str) -> None:
        """End an outage started with `fail_after`."""
        self.outages.pop(path, None)

    def send_raw(self, text: str) -> None:
        """Send a text frame as is to every open socket (for malformed-message tests)."""
        self.call(self._send_raw, text)

    async def _send_raw(self, text: str) -> None:
        for connection in self.open_connections():
            assert connection.socket is not None
            await connection.socket.send_str(text)

    def send_event(self, event: dict[str, Any], stream: str) -> None:
        """Send one event (wrapped as the connection's endpoint wants) to every open socket."""
        self.call(self._send_event, event, stream)

    async def _send_event(self, event: dict[str, Any], stream: str) -> None:
        for connection in self.open_connections():
            await self._send(connection, stream, event)

    @staticmethod
    def agg_event(
        symbol: str, trade_id: int, ts: int, price: float = 100.0, qty: float = 1.0
    ) -> dict[str, Any]:
        """A documented aggTrade event, for sending by hand (duplicates, out-of-order, broken ones)."""
        return FakeBinance._events(_market_id(symbol), Trade(trade_id, ts, price, qty, True))["aggTrade"]

    def drop_connections(self) -> None:
        """Close every WebSocket from the server side, as Binance does every 24 hours."""
        self.call(self._drop)

    async def _drop(self) -> None:
        for connection in self.open_connections():
            assert connection.socket is not None
            await connection.socket.close(code=1001, message=b"server going away")

    def open_connections(self) -> list[Connection]:
        """Connections whose socket is still open."""
        return [c for c in self.connections if c.socket is not None and not c.socket.closed]

    def subscribed(self) -> set[str]:
        """Streams of every open connection."""
        return {stream for c in self.open_connections() for stream in c.streams}

    # ---- REST ------------------------------------------------------------------------------

    @web.middleware
    async def _weigh(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Binance's IP weight limit in front of every REST endpoint: headers, 429, 418."""
        if not request.path.startswith("/api/"):
            return await handler(request)
        now = time.time()
        self._roll(now)
        response: web.StreamResponse
        if now < self._banned_until:
            response = self._refuse(418, self._banned_until - now)
        elif now < self._retry_until:
            self._violations += now > self._limited_at + self.limits.grace_s
            if self._violations > self.limits.tolerated:
                self._banned_until = now + self.limits.ban_s
                response = self._refuse(418, self.limits.ban_s)
            else:
                response = self._refuse(429, self._retry_until - now)
        else:
            self._used += request_weight(request.path, dict(request.query))
            if self._used > self.limits.weight:
                self._limited_at, self._violations = now, 0
                self._retry_until = (self._window + 1) * self.limits.window_s
                response = self._refuse(429, self._retry_until - now)
            else:
                self.peak_weight = max(self.peak_weight, self._used)
                response = await handler(request)
        response.headers["X-MBX-USED-WEIGHT-1M"] = str(self._used)
        self.answers.append((now, request.path, response.status))
        return response

    def _roll(self, now: float) -> None:
        window = math.floor(now / self.limits.window_s)
        if window != self._window:
            self._window, self._used = window, 0

    def _refuse(self, status: int, wait_s: float) -> web.Response:
        if status == 418:
            message = f"Way too many requests; IP(127.0.0.1) banned until {int(self._banned_until * 1000)}."
        else:
            message = f"Too many requests; current limit of IP(127.0.0.1) is {self.limits.weight} requests per minute."
        response = self._error(-1003, message, status)
        response.headers["Retry-After"] = str(max(1, math.ceil(wait_s)))
        return response

    @staticmethod
    def _error(code: int, message: str, status: int = 400) -> web.Response:
        body = _fill(fixture("error.json"), code=code, msg=message)
        return web.json_response(body, status=status)

    async def _ping(self, request: web.Request) -> web.Response:
        self.log(request)
        return web.json_response({})

    async def _time(self, request: web.Request) -> web.Response:
        self.log(request)
        return web.json_response({"serverTime": self.clock()})

    async def _exchange_info(self, request: web.Request) -> web.Response:
        self.log(request)
        body = fixture("exchange_info.json")
        body["serverTime"] = self.clock()
        template = fixture("exchange_info_symbol.json")
        body["symbols"] = [
            _fill(template, symbol=market_id, baseAsset=base, quoteAsset=quote, status=status)
            for market_id, (base, quote, status) in sorted(self.statuses.items())
        ]
        return web.json_response(body)

    def _symbol(self, params: dict[str, str]) -> str | None:
        market_id = params.get("symbol", "")
        return market_id if market_id in self.statuses else None

    @staticmethod
    def _limit(params: dict[str, str], default: int = 500, most: int = 1000) -> int | None:
        limit = int(params.get("limit", default))
        return limit if 1 <= limit <= most else None

    def _outage(self, path: str) -> web.Response | None:
        if path not in self.outages:
            return None
        if self.outages[path] > 0:
            self.outages[path] -= 1
            return None
        return web.Response(status=503, text="Service Unavailable")

    async def _agg_trades(self, request: web.Request) -> web.Response:
        params = self.log(request)
        if (down := self._outage(request.path)) is not None:
            return down
        market_id = self._symbol(params)
        if market_id is None:
            return self._error(-1121, "Invalid symbol.")
        limit = self._limit(params)
        if limit is None:
            return self._error(-1100, "Illegal characters found in parameter 'limit'.")
        start, end = params.get("startTime"), params.get("endTime")
        if start is not None and end is not None and int(end) - int(start) > HOUR_MS:
            return self._error(-1127, "More than 1 hours between startTime and endTime.")
        stored = self.trades[market_id]
        if "fromId" not in params and start is None and end is None:
            chosen = stored[-limit:]
        else:
            chosen = [
                t
                for t in stored
                if t.id >= int(params.get("fromId", 0))
                and (start is None or t.ts >= int(start))
                and (end is None or t.ts <= int(end))
            ][:limit]
        template = fixture("agg_trade_rest.json")
        rows = [
            _fill(
                template,
                a=t.id,
                p=f"{t.price:.8f}",
                q=f"{t.qty:.8f}",
                f=t.id,
                l=t.id,
                T=t.ts,
                m=not t.taker_buys,  # Binance's "m": the buyer was the maker, so the taker sold
            )
            for t in chosen
        ]
        return web.json_response(rows)

    async def _klines(self, request: web.Request) -> web.Response:
        params = self.log(request)
        market_id = self._symbol(params)
        if market_id is None:
            return self._error(-1121, "Invalid symbol.")
        step = INTERVALS_MS.get(params.get("interval", ""))
        limit = self._limit(params)
        if step is None or limit is None:
            return self._error(-1120, "Invalid interval.")
        stored = self.trades[market_id]
        if not stored:
            return web.json_response([])
        first = max(stored[0].ts // step * step, -(-int(params.get("startTime", 0)) // step) * step)
        last = min(self.clock() // step * step, int(params.get("endTime", 2**62)))
        rows: list[list[Any]] = []
        times = [t.ts for t in stored]
        opened = first
        previous = bisect.bisect_left(times, first) - 1
        close = stored[previous].price if previous >= 0 else None
        while opened <= last and len(rows) < limit:
            bucket = stored[bisect.bisect_left(times, opened) : bisect.bisect_left(times, opened + step)]
            rows.append(self._kline(opened, step, bucket, close))
            close = bucket[-1].price if bucket else close
            opened += step
        return web.json_response(rows)

    @staticmethod
    def _kline(opened: int, step: int, bucket: list[Trade], previous_close: float | None) -> list[Any]:
        prices = [t.price for t in bucket] or [previous_close or 0.0]
        volume = sum(t.qty for t in bucket)
        quote_volume = sum(t.qty * t.price for t in bucket)
        taker_buys = [t for t in bucket if t.taker_buys]
        row = fixture("kline_row.json")
        values = [
            opened,
            f"{prices[0]:.8f}",
            f"{max(prices):.8f}",
            f"{min(prices):.8f}",
            f"{prices[-1]:.8f}",
            f"{volume:.8f}",
            opened + step - 1,
            f"{quote_volume:.8f}",
            len(bucket),
            f"{sum(t.qty for t in taker_buys):.8f}",
            f"{sum(t.qty * t.price for t in taker_buys):.8f}",
            "0",
        ]
        assert len(values) == len(row)
        return values

    async def _depth(self, request: web.Request) -> web.Response:
        params = self.log(request)
        market_id = self._symbol(params)
        if market_id is None:
            return self._error(-1121, "Invalid symbol.")
        limit = self._limit(params, default=100, most=5000) or 100
        book = self.books[market_id]
        bids, asks = book.top(limit)
        body = _fill(fixture("depth_snapshot.json"), lastUpdateId=book.update_id, bids=bids, asks=asks)
        return web.json_response(body)

    # ---- WebSocket -------------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        connection = Connection(request.path, time.monotonic(), socket=socket)
        self.connections.append(connection)
        if self.flaky_connects > 0:  # a flaky network: accepted, then gone
            self.flaky_connects -= 1
            await socket.close(code=1006)
            return socket
        if "streams" in request.query:
            connection.streams.extend(request.query["streams"].split("/"))
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                await self._command(connection, message.data)
        return socket

    async def _command(self, connection: Connection, text: str) -> None:
        """SUBSCRIBE / UNSUBSCRIBE / LIST_SUBSCRIPTIONS, answered as Binance answers them."""
        assert connection.socket is not None
        try:
            request = json.loads(text)
            method, request_id = request["method"], request["id"]
        except (ValueError, KeyError, TypeError):
            await connection.socket.send_json({"error": {"code": 2, "msg": "Invalid request"}, "id": None})
            return
        params = request.get("params", [])
        if method == "SUBSCRIBE":
            connection.subscribe_messages += 1
            connection.streams.extend(s for s in params if s not in connection.streams)
            await connection.socket.send_json({"result": None, "id": request_id})
        elif method == "UNSUBSCRIBE":
            connection.streams[:] = [s for s in connection.streams if s not in params]
            await connection.socket.send_json({"result": None, "id": request_id})
        elif method == "LIST_SUBSCRIPTIONS":
            await connection.socket.send_json({"result": connection.streams, "id": request_id})
        else:
            await connection.socket.send_json(
                {"error": {"code": 1, "msg": "Unknown method"}, "id": request_id}
            )

    async def _publish(self, stream: str, event: dict[str, Any]) -> None:
        for connection in self.open_connections():
            if stream in connection.streams:
                await self._send(connection, stream, event)

    @staticmethod
    async def _send(connection: Connection, stream: str, event: dict[str, Any]) -> None:
        assert connection.socket is not None
        frame = {"stream": stream, "data": event} if connection.combined else event
        await connection.socket.send_str(json.dumps(frame))

    @staticmethod
    def _events(market_id: str, trade: Trade) -> dict[str, dict[str, Any]]:
        """The trade as each stream sends it, by stream suffix.

        The fake numbers raw trades like aggregate trades; on Binance the two id series differ.
        """
        common = {
            "E": trade.ts,
            "s": market_id,
            "p": f"{trade.price:.8f}",
            "q": f"{trade.qty:.8f}",
            "T": trade.ts,
            "m": not trade.taker_buys,
        }
        return {
            "aggTrade": _fill(fixture("agg_trade_event.json"), a=trade.id, f=trade.id, l=trade.id, **common),
            "trade": _fill(fixture("trade_event.json"), t=trade.id, **common),
        }


def _random_walk(server: FakeBinance, symbols: list[str], per_second: float) -> None:
    """Stream random trades forever (for running the server by hand)."""
    prices = {symbol: 100.0 for symbol in symbols}
    rng = random.Random(7)
    while True:
        symbol = rng.choice(symbols)
        prices[symbol] *= 1 + rng.gauss(0, 0.001)
        server.add_trades(
            symbol, [(int(time.time() * 1000), prices[symbol], rng.expovariate(1.0), rng.random() < 0.5)]
        )
        time.sleep(rng.expovariate(per_second))


def main() -> None:
    """Serve a few markets with a random walk of trades until Ctrl-C."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--symbols", default="BTC/USDT,ETH/USDT,ETH/BTC")
    parser.add_argument("--rate", type=float, default=5.0, help="trades per second, all symbols together")
    args = parser.parse_args()
    symbols = args.symbols.split(",")
    server = FakeBinance(symbols).start(args.port)
    print(f"REST {server.rest_url}  WebSocket {server.ws_url}  (Ctrl-C stops)")
    print(
        f"try: TAPEWATCH_EXCHANGE__REST_URL={server.rest_url} TAPEWATCH_EXCHANGE__WS_URL={server.ws_url} "
        f"tapewatch ingest crypto --symbols {symbols[0]} --live --lake /tmp/tapewatch-lake"
    )
    try:
        _random_walk(server, symbols, args.rate)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
