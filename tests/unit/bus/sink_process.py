"""The bus sink in a process of its own, for the crash test.

    python sink_process.py SETTINGS.json DB [DIE_AFTER]

It notifies through the store's rules as `bus sink --notify` does (a background
notifier, fed after each save). With DIE_AFTER = N the sink SIGKILLs itself right
after the batch that brings the alert messages it saved to N or more, once that
batch is queued for notification and before it is acked: the worst moment to die
for the store, while earlier batches, acked, may still wait in the notification
queue. On SIGTERM it stops gracefully and prints its report as JSON.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import sys
from pathlib import Path

from tapewatch.bus.connection import until_signalled
from tapewatch.bus.sink import AlertSink
from tapewatch.config import Settings
from tapewatch.engine.stream import Emitted
from tapewatch.notify.background import BackgroundNotifier
from tapewatch.notify.router import Notifier
from tapewatch.store.alert_store import open_store


def main() -> None:
    settings = Settings(**json.loads(Path(sys.argv[1]).read_text()))
    die_after = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    saved = 0

    def maybe_die(fresh: list[Emitted]) -> None:
        nonlocal saved
        saved += len(fresh)
        if die_after and saved >= die_after:
            os.kill(os.getpid(), signal.SIGKILL)

    with (
        open_store(sys.argv[2]) as store,
        BackgroundNotifier(Notifier(store.engine, settings.notify)) as notify,
    ):
        sink = AlertSink(settings, settings.bus.url, store, hooks=[notify, maybe_die])
        report = asyncio.run(until_signalled(sink.run))
    print(json.dumps(dataclasses.asdict(report)))


if __name__ == "__main__":
    main()
