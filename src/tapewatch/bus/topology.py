"""The streams and the lease bucket, created idempotently by whoever connects first.

Trades are kept by age: at least `trades_max_age_h`, and at least what the
detectors of every worker need (`retention`: a worker taking a partition rebuilds
its engine from them); alerts are kept `alerts_max_age_d`. Both drop republished
messages by `Nats-Msg-Id` within their duplicate windows. Ages and windows are
only ever raised, to the longest any process asked for: processes with other
settings share the streams, and lowering would throw away what another needs
(and two such processes would rewrite the stream back and forth). The partition count is written into the trades stream's
description: a worker configured with another count would route symbols to other
partitions than the data already on the bus, so it is refused with a clear error.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace

from nats.js import JetStreamContext, api
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from tapewatch.bus.connection import BusError
from tapewatch.bus.retention import Retention, human
from tapewatch.bus.subjects import BusNames
from tapewatch.config import BusSettings

log = logging.getLogger("tapewatch.bus")
HOUR = 3600.0
RAISE_ATTEMPTS = 3
_PARTITIONS = re.compile(r"partitions=(\d+)")


def _stream_configs(names: BusNames, bus: BusSettings, trades_age_s: float) -> list[api.StreamConfig]:
    trades = api.StreamConfig(
        name=names.trades_stream,
        description=f"Tapewatch trades, partitions={names.partitions}",
        subjects=[names.trades_wildcard],
        retention=api.RetentionPolicy.LIMITS,
        max_age=trades_age_s,
        duplicate_window=min(bus.trades_dedup_window_s, trades_age_s),
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


async def ensure_topology(
    js: JetStreamContext, names: BusNames, bus: BusSettings, retention: Retention | None = None
) -> KeyValue:
    """Create (or raise to what is asked) both streams and the lease bucket; return the bucket.

    `retention`: what this process's detectors need the trades kept (None: only
    `trades_max_age_h`); the retention kept and why is logged when given."""
    asked = retention.target.total_seconds() if retention else bus.trades_max_age_h * HOUR
    for config in _stream_configs(names, bus, asked):
        try:
            info = await js.stream_info(config.name)
        except NotFoundError:
            await js.add_stream(config)
            kept = config.max_age or 0.0
        else:
            found = _PARTITIONS.search(info.config.description or "")
            if config.name == names.trades_stream and found and int(found.group(1)) != names.partitions:
                raise BusError(
                    f"bus stream {config.name}: holds {found.group(1)} partitions but bus.partitions is "
                    f"{names.partitions}; use the same count (or a new stream)"
                )
            kept = await _raise_limits(js, info.config, config)
        if config.name == names.trades_stream and retention is not None:
            log.info("%s", retention_line(config.name, kept, retention))
    try:
        return await js.key_value(names.leases_bucket)
    except BucketNotFoundError:
        return await js.create_key_value(
            bucket=names.leases_bucket, ttl=bus.lease_ttl_s, history=1, storage=api.StorageType.FILE
        )


async def _raise_limits(js: JetStreamContext, found: api.StreamConfig, asked: api.StreamConfig) -> float:
    """Raise the stream's max age and duplicate window to those asked, never lower them; the age kept.

    Read again after an update: another process raising at the same moment from the same
    old config could have written a lower value over ours, and then ours goes in again."""
    for _ in range(RAISE_ATTEMPTS):
        # A max age of 0 keeps messages for ever: the longest of all, never to be "raised" to a limit.
        unlimited = not found.max_age or not asked.max_age
        age = 0.0 if unlimited else max(found.max_age, asked.max_age)
        window = max(found.duplicate_window or 0.0, asked.duplicate_window or 0.0)
        if (age, window) == (found.max_age, found.duplicate_window):
            break
        await js.update_stream(replace(found, max_age=age, duplicate_window=window))
        log.info(
            "bus stream %s: now keeps messages %s (was %s)", found.name, human(age), human(found.max_age or 0)
        )
        found = (await js.stream_info(found.name)).config
    return found.max_age or 0.0


def retention_line(stream: str, kept_s: float, retention: Retention) -> str:
    """One line: how long trades are kept, what the detectors need, and whether a takeover is exact."""
    line = f"bus stream {stream}: keeps trades {human(kept_s) if kept_s else 'for ever'}"
    if retention.needed_s <= 0:
        return line + f" (configured {human(retention.configured)}; this process runs no trade detectors)"
    verdict = (
        "enough to rebuild a partition exactly"
        if not kept_s or kept_s >= retention.needed_s
        else "TOO SHORT to rebuild"
    )
    return f"{line}; detectors need {human(retention.needed)} ({retention.reason}): {verdict}" + (
        f" (longer than the {human(retention.target)} asked here: kept)"
        if kept_s > retention.target.total_seconds() + 1
        else ""
    )


async def delete_topology(js: JetStreamContext, names: BusNames) -> None:
    """Remove both streams (with their consumers), the lease and checkpoint buckets; missing ones are fine."""
    for stream in (names.trades_stream, names.alerts_stream):
        try:
            await js.delete_stream(stream)
        except NotFoundError:
            pass
    try:
        await js.delete_key_value(names.leases_bucket)
    except NotFoundError:
        pass
    try:
        await js.delete_object_store(names.checkpoints_bucket)
    except NotFoundError:
        pass
