"""A micro-cache of alert-list pages: the request every open console makes most, for the same few pages.

Serving a page of 50 alerts costs milliseconds of CPU (query, validation, JSON);
serving it again from memory costs microseconds. Entries live `ttl_s` (1 s by
default) and the whole cache is cleared whenever this server changes something
(any successful POST/PATCH/DELETE) and whenever the live feed sees a new alert,
so what this server shows is never behind its own changes; a change made by
another process (the CLI, another server) shows within `ttl_s` plus one query.

Under load the moment an entry expires matters too: every request arriving
during the new query would run it again (a burst of identical queries each
second, the slowest requests of all). So one query per page runs at a time
(the others wait for it), and an expired page is served while its refresh
runs in the background.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

CHANGES = {"POST", "PUT", "PATCH", "DELETE"}
log = logging.getLogger(__name__)


class ListCache:
    """JSON bodies by query string, each kept `ttl_s` seconds, at most `max_entries` of them."""

    def __init__(self, ttl_s: float, max_entries: int = 256) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._running: dict[str, asyncio.Future[bytes]] = {}
        self._generation = 0

    def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None or time.monotonic() - entry[0] > self.ttl_s:
            return None
        return entry[1]

    def put(self, key: str, body: bytes) -> None:
        if self.ttl_s <= 0:
            return
        self._entries[key] = (time.monotonic(), body)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
        self._generation += 1  # a query already running may predate the change: its page is not kept

    async def fetch(self, key: str, compute: Callable[[], Awaitable[bytes]]) -> bytes:
        """The page for `key`: fresh from memory, else the stale one while it refreshes, else computed
        once however many requests ask for it meanwhile."""
        if self.ttl_s <= 0:
            return await compute()
        fresh = self.get(key)
        if fresh is not None:
            return fresh
        stale = self._entries.get(key)
        running = self._running.get(key)
        if running is None:
            refresh = self._refresh(key, compute, self._generation)
            running = self._running[key] = asyncio.ensure_future(refresh)
            running.add_done_callback(_retrieve)
        if stale is not None:
            return stale[1]
        return await asyncio.shield(running)

    async def _refresh(self, key: str, compute: Callable[[], Awaitable[bytes]], generation: int) -> bytes:
        """Run the query; keep its page only if nothing changed since it was asked for."""
        try:
            body = await compute()
        except Exception:
            self._entries.pop(key, None)  # no stale page outlives a failure: the next request sees it
            raise
        finally:
            self._running.pop(key, None)
        if generation == self._generation:
            self.put(key, body)
        return body


def _retrieve(task: asyncio.Future[bytes]) -> None:
    """A background refresh that failed with nobody waiting is logged, not left unretrieved."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("alert-list refresh failed: %s", task.exception())


class ClearOnChange:
    """ASGI middleware: after any request that may change data, forget every cached page."""

    def __init__(self, app: ASGIApp, cache: ListCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in CHANGES:
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.cache.clear()
