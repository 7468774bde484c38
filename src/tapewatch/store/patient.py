"""Saving a live stream's alerts through a database outage: keep them, retry with back-off, never stop.

A live stream must keep detecting while the database restarts or the network to
PostgreSQL drops. Alerts that could not be saved wait here, in order, and go in
with the next attempt; attempts back off exponentially so an outage is not
hammered. The alerts are never lost meanwhile: they have already been written to
the JSON-lines output, and the store is idempotent on alert id, so a save that in
fact succeeded before its error is harmless to repeat.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from sqlalchemy.exc import SQLAlchemyError

from tapewatch.records import Alert
from tapewatch.store.alert_store import AlertStore

log = logging.getLogger("tapewatch.store")


class PatientStore:
    """An AlertStore front that holds alerts while the database is unreachable and retries later."""

    def __init__(
        self,
        store: AlertStore,
        *,
        initial_s: float,
        max_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.initial_s = initial_s
        self.max_s = max_s
        self.clock = clock
        self.waiting: list[Alert] = []
        self.failures = 0
        self.saved = 0
        self._delay = initial_s
        self._next_try = 0.0

    def save(self, alerts: Iterable[Alert]) -> None:
        """Queue alerts and save everything waiting, unless the last failure's back-off still runs."""
        self.waiting.extend(alerts)
        if self.waiting and self.clock() >= self._next_try:
            self._attempt()

    def close(self, attempts: int = 3) -> int:
        """Last tries (backing off between them); returns how many alerts could not be saved."""
        for _ in range(attempts):
            if not self.waiting or self._attempt():
                break
            time.sleep(min(self._delay, self.max_s))
        self.store.close()
        return len(self.waiting)

    def _attempt(self) -> bool:
        try:
            self.store.save(self.waiting)
        except SQLAlchemyError as exc:
            self.failures += 1
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:160]
            log.warning(
                "store: saving %d alert(s) failed (%s); retrying in %.1fs",
                len(self.waiting),
                reason,
                self._delay,
            )
            self._next_try = self.clock() + self._delay
            self._delay = min(self.max_s, self._delay * 2)
            return False
        if self.failures:
            log.warning("store: back; %d waiting alert(s) saved", len(self.waiting))
        self.saved += len(self.waiting)
        self.waiting = []
        self._delay = self.initial_s
        return True
