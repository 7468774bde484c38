"""The streams and the lease bucket, created idempotently by whoever connects first.

Trades are kept by age (`trades_max_age_h`, more than the detectors' longest
lookback, because a worker taking a partition rebuilds its engine from them) and
alerts much longer; both drop republished messages by `Nats-Msg-Id` within their
duplicate windows. The partition count is written into the trades stream's
description: a worker configured with another count would route symbols to other
partitions than the data already on the bus, so it is refused with a clear error.
"""

from __future__ import annotations

import re

from nats.js import JetStreamContext, api
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from tapewatch.bus.connection import BusError
from tapewatch.bus.subjects import BusNames
from tapewatch.config import BusSettings

HOUR = 3600.0
_PARTITIONS = re.compile(r"partitions=(\d+)")


def _stream_configs(names: BusNames, bus: BusSettings) -> list[api.StreamConfig]:
    trades = api.StreamConfig(
        name=names.trades_stream,
        description=f"Tapewatch trades, partitions={names.partitions}",
        subjects=[names.trades_wildcard],
        retention=api.RetentionPolicy.LIMITS,
        max_age=bus.trades_max_age_h * HOUR,
        duplicate_window=min(bus.trades_dedup_window_s, bus.trades_max_age_h * HOUR),
        storage=api.StorageType.FILE,
    )
    alerts = api.StreamConfig(
        name=names.alerts_stream,
        description="Tapewatch alerts and follow-up updates",
        subjects=[names.alerts_wildcard],
        retention=api.RetentionPolicy.LIMITS,
        max_age=bus.alerts_max_age_d * 24 * HOUR,
        duplicate_window=bus.alerts_dedup_window_s,
        storage=api.StorageType.FILE,
    )
    return [trades, alerts]


async def ensure_topology(js: JetStreamContext, names: BusNames, bus: BusSettings) -> KeyValue:
    """Create (or bring up to date) both streams and the lease bucket; return the bucket."""
    for config in _stream_configs(names, bus):
        try:
            info = await js.stream_info(config.name)
        except NotFoundError:
            await js.add_stream(config)
            continue
        found = _PARTITIONS.search(info.config.description or "")
        if config.name == names.trades_stream and found and int(found.group(1)) != names.partitions:
            raise BusError(
                f"bus stream {config.name}: holds {found.group(1)} partitions but bus.partitions is "
                f"{names.partitions}; use the same count (or a new stream)"
            )
        if (info.config.max_age, info.config.duplicate_window) != (config.max_age, config.duplicate_window):
            await js.update_stream(config)
    try:
        return await js.key_value(names.leases_bucket)
    except BucketNotFoundError:
        return await js.create_key_value(
            bucket=names.leases_bucket, ttl=bus.lease_ttl_s, history=1, storage=api.StorageType.FILE
        )


async def delete_topology(js: JetStreamContext, names: BusNames) -> None:
    """Remove both streams (with their consumers) and the lease bucket; missing ones are fine."""
    for stream in (names.trades_stream, names.alerts_stream):
        try:
            await js.delete_stream(stream)
        except NotFoundError:
            pass
    try:
        await js.delete_key_value(names.leases_bucket)
    except NotFoundError:
        pass
