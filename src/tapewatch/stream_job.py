"""`tapewatch stream` as a function: feed a source into the streaming engine and the sinks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from tapewatch.engine.stream import Emitted, StreamEngine

Sink = Callable[[list[Emitted]], None]


@dataclass
class StreamReport:
    """What a stream run did, for the summary and the benchmarks."""

    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    def latency(self, quantile: float) -> float | None:
        """Arrival → alert latency at a quantile, in ms (None when no alert carried timing)."""
        return float(np.quantile(self.latencies_ms, quantile)) if self.latencies_ms else None


def run_stream(
    batches: Iterable[tuple[pl.DataFrame, pl.Series | float | None]],
    engine: StreamEngine,
    sinks: Iterable[Sink],
    *,
    clock: Callable[[], float] = time.time,
) -> StreamReport:
    """Push every batch; step when `batch_ms` has passed or `max_batch_trades` are waiting; finish at the end."""
    sinks = list(sinks)
    report = StreamReport()
    started = last_step = clock()
    settings = engine.settings

    def deliver(emitted: list[Emitted]) -> None:
        if not emitted:
            return
        report.latencies_ms.extend(
            item.alert.timing["latency_ms"] for item in emitted if not item.update and item.alert.timing
        )
        for sink in sinks:
            sink(emitted)

    for trades, arrived in batches:
        engine.push(trades, arrived)
        now = clock()
        if engine.pending >= settings.max_batch_trades or (now - last_step) * 1000 >= settings.batch_ms:
            deliver(engine.step(now))
            last_step = now
    deliver(engine.finish())
    report.seconds = clock() - started
    return report
