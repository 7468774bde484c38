"""Who owns which partition: leases in a JetStream KV bucket whose TTL frees a dead owner's partitions.

Every worker keeps a membership key (`worker.<name>`) and one key per partition it
owns (`partition.<n>` → its name). Both expire with the bucket's TTL unless renewed
by the heartbeat, so a worker killed with SIGKILL loses everything after one TTL.
Keys change only by compare-and-set on their revision: `create` takes a free
partition (one writer wins), `update` renews only what is still ours, `delete`
hands one back. Each heartbeat the worker aims at `ceil(partitions / live workers)`
partitions: it takes free ones below that and releases its extras above it, so a
new worker soon gets its share and a dead one's share is spread over the others.

A worker whose renewal fails (network, pause) stops using a partition locally a
little before the server could expire its lease (`valid`), so two workers never
knowingly process one partition; the deterministic alert ids and message-id
deduplication make the remaining race (a long pause in mid-publish) harmless.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import socket
import time
import uuid
from dataclasses import dataclass

from nats.js.errors import APIError, KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from tapewatch.bus.connection import TRANSIENT
from tapewatch.bus.subjects import BusNames

WRONG_REVISION = (10071, 10164)
"""JetStream's codes for a compare-and-set on a stale revision."""
SAFETY = 0.2
"""Share of the TTL (at most a second) before expiry at which a worker stops trusting its lease."""


def default_worker_name() -> str:
    """host-pid-random: unique per process, readable in `tapewatch bus status`."""
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in socket.gethostname())[:40]
    return f"{host or 'worker'}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


def plan(partitions: int, me: str, owners: dict[int, str], members: set[str]) -> tuple[list[int], list[int]]:
    """(partitions to take, partitions to release) for a fair share: ceil(partitions / live workers)."""
    target = math.ceil(partitions / len(members | {me}))
    mine = sorted(p for p, owner in owners.items() if owner == me)
    if len(mine) > target:
        return [], mine[target:]
    start = int(uuid.uuid5(uuid.NAMESPACE_OID, me).int % partitions)  # spread workers' first picks
    free = [(start + i) % partitions for i in range(partitions) if (start + i) % partitions not in owners]
    return free[: target - len(mine)], []


@dataclass
class Lease:
    revision: int
    renewed_at: float  # monotonic time just before the renewal was sent


class Leases:
    """This worker's view of the lease bucket, and the compare-and-set operations on it."""

    def __init__(self, kv: KeyValue, names: BusNames, me: str, ttl_s: float) -> None:
        self.kv, self.names, self.me, self.ttl_s = kv, names, me, ttl_s
        self.held: dict[int, Lease] = {}
        self._lock = asyncio.Lock()  # renewals and releases of one lease must not interleave

    def valid(self, partition: int) -> bool:
        """Whether this worker may still act for a partition (renewed recently enough)."""
        lease = self.held.get(partition)
        margin = min(1.0, SAFETY * self.ttl_s)
        return lease is not None and time.monotonic() < lease.renewed_at + self.ttl_s - margin

    async def announce(self, detail: dict) -> None:
        """Renew the membership key that makes this worker count in everyone's fair share."""
        await self.kv.put(self.names.member_key(self.me), json.dumps(detail).encode())

    async def snapshot(self) -> tuple[dict[int, str], set[str]]:
        """(partition → owner, live worker names) as the bucket holds them now."""
        watcher = await self.kv.watchall(ignore_deletes=True)
        owners: dict[int, str] = {}
        members: set[str] = set()
        try:
            async for entry in watcher:
                if entry is None:  # the end of what is stored now
                    break
                kind, _, rest = entry.key.partition(".")
                if kind == "partition" and rest.isdigit() and entry.value:
                    owners[int(rest)] = entry.value.decode()
                elif kind == "worker":
                    members.add(rest)
        finally:
            await watcher.stop()
        return owners, members

    async def acquire(self, partition: int) -> bool:
        """Take a free partition; False when another worker got it first."""
        async with self._lock:
            sent = time.monotonic()
            try:
                revision = await self.kv.create(self.names.lease_key(partition), self.me.encode())
            except KeyWrongLastSequenceError:
                return False
            self.held[partition] = Lease(revision, sent)
            return True

    async def renew(self) -> list[int]:
        """Renew every held lease (all at once); return the partitions lost (expired or taken)."""
        async with self._lock:
            held = list(self.held.items())
            renewed = await asyncio.gather(*(self._renew_one(p, lease) for p, lease in held))
            for (partition, _), lease in zip(held, renewed, strict=True):
                if lease is None:
                    del self.held[partition]
                else:
                    self.held[partition] = lease
        return [partition for (partition, _), lease in zip(held, renewed, strict=True) if lease is None]

    async def _renew_one(self, partition: int, lease: Lease) -> Lease | None:
        """The renewed lease; the old one when the bus did not answer; None when it is gone."""
        key, sent = self.names.lease_key(partition), time.monotonic()
        try:
            return Lease(await self.kv.update(key, self.me.encode(), last=lease.revision), sent)
        except KeyWrongLastSequenceError:
            # Ours still, if a renewal that "timed out" did reach the server: adopt its revision.
            try:
                entry = await self.kv.get(key)
            except NotFoundError:  # expired, or deleted
                return None
            if entry.value != self.me.encode() or entry.revision is None:
                return None
            return await self._renew_one(partition, Lease(entry.revision, lease.renewed_at))
        except TRANSIENT:
            return lease  # not renewed: `valid` lapses unless a later renewal gets through

    async def release(self, partition: int) -> None:
        """Hand a partition back at once (rebalance, shutdown) instead of letting it expire."""
        async with self._lock:
            lease = self.held.pop(partition, None)
            if lease is not None:
                try:
                    await self.kv.delete(self.names.lease_key(partition), last=lease.revision)
                except APIError as exc:
                    if exc.err_code not in WRONG_REVISION:
                        raise  # else it already expired or was taken

    async def leave(self) -> None:
        """Release everything and drop the membership key (a graceful stop)."""
        for partition in list(self.held):
            await self.release(partition)
        await self.kv.delete(self.names.member_key(self.me))
