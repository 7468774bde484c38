"""Log-in throttling: exponential back-off per user name and per client address.

After `free` failed log-ins in a row for one name (5) or from one address (20:
several people may share one behind a NAT), the next
attempt must wait 1 s, then 2 s, 4 s … up to `cap_s`; until then it is answered
429 with Retry-After, without checking the password, so guessing costs the
attacker time rather than the server scrypt work. A count is forgotten `forget_s`
after its last failure.

An attempt let through is counted as a failure before its password is checked
(`LoginThrottle.attempt`, one lock for both counts): the check takes tens of
milliseconds, and guesses sent at once must not all pass the back-off before the
first of them has failed. A success then clears the name's count and takes the
attempt back from the address's (the rest of it stays: one good account must not
reset a spray across many); an attempt that could not be checked (the database
down) is taken back from both.

The state is kept in this process's memory, not the database: a flood of wrong
passwords must not become a flood of database writes, and nothing about it is
worth keeping across a restart. With `serve --workers N` each process counts on
its own, so an attacker gets at most N times the attempts; the back-off still
doubles in each, which keeps that to a handful more guesses.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_ENTRIES = 100_000
"""Counts kept at most; past that the stale ones go, then (under a flood of fresh names) the oldest."""
MAX_DOUBLINGS = 30
"""Past this many doublings the wait is at its cap anyway; stops 2**n growing without bound."""


@dataclass
class _Count:
    failures: int
    last: float


class Backoff:
    """Failed attempts by key (a user name, an address), and the wait each key owes."""

    def __init__(
        self,
        free: int = 5,
        first_wait_s: float = 1.0,
        cap_s: float = 300.0,
        forget_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.free, self.first_wait_s, self.cap_s, self.forget_s = free, first_wait_s, cap_s, forget_s
        self._clock = clock
        self._counts: dict[str, _Count] = {}
        self._lock = threading.Lock()

    def wait_s(self, key: str) -> float:
        """Seconds until this key may try again (0: now)."""
        now = self._clock()
        with self._lock:
            return self._wait(self._counts.get(key), now)

    def failed(self, key: str) -> None:
        """Count a failed attempt against the key."""
        now = self._clock()
        with self._lock:
            if len(self._counts) >= MAX_ENTRIES:
                self._prune(now)
            count = self._counts.get(key)
            if count is None or now - count.last > self.forget_s:
                count = self._counts[key] = _Count(0, now)
            count.failures += 1
            count.last = now

    def succeeded(self, key: str) -> None:
        """A log-in worked: this key's count starts again."""
        with self._lock:
            self._counts.pop(key, None)

    def refund(self, key: str) -> None:
        """Take back one failure counted in advance for an attempt that turned out not to fail."""
        with self._lock:
            count = self._counts.get(key)
            if count is not None:
                count.failures -= 1
                if count.failures <= 0:
                    del self._counts[key]

    def _wait(self, count: _Count | None, now: float) -> float:
        if count is None or count.failures < self.free or now - count.last > self.forget_s:
            return 0.0
        delay = min(self.cap_s, self.first_wait_s * 2 ** min(count.failures - self.free, MAX_DOUBLINGS))
        return max(0.0, count.last + delay - now)

    def _prune(self, now: float) -> None:
        stale = [key for key, count in self._counts.items() if now - count.last > self.forget_s]
        for key in stale or sorted(self._counts, key=lambda k: self._counts[k].last)[: MAX_ENTRIES // 10]:
            del self._counts[key]


class LoginThrottle:
    """The back-off of log-ins by user name and by client address together."""

    def __init__(self, names: Backoff | None = None, addresses: Backoff | None = None) -> None:
        self.names = names or Backoff(free=5)
        self.addresses = addresses or Backoff(free=20)
        self._lock = threading.Lock()

    def attempt(self, name: str | None, address: str) -> int | None:
        """Whole seconds to send in Retry-After; or None: check this log-in now.

        None also counts the attempt as failed, against the address and the name (if one was
        given), in the same lock as the look: of guesses sent at once only as many as the
        back-off allows get through. Report the outcome with `succeeded` or `refund`.
        """
        with self._lock:
            wait = max(self.addresses.wait_s(address), self.names.wait_s(name) if name else 0.0)
            if wait > 0:
                return math.ceil(wait)
            self.addresses.failed(address)
            if name:
                self.names.failed(name)
            return None

    def succeeded(self, user: str, address: str) -> None:
        """The attempt logged `user` in: the user's count starts again, the address's attempt is taken back."""
        with self._lock:
            self.names.succeeded(user)
            self.addresses.refund(address)

    def refund(self, name: str | None, address: str) -> None:
        """The attempt could not be checked (an error, not a refusal): take it back from both counts."""
        with self._lock:
            self.addresses.refund(address)
            if name:
                self.names.refund(name)
