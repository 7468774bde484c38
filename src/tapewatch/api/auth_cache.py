"""Recently verified credentials, so a busy client does not cost a database write per request.

Checking an API key reads its row and stamps `last_used_at` (a write and a
commit); at hundreds of requests a second on one key that is most of a request's
cost, and every request would queue on the same row. A successful check is
therefore trusted for `ttl_s`: this server forgets it at once when its own API
revokes a key or changes a role, other servers (and the CLI's changes) within
`ttl_s`. Failures are never cached, so a new key works immediately. Keys are
held only as SHA-256 digests.
"""

from __future__ import annotations

import hashlib
import threading
import time

from tapewatch.service.actors import Actor

MAX_ENTRIES = 10_000


class AuthCache:
    """Credential digest → (actor, expiry), for `ttl_s` seconds; `ttl_s = 0` disables it."""

    def __init__(self, ttl_s: float, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: dict[str, tuple[Actor, float]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def digest(credential: str) -> str:
        """What the cache keys on: never the credential itself."""
        return hashlib.sha256(credential.encode()).hexdigest()

    def get(self, credential: str) -> Actor | None:
        """The cached actor for a credential, or None when unknown or expired."""
        entry = self._entries.get(self.digest(credential))
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, credential: str, actor: Actor) -> None:
        """Trust this verified credential for `ttl_s`."""
        if self.ttl_s <= 0:
            return
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # rare (that many live credentials); simpler than LRU
            self._entries[self.digest(credential)] = (actor, time.monotonic() + self.ttl_s)

    def clear(self) -> None:
        """Forget everything (after a revocation or a role change made through this server)."""
        with self._lock:
            self._entries.clear()
