"""`tapewatch notify run`: follow the alerts table and notify each new alert, in its own process.

Whatever stores alerts (a batch run, the live stream, the bus sink, several of
them) needs to know nothing about notifications: the runner polls the store
for alerts by insertion time (`created_at`) after a watermark. The watermark is
kept in the database (`service_state`, "notify.watermark") after every page, so
a restart resumes where the last run stopped: alerts stored while it was down are
notified, none twice (the delivery log's unique key makes every send happen once
even when a page is looked at again). A database from before that bookmark
resumes from the newest alert the delivery log mentions; the very first start
begins at the current time (kept as the watermark at once), or at `since`.

Each poll also re-reads the last `lookback_s` before the watermark, for alerts
whose writer's clock lags or whose transaction committed late; ids already
handled in that window are remembered and skipped.

Each poll first takes over deliveries left `sending` by a notifier that died
part-way (this one before a restart, another one, or a live sink's) once their
claim is older than the longest a send can take, and sends them again
(`Notifier.recover`): a kill -9 during a retry's back-off delays an alert, it
does not lose it.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, and_, or_, select
from sqlalchemy.exc import SQLAlchemyError

from tapewatch.config import NotifySettings
from tapewatch.notify import deliveries
from tapewatch.notify.deliveries import Delivery
from tapewatch.notify.router import Notifier
from tapewatch.records import Alert
from tapewatch.store.alert_store import ALERT_FIELDS, ALERTS
from tapewatch.store.models import utc_now
from tapewatch.store.state import read_state, write_state

log = logging.getLogger("tapewatch.notify")
WATERMARK = "notify.watermark"
LIVE_WATERMARK = "notify.live_watermark"
"""The bookmark of the followers inside live processes (`background`), apart from `notify run`'s."""
PAGE = 500
"""Alerts read and notified at a time: the watermark moves on after each page."""


@dataclass
class RunnerReport:
    """What the runner did: polls, alerts looked at, log rows written by status, abandoned sends taken over."""

    polls: int = 0
    alerts: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    reclaimed: int = 0
    db_errors: int = 0

    def summary(self) -> str:
        done = ", ".join(f"{n} {status}" for status, n in sorted(self.outcomes.items())) or "nothing sent"
        return (
            f"notify: {self.polls} poll(s), {self.alerts} new alert(s): {done}; "
            f"{self.reclaimed} abandoned send(s) taken over; {self.db_errors} database error(s)"
        )


class NotifyRunner:
    """Polls one store for new alerts and hands them to a `Notifier`."""

    def __init__(
        self,
        engine: Engine,
        settings: NotifySettings,
        *,
        since: datetime | None = None,
        notifier: Notifier | None = None,
        bookmark: str = WATERMARK,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.bookmark = bookmark
        self.notifier = notifier or Notifier(engine, settings)
        self.report = RunnerReport()
        self.lookback = timedelta(seconds=settings.lookback_s)
        self.watermark, self.floor = self._start(since)
        self._seen: dict[str, datetime] = {}

    def _start(self, since: datetime | None) -> tuple[datetime, datetime | None]:
        """(watermark, floor): where polling resumes, and before which it never looks."""
        saved = read_state(self.engine, self.bookmark)
        if since is not None:
            if saved is None:
                self._keep(since, since)
            return since, since
        if saved is not None:
            floor = saved.get("floor")
            return datetime.fromisoformat(saved["created_at"]), (
                datetime.fromisoformat(floor) if floor else None
            )
        last = None
        if self.bookmark == WATERMARK:  # a database from before `notify run` kept its bookmark
            with self.engine.connect() as conn:
                last = deliveries.last_handled_alert(conn)
        if last is None:
            now = utc_now()
            start, floor = now, now
        else:
            start, floor = last, None
        # Kept at once, not only after the first page: a process killed before it handled anything
        # must not make its successor start from its own "now" and skip what was stored between.
        self._keep(start, floor)
        return start, floor

    def _keep(self, watermark: datetime, floor: datetime | None) -> None:
        """Save the watermark, and the first start's floor (what was stored before it is never news)."""
        saved = {"created_at": watermark.isoformat()}
        if floor is not None:
            saved["floor"] = floor.isoformat()
        write_state(self.engine, self.bookmark, saved)

    def poll(self) -> list[Delivery]:
        """Send again what a stopped notifier left claimed, then notify every alert stored since the
        watermark; the log rows written."""
        self.report.polls += 1
        logged = self.notifier.recover()
        self.report.reclaimed += len(logged)
        self.report.outcomes.update(row.status for row in logged)
        for page in self._new_alerts():
            self.report.alerts += len(page)
            rows = self.notifier.notify(alert for alert, _ in page)
            self.report.outcomes.update(row.status for row in rows)
            logged.extend(rows)
            for alert, created in page:
                self._seen[alert.id] = created
            self.watermark = max(self.watermark, max(created for _, created in page))
            self._keep(self.watermark, self.floor)
        horizon = self._from()
        self._seen = {key: created for key, created in self._seen.items() if created >= horizon}
        return logged

    def run(self, stop: threading.Event) -> RunnerReport:
        """Poll every `poll_s` until `stop` is set; a database error is logged and the next poll tries again."""
        while not stop.is_set():
            try:
                self.poll()
            except SQLAlchemyError as exc:
                self.report.db_errors += 1
                log.warning("notify: polling failed (%s); trying again", str(exc).splitlines()[0][:160])
            stop.wait(self.settings.poll_s)
        return self.report

    def _from(self) -> datetime:
        start = self.watermark - self.lookback
        return start if self.floor is None else max(start, self.floor)

    def _new_alerts(self) -> Iterator[list[tuple[Alert, datetime]]]:
        """Pages of alerts stored from `_from()` on, oldest first, skipping those handled already."""
        columns = [ALERTS.c[name] for name in ALERT_FIELDS]
        after: tuple[datetime, str] | None = None
        start = self._from()
        while True:
            query = select(*columns, ALERTS.c.created_at).where(ALERTS.c.created_at >= start)
            if after is not None:
                when, key = after
                created = ALERTS.c.created_at
                query = query.where(or_(created > when, and_(created == when, ALERTS.c.id > key)))
            query = query.order_by(ALERTS.c.created_at, ALERTS.c.id).limit(PAGE)
            with self.engine.connect() as conn:
                rows = [row._asdict() for row in conn.execute(query)]
            if not rows:
                return
            after = (rows[-1]["created_at"], rows[-1]["id"])
            page = [
                (Alert.model_validate(row), row["created_at"]) for row in rows if row["id"] not in self._seen
            ]
            if page:
                yield page
