"""A local Binance spot API (REST and WebSocket streams) for tests and demos, on 127.0.0.1.

It speaks the documented protocol closely enough for ccxt's real `binance` class to
load markets, page through `aggTrades` and `klines`, take `depth` snapshots and
subscribe to combined streams (`{"method": "SUBSCRIBE", ...}` answered with
`{"result": null, "id": N}`, then `{"stream": ..., "data": ...}` frames). Response
shapes come from the JSON files in `fixtures/`, copied by hand from Binance's API
documentation, so the server and the docs can be compared side by side.

The server runs on its own event loop in a background thread, so both async tests
and synchronous CLI tests (which start their own loop) can use it. Test controls
(`list_market`, `add_trades`, `drop_connections`, `send_raw`, ...) are plain methods
that run on the server's loop and return when done.

By hand: `python tests/unit/sources/exchange/fake_binance.py --port 8765` serves a few markets
with a random walk of trades; point Tapewatch at it with
`TAPEWATCH_EXCHANGE__REST_URL=http://127.0.0.1:8765` and
`TAPEWATCH_EXCHANGE__WS_URL=ws://127.0.0.1:8765/stream`.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import copy
import json
import random
import threading
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, TypeVar

from aiohttp import WSMsgType, web

FIXTURES = Path(__file__).with_name("fixtures")
HOUR_MS = 3_600_000
INTERVALS_MS = {"1m": 60_000, "5m": 300_000, "15m": 900_000, "1h": HOUR_MS, "1d": 24 * HOUR_MS}
T = TypeVar("T")


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
class Trade:
    """One aggregate trade as the server stores it."""

    id: int
    ts: int  # ms
    price: float
    qty: float
    buyer_maker: bool  # Binance's "m": the buyer was the maker, so the taker sold


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
class Book:
    """A symbol's order book: levels and the update id Binance sequences depth updates with."""

    last_update_id: int = 1000
    bids: dict[str, str] = field(default_factory=dict)
    asks: dict[str, str] = field(default_factory=dict)


class FakeBinance:
    """Binance's spot REST API and WebSocket streams, served from memory."""

    def __init__(self, markets: Iterable[str] = ("BTC/USDT", "ETH/USDT", "ETH/BTC")) -> None:
        self.statuses: dict[str, tuple[str, str, str]] = {}  # id -> (base, quote, status)
        self.trades: dict[str, list[Trade]] = {}
        self.books: dict[str, Book] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.connections: list[Connection] = []
        self.flaky_connects = 0
        self.outages: dict[str, int] = {}  # path -> requests still answered before it fails with 503
        self.now_ms: int | None = None  # None: the real clock
        for symbol in markets:
            self._list(symbol, "TRADING")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self, port: int = 0) -> Self:
        """Serve on 127.0.0.1 (a free port unless given) from a background thread."""
        started = threading.Event()
        loop = self._loop = asyncio.new_event_loop()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            loop.run_until_complete(self._open(port))
            started.set()
            loop.run_forever()

        self._thread = threading.Thread(target=serve, name="fake-binance", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("fake Binance did not start")
        return self

    async def _open(self, port: int) -> None:
        app = web.Application()
        app.router.add_get("/api/v3/ping", self._ping)
        app.router.add_get("/api/v3/time", self._time)
        app.router.add_get("/api/v3/exchangeInfo", self._exchange_info)
        app.router.add_get("/api/v3/aggTrades", self._agg_trades)
        app.router.add_get("/api/v3/klines", self._klines)
        app.router.add_get("/api/v3/depth", self._depth)
        for path in ("/stream", "/stream/{index}", "/ws", "/ws/{index}"):
            app.router.add_get(path, self._websocket)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        """Close every socket, stop serving and end the thread."""
        if self._loop is None:
            return
        self.call(self._close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()
        self._loop = None

    async def _close(self) -> None:
        await self._drop()
        if self._runner is not None:
            await self._runner.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def rest_url(self) -> str:
        """What `ExchangeSettings.rest_url` should be."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """What `ExchangeSettings.ws_url` should be: the combined-stream endpoint."""
        return f"ws://127.0.0.1:{self.port}/stream"

    def call(self, function: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """Run a coroutine function on the server's loop and wait for its result."""
        assert self._loop is not None, "server not started"
        return asyncio.run_coroutine_threadsafe(function(*args), self._loop).result(10)

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
        self.books.setdefault(market_id, Book())

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
            trade = Trade(stored[-1].id + 1 if stored else 1, ts, price, qty, buyer_maker)
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
        first = book.last_update_id + 1
        book.last_update_id += max(1, len(bids) + len(asks))
        for side, changes in ((book.bids, bids), (book.asks, asks)):
            for price, qty in changes:
                if float(qty) == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty
        event = _fill(
            fixture("depth_update_event.json"),
            E=self._clock(),
            s=market_id,
            U=first,
            u=book.last_update_id,
            b=[list(level) for level in bids],
            a=[list(level) for level in asks],
        )
        await self._publish(f"{market_id.lower()}@depth@100ms", event)
        await self._publish(f"{market_id.lower()}@depth", event)
        return book.last_update_id

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
        return FakeBinance._events(_market_id(symbol), Trade(trade_id, ts, price, qty, False))["aggTrade"]

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

    def wait_until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Block until `condition()` holds (checked on the caller's thread) or fail the test."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError("fake Binance: condition not met in time")
            time.sleep(0.01)

    # ---- REST ------------------------------------------------------------------------------

    def _clock(self) -> int:
        return self.now_ms if self.now_ms is not None else int(time.time() * 1000)

    def _log(self, request: web.Request) -> dict[str, str]:
        params = dict(request.query)
        self.requests.append((request.path, params))
        return params

    @staticmethod
    def _error(code: int, message: str, status: int = 400) -> web.Response:
        body = _fill(fixture("error.json"), code=code, msg=message)
        return web.json_response(body, status=status)

    async def _ping(self, request: web.Request) -> web.Response:
        self._log(request)
        return web.json_response({})

    async def _time(self, request: web.Request) -> web.Response:
        self._log(request)
        return web.json_response({"serverTime": self._clock()})

    async def _exchange_info(self, request: web.Request) -> web.Response:
        self._log(request)
        body = fixture("exchange_info.json")
        body["serverTime"] = self._clock()
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
        params = self._log(request)
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
                m=t.buyer_maker,
            )
            for t in chosen
        ]
        return web.json_response(rows)

    async def _klines(self, request: web.Request) -> web.Response:
        params = self._log(request)
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
        last = min(self._clock() // step * step, int(params.get("endTime", 2**62)))
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
        taker_buys = [t for t in bucket if not t.buyer_maker]
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
        params = self._log(request)
        market_id = self._symbol(params)
        if market_id is None:
            return self._error(-1121, "Invalid symbol.")
        limit = self._limit(params, default=100, most=5000) or 100
        book = self.books[market_id]
        bids = sorted(book.bids.items(), key=lambda level: -float(level[0]))[:limit]
        asks = sorted(book.asks.items(), key=lambda level: float(level[0]))[:limit]
        body = _fill(
            fixture("depth_snapshot.json"),
            lastUpdateId=book.last_update_id,
            bids=[list(level) for level in bids],
            asks=[list(level) for level in asks],
        )
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
            "m": trade.buyer_maker,
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
