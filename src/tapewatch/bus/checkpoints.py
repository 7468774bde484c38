"""Partitions' engine checkpoints on the bus, so a worker taking a partition replays minutes, not days.

A checkpoint is `StreamEngine.snapshot()` taken right after a step, with `seq`: the
stream sequence of the last message pushed into the engine. The engine's state is
then exactly the one of a run that pushed the partition's messages up to `seq` —
whatever it decided, it published before the snapshot (alerts go out before acks,
and the snapshot is taken after both). A worker taking the partition restores it and
replays only what came after (see `partition`).

Stored in a JetStream object store (`BusNames.checkpoints_bucket`), one object per
partition, replaced at each save: a snapshot holds the kept tails and is megabytes,
over NATS's 1 MB message limit that a key-value bucket is bound by; the object store
chunks it. The sequence and the time of saving go in the object's description, so
`bus status` reads a checkpoint's age without downloading it.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import time
from dataclasses import dataclass

from nats.js import JetStreamContext, api
from nats.js.errors import BadObjectMetaError, BucketNotFoundError, DigestMismatchError, NotFoundError
from nats.js.object_store import ObjectStore

from tapewatch.bus.subjects import BusNames

log = logging.getLogger("tapewatch.bus")
LOAD_TIMEOUT_S = 120.0
"""Longest a checkpoint read may take (tens of MB from a local server take a second or two)."""


@dataclass(frozen=True)
class Checkpoint:
    """One partition's saved engine state (`data` None when only its description was read)."""

    partition: int
    seq: int
    """Every message of the partition up to this stream sequence is in the state, none after it."""
    saved_at: float
    """Epoch seconds."""
    size: int
    data: bytes | None = None

    def age_s(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.saved_at


def object_name(partition: int) -> str:
    return f"partition-{partition}"


class Checkpoints:
    """Save, load and describe the partitions' checkpoints in one object store."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    @classmethod
    async def open(cls, js: JetStreamContext, names: BusNames, *, create: bool) -> Checkpoints | None:
        """The bucket (created when `create`); None when it does not exist and is not to be created."""
        try:
            return cls(await js.object_store(names.checkpoints_bucket))
        except (BucketNotFoundError, NotFoundError):
            if not create:
                return None
        config = api.ObjectStoreConfig(
            bucket=names.checkpoints_bucket,
            description="Tapewatch partitions' engine checkpoints",
            storage=api.StorageType.FILE,
        )
        return cls(await js.create_object_store(names.checkpoints_bucket, config=config))

    async def save(self, partition: int, seq: int, data: bytes) -> Checkpoint:
        """Replace the partition's checkpoint."""
        saved = Checkpoint(partition, seq, time.time(), len(data))
        description = json.dumps({"seq": seq, "saved_at": saved.saved_at})
        await self.store.put(object_name(partition), data, meta=api.ObjectMeta(description=description))
        return saved

    async def describe(self, partition: int) -> Checkpoint | None:
        """The partition's checkpoint without its data; None when there is none (or it is unreadable)."""
        try:
            info = await self.store.get_info(object_name(partition))
        except NotFoundError:
            return None
        return _described(partition, info)

    async def load(self, partition: int) -> Checkpoint | None:
        """The partition's checkpoint with its data; None when there is none or it cannot be read whole.

        Written into a buffer (nats-py would grow a bytes object chunk by chunk, quadratic in the
        size), with a time limit: a save replacing the object mid-read purges the chunks being read,
        and the read would wait for them for ever. The description comes with the data, from the
        same object."""
        buffer = io.BytesIO()
        try:
            result = await asyncio.wait_for(
                self.store.get(object_name(partition), writeinto=buffer), LOAD_TIMEOUT_S
            )
        except (NotFoundError, DigestMismatchError, BadObjectMetaError, TimeoutError) as exc:
            if not isinstance(exc, NotFoundError):
                log.warning("partition %d: checkpoint not read (%s); rebuilding instead", partition, exc)
            return None
        described = _described(partition, result.info)
        data = buffer.getvalue()
        if described is None or len(data) != described.size:
            return None
        return Checkpoint(partition, described.seq, described.saved_at, described.size, data)


def _described(partition: int, info: api.ObjectInfo) -> Checkpoint | None:
    try:
        meta = json.loads(info.description or "")
        return Checkpoint(partition, int(meta["seq"]), float(meta["saved_at"]), info.size or 0)
    except (ValueError, KeyError, TypeError):
        return None
