"""Where a run's alerts go — JSON lines, the store, notifications — opened together and closed together.

`tapewatch stream`, the bus worker and the bus sink each send alerts to the same three
places; the wiring (which database when none is named, the store patient while the
database is away, notifications after the store because their cooldowns look there)
lives here once.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tapewatch.config import Settings
from tapewatch.engine.stream import Emitted
from tapewatch.io.alert_lines import AlertLineWriter
from tapewatch.store.alert_store import AlertStore, default_db_path, open_store
from tapewatch.store.patient import PatientStore

Sink = Callable[[list[Emitted]], None]


@dataclass
class AlertsOut:
    """A sink for emitted alerts that passes each batch on, in order, to the places it was opened with."""

    store: AlertStore | None = None
    """The opened store (None without one): the bus sink saves to it on its own terms."""
    patient: PatientStore | None = None
    """The store's patient front when this sink saves (held and retried while the database is away)."""
    sinks: list[Sink] = field(default_factory=list)
    closing: ExitStack = field(default_factory=ExitStack)

    def __call__(self, items: list[Emitted]) -> None:
        for sink in self.sinks:
            sink(items)

    def close(self) -> None:
        """Notifications drained, then the store (after its last tries when it saved), then the lines."""
        self.closing.close()


def open_alerts_out(
    settings: Settings,
    *,
    lines: bool = True,
    output: Path | None = None,
    store: bool = True,
    db: str | None = None,
    save: Literal["patient", "strict", "no"] = "patient",
    notify: bool = False,
) -> AlertsOut:
    """Open the places alerts go; whatever was opened is closed again if a later one fails to open.

    `lines` writes JSON lines to `output` (stdout when None); `store` opens `db`, else
    the settings' database, else the default file. `save` says how each batch is saved
    there: `patient` holds and retries alerts while the database is away (a stream has no
    one upstream to redeliver them), `strict` raises (a bus worker then leaves the
    messages unacked and they come again), `no` leaves saving to the caller (the bus
    sink). `notify` sends notifications for each batch, after the save, on their own thread.
    """
    if notify and not store:
        raise ValueError("notifications need the store: their cooldowns look up earlier alerts there")
    out = AlertsOut()
    with ExitStack() as opening:  # closes in reverse: notifier, store, lines
        if lines:
            writer = AlertLineWriter(output)
            opening.callback(writer.close)
            out.sinks.append(lambda items: writer.write(item.alert for item in items))
        if store:
            opened = out.store = open_store(db or settings.store.db or default_db_path())
            if save == "patient":
                patient = out.patient = PatientStore(
                    opened, initial_s=settings.store.retry_initial_s, max_s=settings.store.retry_max_s
                )
                opening.callback(patient.close)
                out.sinks.append(lambda items: patient.save(item.alert for item in items))
            else:
                opening.callback(opened.close)
                if save == "strict":
                    out.sinks.append(lambda items: opened.save(item.alert for item in items))
            if notify:
                from tapewatch.notify.background import BackgroundNotifier
                from tapewatch.notify.router import Notifier

                notifier = BackgroundNotifier(Notifier(opened.engine, settings.notify))
                opening.callback(notifier.close)
                out.sinks.append(notifier)
        out.closing = opening.pop_all()
    return out
