"""Notifying from a live stream without slowing it: a worker thread behind a queue, which also follows the store.

A send can take seconds (a slow webhook) or minutes (retries with back-off),
while the stream steps every few milliseconds. `BackgroundNotifier` is a sink
for `tapewatch stream` and a hook for the bus sink (`Callable[[list[Emitted]], None]`):
calling it only queues the new alerts and returns; one worker thread sends them
in order. Place it after the store sink, since cooldowns look up earlier alerts
in the store:

    with BackgroundNotifier(Notifier(engine, settings.notify)) as notifier:
        job = StreamJob(engine=stream_engine, sinks=[store_sink, notifier])
        ...

The queue is in memory, so a process killed with alerts still in it would lose
them to notification (the bus sink acks a batch once it is saved and queued).
So every `poll_s` the worker also does what `tapewatch notify run` does
(`NotifyRunner.poll`), on a bookmark of its own (`LIVE_WATERMARK`, kept in the
database and shared by every live process on it): it notifies what was stored
since, by this process or any other writer, and takes over sends a stopped
notifier left claimed. After a kill, the restarted process finds what its
predecessor stored but never sent; the delivery log's unique claims keep the
queue and the follower from sending anything twice. The first start of a live
notifier on a database begins at that moment: what was stored before is not news.

A database outage makes the worker wait and retry (nothing is dropped while it
runs); a full queue drops the newest alerts with a warning rather than grow
without bound (the follower still finds them in the store).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import TYPE_CHECKING

from sqlalchemy.exc import SQLAlchemyError

from tapewatch.closing import Closing
from tapewatch.notify.router import Notifier
from tapewatch.notify.runner import LIVE_WATERMARK, NotifyRunner
from tapewatch.records import Alert

if TYPE_CHECKING:
    from tapewatch.engine.stream import Emitted

log = logging.getLogger("tapewatch.notify")


class BackgroundNotifier(Closing):
    """Runs a `Notifier` on its own thread; call it with emitted alerts, close it to finish what is queued."""

    def __init__(self, notifier: Notifier, max_queued: int = 10_000) -> None:
        self.notifier = notifier
        self.logged = 0
        self.dropped = 0
        self._follower: NotifyRunner | None = None
        self._queue: queue.Queue[list[Alert] | None] = queue.Queue(max_queued)
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._work, name="tapewatch-notify", daemon=True)
        self._thread.start()

    def __call__(self, emitted: list[Emitted]) -> None:
        """Queue the new alerts (a follow-up update is not a new notification) and return at once."""
        alerts = [item.alert for item in emitted if not item.update]
        if alerts:
            self.submit(alerts)

    def submit(self, alerts: list[Alert]) -> None:
        try:
            self._queue.put_nowait(alerts)
        except queue.Full:
            self.dropped += len(alerts)
            log.warning("notify: queue full; %d alert(s) not notified", len(alerts))

    def wait(self) -> None:
        """Block until everything queued so far has been handled."""
        self._queue.join()

    def close(self, timeout: float | None = None) -> None:
        """Finish what is queued (database retries stop), then stop the worker."""
        self._closing.set()
        self._queue.put(None)
        self._thread.join(timeout)

    def _work(self) -> None:
        """Send what is queued as it comes; every `poll_s` (and at start), follow the store."""
        next_follow = 0.0
        while True:
            try:
                alerts = self._queue.get(timeout=max(0.0, next_follow - time.monotonic()))
            except queue.Empty:
                alerts = []
            else:
                try:
                    if alerts is None:
                        return
                    self._notify(alerts)
                finally:
                    self._queue.task_done()
            if time.monotonic() >= next_follow and not self._closing.is_set():
                self._follow()
                next_follow = time.monotonic() + self.notifier.settings.poll_s

    def _notify(self, alerts: list[Alert]) -> None:
        delay = self.notifier.settings.retry_initial_s
        while True:
            try:
                self.logged += len(self.notifier.notify(alerts))
                return
            except SQLAlchemyError as exc:
                if self._closing.is_set():
                    log.warning(
                        "notify: database error while closing (%s); %d alert(s) not notified",
                        exc,
                        len(alerts),
                    )
                    return
                log.warning("notify: database error (%s); retrying in %.1fs", str(exc).splitlines()[0], delay)
                self._closing.wait(delay)
                delay = min(self.notifier.settings.retry_max_s, delay * 2)
            except Exception:
                log.exception("notify: %d alert(s) not notified", len(alerts))
                return

    def _follow(self) -> None:
        """Notify what was stored but not queued here, and take over abandoned sends; a failure is logged and
        the next round tries again (the follower starts on the first round that reaches the database)."""
        try:
            if self._follower is None:
                self._follower = NotifyRunner(
                    self.notifier.engine,
                    self.notifier.settings,
                    notifier=self.notifier,
                    bookmark=LIVE_WATERMARK,
                )
            self.logged += len(self._follower.poll())
        except SQLAlchemyError as exc:
            log.warning("notify: following the store failed (%s)", str(exc).splitlines()[0][:160])
        except Exception:
            log.exception("notify: following the store failed")
