"""`tapewatch stream --bus URL`: a worker that takes its share of the partitions and runs their engines.

Any number of workers share `bus.partitions` partitions through leases (see
`leases`): each heartbeat a worker renews its leases, stops the partitions it lost,
releases its extras and takes free ones up to its fair share; each partition it
holds runs in a `PartitionRunner` (see `partition` for how a partition resumes
exactly after a crash, from its last checkpoint when there is one). Adding a worker
adds capacity: the others hand it partitions at their next heartbeat. At start a
worker raises the trades stream's retention to what its detectors need (`retention`)
and announces that need, so `tapewatch bus status` can check it. SIGINT/SIGTERM stop the worker gracefully:
its partitions are released at once rather than after the lease TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tapewatch.bus.alert_stream import AlertPublisher
from tapewatch.bus.checkpoints import Checkpoints
from tapewatch.bus.connection import TRANSIENT, cancel, connect, log_to_stderr, until_signalled
from tapewatch.bus.leases import Leases, default_worker_name, plan
from tapewatch.bus.partition import (
    OnPublished,
    PartitionContext,
    PartitionLost,
    PartitionRunner,
    PartitionStats,
)
from tapewatch.bus.retention import needed_retention
from tapewatch.bus.subjects import BusNames
from tapewatch.bus.topology import ensure_topology
from tapewatch.config import Settings
from tapewatch.detect.registry import build_detectors
from tapewatch.engine.kinds import TRADES
from tapewatch.errors import InputError
from tapewatch.io.deadletter import check_writable
from tapewatch.pipeline.sinks import open_alerts_out

log = logging.getLogger("tapewatch.bus")
WORKER_NAME = re.compile(r"[A-Za-z0-9_-]{1,100}")


@dataclass
class WorkerReport:
    """What a worker did, for its one-line summary."""

    name: str
    seconds: float = 0.0
    stats: PartitionStats = field(default_factory=PartitionStats)
    taken: int = 0
    released: int = 0
    lost: int = 0

    def summary(self) -> str:
        s = self.stats
        line = (
            f"worker {self.name}: {s.trades:,} trades from {s.messages:,} messages over {self.seconds:.1f}s, "
            f"{s.alerts} alert(s), {s.updates} follow-up update(s); partitions taken {self.taken}, "
            f"released {self.released}, lost {self.lost}"
        )
        if s.rebuilt_trades:
            line += f"; {s.rebuilt_trades:,} trades replayed to rebuild state"
        if s.checkpoints_restored or s.checkpoints_saved:
            line += f"; checkpoints restored {s.checkpoints_restored}, saved {s.checkpoints_saved}"
        for reason, count in s.set_aside.most_common():
            line += f"; set aside {count:,}: {reason}"
        return line


class BusWorker:
    """One worker process's partitions, leases and engines."""

    def __init__(
        self,
        settings: Settings,
        url: str,
        *,
        name: str | None = None,
        on_published: Iterable[OnPublished] = (),
        detectors: Sequence[str] | None = None,
        dead_letter: Path | None = None,
    ) -> None:
        self.settings = settings
        self.detectors, self.dead_letter = detectors, dead_letter
        self.url = url
        self.name = name or default_worker_name()
        if not WORKER_NAME.fullmatch(self.name):
            raise InputError(f"--name '{self.name}': expected letters, digits, '-' or '_' only")
        self.names = BusNames.from_settings(settings.bus)
        self.retention = needed_retention(settings, detectors)
        self.report = WorkerReport(self.name)
        self.on_published = list(on_published)
        self.runners: dict[int, asyncio.Task] = {}

    @property
    def owned(self) -> list[int]:
        return sorted(self.runners)

    async def run(self, stop: asyncio.Event) -> WorkerReport:
        """Work until `stop` is set; then release every partition and disconnect."""
        started = time.perf_counter()
        bus = self.settings.bus
        client, js = await connect(self.url, bus, name=f"tapewatch-worker-{self.name}")
        kv = await ensure_topology(js, self.names, bus, self.retention)
        checkpoints = await Checkpoints.open(js, self.names, create=bus.checkpoint_s > 0)
        ttl = (await kv.status()).ttl or bus.lease_ttl_s
        leases = Leases(kv, self.names, self.name, ttl)
        ctx = PartitionContext(
            js,
            self.names,
            self.settings,
            AlertPublisher(js, self.names, bus),
            self.report.stats,
            leases.valid,
            detectors=self.detectors,
            dead_letter=self.dead_letter,
            checkpoints=checkpoints,
        )
        ctx.on_published.extend(self.on_published)
        await leases.announce(self._detail())  # count in others' fair share from the start
        renewing = asyncio.create_task(self._renew(leases, min(bus.heartbeat_s, ttl / 3)))
        try:
            while not stop.is_set():
                try:
                    await self._balance(leases, ctx)
                except TRANSIENT as exc:
                    log.warning("worker %s: rebalancing failed (%s); retrying", self.name, exc)
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), bus.heartbeat_s)
        finally:
            await cancel(renewing)
            for partition in list(self.runners):
                await self._stop_runner(partition)
            with contextlib.suppress(*TRANSIENT):
                await leases.leave()
            with contextlib.suppress(*TRANSIENT):
                await client.close()
            self.report.seconds = time.perf_counter() - started
        return self.report

    def _detail(self) -> dict:
        """What this worker tells `bus status` through its membership key: its partitions, its count of
        trades, and the retention its detectors need (and why), so the status can check the stream's."""
        return {
            "partitions": self.owned,
            "trades": self.report.stats.trades,
            "needs_s": self.retention.needed_s,
            "needs": self.retention.reason,
        }

    async def _renew(self, leases: Leases, every_s: float) -> None:
        """Renew leases and membership on their own clock, so a slow rebalance never lets them lapse."""
        while True:
            try:
                await leases.announce(self._detail())
                for partition in await leases.renew():
                    log.warning("worker %s: lost partition %d", self.name, partition)
                    self.report.lost += 1
                    task = self.runners.get(partition)
                    if task is not None:
                        task.cancel()  # reaped by the next rebalance
            except TRANSIENT as exc:
                log.warning("worker %s: lease renewal failed (%s); retrying", self.name, exc)
            await asyncio.sleep(every_s)

    async def _balance(self, leases: Leases, ctx: PartitionContext) -> None:
        """Reap ended or lost partitions (one task per partition, ever), then move towards the fair
        share: release extras, take free ones."""
        for partition, task in list(self.runners.items()):
            if task.done() or partition not in leases.held:  # ended, or its lease was lost
                await self._stop_runner(partition)
                await leases.release(partition)
        owners, members = await leases.snapshot()
        take, release = plan(self.names.partitions, self.name, owners, members)
        for partition in release:
            await self._stop_runner(partition)
            await leases.release(partition)
            self.report.released += 1
        for partition in take:
            if await leases.acquire(partition):
                self.report.taken += 1
                runner = PartitionRunner(partition, ctx)
                self.runners[partition] = asyncio.create_task(
                    runner.run(), name=f"tapewatch-partition-{partition}"
                )

    async def _stop_runner(self, partition: int) -> None:
        """Cancel a partition's task and wait for it, logging how it ended."""
        task = self.runners.pop(partition, None)
        if task is None:
            return
        await cancel(task)
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, PartitionLost):
            log.warning("worker %s: %s", self.name, exc)
        elif exc is not None:
            log.error(
                "worker %s: partition %d failed; it will be taken again",
                self.name,
                partition,
                exc_info=exc,
            )


def run_worker(
    settings: Settings,
    url: str,
    *,
    store_alerts: bool = False,
    db: str | None = None,
    output: Path | None = None,
    name: str | None = None,
    detectors: Sequence[str] | None = None,
    dead_letter: Path | None = None,
) -> WorkerReport:
    """`tapewatch stream --bus URL`: work until SIGINT/SIGTERM, then return the report.

    Alerts go to the alerts stream (for `tapewatch bus sink`); `output` also appends
    this worker's alerts as JSON lines and `store_alerts` saves them to the store
    (`db`, else the settings', else the default), for a single worker without a sink.
    `detectors` names the detectors (the bus carries trades: at least one must read
    them); set-aside messages and trades are appended to `dead_letter` as they come.
    """
    for path, option in ((output, "--output"), (dead_letter, "--dead-letter")):
        if path is not None:
            check_writable(path, option)  # now, not at the first alert or the first bad trade
    chosen = build_detectors(settings, detectors)
    if not any(TRADES.serves(detector) for detector in chosen):
        raise InputError(
            f"stream --bus: none of the chosen detectors ({', '.join(d.name for d in chosen)}) reads trades, "
            "which is what the bus carries"
        )
    log_to_stderr()
    out = open_alerts_out(
        settings, lines=output is not None, output=output, store=store_alerts, db=db, save="strict"
    )
    worker = BusWorker(
        settings,
        url,
        name=name,
        on_published=[lambda _partition, items: out(items)],
        detectors=detectors,
        dead_letter=dead_letter,
    )
    try:
        return asyncio.run(until_signalled(worker.run))
    finally:
        out.close()
