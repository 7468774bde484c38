"""The plumbing a fake venue needs: an aiohttp app on 127.0.0.1 in a background thread, REST and WebSocket.

The server runs on its own event loop in its own thread, so async tests and synchronous
CLI tests (which start their own loop) can both use it; every request is logged
(`requests`: path and query) for tests to check what the client asked. A fake venue
subclasses `FakeRest`, adds its routes in `routes`, and keeps its data in memory. A venue
with WebSocket streams routes its socket path to `serve_socket` with its own command
handler; the base keeps the open sockets and their topics, sends to subscribers
(`broadcast`), drops every connection on demand and closes them before stopping.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

from aiohttp import WSMsgType, web

T = TypeVar("T")


@dataclass
class Trade:
    """One trade as a fake venue stores it (ids count up from 1 per symbol)."""

    id: int
    ts: int  # ms
    price: float
    qty: float
    taker_buys: bool


@dataclass
class Book:
    """A symbol's order book as a fake venue keeps it: amount by price, in the types the venue writes them
    (text for Binance and Bybit, numbers for Kraken), and the id of its last update where the venue sends one."""

    update_id: int = 0
    bids: dict[Any, Any] = field(default_factory=dict)
    asks: dict[Any, Any] = field(default_factory=dict)

    def apply(self, bids: list[tuple[Any, Any]], asks: list[tuple[Any, Any]]) -> None:
        """Change levels; an amount of zero removes one."""
        for side, changes in ((self.bids, bids), (self.asks, asks)):
            for price, amount in changes:
                if float(amount) == 0:
                    side.pop(price, None)
                else:
                    side[price] = amount

    def top(self, depth: int) -> tuple[list[list[Any]], list[list[Any]]]:
        """The best `depth` levels of each side, best first, as [price, amount] pairs."""
        bids = sorted(self.bids.items(), key=lambda level: -float(level[0]))[:depth]
        asks = sorted(self.asks.items(), key=lambda level: float(level[0]))[:depth]
        return [list(level) for level in bids], [list(level) for level in asks]


@dataclass
class Socket:
    """One open WebSocket connection and the topics it subscribed to (in the venue's own names)."""

    socket: web.WebSocketResponse
    path: str
    topics: set[str] = field(default_factory=set)


class FakeRest:
    """A venue's REST API (and WebSocket streams) served from memory; subclasses add routes and data."""

    name = "fake venue"

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.sockets: list[Socket] = []
        self.trades: dict[str, list[Trade]] = {}  # venue market id -> trades, oldest first
        self.now_ms: int | None = None  # None: the real clock
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def routes(self, app: web.Application) -> None:
        """Add the venue's endpoints."""
        raise NotImplementedError

    def middlewares(self) -> list[Any]:
        """aiohttp middlewares in front of every endpoint (a venue's rate limit); none by default."""
        return []

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

        self._thread = threading.Thread(target=serve, name=self.name, daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError(f"{self.name} did not start")
        return self

    async def _open(self, port: int) -> None:
        app = web.Application(middlewares=self.middlewares())
        self.routes(app)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", port).start()
        self.port = self._runner.addresses[0][1]

    def stop(self) -> None:
        """Close the sockets (the server would otherwise wait for them to end), stop serving, end the thread."""
        if self._loop is None:
            return
        self.drop_connections()
        if self._runner is not None:
            self.call(self._runner.cleanup)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop.close()
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def rest_url(self) -> str:
        """What `ExchangeSettings.rest_url` should be."""
        return f"http://127.0.0.1:{self.port}"

    def call(self, function: Callable[..., Coroutine[Any, Any, T]], *args: Any) -> T:
        """Run a coroutine function on the server's loop and wait for its result."""
        assert self._loop is not None, "server not started"
        return asyncio.run_coroutine_threadsafe(function(*args), self._loop).result(10)

    # ---- data and helpers ------------------------------------------------------------------

    def add_trades(self, market_id: str, rows: list[tuple[int, float, float, bool]]) -> list[int]:
        """Store trades (ts ms, price, qty, taker buys) under consecutive ids; returns the ids."""
        stored = self.trades.setdefault(market_id, [])
        first = stored[-1].id + 1 if stored else 1
        stored.extend(Trade(first + i, *row) for i, row in enumerate(rows))
        return [first + i for i in range(len(rows))]

    def clock(self) -> int:
        """The server's time in ms."""
        return self.now_ms if self.now_ms is not None else int(time.time() * 1000)

    def log(self, request: web.Request) -> dict[str, str]:
        """Record a request; its query parameters."""
        params = dict(request.query)
        self.requests.append((request.path, params))
        return params

    def asked(self, path: str) -> list[dict[str, str]]:
        """Query parameters of every request to `path`, in order."""
        return [params for seen, params in self.requests if seen == path]

    def wait_until(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        """Block until `condition()` holds (checked on the caller's thread) or fail the test."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: condition not met in time")
            time.sleep(0.01)

    # ---- WebSocket -------------------------------------------------------------------------

    async def serve_socket(
        self, request: web.Request, command: Callable[[Socket, str], Awaitable[None]]
    ) -> web.WebSocketResponse:
        """Accept a WebSocket and hand each text frame to the venue's `command` until the client leaves."""
        self.log(request)
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        connection = Socket(socket, request.path)
        self.sockets.append(connection)
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                await command(connection, message.data)
        return socket

    def open_sockets(self) -> list[Socket]:
        """The connections still open."""
        return [connection for connection in self.sockets if not connection.socket.closed]

    def subscribed(self) -> set[str]:
        """Topics subscribed on the open connections."""
        return {topic for connection in self.open_sockets() for topic in connection.topics}

    async def broadcast(self, topic: str, message: dict[str, Any]) -> None:
        """Send a message to every open connection subscribed to `topic`."""
        for connection in self.open_sockets():
            if topic in connection.topics:
                await connection.socket.send_json(message)

    def drop_connections(self) -> None:
        """Close every WebSocket from the server side (a venue's maintenance, a network cut)."""
        self.call(self._drop)

    async def _drop(self) -> None:
        for connection in self.open_sockets():
            await connection.socket.close(code=1001, message=b"going away")
