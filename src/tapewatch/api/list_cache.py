"""A micro-cache of alert-list pages: the request every open console makes most, for the same few pages.

Serving a page of 50 alerts costs milliseconds of CPU (query, validation, JSON);
serving it again from memory costs microseconds. Entries live `ttl_s` (1 s by
default) and the whole cache is cleared whenever this server changes something
(any successful POST/PATCH/DELETE) and whenever the live feed sees a new alert,
so what this server shows is never behind its own changes; a change made by
another process (the CLI, another server) shows within `ttl_s`.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from starlette.types import ASGIApp, Receive, Scope, Send

CHANGES = {"POST", "PUT", "PATCH", "DELETE"}


class ListCache:
    """JSON bodies by query string, each kept `ttl_s` seconds, at most `max_entries` of them."""

    def __init__(self, ttl_s: float, max_entries: int = 256) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

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
