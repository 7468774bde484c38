"""`tapewatch bus sink`: the one consumer of the alerts stream that stores, prints and notifies.

It pulls from a durable consumer, so a restarted sink goes on where it stopped.
A batch is acked only after `AlertStore.save` succeeded; a database error is
logged and the save retried with back-off (nothing acked meanwhile), so an outage
of the database delays alerts but loses none. Saving is idempotent on the alert
id (follow-ups merge), and a line is printed only for an alert or follow-up not
seen before by this sink, so redeliveries and re-emitted alerts change nothing.
What is new goes to `hooks` (the JSON lines and notifications of `pipeline.sinks`), after the save.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from nats.errors import TimeoutError as NatsTimeout
from nats.js import JetStreamContext, api
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from tapewatch.bus.alert_stream import parse_alert
from tapewatch.bus.connection import TRANSIENT, connect, log_to_stderr, retrying, until_signalled
from tapewatch.bus.publish import MSG_ID
from tapewatch.bus.subjects import BusNames
from tapewatch.bus.topology import ensure_topology
from tapewatch.config import Settings
from tapewatch.engine.stream import Emitted
from tapewatch.pipeline.sinks import open_alerts_out
from tapewatch.store.alert_store import AlertStore

log = logging.getLogger("tapewatch.bus")
Hook = Callable[[list[Emitted]], None]
SEEN_MEMORY = 100_000
"""Message ids remembered to print each alert once (the store dedups regardless)."""


@dataclass
class SinkReport:
    """What the sink did, for its one-line summary."""

    messages: int = 0
    alerts: int = 0
    updates: int = 0
    stored: int = 0
    repeats: int = 0
    malformed: int = 0
    db_retries: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        return (
            f"sink: {self.messages:,} message(s) in {self.seconds:.1f}s: {self.alerts} alert(s) "
            f"({self.stored} new in the store), {self.updates} follow-up update(s), "
            f"{self.repeats} repeat(s) ignored, {self.malformed} malformed set aside, "
            f"{self.db_retries} database retr{'y' if self.db_retries == 1 else 'ies'}"
        )


class AlertSink:
    """Consumes the alerts stream into a store, then hands what is new to hooks (JSON lines, notifications)."""

    def __init__(
        self,
        settings: Settings,
        url: str,
        store: AlertStore,
        *,
        hooks: Iterable[Hook] = (),
    ) -> None:
        self.settings, self.url, self.store = settings, url, store
        self.hooks = list(hooks)
        self.names = BusNames.from_settings(settings.bus)
        self.report = SinkReport()
        self._seen: OrderedDict[str, None] = OrderedDict()

    async def run(self, stop: asyncio.Event) -> SinkReport:
        """Consume until `stop` is set."""
        started = time.perf_counter()
        bus = self.settings.bus
        client, js = await connect(self.url, bus, name="tapewatch-sink")
        try:
            await ensure_topology(js, self.names, bus)
            sub = await js.pull_subscribe(
                self.names.alerts_wildcard,
                durable=self.names.sink_durable,
                stream=self.names.alerts_stream,
                config=api.ConsumerConfig(ack_policy=api.AckPolicy.EXPLICIT, ack_wait=bus.ack_wait_s),
            )
            while not stop.is_set():
                msgs = await self._fetch(sub)
                if msgs:
                    await self._handle(msgs, stop)
        finally:
            with contextlib.suppress(*TRANSIENT):
                await client.close()
            self.report.seconds = time.perf_counter() - started
        return self.report

    async def _fetch(self, sub: JetStreamContext.PullSubscription) -> list:
        try:
            return await sub.fetch(self.settings.bus.fetch_batch, timeout=1.0)
        except (TimeoutError, NatsTimeout):
            return []
        except TRANSIENT as exc:
            log.warning("sink: fetch failed (%s); retrying", exc)
            await asyncio.sleep(self.settings.bus.retry_initial_s)
            return []

    async def _handle(self, msgs: list, stop: asyncio.Event) -> None:
        """Store the batch (retrying), then print and notify what is new, then ack."""
        items: list[tuple[str, Emitted]] = []
        for msg in msgs:
            self.report.messages += 1
            try:
                items.append((msg.headers.get(MSG_ID, "") if msg.headers else "", parse_alert(msg)))
            except ValidationError as exc:
                self.report.malformed += 1
                log.warning("sink: set aside malformed alert message on %s: %s", msg.subject, exc)
        if items and not await self._save([item for _, item in items], stop):
            return  # stopping before the database came back: nothing acked, all redelivered
        fresh = [item for key, item in items if self._first_time(key or item.alert.id)]
        self.report.alerts += sum(not item.update for item in fresh)
        self.report.updates += sum(item.update for item in fresh)
        self.report.repeats += len(items) - len(fresh)
        if fresh:
            for hook in self.hooks:
                hook(fresh)
        for msg in msgs:  # malformed ones too: acked, counted and logged, never redelivered
            await retrying("sink ack", msg.ack, self.settings.bus)

    async def _save(self, items: list[Emitted], stop: asyncio.Event) -> bool:
        """Save with back-off until it works; False if stopped first."""
        delay = self.settings.bus.retry_initial_s
        while not stop.is_set():
            try:
                self.report.stored += await asyncio.to_thread(self.store.save, [i.alert for i in items])
                return True
            except SQLAlchemyError as exc:
                self.report.db_retries += 1
                reason = str(exc).splitlines()[0][:160]
                log.warning(
                    "sink: saving %d alert(s) failed (%s); retrying in %.1fs", len(items), reason, delay
                )
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
                delay = min(self.settings.bus.retry_max_s, delay * 2)
        return False

    def _first_time(self, key: str) -> bool:
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > SEEN_MEMORY:
            self._seen.popitem(last=False)
        return True


def run_sink(
    settings: Settings, url: str, *, db: str | None = None, output: Path | None = None, notify: bool = False
) -> SinkReport:
    """`tapewatch bus sink`: store (and print, and with `notify` send) alerts until SIGINT/SIGTERM."""
    log_to_stderr()
    out = open_alerts_out(settings, output=output, db=db, save="no", notify=notify)
    try:
        sink = AlertSink(settings, url, out.store, hooks=[out])
        return asyncio.run(until_signalled(sink.run))
    finally:
        out.close()
