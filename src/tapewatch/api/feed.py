"""The live alert feed: one poller per server reads newly stored alerts and fans them out to every client.

Any process may store alerts (stream, detect, the bus sink), so the database,
not this server, is the source of truth: every `poll_s` one query reads the
alerts inserted after a watermark (`created_at`, the insertion time). Each
alert is encoded once, and each poll's alerts are queued to every subscriber as
one batch; a subscriber that falls `queue_size` batches behind (a slow client)
is dropped rather than allowed to hold the others back or grow without bound.

`created_at` is stamped when a row is written, but a transaction may commit a
little later, and writers on other hosts may have slightly different clocks.
So each poll also re-reads the insertions of the last `settle_s` and skips ids
it has already pushed: an alert committed up to `settle_s` late still reaches
every client, exactly once. Once the feed is quiet, a poll reads only what is
newer than the watermark, however many alerts were stored just before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select
from starlette.concurrency import run_in_threadpool

from tapewatch.api.alert_view import AlertItem, stored_since
from tapewatch.store.alert_store import ALERTS
from tapewatch.store.models import utc_now

log = logging.getLogger(__name__)

CLOSE_SLOW = None
"""Queued in place of a batch to tell a subscriber's sender it fell too far behind."""


@dataclass(eq=False)
class Subscription:
    """One client's queue of batches of encoded alerts; `None` in the queue means: disconnect, too slow."""

    queue: asyncio.Queue[list[str] | None]
    dropped: bool = False


@dataclass
class FeedStats:
    """Counts for /metrics and for tests."""

    alerts: int = 0
    messages: int = 0
    dropped: int = 0
    polls: int = 0
    failures: int = 0


@dataclass
class _Seen:
    """Ids pushed within the settle window, and the newest insertion time seen."""

    watermark: datetime | None = None
    ids: dict[str, datetime] = field(default_factory=dict)


class AlertFeed:
    """Polls the alerts table and pushes each new alert, as JSON text, to every subscriber."""

    def __init__(
        self,
        engine: Engine,
        poll_s: float,
        settle_s: float,
        queue_size: int,
        on_push: Callable[[int, int], None] | None = None,
    ) -> None:
        self.engine = engine
        self.poll_s = poll_s
        self.settle = timedelta(seconds=settle_s)
        self.queue_size = queue_size
        self.stats = FeedStats()
        self._on_push = on_push
        self._subscribers: set[Subscription] = set()
        self._seen = _Seen()
        self._task: asyncio.Task[None] | None = None

    @property
    def clients(self) -> int:
        """Subscribers now (for /metrics)."""
        return len(self._subscribers)

    def subscribe(self) -> Subscription:
        """A new subscriber's queue: it receives every alert found from the next poll on."""
        subscription = Subscription(asyncio.Queue(self.queue_size))
        self._subscribers.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop queueing to a subscriber (it left)."""
        self._subscribers.discard(subscription)

    async def start(self) -> None:
        """Skip what is already stored, then poll in the background until `stop()`."""
        await run_in_threadpool(self._prime)
        self._task = asyncio.create_task(self._run(), name="tapewatch-alert-feed")

    async def stop(self) -> None:
        """Cancel the background poller (on server shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def poll(self) -> int:
        """One poll: read new alerts, queue them to every subscriber; returns how many were new."""
        try:
            fresh = await run_in_threadpool(self._fetch_new)
        except Exception as exc:  # noqa: BLE001 (database down, a row it cannot read): the feed must live on
            self.stats.failures += 1
            if self.stats.failures == 1 or self.stats.failures % 100 == 0:
                log.warning("live feed: cannot read new alerts (%s)", str(exc).strip().splitlines()[0])
            return 0
        self.stats.polls += 1
        self.stats.failures = 0
        if fresh:
            self._fan_out([item.model_dump_json() for item in fresh])
            if self._on_push is not None:
                self._on_push(len(fresh), self.clients)
        return len(fresh)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            await self.poll()

    def _fan_out(self, batch: list[str]) -> None:
        self.stats.alerts += len(batch)
        for subscription in list(self._subscribers):
            try:
                subscription.queue.put_nowait(batch)  # the same list for everyone: no copies
                self.stats.messages += len(batch)
            except asyncio.QueueFull:
                self._drop(subscription)

    def _drop(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)
        subscription.dropped = True
        self.stats.dropped += 1
        while not subscription.queue.empty():
            subscription.queue.get_nowait()
        subscription.queue.put_nowait(CLOSE_SLOW)

    def _prime(self) -> None:
        """Start from what is stored now: its newest insertion is the watermark, and the ids that
        could still come back in the settle window count as pushed."""
        with self.engine.connect() as conn:
            newest = conn.execute(select(func.max(ALERTS.c.created_at))).scalar()
            if newest is None:
                return
            self._seen.watermark = newest
            lower = self._lower_bound()
            query = select(ALERTS.c.id, ALERTS.c.created_at).where(ALERTS.c.created_at > lower)
            self._seen.ids = {row.id: row.created_at for row in conn.execute(query)}

    def _lower_bound(self) -> datetime | None:
        """Read alerts inserted after this: everything after the watermark, plus the last `settle`
        of insertion times, where a late commit could still appear."""
        if self._seen.watermark is None:
            return None
        return min(self._seen.watermark, utc_now() - self.settle)

    def _fetch_new(self) -> list[AlertItem]:
        with self.engine.connect() as conn:
            found = stored_since(conn, self._lower_bound())
        return self._remember(found)

    def _remember(self, found: list[tuple[datetime, AlertItem]]) -> list[AlertItem]:
        seen = self._seen
        fresh = []
        for created, item in found:
            if item.id in seen.ids:
                continue
            seen.ids[item.id] = created
            fresh.append(item)
            if seen.watermark is None or created > seen.watermark:
                seen.watermark = created
        lower = self._lower_bound()
        if lower is not None:  # ids below the next poll's lower bound cannot come back
            seen.ids = {key: at for key, at in seen.ids.items() if at > lower}
        return fresh
