"""A bus worker in a process of its own, for the crash test.

    python worker_process.py SETTINGS.json [DIE_AFTER]

With DIE_AFTER = N the worker SIGKILLs itself right after its N-th batch of alerts
is published and before the trade messages behind them are acked: the worst
moment to die. On SIGTERM it stops gracefully and prints its report as JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from tapewatch.bus.connection import until_signalled
from tapewatch.bus.worker import BusWorker
from tapewatch.config import Settings
from tapewatch.engine.stream import Emitted


def main() -> None:
    settings = Settings(**json.loads(Path(sys.argv[1]).read_text()))
    die_after = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    published = 0

    def maybe_die(_partition: int, _emitted: list[Emitted]) -> None:
        nonlocal published
        published += 1
        if published == die_after:
            os.kill(os.getpid(), signal.SIGKILL)

    worker = BusWorker(settings, settings.bus.url, on_published=[maybe_die])
    report = asyncio.run(until_signalled(worker.run))
    stats = report.stats
    print(
        json.dumps(
            {
                "trades": stats.trades,
                "alerts": stats.alerts,
                "rebuilt_trades": stats.rebuilt_trades,
                "checkpoints_restored": stats.checkpoints_restored,
                "checkpoints_saved": stats.checkpoints_saved,
            }
        )
    )


if __name__ == "__main__":
    main()
