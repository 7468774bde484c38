"""`tapewatch bus status`: streams, partition owners, workers, lag and checkpoints, read from the bus itself.

Lag is what is stored but not yet done: for a partition with a consumer, its
messages not yet delivered plus those delivered but not acked; for a partition no
worker has taken yet, every message on its subjects. Tests and the benchmark wait
on the same figure (zero lag on trades and alerts: every effect is stored).

Retention: how long the trades stream keeps trades, against the longest history
the running workers' detectors need (each announces it in its membership key; with
no worker running, what this configuration's default detectors need): shorter, and
a worker taking a partition over cannot rebuild its state exactly.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, NotFoundError

from tapewatch.bus.checkpoints import Checkpoints
from tapewatch.bus.connection import connect
from tapewatch.bus.leases import Leases
from tapewatch.bus.retention import Retention, human, needed_retention
from tapewatch.bus.subjects import BusNames
from tapewatch.config import Settings


@dataclass
class StreamState:
    """One stream's size and time span (None when it does not exist yet)."""

    name: str
    messages: int = 0
    bytes: int = 0
    first: datetime | None = None
    last: datetime | None = None
    exists: bool = True
    max_age_s: float = 0.0
    """How long the stream keeps messages (0: for ever, or no stream)."""


@dataclass
class PartitionState:
    partition: int
    owner: str | None
    has_consumer: bool
    lag: int
    ack_floor: int = 0
    checkpoint_seq: int | None = None
    """The stream sequence the partition's engine checkpoint covers (None: no checkpoint)."""
    checkpoint_age_s: float | None = None

    @property
    def checkpoint(self) -> str:
        """The checkpoint's age and sequence, or "none"."""
        if self.checkpoint_age_s is None:
            return "none"
        return f"{human(self.checkpoint_age_s)} ago (seq {self.checkpoint_seq:,})"


@dataclass
class BusStatus:
    """A snapshot of the bus for `tapewatch bus status`, the tests and the benchmark."""

    trades: StreamState
    alerts: StreamState
    partitions: list[PartitionState] = field(default_factory=list)
    workers: dict[str, dict] = field(default_factory=dict)
    sink_lag: int | None = None
    needed_s: float = 0.0
    """The longest history the workers' detectors need kept (see the module docstring)."""
    needed_by: str = ""

    @property
    def trades_lag(self) -> int:
        return sum(p.lag for p in self.partitions)

    @property
    def settled(self) -> bool:
        """Every trade processed and every alert stored (the sink consumer exists and has no lag)."""
        return self.trades_lag == 0 and self.sink_lag == 0

    def summary(self) -> str:
        owned = sum(p.owner is not None for p in self.partitions)
        sink = "no sink yet" if self.sink_lag is None else f"sink lag {self.sink_lag:,}"
        return (
            f"bus: {self.trades.messages:,} trade message(s), {self.alerts.messages:,} alert message(s); "
            f"{len(self.workers)} worker(s) own {owned}/{len(self.partitions)} partitions; "
            f"trades lag {self.trades_lag:,} message(s), {sink}"
        )

    @property
    def retention_ok(self) -> bool:
        """Whether the trades stream keeps what a takeover needs to rebuild exactly (0: kept for ever)."""
        return self.trades.max_age_s == 0 or self.trades.max_age_s >= self.needed_s

    def retention_line(self) -> str:
        """The trades stream's retention against what the detectors need, and why."""
        if not self.trades.exists:
            return f"retention: no trades stream yet; the detectors need {human(self.needed_s)} ({self.needed_by})"
        kept = "for ever" if self.trades.max_age_s == 0 else human(self.trades.max_age_s)
        verdict = (
            "a takeover rebuilds exactly"
            if self.retention_ok
            else "TOO SHORT: a takeover cannot rebuild exactly"
        )
        return (
            f"retention: trades kept {kept}; the detectors need {human(self.needed_s)} "
            f"({self.needed_by}): {verdict}"
        )


async def read_status(js: JetStreamContext, names: BusNames, expected: Retention | None = None) -> BusStatus:
    """Read streams, consumers, leases and checkpoints; missing pieces read as empty, never as errors.

    `expected`: what the detectors need when no running worker says (None: nothing)."""
    trades, alerts = await _stream(js, names.trades_stream), await _stream(js, names.alerts_stream)
    owners, workers = await _leases(js, names)
    status = BusStatus(trades, alerts, workers=workers)
    status.needed_s, status.needed_by = _needed(workers, expected)
    checkpoints = await Checkpoints.open(js, names, create=False)
    unowned: Counter[int] | None = None
    for partition in range(names.partitions):
        try:
            info = await js.consumer_info(names.trades_stream, names.durable(partition))
        except NotFoundError:
            if unowned is None:
                unowned = await _messages_per_partition(js, names) if trades.exists else Counter()
            state = PartitionState(partition, owners.get(partition), False, unowned[partition])
        else:
            lag = info.num_pending + info.num_ack_pending
            state = PartitionState(partition, owners.get(partition), True, lag, info.ack_floor.stream_seq)
        saved = None if checkpoints is None else await checkpoints.describe(partition)
        if saved is not None:
            state.checkpoint_seq, state.checkpoint_age_s = saved.seq, max(0.0, saved.age_s())
        status.partitions.append(state)
    try:
        info = await js.consumer_info(names.alerts_stream, names.sink_durable)
        status.sink_lag = info.num_pending + info.num_ack_pending
    except NotFoundError:
        pass
    return status


async def _stream(js: JetStreamContext, name: str) -> StreamState:
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        return StreamState(name, exists=False)
    state = info.state
    return StreamState(
        name,
        state.messages,
        state.bytes,
        getattr(state, "first_ts", None),
        getattr(state, "last_ts", None),
        max_age_s=info.config.max_age or 0.0,
    )


def _needed(workers: dict[str, dict], expected: Retention | None) -> tuple[float, str]:
    """The longest need any running worker announced, and why; else `expected`'s."""
    announced = [
        (float(detail["needs_s"]), f"{detail.get('needs', '?')}, worker {name}")
        for name, detail in workers.items()
        if isinstance(detail.get("needs_s"), int | float)
    ]
    if announced:
        return max(announced)
    if expected is None:
        return 0.0, "no worker running"
    return expected.needed_s, f"{expected.reason}; no worker running: this configuration's default detectors"


async def _leases(js: JetStreamContext, names: BusNames) -> tuple[dict[int, str], dict[str, dict]]:
    try:
        kv = await js.key_value(names.leases_bucket)
    except BucketNotFoundError:
        return {}, {}
    owners, members = await Leases(kv, names, "status", 1.0).snapshot()
    workers = {}
    for name in sorted(members):
        try:
            workers[name] = json.loads((await kv.get(names.member_key(name))).value or b"{}")
        except (NotFoundError, ValueError):
            workers[name] = {}
    return owners, workers


async def _messages_per_partition(js: JetStreamContext, names: BusNames) -> Counter[int]:
    info = await js.stream_info(names.trades_stream, subjects_filter=names.trades_wildcard)
    counts: Counter[int] = Counter()
    for subject, count in (info.state.subjects or {}).items():
        partition = names.partition_of_subject(subject)
        if partition is not None:
            counts[partition] += count
    return counts


def bus_status(settings: Settings, url: str) -> BusStatus:
    """Connect, read the status, disconnect: `tapewatch bus status`."""

    expected = needed_retention(settings)

    async def read() -> BusStatus:
        client, js = await connect(url, settings.bus, name="tapewatch-status")
        try:
            return await read_status(js, BusNames.from_settings(settings.bus), expected)
        finally:
            await client.close()

    return asyncio.run(read())
