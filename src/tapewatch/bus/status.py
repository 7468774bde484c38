"""`tapewatch bus status`: streams, partition owners, workers and lag, read from the bus itself.

Lag is what is stored but not yet done: for a partition with a consumer, its
messages not yet delivered plus those delivered but not acked; for a partition no
worker has taken yet, every message on its subjects. Tests and the benchmark wait
on the same figure (zero lag on trades and alerts: every effect is stored).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from nats.js import JetStreamContext
from nats.js.errors import BucketNotFoundError, NotFoundError

from tapewatch.bus.connection import connect
from tapewatch.bus.leases import Leases
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


@dataclass
class PartitionState:
    partition: int
    owner: str | None
    has_consumer: bool
    lag: int
    ack_floor: int = 0


@dataclass
class BusStatus:
    """A snapshot of the bus for `tapewatch bus status`, the tests and the benchmark."""

    trades: StreamState
    alerts: StreamState
    partitions: list[PartitionState] = field(default_factory=list)
    workers: dict[str, dict] = field(default_factory=dict)
    sink_lag: int | None = None

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


async def read_status(js: JetStreamContext, names: BusNames) -> BusStatus:
    """Read streams, consumers and leases; missing pieces read as empty, never as errors."""
    trades, alerts = await _stream(js, names.trades_stream), await _stream(js, names.alerts_stream)
    owners, workers = await _leases(js, names)
    status = BusStatus(trades, alerts, workers=workers)
    unowned: Counter[int] | None = None
    for partition in range(names.partitions):
        try:
            info = await js.consumer_info(names.trades_stream, names.durable(partition))
        except NotFoundError:
            if unowned is None:
                unowned = await _messages_per_partition(js, names) if trades.exists else Counter()
            status.partitions.append(
                PartitionState(partition, owners.get(partition), False, unowned[partition])
            )
            continue
        lag = info.num_pending + info.num_ack_pending
        status.partitions.append(
            PartitionState(partition, owners.get(partition), True, lag, info.ack_floor.stream_seq)
        )
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
        name, state.messages, state.bytes, getattr(state, "first_ts", None), getattr(state, "last_ts", None)
    )


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

    async def read() -> BusStatus:
        client, js = await connect(url, settings.bus, name="tapewatch-status")
        try:
            return await read_status(js, BusNames.from_settings(settings.bus))
        finally:
            await client.close()

    return asyncio.run(read())
